//! `baseDefinition` chains (FHIR R4 profiling.html §5.1.0.1: a profile's constraints add to its
//! base's), resource type checks, canonical lookup, and the public API around validation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::{ProfileInfo, UnknownProfile};
use fhir_validate::Severity::{Error, Information};
use serde_json::json;

const AUTHORED_PLAN: &str = "http://example.org/fhir/StructureDefinition/authored-careplan";
const STRICTER_PLAN: &str = "http://example.org/fhir/StructureDefinition/stricter-careplan";

/// A CarePlan profile on US Core's: an author is required and every category must be US
/// Core's assess-plan; and one more level on top, versioned, requiring a period.
fn chained() -> fhir_profile::ProfileSet {
    let mut stricter = profile(
        STRICTER_PLAN,
        "CarePlan",
        &format!("{AUTHORED_PLAN}|1.0.0"),
        json!([
            {"id": "CarePlan", "path": "CarePlan"},
            {"id": "CarePlan.period", "path": "CarePlan.period", "min": 1}
        ]),
    );
    stricter["version"] = json!("2.0.0");
    let mut authored = profile(
        AUTHORED_PLAN,
        "CarePlan",
        CAREPLAN,
        json!([
            {"id": "CarePlan", "path": "CarePlan"},
            {"id": "CarePlan.category", "path": "CarePlan.category", "min": 1,
             "patternCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}},
            {"id": "CarePlan.author", "path": "CarePlan.author", "min": 1}
        ]),
    );
    authored["version"] = json!("1.0.0");
    us_core_with(vec![stricter, authored])
}

#[test]
fn derived_profile_applies_its_own_and_its_bases_constraints() {
    let set = chained();
    let mut plan = fixture("uscore-CarePlan-colonoscopy.json");
    let missing_author = issue(
        Error,
        "required",
        "CarePlan.author",
        &format!("Element 'author' requires at least 1, found 0 (profile {AUTHORED_PLAN}|1.0.0, element CarePlan.author)"),
    );
    assert_eq!(
        validate(&set, &plan, AUTHORED_PLAN),
        vec![missing_author.clone()]
    );

    // Broken at both levels: the derived profile's issues come first, then US Core's.
    plan["text"]["status"] = json!("empty");
    plan["category"][0]["coding"][0]["code"] = json!("other");
    plan["subject"] = json!({"reference": "Practitioner/practitioner-1"});
    assert_eq!(
        validate(&set, &plan, AUTHORED_PLAN),
        vec![
            issue(
                Error,
                "value",
                "CarePlan.category[0]",
                &format!("Value must match the pattern {{\"coding\":[{{\"system\":\"http://hl7.org/fhir/us/core/CodeSystem/careplan-category\",\"code\":\"assess-plan\"}}]}} (profile {AUTHORED_PLAN}|1.0.0, element CarePlan.category)")
            ),
            missing_author,
            issue(
                Error,
                "code-invalid",
                "CarePlan.text.status",
                &format!("Code 'empty' is not in the required value set http://hl7.org/fhir/us/core/ValueSet/us-core-narrative-status (profile {CAREPLAN}, element CarePlan.text.status)")
            ),
            issue(
                Error,
                "structure",
                "CarePlan.subject",
                &format!("Reference to a resource of type Practitioner, but the target profiles allow only Patient, Group (profile {CAREPLAN}, element CarePlan.subject)")
            ),
        ]
    );

    // Three levels, the middle one named with its version.
    let mut good = fixture("uscore-CarePlan-colonoscopy.json");
    good["author"] = json!({"reference": "Practitioner/practitioner-1"});
    assert_eq!(validate(&set, &good, AUTHORED_PLAN), vec![]);
    assert_eq!(
        validate(&set, &good, STRICTER_PLAN),
        vec![issue(
            Error,
            "required",
            "CarePlan.period",
            &format!("Element 'period' requires at least 1, found 0 (profile {STRICTER_PLAN}|2.0.0, element CarePlan.period)")
        )]
    );
    good["period"] = json!({"start": "2026-01-01"});
    assert_eq!(
        validate(&set, &good, &format!("{STRICTER_PLAN}|2.0.0")),
        vec![]
    );
}

#[test]
fn the_resource_type_must_be_the_profiles() {
    let set = us_core();
    let goal = fixture("uscore-Goal-goal-1.json");
    assert_eq!(
        validate(&set, &goal, CAREPLAN),
        vec![issue(
            Error,
            "structure",
            "Goal",
            &format!(
                "Resource type Goal does not match profile {CAREPLAN}, which constrains CarePlan"
            )
        )]
    );
    assert_eq!(
        validate(&set, &json!(["not", "a", "resource"]), CAREPLAN),
        vec![issue(
            Error,
            "structure",
            "",
            "A resource must be a JSON object with a resourceType"
        )]
    );
}

#[test]
fn unknown_profiles_and_versions() {
    let set = chained();
    let plan = fixture("uscore-CarePlan-colonoscopy.json");
    let unknown = set
        .validate(&plan, "http://example.org/fhir/StructureDefinition/nope")
        .unwrap_err();
    assert_eq!(
        unknown,
        UnknownProfile {
            canonical: "http://example.org/fhir/StructureDefinition/nope".into()
        }
    );
    assert_eq!(
        unknown.to_string(),
        "profile http://example.org/fhir/StructureDefinition/nope is not loaded"
    );
    assert!(set
        .validate(&plan, &format!("{AUTHORED_PLAN}|9.9.9"))
        .is_err());
}

#[test]
fn profile_information_and_lookup() {
    let set = chained();
    let careplan = set.get(CAREPLAN).unwrap();
    assert_eq!(
        careplan,
        ProfileInfo {
            url: CAREPLAN.into(),
            version: None,
            name: Some("USCoreCarePlanProfile".into()),
            title: Some("US Core CarePlan Profile".into()),
            type_name: "CarePlan".into(),
            base_definition: Some("http://hl7.org/fhir/StructureDefinition/CarePlan".into()),
            kind: "resource".into(),
        }
    );
    let authored = set.get(&format!("{AUTHORED_PLAN}|1.0.0")).unwrap();
    assert_eq!(authored.version.as_deref(), Some("1.0.0"));
    assert_eq!(authored.canonical(), format!("{AUTHORED_PLAN}|1.0.0"));
    assert_eq!(set.get(AUTHORED_PLAN), Some(authored));
    assert_eq!(set.get(&format!("{AUTHORED_PLAN}|2")), None);
    let mut urls: Vec<String> = set.profiles().map(|p| p.url).collect();
    urls.sort();
    assert_eq!(urls.len(), 12);
    assert_eq!(urls[0], AUTHORED_PLAN);
    assert!(urls.contains(&QR.to_string()));
    let qr = set.get(QR).unwrap();
    assert_eq!(
        qr.base_definition.as_deref(),
        Some("http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse")
    );
    // The set is shared across threads.
    let shared = set.clone();
    let handle = std::thread::spawn(move || shared.get(CAREPLAN).is_some());
    assert!(handle.join().unwrap());
}

#[test]
fn a_base_that_is_neither_loaded_nor_core_is_said_once() {
    let set = us_core();
    let mut response = fixture("uscore-QuestionnaireResponse-hunger-vital-sign.json");
    response.as_object_mut().unwrap().remove("subject");
    assert_eq!(
        validate(&set, &response, QR),
        vec![
            issue(
                Information,
                "not-supported",
                "QuestionnaireResponse",
                &format!("constraints on the extension of a primitive ('QuestionnaireResponse.questionnaire') are not checked (profile {QR}, element QuestionnaireResponse.questionnaire.extension:url)")
            ),
            issue(
                Error,
                "required",
                "QuestionnaireResponse.subject",
                &format!("Element 'subject' requires at least 1, found 0 (profile {QR}, element QuestionnaireResponse.subject)")
            ),
            issue(
                Information,
                "not-supported",
                "QuestionnaireResponse",
                &format!("Base profile http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse is not loaded: its own constraints were not checked (profile {QR})")
            ),
        ]
    );
}
