//! Valid differentials with parts this validator does not check: they load, and each
//! validation says what was not checked (information), never passing it silently (FHIR R4
//! profiling.html). Also choices restricted to one type, whose children are checked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_validate::Severity::{Error, Information};
use serde_json::json;

const OBS: &str = "http://example.org/fhir/StructureDefinition/test-partly";
const BUNDLE: &str = "http://example.org/fhir/StructureDefinition/test-bundle";
const UCUM: &str = "http://unitsofmeasure.org";

#[test]
fn unsupported_parts_are_said_and_supported_ones_checked() {
    let set = us_core_with(vec![
        profile(
            OBS,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}]},
                {"id": "Observation.value[x].system", "path": "Observation.value[x].system", "min": 1, "fixedUri": UCUM},
                {"id": "Observation.effective[x].start", "path": "Observation.effective[x].start", "min": 1},
                {"id": "Observation.category", "path": "Observation.category",
                 "slicing": {"discriminator": [{"type": "value", "path": "coding.ofType(Coding).code"}], "rules": "open"}},
                {"id": "Observation.category:a", "path": "Observation.category", "sliceName": "a"},
                {"id": "Observation.category:a/b", "path": "Observation.category", "sliceName": "a/b"}
            ]),
        ),
        profile(
            BUNDLE,
            "Bundle",
            &core("Bundle"),
            json!([
                {"id": "Bundle", "path": "Bundle"},
                {"id": "Bundle.entry.resource", "path": "Bundle.entry.resource", "min": 1},
                {"id": "Bundle.entry.resource.id", "path": "Bundle.entry.resource.id", "min": 1}
            ]),
        ),
    ]);
    let notes = vec![
        issue(Information, "not-supported", "Observation", &format!("'Observation.effective[x]' is a choice of several types: constraints on its children were not checked (profile {OBS}, element Observation.effective[x].start)")),
        issue(Information, "not-supported", "Observation", &format!("re-slicing is not supported: the element's constraints were not checked (profile {OBS}, element Observation.category:a/b)")),
    ];
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://example.org", "code": "x"}]}],
        "code": {"text": "weight"},
        "valueQuantity": {"value": 70, "system": UCUM, "code": "kg"}
    });
    let mut expected = notes.clone();
    expected.push(issue(Information, "not-supported", "Observation.category", &format!("Slice 'a' not assessed: discriminator path 'coding.ofType(Coding).code' uses a function, which is not supported (profile {OBS}, element Observation.category:a)")));
    assert_eq!(validate(&set, &obs, OBS), expected);

    obs["valueQuantity"] = json!({"value": 70, "system": "http://example.org/units", "code": "kg"});
    expected.insert(2, issue(Error, "value", "Observation.valueQuantity.system", &format!("Value must be exactly \"{UCUM}\" (profile {OBS}, element Observation.value[x].system)")));
    assert_eq!(validate(&set, &obs, OBS), expected);

    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1"}]});
    assert_eq!(
        validate(&set, &bundle, BUNDLE),
        vec![
            issue(Information, "not-supported", "Bundle", &format!("constraints inside a nested resource are not checked (profile {BUNDLE}, element Bundle.entry.resource.id)")),
            issue(Error, "required", "Bundle.entry[0].resource", &format!("Element 'resource' requires at least 1, found 0 (profile {BUNDLE}, element Bundle.entry.resource)")),
        ]
    );
}

#[test]
fn limits_and_primitive_extensions_in_a_differential_are_said_not_checked() {
    const LIMITS: &str = "http://example.org/fhir/StructureDefinition/test-limits";
    let set = us_core_with(vec![profile(
        LIMITS,
        "Patient",
        &core("Patient"),
        json!([
            {"id": "Patient", "path": "Patient"},
            {"id": "Patient.name.family", "path": "Patient.name.family", "maxLength": 10},
            {"id": "Patient.birthDate.extension", "path": "Patient.birthDate.extension", "min": 1},
            {"id": "Patient.gender.extension", "path": "Patient.gender.extension", "short": "documented only"}
        ]),
    )]);
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Abcdefghijklmnop"}]});
    assert_eq!(
        validate(&set, &patient, LIMITS),
        vec![
            issue(Information, "not-supported", "Patient", &format!("maxLength not checked (profile {LIMITS}, element Patient.name.family)")),
            issue(Information, "not-supported", "Patient", &format!("constraints on the extension of a primitive ('Patient.birthDate') are not checked (profile {LIMITS}, element Patient.birthDate.extension)")),
        ]
    );
}
