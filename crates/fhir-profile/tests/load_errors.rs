//! `ProfileSet::load` refuses malformed conformance resources with a message naming the
//! resource and what is wrong (FHIR R4 structuredefinition.html invariants, profiling.html).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::ProfileSet;
use serde_json::{json, Value};

const P: &str = "http://example.org/fhir/StructureDefinition/p";

fn refused(resources: Vec<Value>) -> String {
    ProfileSet::load(resources).unwrap_err().to_string()
}

fn plan_profile(elements: Value) -> Value {
    profile(P, "CarePlan", &core("CarePlan"), elements)
}

#[test]
fn structure_definitions_without_what_they_need() {
    let mut no_url = plan_profile(json!([]));
    no_url.as_object_mut().unwrap().remove("url");
    no_url["id"] = json!("p");
    assert_eq!(
        refused(vec![no_url]),
        "StructureDefinition with id 'p': it has no url"
    );

    let mut no_base = plan_profile(json!([]));
    no_base.as_object_mut().unwrap().remove("baseDefinition");
    assert_eq!(
        refused(vec![no_base]),
        format!("StructureDefinition {P}: it has no baseDefinition")
    );

    let mut specialization = plan_profile(json!([]));
    specialization["derivation"] = json!("specialization");
    assert_eq!(
        refused(vec![specialization]),
        format!("StructureDefinition {P}: derivation 'specialization' is not supported: only constraint profiles are")
    );

    let mut not_a_type = plan_profile(json!([]));
    not_a_type["type"] = json!("Careplan");
    assert_eq!(
        refused(vec![not_a_type]),
        format!("StructureDefinition {P}: type 'Careplan' is not an R4 type")
    );
}

#[test]
fn differential_paths_must_exist_in_the_base_type() {
    let cases = [
        (json!([{"id": "CarePlan.banana", "path": "CarePlan.banana"}]),
         "element 'CarePlan.banana': 'CarePlan' has no element 'banana'"),
        (json!([{"id": "CarePlan.activity.detail.banana", "path": "CarePlan.activity.detail.banana"}]),
         "element 'CarePlan.activity.detail.banana': 'CarePlan.activity.detail' has no element 'banana'"),
        (json!([{"id": "CarePlan.status.value", "path": "CarePlan.status.value"}]),
         "element 'CarePlan.status.value': 'CarePlan.status' is a code, which has no element 'value'"),
        (json!([{"id": "CarePlan.foo[x]", "path": "CarePlan.foo[x]"}]),
         "element 'CarePlan.foo[x]': 'CarePlan' has no element 'foo[x]'"),
        (json!([{"id": "Goal.status", "path": "Goal.status"}]),
         "element 'Goal.status': the path does not start with the profile's type 'CarePlan'"),
        (json!([{"id": "CarePlan.note", "path": "CarePlan.status"}]),
         "element 'CarePlan.note': the id does not match the path 'CarePlan.status'"),
        (json!([{"path": "CarePlan.status", "max": "many"}]),
         "element 'CarePlan.status': max 'many' is neither '*' nor an integer"),
        (json!([{"path": "CarePlan.category", "min": 2, "max": "1"}]),
         "element 'CarePlan.category': min 2 is greater than max 1"),
        (json!([{"path": "CarePlan.subject", "type": [{"code": "string"}]}]),
         "element 'CarePlan.subject': type 'string' is not allowed by the base element"),
        (json!([{"path": "CarePlan.activity.detail.scheduled[x]", "type": [{"code": "Quantity"}]}]),
         "element 'CarePlan.activity.detail.scheduled[x]': type 'Quantity' is not allowed by the base element"),
        (json!([{"path": "CarePlan.status", "binding": {"strength": "mandatory", "valueSet": "http://x"}}]),
         "element 'CarePlan.status': binding strength 'mandatory' is not a FHIR strength"),
        (json!([{"path": "CarePlan", "constraint": [{"severity": "error", "expression": "true"}]}]),
         "element 'CarePlan': a constraint has no key"),
        (json!([{"path": "CarePlan.status"}, {"path": "CarePlan.status"}]),
         "element id 'CarePlan.status' appears twice"),
        (json!([{"path": "CarePlan.category", "slicing": {"discriminator": [{"path": "coding"}]}}]),
         "element 'CarePlan.category': a slicing discriminator has no type"),
    ];
    for (elements, message) in cases {
        assert_eq!(
            refused(vec![plan_profile(elements)]),
            format!("StructureDefinition {P}: {message}")
        );
    }
}

#[test]
fn bases_must_be_of_the_same_type_and_not_loop() {
    let on_goal = profile(P, "CarePlan", GOAL, json!([]));
    let goal = us_core_resources()
        .into_iter()
        .find(|r| r["url"] == GOAL)
        .unwrap();
    assert_eq!(
        refused(vec![on_goal, goal]),
        format!("StructureDefinition {P}: its baseDefinition {GOAL} constrains Goal, not CarePlan")
    );
    let on_core_goal = profile(P, "CarePlan", &core("Goal"), json!([]));
    assert_eq!(
        refused(vec![on_core_goal]),
        format!("StructureDefinition {P}: its baseDefinition http://hl7.org/fhir/StructureDefinition/Goal is the core Goal, not CarePlan")
    );
    let q = "http://example.org/fhir/StructureDefinition/q";
    let a = profile(P, "CarePlan", q, json!([]));
    let b = profile(q, "CarePlan", P, json!([]));
    assert_eq!(
        refused(vec![a, b]),
        format!("StructureDefinition {P}: its baseDefinitions form a loop")
    );
    let own = profile(P, "CarePlan", P, json!([]));
    assert_eq!(
        refused(vec![own]),
        format!("StructureDefinition {P}: it is its own baseDefinition")
    );
}

#[test]
fn other_resources_and_duplicates() {
    assert_eq!(
        refused(vec![json!({"resourceType": "Patient", "id": "x"})]),
        "Patient with id 'x': a Patient is not a StructureDefinition, ValueSet or CodeSystem"
    );
    assert_eq!(
        refused(vec![json!({"url": "http://x"})]),
        "resource http://x: it has no resourceType"
    );
    assert_eq!(
        refused(vec![plan_profile(json!([])), plan_profile(json!([]))]),
        format!("StructureDefinition {P} is loaded twice")
    );
    assert_eq!(
        refused(vec![json!({"resourceType": "ValueSet", "status": "draft"})]),
        "ValueSet #0 (no url, no id): has no url"
    );
    assert_eq!(
        refused(vec![
            json!({"resourceType": "ValueSet", "url": "http://vs", "compose": {"include": [{"concept": [{"code": "a"}]}]}})
        ]),
        "ValueSet http://vs: compose.include: an entry has neither system nor valueSet"
    );
    assert_eq!(
        refused(vec![
            json!({"resourceType": "CodeSystem", "url": "http://cs", "concept": [{"display": "no code"}]})
        ]),
        "CodeSystem http://cs: a concept has no code"
    );
    // Two versions of one profile are fine.
    let mut v1 = plan_profile(json!([]));
    v1["version"] = json!("1");
    let mut v2 = v1.clone();
    v2["version"] = json!("2");
    assert!(ProfileSet::load(vec![v1, v2]).is_ok());
    // An empty set is fine too.
    assert_eq!(ProfileSet::load(vec![]).unwrap().profiles().count(), 0);
}
