//! Published R4 / US Core examples must validate with zero issues; mutated
//! copies must produce the exact expected issue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use fhir_validate::{validate_resource, Issue, Severity};
use serde_json::{json, Value};

mod common;
use common::{load, FIXTURES};

/// Applies `f` to a fixture and expects exactly one error with this code
/// and expression.
fn mutated(name: &str, f: impl FnOnce(&mut Value), code: &str, expr: &str) -> Issue {
    let mut v = load(name);
    f(&mut v);
    let issues = validate_resource(&v);
    assert_eq!(issues.len(), 1, "{name}: {issues:#?}");
    let i = issues.into_iter().next().unwrap_or_else(|| unreachable!());
    assert!(i.is_error(), "{i:?}");
    assert_eq!((i.code, i.expression.as_str()), (code, expr), "{i:?}");
    i
}

fn set(v: &mut Value, pointer: &str, new: Value) {
    match v.pointer_mut(pointer) {
        Some(slot) => *slot = new,
        None => panic!("no {pointer}"),
    }
}

fn insert(v: &mut Value, pointer: &str, key: &str, new: Value) {
    match v.pointer_mut(pointer).and_then(Value::as_object_mut) {
        Some(o) => {
            o.insert(key.to_owned(), new);
        }
        None => panic!("no object at {pointer}"),
    }
}

fn remove(v: &mut Value, pointer: &str, key: &str) {
    match v.pointer_mut(pointer).and_then(Value::as_object_mut) {
        Some(o) => {
            o.remove(key);
        }
        None => panic!("no object at {pointer}"),
    }
}

#[test]
fn published_examples_have_no_issues() {
    for name in FIXTURES {
        let issues = validate_resource(&load(name));
        assert!(issues.is_empty(), "{name}: {issues:#?}");
    }
}

#[test]
fn invalid_date() {
    let i = mutated(
        "r4spec-Patient-example.json",
        |v| set(v, "/birthDate", json!("not-a-date")),
        "value",
        "Patient.birthDate",
    );
    assert!(i.diagnostics.contains("not a valid date"));
    mutated(
        "uscore-RelatedPerson-shaw-niece.json",
        |v| set(v, "/birthDate", json!("1990-02-30")),
        "value",
        "RelatedPerson.birthDate",
    );
}

#[test]
fn invalid_gender_code() {
    let i = mutated(
        "r4spec-Patient-example.json",
        |v| set(v, "/gender", json!("banana")),
        "code-invalid",
        "Patient.gender",
    );
    assert!(i.diagnostics.contains("administrative-gender"));
    mutated(
        "r4spec-Patient-example.json",
        |v| set(v, "/contact/0/gender", json!("banana")),
        "code-invalid",
        "Patient.contact[0].gender",
    );
}

#[test]
fn empty_values() {
    mutated(
        "uscore-Patient-example.json",
        |v| set(v, "/name/0/family", json!("")),
        "value",
        "Patient.name[0].family",
    );
    mutated(
        "uscore-Patient-example.json",
        |v| set(v, "/telecom", json!([])),
        "value",
        "Patient.telecom",
    );
    mutated(
        "uscore-Goal-goal-1.json",
        |v| set(v, "/description", json!({})),
        "value",
        "Goal.description",
    );
    mutated(
        "uscore-Goal-goal-1.json",
        |v| set(v, "/subject", Value::Null),
        "value",
        "Goal.subject",
    );
}

#[test]
fn id_with_space() {
    let i = mutated(
        "uscore-CarePlan-colonoscopy.json",
        |v| set(v, "/id", json!("colon oscopy")),
        "value",
        "CarePlan.id",
    );
    assert!(i.diagnostics.contains("not a valid id"));
}

#[test]
fn unsafe_narrative() {
    let i = mutated(
        "uscore-CarePlan-colonoscopy.json",
        |v| {
            set(v, "/text/div", json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Plan<script>alert(1)</script></div>"))
        },
        "invariant",
        "CarePlan.text.div",
    );
    assert!(i.diagnostics.contains("<script>"));
    let i = mutated(
        "r4spec-Goal-example.json",
        |v| {
            set(v, "/text/div", json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"steal()\">Goal</p></div>"))
        },
        "invariant",
        "Goal.text.div",
    );
    assert!(i.diagnostics.contains("onclick"));
}

#[test]
fn unknown_element() {
    let i = mutated(
        "uscore-Condition-health-concern.json",
        |v| insert(v, "", "onsetdateTime", json!("2020")),
        "structure",
        "Condition.onsetdateTime",
    );
    assert!(
        i.diagnostics.contains("did you mean 'onsetDateTime'"),
        "{}",
        i.diagnostics
    );
    mutated(
        "uscore-QuestionnaireResponse-phq-9-example.json",
        |v| insert(v, "/item/0", "score", json!(3)),
        "structure",
        "QuestionnaireResponse.item[0].score",
    );
}

#[test]
fn two_choice_variants() {
    mutated(
        "uscore-Condition-health-concern.json",
        |v| insert(v, "", "onsetString", json!("childhood")),
        "structure",
        "Condition.onsetString",
    );
    mutated(
        "uscore-QuestionnaireResponse-phq-9-example.json",
        |v| insert(v, "/item/0/answer/0", "valueString", json!("x")),
        "structure",
        "QuestionnaireResponse.item[0].answer[0].valueString",
    );
}

#[test]
fn missing_required() {
    let i = mutated(
        "uscore-CarePlan-colonoscopy.json",
        |v| remove(v, "", "status"),
        "required",
        "CarePlan.status",
    );
    assert!(i.diagnostics.contains("'status'"));
    mutated(
        "uscore-Observation-PHQ9-total-score-44261-6.json",
        |v| remove(v, "", "code"),
        "required",
        "Observation.code",
    );
}

#[test]
fn errors_inside_bundle_entries() {
    mutated(
        "uscore-Bundle-searchset-with-Provenance-revinclude.json",
        |v| set(v, "/entry/1/resource/recorded", json!("2020-01-01")),
        "value",
        "Bundle.entry[1].resource.recorded",
    );
    mutated(
        "uscore-Bundle-searchset-with-Provenance-revinclude.json",
        |v| set(v, "/entry/0/resource/criticality", json!("very")),
        "code-invalid",
        "Bundle.entry[0].resource.criticality",
    );
}

#[test]
fn wrong_json_types_and_cardinality() {
    mutated(
        "uscore-Goal-goal-1.json",
        |v| set(v, "/lifecycleStatus", json!(["active"])),
        "structure",
        "Goal.lifecycleStatus",
    );
    mutated(
        "r4spec-Practitioner-example.json",
        |v| set(v, "/active", json!("true")),
        "structure",
        "Practitioner.active",
    );
    let name = load("r4spec-Practitioner-example.json")
        .pointer("/name/0")
        .cloned()
        .unwrap_or(Value::Null);
    mutated(
        "r4spec-Practitioner-example.json",
        |v| set(v, "/name", name),
        "structure",
        "Practitioner.name",
    );
}

#[test]
fn whitespace_in_string_is_only_a_warning() {
    let mut v = load("uscore-Patient-example.json");
    set(&mut v, "/name/0/family", json!("Shaw "));
    let issues = validate_resource(&v);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].severity, Severity::Warning);
    assert!(!issues[0].is_error());
}
