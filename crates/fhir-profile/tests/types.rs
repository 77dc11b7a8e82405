//! Constraint kind 4: `type` (FHIR R4 elementdefinition.html §2.24.0.6, references.html):
//! allowed `[x]` variants, `targetProfile` on References (the referenced resource's type,
//! checked locally), `profile` on data types and Extension slices.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::ProfileSet;
use fhir_validate::Severity::{Error, Information};
use serde_json::{json, Value};

const NARROW_OBS: &str = "http://example.org/fhir/StructureDefinition/test-numeric-screening";
const TEST_QUANTITY: &str = "http://example.org/fhir/StructureDefinition/test-quantity";
const MISSING_QUANTITY: &str = "http://example.org/fhir/StructureDefinition/not-loaded-quantity";
const DOSE_OBS: &str = "http://example.org/fhir/StructureDefinition/test-dose";
const LOOSE_OBS: &str = "http://example.org/fhir/StructureDefinition/test-loose-dose";

fn set() -> ProfileSet {
    us_core_with(vec![
        profile(
            NARROW_OBS,
            "Observation",
            SCREENING,
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}, {"code": "CodeableConcept"}]}
            ]),
        ),
        profile(
            TEST_QUANTITY,
            "Quantity",
            &core("Quantity"),
            json!([
                {"id": "Quantity", "path": "Quantity"},
                {"id": "Quantity.comparator", "path": "Quantity.comparator", "max": "0"},
                {"id": "Quantity.system", "path": "Quantity.system", "min": 1, "fixedUri": "http://unitsofmeasure.org"}
            ]),
        ),
        profile(
            DOSE_OBS,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "type": [{"code": "Quantity", "profile": [TEST_QUANTITY]}]}
            ]),
        ),
        profile(
            LOOSE_OBS,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.value[x]:valueQuantity", "path": "Observation.value[x]", "sliceName": "valueQuantity",
                 "type": [{"code": "Quantity", "profile": [MISSING_QUANTITY]}]}
            ]),
        ),
    ])
}

fn slice_info() -> Said {
    issue(
        Information,
        "not-supported",
        "Observation.category",
        &format!("Slice 'screening-assessment' not assessed: value set http://hl7.org/fhir/us/core/ValueSet/us-core-screening-assessment-observation-maximum-category is not loaded (profile {SCREENING}, element Observation.category:screening-assessment)"),
    )
}

#[test]
fn choice_variants_outside_the_profiles_types() {
    let set = set();
    let obs = fixture("uscore-Observation-PHQ9-total-score-44261-6.json");
    assert_eq!(
        validate(&set, &obs, NARROW_OBS),
        vec![
            issue(
                Error,
                "structure",
                "Observation.valueString",
                &format!("Type string is not allowed here: the profile allows Quantity, CodeableConcept (profile {NARROW_OBS}, element Observation.value[x])")
            ),
            slice_info(),
        ]
    );
    let mut numeric = obs.clone();
    numeric.as_object_mut().unwrap().remove("valueString");
    numeric["valueQuantity"] =
        json!({"value": 12, "system": "http://unitsofmeasure.org", "code": "{score}"});
    assert_eq!(validate(&set, &numeric, NARROW_OBS), vec![slice_info()]);
}

fn plan_with(field: &str, reference: Value) -> Value {
    let mut plan = fixture("uscore-CarePlan-colonoscopy.json");
    plan[field] = reference;
    plan
}

#[test]
fn target_profiles_decide_the_referenced_type() {
    let set = us_core();
    for fine in [
        json!({"reference": "Patient/example"}),
        json!({"reference": "https://example.org/fhir/Group/g1/_history/3"}),
        json!({"type": "Patient", "identifier": {"system": "http://example.org/mrn", "value": "1"}}),
    ] {
        assert_eq!(
            validate(&set, &plan_with("subject", fine), CAREPLAN),
            vec![]
        );
    }
    let wrong = issue(
        Error,
        "structure",
        "CarePlan.subject",
        &format!("Reference to a resource of type Practitioner, but the target profiles allow only Patient, Group (profile {CAREPLAN}, element CarePlan.subject)"),
    );
    assert_eq!(
        validate(
            &set,
            &plan_with(
                "subject",
                json!({"reference": "Practitioner/practitioner-1"})
            ),
            CAREPLAN
        ),
        vec![wrong.clone()]
    );
    assert_eq!(
        validate(
            &set,
            &plan_with(
                "subject",
                json!({"type": "Practitioner", "display": "Dr Bone"})
            ),
            CAREPLAN
        ),
        vec![wrong]
    );
}

#[test]
fn target_profiles_not_loaded_inform_once_per_element() {
    let set = us_core();
    let contributors = json!([
        {"reference": "Organization/o1"},
        {"reference": "Practitioner/practitioner-1"},
        {"reference": "Organization/o2"}
    ]);
    assert_eq!(
        validate(&set, &plan_with("contributor", contributors), CAREPLAN),
        vec![issue(
            Information,
            "not-supported",
            "CarePlan.contributor",
            &format!("Reference to a resource of type Organization, not among the loaded target types (Practitioner, Patient, PractitionerRole, CareTeam, RelatedPerson); target profiles http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization, http://hl7.org/fhir/us/core/StructureDefinition/us-core-device are not loaded, so the reference's type and conformance are not checked (profile {CAREPLAN}, element CarePlan.contributor)")
        )]
    );
    // A type none of the target profiles can have, loaded or not, is still unknown when some
    // are not loaded (an unloaded profile could constrain any type).
    assert_eq!(
        validate(
            &set,
            &plan_with("contributor", json!([{"reference": "Medication/m"}])),
            CAREPLAN
        )
        .len(),
        1
    );
}

#[test]
fn references_without_a_type_inform() {
    let set = us_core();
    let contained = issue(
        Information,
        "not-supported",
        "CarePlan.subject",
        &format!("Reference to a contained resource: its target profile is not checked (profile {CAREPLAN}, element CarePlan.subject)"),
    );
    assert_eq!(
        validate(
            &set,
            &plan_with("subject", json!({"reference": "#p1"})),
            CAREPLAN
        ),
        vec![contained]
    );
    let untyped = issue(
        Information,
        "not-supported",
        "CarePlan.subject",
        &format!("Reference without a resource type (no Type/id reference, no type): its target profile is not checked (profile {CAREPLAN}, element CarePlan.subject)"),
    );
    for reference in [
        json!({"identifier": {"system": "http://example.org/mrn", "value": "1"}}),
        json!({"reference": "urn:uuid:5b1f3c2e-8a0b-4b8e-9a52-0d1f5d2f0a11"}),
    ] {
        assert_eq!(
            validate(&set, &plan_with("subject", reference), CAREPLAN),
            vec![untyped.clone()]
        );
    }
}

#[test]
fn data_type_profiles_apply_to_the_element() {
    let set = set();
    let obs = |quantity: Value| json!({"resourceType": "Observation", "status": "final", "code": {"text": "dose"}, "valueQuantity": quantity});
    let good = obs(json!({"value": 5, "system": "http://unitsofmeasure.org", "code": "mg"}));
    assert_eq!(validate(&set, &good, DOSE_OBS), vec![]);
    let bad = obs(
        json!({"value": 5, "comparator": "<", "system": "http://example.org/units", "code": "mg"}),
    );
    assert_eq!(
        validate(&set, &bad, DOSE_OBS),
        vec![
            issue(
                Error,
                "structure",
                "Observation.valueQuantity.comparator",
                &format!("Element 'comparator' is not allowed (maximum 0), found 1 (profile {TEST_QUANTITY}, element Quantity.comparator)")
            ),
            issue(
                Error,
                "value",
                "Observation.valueQuantity.system",
                &format!("Value must be exactly \"http://unitsofmeasure.org\" (profile {TEST_QUANTITY}, element Quantity.system)")
            ),
        ]
    );
    // A data type profile that is not loaded: said once, at the element (a type slice written
    // `value[x]:valueQuantity` is the valueQuantity element).
    assert_eq!(
        validate(&set, &good, LOOSE_OBS),
        vec![issue(
            Information,
            "not-supported",
            "Observation.valueQuantity",
            &format!("Profile {MISSING_QUANTITY} is not loaded: conformance of the Quantity is not checked (profile {LOOSE_OBS}, element Observation.value[x]:valueQuantity)")
        )]
    );
}

const PATIENT_BUNDLE: &str = "http://example.org/fhir/StructureDefinition/test-patient-bundle";
const QUANTITY_PATH: &str = "http://example.org/fhir/StructureDefinition/test-variant-path";

#[test]
fn resource_elements_restricted_to_a_type_and_profile() {
    let set = us_core_with(vec![profile(
        PATIENT_BUNDLE,
        "Bundle",
        &core("Bundle"),
        json!([
            {"id": "Bundle", "path": "Bundle"},
            {"id": "Bundle.entry.resource", "path": "Bundle.entry.resource", "type": [{"code": "Patient", "profile": [PATIENT]}]}
        ]),
    )]);
    let mut patient = fixture("uscore-Patient-example.json");
    patient.as_object_mut().unwrap().remove("extension");
    let mut bundle =
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]});
    let infos = vec![
        issue(Information, "not-supported", "Bundle.entry.resource.address.state", &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/USPS-State is not loaded (profile {PATIENT}, element Patient.address.state)")),
        issue(Information, "not-supported", "Bundle.entry.resource.communication.language", &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/Languages is not loaded (profile {PATIENT}, element Patient.communication.language)")),
    ];
    assert_eq!(validate(&set, &bundle, PATIENT_BUNDLE), infos);
    // US Core Patient's rules apply inside the entry.
    bundle["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("identifier");
    let mut expected = vec![issue(
        Error,
        "required",
        "Bundle.entry[0].resource.identifier",
        &format!("Element 'identifier' requires at least 1, found 0 (profile {PATIENT}, element Patient.identifier)"),
    )];
    expected.extend(infos);
    assert_eq!(validate(&set, &bundle, PATIENT_BUNDLE), expected);
    // Another resource type is not allowed.
    bundle["entry"][0]["resource"] = fixture("uscore-Goal-goal-1.json");
    assert_eq!(
        validate(&set, &bundle, PATIENT_BUNDLE),
        vec![issue(
            Error,
            "structure",
            "Bundle.entry[0].resource",
            &format!("Resource type Goal is not allowed here: the profile allows Patient (profile {PATIENT_BUNDLE}, element Bundle.entry.resource)")
        )]
    );
}

#[test]
fn a_type_slice_may_be_written_with_the_variant_path() {
    let set = us_core_with(vec![profile(
        QUANTITY_PATH,
        "Observation",
        &core("Observation"),
        json!([
            {"id": "Observation", "path": "Observation"},
            {"id": "Observation.value[x]:valueQuantity", "path": "Observation.valueQuantity", "sliceName": "valueQuantity"},
            {"id": "Observation.value[x]:valueQuantity.unit", "path": "Observation.valueQuantity.unit", "min": 1}
        ]),
    )]);
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "kg"}});
    assert_eq!(
        validate(&set, &obs, QUANTITY_PATH),
        vec![issue(
            Error,
            "required",
            "Observation.valueQuantity.unit",
            &format!("Element 'unit' requires at least 1, found 0 (profile {QUANTITY_PATH}, element Observation.value[x]:valueQuantity.unit)")
        )]
    );
}
