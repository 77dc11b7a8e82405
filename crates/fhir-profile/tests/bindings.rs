//! Constraint kind 3: bindings (FHIR R4 terminologies.html §4.1.0.1): `required` → error
//! `code-invalid`, `extensible` → warning; a value set (or an included code system) that is
//! not loaded → one `information` issue per element. And `ProfileSet::value_set_contains`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::ProfileSet;
use fhir_validate::Severity::{Error, Information, Warning};
use serde_json::{json, Value};

const UNITS: &str = "http://example.org/fhir/ValueSet/test-units";
const CODES: &str = "http://example.org/fhir/ValueSet/test-codes";
const CATEGORIES: &str = "http://example.org/fhir/ValueSet/test-careplan-categories";
const GOALS: &str = "http://example.org/fhir/ValueSet/test-goal-descriptions";
const TEST_OBS: &str = "http://example.org/fhir/StructureDefinition/test-observation";
const TEST_PATIENT: &str = "http://example.org/fhir/StructureDefinition/test-patient";
const TEST_PLAN: &str = "http://example.org/fhir/StructureDefinition/test-careplan";
const TEST_GOAL: &str = "http://example.org/fhir/StructureDefinition/test-goal";
const CAREPLAN_CATEGORY_CS: &str = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category";

fn value_set(url: &str, include: Value) -> Value {
    json!({"resourceType": "ValueSet", "url": url, "status": "draft", "compose": {"include": include}})
}

fn binding(strength: &str, vs: &str) -> Value {
    json!({"strength": strength, "valueSet": vs})
}

fn set() -> ProfileSet {
    us_core_with(vec![
        value_set(
            UNITS,
            json!([{"system": "http://unitsofmeasure.org", "concept": [{"code": "mg"}, {"code": "kg"}]}]),
        ),
        value_set(
            CODES,
            json!([{"system": "http://example.org/codes", "concept": [{"code": "a"}, {"code": "b"}]},
                               {"system": "http://example.org/patient/identifiers", "concept": [{"code": "x"}]}]),
        ),
        value_set(
            CATEGORIES,
            json!([{"system": CAREPLAN_CATEGORY_CS}, {"system": "http://example.org/not-loaded"}]),
        ),
        value_set(
            GOALS,
            json!([{"system": "http://snomed.info/sct", "concept": [{"code": "406156006"}]}]),
        ),
        profile(
            TEST_OBS,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.code", "path": "Observation.code", "binding": binding("required", CODES)},
                {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "binding": binding("required", UNITS)}
            ]),
        ),
        profile(
            TEST_PATIENT,
            "Patient",
            &core("Patient"),
            json!([
                {"id": "Patient", "path": "Patient"},
                {"id": "Patient.meta.security", "path": "Patient.meta.security", "binding": binding("required", CODES)},
                {"id": "Patient.identifier.system", "path": "Patient.identifier.system", "binding": binding("required", CODES)},
                {"id": "Patient.name.family", "path": "Patient.name.family", "binding": binding("extensible", CODES)}
            ]),
        ),
        profile(
            TEST_PLAN,
            "CarePlan",
            CAREPLAN,
            json!([
                {"id": "CarePlan", "path": "CarePlan"},
                {"id": "CarePlan.category", "path": "CarePlan.category", "binding": binding("required", CATEGORIES)}
            ]),
        ),
        profile(
            TEST_GOAL,
            "Goal",
            GOAL,
            json!([
                {"id": "Goal", "path": "Goal"},
                {"id": "Goal.description", "path": "Goal.description", "binding": binding("extensible", GOALS)}
            ]),
        ),
    ])
}

fn observation(code: &str, unit: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://example.org/codes", "code": code}]},
        "valueQuantity": {"value": 3, "system": "http://unitsofmeasure.org", "code": unit}
    })
}

#[test]
fn required_binding_on_a_code_us_core_narrative_status() {
    let set = us_core();
    let mut plan = fixture("uscore-CarePlan-colonoscopy.json");
    assert_eq!(validate(&set, &plan, CAREPLAN), vec![]);
    plan["text"]["status"] = json!("extensions");
    assert_eq!(
        validate(&set, &plan, CAREPLAN),
        vec![issue(
            Error,
            "code-invalid",
            "CarePlan.text.status",
            &format!("Code 'extensions' is not in the required value set http://hl7.org/fhir/us/core/ValueSet/us-core-narrative-status (profile {CAREPLAN}, element CarePlan.text.status)")
        )]
    );
}

#[test]
fn required_bindings_on_codeable_concept_and_quantity() {
    let set = set();
    assert_eq!(validate(&set, &observation("a", "mg"), TEST_OBS), vec![]);
    assert_eq!(
        validate(&set, &observation("z", "lb"), TEST_OBS),
        vec![
            issue(
                Error,
                "code-invalid",
                "Observation.code",
                &format!("Code http://example.org/codes#z is not in the required value set {CODES} (profile {TEST_OBS}, element Observation.code)")
            ),
            issue(
                Error,
                "code-invalid",
                "Observation.valueQuantity",
                &format!("Code http://unitsofmeasure.org#lb is not in the required value set {UNITS} (profile {TEST_OBS}, element Observation.valueQuantity)")
            ),
        ]
    );
    // One coding in the value set is enough; text alone is not, for a required binding.
    let mut obs = observation("z", "kg");
    obs["code"]["coding"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "http://example.org/codes", "code": "b"}));
    assert_eq!(validate(&set, &obs, TEST_OBS), vec![]);
    obs["code"] = json!({"text": "something"});
    assert_eq!(
        validate(&set, &obs, TEST_OBS),
        vec![issue(
            Error,
            "code-invalid",
            "Observation.code",
            &format!("No coding from the required value set {CODES}: the concept has only text (profile {TEST_OBS}, element Observation.code)")
        )]
    );
}

#[test]
fn bindings_on_coding_uri_and_string() {
    let set = set();
    let mut patient = json!({
        "resourceType": "Patient",
        "meta": {"security": [{"system": "http://example.org/codes", "code": "a"}]},
        "identifier": [{"system": "x", "value": "1"}],
        "name": [{"family": "b"}]
    });
    assert_eq!(validate(&set, &patient, TEST_PATIENT), vec![]);
    patient["meta"]["security"][0]["code"] = json!("nope");
    patient["identifier"][0]["system"] = json!("http://example.org/other");
    patient["name"][0]["family"] = json!("Shaw");
    assert_eq!(
        validate(&set, &patient, TEST_PATIENT),
        vec![
            issue(
                Error,
                "code-invalid",
                "Patient.meta.security[0]",
                &format!("Code http://example.org/codes#nope is not in the required value set {CODES} (profile {TEST_PATIENT}, element Patient.meta.security)")
            ),
            issue(
                Error,
                "code-invalid",
                "Patient.identifier[0].system",
                &format!("Code 'http://example.org/other' is not in the required value set {CODES} (profile {TEST_PATIENT}, element Patient.identifier.system)")
            ),
            issue(
                Warning,
                "code-invalid",
                "Patient.name[0].family",
                &format!("Code 'Shaw' is not in the extensible value set {CODES} (profile {TEST_PATIENT}, element Patient.name.family)")
            ),
        ]
    );
}

#[test]
fn extensible_binding_warns_and_accepts_text() {
    let set = set();
    let goal = fixture("uscore-Goal-goal-sdoh-2.json");
    assert_eq!(validate(&set, &goal, TEST_GOAL), vec![]);
    let mut other = goal.clone();
    other["description"]["coding"][0]["code"] = json!("160903007");
    assert_eq!(
        validate(&set, &other, TEST_GOAL),
        vec![issue(
            Warning,
            "code-invalid",
            "Goal.description",
            &format!("Code http://snomed.info/sct#160903007 is not in the extensible value set {GOALS} (profile {TEST_GOAL}, element Goal.description)")
        )]
    );
    // goal-1 has a description with text only: fine for an extensible binding.
    assert_eq!(
        validate(&set, &fixture("uscore-Goal-goal-1.json"), TEST_GOAL),
        vec![]
    );
}

#[test]
fn whole_code_systems_decide_and_unloaded_ones_inform_once_per_element() {
    let set = set();
    let mut plan = fixture("uscore-CarePlan-colonoscopy.json");
    assert_eq!(validate(&set, &plan, TEST_PLAN), vec![]);
    plan["category"][0]["coding"][0]["code"] = json!("not-a-category");
    let bad = issue(
        Error,
        "code-invalid",
        "CarePlan.category[0]",
        &format!("Code {CAREPLAN_CATEGORY_CS}#not-a-category is not in the required value set {CATEGORIES} (profile {TEST_PLAN}, element CarePlan.category)"),
    );
    assert_eq!(validate(&set, &plan, TEST_PLAN), vec![bad.clone()]);
    let unloaded = json!({"coding": [{"system": "http://example.org/not-loaded", "code": "q"}]});
    plan["category"]
        .as_array_mut()
        .unwrap()
        .push(unloaded.clone());
    plan["category"].as_array_mut().unwrap().push(unloaded);
    assert_eq!(
        validate(&set, &plan, TEST_PLAN),
        vec![
            bad,
            issue(
                Information,
                "not-supported",
                "CarePlan.category",
                &format!("Binding (required) not checked: value set {CATEGORIES} includes code system http://example.org/not-loaded, which is not loaded (profile {TEST_PLAN}, element CarePlan.category)")
            ),
        ]
    );
}

#[test]
fn value_set_membership() {
    let extra = vec![
        json!({"resourceType": "CodeSystem", "url": "http://example.org/cs", "status": "draft", "content": "complete",
               "concept": [{"code": "p", "concept": [{"code": "p1"}]}, {"code": "q"}]}),
        json!({"resourceType": "CodeSystem", "url": "http://example.org/fragment", "status": "draft", "content": "fragment",
               "concept": [{"code": "f"}]}),
        json!({"resourceType": "ValueSet", "url": "http://example.org/vs-all", "status": "draft",
               "compose": {"include": [{"system": "http://example.org/cs"}], "exclude": [{"system": "http://example.org/cs", "concept": [{"code": "q"}]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://example.org/vs-filter", "status": "draft",
               "compose": {"include": [{"system": "http://example.org/cs", "filter": [{"property": "concept", "op": "is-a", "value": "p"}]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://example.org/vs-import", "status": "draft", "version": "2",
               "compose": {"include": [{"valueSet": ["http://example.org/vs-all"]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://example.org/vs-fragment", "status": "draft",
               "compose": {"include": [{"system": "http://example.org/fragment"}]}}),
        json!({"resourceType": "ValueSet", "url": "http://example.org/vs-expanded", "status": "draft",
               "expansion": {"timestamp": "2026-01-01T00:00:00Z", "contains": [{"system": "http://example.org/e", "code": "e1"}]}}),
    ];
    let set = us_core_with(extra);
    let cs = Some("http://example.org/cs");
    assert_eq!(
        set.value_set_contains("http://example.org/vs-all", cs, "p1"),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-all", cs, "q"),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-all", cs, "zz"),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-all", Some("http://other"), "p"),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-all", None, "p"),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-filter", cs, "p1"),
        None
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-import|2", cs, "p"),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/vs-import", cs, "q"),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains(
            "http://example.org/vs-fragment",
            Some("http://example.org/fragment"),
            "f"
        ),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains(
            "http://example.org/vs-fragment",
            Some("http://example.org/fragment"),
            "g"
        ),
        None
    );
    assert_eq!(
        set.value_set_contains(
            "http://example.org/vs-expanded",
            Some("http://example.org/e"),
            "e1"
        ),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains(
            "http://example.org/vs-expanded",
            Some("http://example.org/e"),
            "e2"
        ),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains("http://example.org/not-loaded", cs, "p"),
        None
    );
    // The shipped US Core value sets.
    let problem = "http://hl7.org/fhir/us/core/ValueSet/us-core-problem-or-health-concern";
    assert_eq!(
        set.value_set_contains(
            problem,
            Some("http://hl7.org/fhir/us/core/CodeSystem/condition-category"),
            "health-concern"
        ),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains(
            problem,
            Some("http://terminology.hl7.org/CodeSystem/condition-category"),
            "problem-list-item"
        ),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains(
            problem,
            Some("http://terminology.hl7.org/CodeSystem/condition-category"),
            "encounter-diagnosis"
        ),
        Some(false)
    );
    // The R4 model's enumerated value sets answer for codes without a system.
    assert_eq!(
        set.value_set_contains("http://hl7.org/fhir/ValueSet/goal-status", None, "active"),
        Some(true)
    );
    assert_eq!(
        set.value_set_contains("http://hl7.org/fhir/ValueSet/goal-status", None, "banana"),
        Some(false)
    );
    assert_eq!(
        set.value_set_contains(
            "http://hl7.org/fhir/ValueSet/goal-status",
            Some("http://hl7.org/fhir/goal-status"),
            "active"
        ),
        None
    );
}
