//! Every published US Core example in tests/fixtures validates against its US Core 9.0.0
//! profile without error-level issues; the information issues (what could not be checked
//! locally) are asserted exactly (FHIR R4 validation.html §"Profiles").
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_validate::Severity::Information;

const NS: &str = "not-supported";

fn info(expression: &str, diagnostics: &str) -> Said {
    issue(Information, NS, expression, diagnostics)
}

fn check(file: &str, profile: &str, expected: Vec<Said>) {
    let set = us_core();
    let resource = fixture(file);
    // The base R4 validation the caller runs alongside accepts every example.
    let base: Vec<_> = fhir_validate::validate_resource(&resource)
        .into_iter()
        .filter(|i| i.is_error())
        .collect();
    assert!(base.is_empty(), "{file}: {base:?}");
    assert_eq!(validate(&set, &resource, profile), expected, "{file}");
}

#[test]
fn careplan_colonoscopy() {
    check("uscore-CarePlan-colonoscopy.json", CAREPLAN, vec![]);
}

#[test]
fn careteam_example() {
    check(
        "uscore-CareTeam-example.json",
        CARETEAM,
        vec![info(
            "CareTeam.participant.role",
            &format!("Binding (extensible) not checked: value set http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113762.1.4.1099.30 is not loaded (profile {CARETEAM}, element CareTeam.participant.role)"),
        )],
    );
}

#[test]
fn condition_health_concern() {
    check(
        "uscore-Condition-health-concern.json",
        CONDITION,
        vec![
            info(
                "Condition.extension",
                &format!("Extension definition http://hl7.org/fhir/StructureDefinition/condition-assertedDate is not loaded: the extension's content is not checked (profile {CONDITION}, element Condition.extension:assertedDate)"),
            ),
            info(
                "Condition.clinicalStatus",
                &format!("Binding (required) not checked: value set http://hl7.org/fhir/ValueSet/condition-clinical is not loaded (profile {CONDITION}, element Condition.clinicalStatus)"),
            ),
            info(
                "Condition.verificationStatus",
                &format!("Binding (required) not checked: value set http://hl7.org/fhir/ValueSet/condition-ver-status is not loaded (profile {CONDITION}, element Condition.verificationStatus)"),
            ),
            info(
                "Condition.code",
                &format!("Binding (extensible) not checked: value set http://hl7.org/fhir/us/core/ValueSet/us-core-condition-code is not loaded (profile {CONDITION}, element Condition.code)"),
            ),
        ],
    );
}

#[test]
fn goals() {
    check("uscore-Goal-goal-1.json", GOAL, vec![]);
    check("uscore-Goal-goal-sdoh-2.json", GOAL, vec![]);
}

#[test]
fn phq9_observations() {
    let slice_info = info(
        "Observation.category",
        &format!("Slice 'screening-assessment' not assessed: value set http://hl7.org/fhir/us/core/ValueSet/us-core-screening-assessment-observation-maximum-category is not loaded (profile {SCREENING}, element Observation.category:screening-assessment)"),
    );
    check(
        "uscore-Observation-PHQ9-panel-44249-1.json",
        SCREENING,
        vec![slice_info.clone()],
    );
    check(
        "uscore-Observation-PHQ9-total-score-44261-6.json",
        SCREENING,
        vec![slice_info],
    );
}

#[test]
fn patient_example() {
    let ext = |slice: &str, url: &str| {
        info(
            "Patient.extension",
            &format!("Extension definition http://hl7.org/fhir/us/core/StructureDefinition/{url} is not loaded: the extension's content is not checked (profile {PATIENT}, element Patient.extension:{slice})"),
        )
    };
    check(
        "uscore-Patient-example.json",
        PATIENT,
        vec![
            ext("race", "us-core-race"),
            ext("ethnicity", "us-core-ethnicity"),
            ext("tribalAffiliation", "us-core-tribal-affiliation"),
            ext("sex", "us-core-individual-sex"),
            ext("interpreterRequired", "us-core-interpreter-needed"),
            info(
                "Patient.address.state",
                &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/USPS-State is not loaded (profile {PATIENT}, element Patient.address.state)"),
            ),
            info(
                "Patient.communication.language",
                &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/Languages is not loaded (profile {PATIENT}, element Patient.communication.language)"),
            ),
        ],
    );
}

#[test]
fn practitioner_example() {
    check(
        "uscore-Practitioner-practitioner-1.json",
        PRACTITIONER,
        vec![info(
            "Practitioner.address.state",
            &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/USPS-State is not loaded (profile {PRACTITIONER}, element Practitioner.address.state)"),
        )],
    );
}

#[test]
fn questionnaire_responses() {
    let url_slice = info(
        "QuestionnaireResponse",
        &format!("constraints on the extension of a primitive ('QuestionnaireResponse.questionnaire') are not checked (profile {QR}, element QuestionnaireResponse.questionnaire.extension:url)"),
    );
    let base = info(
        "QuestionnaireResponse",
        &format!("Base profile http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse is not loaded: its own constraints were not checked (profile {QR})"),
    );
    check(
        "uscore-QuestionnaireResponse-hunger-vital-sign.json",
        QR,
        vec![url_slice.clone(), base.clone()],
    );
    check(
        "uscore-QuestionnaireResponse-phq-9-example.json",
        QR,
        vec![url_slice, base],
    );
}

#[test]
fn related_person() {
    check("uscore-RelatedPerson-shaw-niece.json", RELATED, vec![]);
}

#[test]
fn provenance_in_searchset() {
    let set = us_core();
    let bundle = fixture("uscore-Bundle-searchset-with-Provenance-revinclude.json");
    let provenance = &bundle["entry"][1]["resource"];
    assert!(fhir_validate::validate_resource(provenance)
        .iter()
        .all(|i| !i.is_error()));
    assert_eq!(
        validate(&set, provenance, PROVENANCE),
        vec![
            info(
                "Provenance.agent",
                &format!("Invariant provenance-1 not checked: it uses resolve, which needs more than the resource itself (profile {PROVENANCE}, element Provenance.agent)"),
            ),
            info(
                "Provenance.agent.type",
                &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/provenance-agent-type is not loaded (profile {PROVENANCE}, element Provenance.agent.type)"),
            ),
            info(
                "Provenance.agent.onBehalfOf",
                &format!("Reference to a resource of type Organization, not among the loaded target types (none); target profiles http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization are not loaded, so the reference's type and conformance are not checked (profile {PROVENANCE}, element Provenance.agent.onBehalfOf)"),
            ),
        ]
    );
}
