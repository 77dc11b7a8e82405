//! Constraint kinds 1 and 2: cardinality (`min`/`max`, per instance of the parent, slices
//! aside) and `fixed[x]` / `pattern[x]` (FHIR R4 elementdefinition.html, profiling.html).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_validate::Severity::{Error, Information};
use serde_json::json;

fn careteam() -> serde_json::Value {
    fixture("uscore-CareTeam-example.json")
}

#[test]
fn too_few_in_one_parent_instance() {
    let set = us_core();
    let mut team = careteam();
    team["participant"][1]
        .as_object_mut()
        .unwrap()
        .remove("role");
    assert_eq!(
        validate(&set, &team, CARETEAM),
        vec![
            issue(
                Information,
                "not-supported",
                "CareTeam.participant.role",
                &format!("Binding (extensible) not checked: value set http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113762.1.4.1099.30 is not loaded (profile {CARETEAM}, element CareTeam.participant.role)")
            ),
            issue(
                Error,
                "required",
                "CareTeam.participant[1].role",
                &format!("Element 'role' requires at least 1, found 0 (profile {CARETEAM}, element CareTeam.participant.role)")
            ),
        ]
    );
}

#[test]
fn too_many_in_one_parent_instance() {
    let set = us_core();
    let mut team = careteam();
    let role = team["participant"][0]["role"][0].clone();
    team["participant"][0]["role"]
        .as_array_mut()
        .unwrap()
        .push(role);
    let errors: Vec<_> = validate(&set, &team, CARETEAM)
        .into_iter()
        .filter(|i| i.0 == Error)
        .collect();
    assert_eq!(
        errors,
        vec![issue(
            Error,
            "structure",
            "CareTeam.participant[0].role",
            &format!("Element 'role' allows at most 1, found 2 (profile {CARETEAM}, element CareTeam.participant.role)")
        )]
    );
}

#[test]
fn required_top_level_and_nested_elements() {
    let set = us_core();
    let mut team = careteam();
    team.as_object_mut().unwrap().remove("subject");
    team.as_object_mut().unwrap().remove("participant");
    assert_eq!(
        validate(&set, &team, CARETEAM),
        vec![
            issue(
                Error,
                "required",
                "CareTeam.subject",
                &format!("Element 'subject' requires at least 1, found 0 (profile {CARETEAM}, element CareTeam.subject)")
            ),
            issue(
                Error,
                "required",
                "CareTeam.participant",
                &format!("Element 'participant' requires at least 1, found 0 (profile {CARETEAM}, element CareTeam.participant)")
            ),
        ]
    );

    let mut patient = fixture("uscore-Patient-example.json");
    patient["identifier"][0]
        .as_object_mut()
        .unwrap()
        .remove("system");
    let errors: Vec<_> = validate(&set, &patient, PATIENT)
        .into_iter()
        .filter(|i| i.0 == Error)
        .collect();
    assert_eq!(
        errors,
        vec![issue(
            Error,
            "required",
            "Patient.identifier[0].system",
            &format!("Element 'system' requires at least 1, found 0 (profile {PATIENT}, element Patient.identifier.system)")
        )]
    );
}

#[test]
fn a_primitive_present_only_by_its_extension_counts() {
    let set = us_core();
    let mut patient = fixture("uscore-Patient-example.json");
    let identifier = patient["identifier"][0].as_object_mut().unwrap();
    identifier.remove("value");
    identifier.insert(
        "_value".into(),
        json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}),
    );
    assert!(validate(&set, &patient, PATIENT)
        .iter()
        .all(|i| i.0 != Error));
}

const TEST_PLAN: &str = "http://example.org/fhir/StructureDefinition/test-careplan";

fn test_plan_profile() -> fhir_profile::ProfileSet {
    us_core_with(vec![profile(
        TEST_PLAN,
        "CarePlan",
        &core("CarePlan"),
        json!([
            {"id": "CarePlan", "path": "CarePlan"},
            {"id": "CarePlan.intent", "path": "CarePlan.intent", "fixedCode": "plan"},
            {"id": "CarePlan.category", "path": "CarePlan.category",
             "patternCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}},
            {"id": "CarePlan.note", "path": "CarePlan.note", "max": "0"}
        ]),
    )])
}

fn plan() -> serde_json::Value {
    json!({
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan", "display": "Assessment and Plan"}], "text": "A&P"}],
        "subject": {"reference": "Patient/example"}
    })
}

#[test]
fn fixed_and_pattern_values_hold() {
    let set = test_plan_profile();
    assert_eq!(validate(&set, &plan(), TEST_PLAN), vec![]);
}

#[test]
fn fixed_value_differs() {
    let set = test_plan_profile();
    let mut plan = plan();
    plan["intent"] = json!("order");
    assert_eq!(
        validate(&set, &plan, TEST_PLAN),
        vec![issue(
            Error,
            "value",
            "CarePlan.intent",
            &format!(
                "Value must be exactly \"plan\" (profile {TEST_PLAN}, element CarePlan.intent)"
            )
        )]
    );
}

#[test]
fn pattern_not_contained_in_every_instance() {
    let set = test_plan_profile();
    let mut plan = plan();
    plan["category"]
        .as_array_mut()
        .unwrap()
        .push(json!({"text": "other"}));
    plan["category"][0]["coding"][0]["system"] = json!("http://example.org/other");
    let expected = |i: usize| {
        issue(
            Error,
            "value",
            &format!("CarePlan.category[{i}]"),
            &format!("Value must match the pattern {{\"coding\":[{{\"system\":\"http://hl7.org/fhir/us/core/CodeSystem/careplan-category\",\"code\":\"assess-plan\"}}]}} (profile {TEST_PLAN}, element CarePlan.category)"),
        )
    };
    assert_eq!(
        validate(&set, &plan, TEST_PLAN),
        vec![expected(0), expected(1)]
    );
}

#[test]
fn maximum_zero_prohibits() {
    let set = test_plan_profile();
    let mut plan = plan();
    plan["note"] = json!([{"text": "a note"}]);
    assert_eq!(
        validate(&set, &plan, TEST_PLAN),
        vec![issue(
            Error,
            "structure",
            "CarePlan.note",
            &format!("Element 'note' is not allowed (maximum 0), found 1 (profile {TEST_PLAN}, element CarePlan.note)")
        )]
    );
}
