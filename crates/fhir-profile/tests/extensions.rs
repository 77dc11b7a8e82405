//! Constraint kind 6: extensions checked against loaded Extension definitions, wherever they
//! appear (FHIR R4 extensibility.html, defining-extensions.html); unknown extension URLs
//! alone raise nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::ProfileSet;
use fhir_validate::Severity::{Error, Information};
use serde_json::{json, Value};

const RACE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
const COLOUR: &str = "http://example.org/fhir/StructureDefinition/favourite-colour";

fn sub_extension(name: &str, min: u32, max: &str, value_type: &str) -> Vec<Value> {
    let id = format!("Extension.extension:{name}");
    vec![
        json!({"id": id, "path": "Extension.extension", "sliceName": name, "min": min, "max": max}),
        json!({"id": format!("{id}.url"), "path": "Extension.extension.url", "fixedUri": name}),
        json!({"id": format!("{id}.value[x]"), "path": "Extension.extension.value[x]", "min": 1,
               "type": [{"code": value_type}]}),
    ]
}

/// A test-only definition shaped like US Core's race extension (ombCategory and detailed
/// Codings, one text string, no value of its own); written for these tests, not copied.
fn race_definition() -> Value {
    let mut elements = vec![
        json!({"id": "Extension", "path": "Extension"}),
        json!({"id": "Extension.extension", "path": "Extension.extension",
               "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}}),
    ];
    elements.extend(sub_extension("ombCategory", 0, "6", "Coding"));
    elements.extend(sub_extension("detailed", 0, "*", "Coding"));
    elements.extend(sub_extension("text", 1, "1", "string"));
    elements.push(json!({"id": "Extension.url", "path": "Extension.url", "fixedUri": RACE}));
    elements.push(json!({"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}));
    profile(
        RACE,
        "Extension",
        &core("Extension"),
        Value::Array(elements),
    )
}

fn colour_definition() -> Value {
    profile(
        COLOUR,
        "Extension",
        &core("Extension"),
        json!([
            {"id": "Extension", "path": "Extension"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": COLOUR},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": "string"}]}
        ]),
    )
}

fn set() -> ProfileSet {
    us_core_with(vec![race_definition(), colour_definition()])
}

fn errors(issues: Vec<Said>) -> Vec<Said> {
    issues.into_iter().filter(|i| i.0 != Information).collect()
}

#[test]
fn the_example_conforms_to_the_loaded_race_definition() {
    let set = set();
    let patient = fixture("uscore-Patient-example.json");
    let issues = validate(&set, &patient, PATIENT);
    assert!(issues.iter().all(|i| i.0 == Information));
    // Race is loaded now: only the other four extension slices are "not loaded".
    let not_loaded: Vec<_> = issues
        .iter()
        .filter(|i| i.3.starts_with("Extension definition"))
        .collect();
    assert_eq!(not_loaded.len(), 4);
    assert!(not_loaded.iter().all(|i| !i.3.contains(RACE)));
}

#[test]
fn race_text_with_the_wrong_value_type() {
    let set = set();
    let mut patient = fixture("uscore-Patient-example.json");
    patient["extension"][0]["extension"][5] =
        json!({"url": "text", "valueCoding": {"system": "http://example.org", "code": "mixed"}});
    assert_eq!(
        errors(validate(&set, &patient, PATIENT)),
        vec![issue(
            Error,
            "structure",
            "Patient.extension[0].extension[5].valueCoding",
            &format!("Type Coding is not allowed here: the profile allows string (profile {RACE}, element Extension.extension:text.value[x])")
        )]
    );
}

#[test]
fn race_without_text_and_with_a_value_of_its_own() {
    let set = set();
    let mut patient = fixture("uscore-Patient-example.json");
    let race = patient["extension"][0].as_object_mut().unwrap();
    race["extension"].as_array_mut().unwrap().pop();
    race.insert("valueString".into(), json!("Mixed"));
    assert_eq!(
        errors(validate(&set, &patient, PATIENT)),
        vec![
            issue(
                Error,
                "required",
                "Patient.extension[0].extension",
                &format!("Slice 'text' requires at least 1, found 0 (profile {RACE}, element Extension.extension:text)")
            ),
            issue(
                Error,
                "structure",
                "Patient.extension[0].valueString",
                &format!("Element 'value[x]' is not allowed (maximum 0), found 1 (profile {RACE}, element Extension.value[x])")
            ),
        ]
    );
}

#[test]
fn extensions_are_checked_wherever_they_are() {
    let set = set();
    let mut patient = fixture("uscore-Patient-example.json");
    patient["address"][1]["extension"] = json!([
        {"url": COLOUR, "valueInteger": 7},
        {"url": "http://example.org/fhir/StructureDefinition/unknown", "valueInteger": 7}
    ]);
    patient["_birthDate"] = json!({"extension": [{"url": COLOUR}]});
    assert_eq!(
        errors(validate(&set, &patient, PATIENT)),
        vec![
            issue(
                Error,
                "structure",
                "Patient.address[1].extension[0].valueInteger",
                &format!("Type integer is not allowed here: the profile allows string (profile {COLOUR}, element Extension.value[x])")
            ),
            issue(
                Error,
                "required",
                "Patient.birthDate.extension[0].value[x]",
                &format!("Element 'value[x]' requires at least 1, found 0 (profile {COLOUR}, element Extension.value[x])")
            ),
        ]
    );
    patient["address"][1]["extension"][0] = json!({"url": COLOUR, "valueString": "green"});
    patient["_birthDate"]["extension"][0]["valueString"] = json!("blue");
    assert_eq!(errors(validate(&set, &patient, PATIENT)), vec![]);
}
