//! Constraint kind 7: invariants of loaded differentials (FHIR R4 elementdefinition.html
//! §2.24.0.5 constraints, conformance-rules.html), evaluated with the element instance as
//! context; what cannot be evaluated is said once as information.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_validate::Severity::{Error, Information, Warning};
use serde_json::json;

fn errors(issues: Vec<Said>) -> Vec<Said> {
    issues.into_iter().filter(|i| i.0 != Information).collect()
}

#[test]
fn observation_invariants_us_core_1_2_3() {
    let set = us_core();
    let obs = fixture("uscore-Observation-PHQ9-total-score-44261-6.json");
    assert_eq!(errors(validate(&set, &obs, SCREENING)), vec![]);

    let mut no_value = obs.clone();
    no_value.as_object_mut().unwrap().remove("valueString");
    assert_eq!(
        errors(validate(&set, &no_value, SCREENING)),
        vec![issue(
            Error,
            "invariant",
            "Observation",
            &format!("us-core-2: If there is no component or hasMember element then either a value[x] or a data absent reason must be present (profile {SCREENING}, element Observation)")
        )]
    );
    // The panel has hasMember instead of a value.
    assert_eq!(
        errors(validate(
            &set,
            &fixture("uscore-Observation-PHQ9-panel-44249-1.json"),
            SCREENING
        )),
        vec![]
    );

    let mut by_year = obs.clone();
    by_year["effectiveDateTime"] = json!("2022");
    assert_eq!(
        errors(validate(&set, &by_year, SCREENING)),
        vec![issue(
            Error,
            "invariant",
            "Observation.effectiveDateTime",
            &format!("us-core-1: Datetime must be at least to day. (profile {SCREENING}, element Observation.effective[x])")
        )]
    );
    let mut period = obs.clone();
    period.as_object_mut().unwrap().remove("effectiveDateTime");
    period["effectivePeriod"] = json!({"start": "2022"});
    assert_eq!(errors(validate(&set, &period, SCREENING)), vec![]);

    let mut quantity = obs.clone();
    quantity.as_object_mut().unwrap().remove("valueString");
    quantity["valueQuantity"] =
        json!({"value": 12, "system": "http://example.org/units", "code": "{score}"});
    assert_eq!(
        errors(validate(&set, &quantity, SCREENING)),
        vec![issue(
            Error,
            "invariant",
            "Observation.valueQuantity",
            &format!("us-core-3: The system SHALL be UCUM for coded quantity units. (profile {SCREENING}, element Observation.value[x])")
        )]
    );
    quantity["valueQuantity"]["system"] = json!("http://unitsofmeasure.org");
    assert_eq!(errors(validate(&set, &quantity, SCREENING)), vec![]);
}

#[test]
fn patient_name_us_core_6_per_name() {
    let set = us_core();
    let mut patient = fixture("uscore-Patient-example.json");
    patient["name"][1] = json!({"use": "usual", "text": "Amy"});
    assert_eq!(
        errors(validate(&set, &patient, PATIENT)),
        vec![issue(
            Error,
            "invariant",
            "Patient.name[1]",
            &format!("us-core-6: At least name.given and/or name.family are present or, if neither is available, the Data Absent Reason Extension is present. (profile {PATIENT}, element Patient.name)")
        )]
    );
    patient["name"][1]["extension"] = json!([{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]);
    assert_eq!(errors(validate(&set, &patient, PATIENT)), vec![]);
}

#[test]
fn practitioner_npi_slice_invariants() {
    let set = us_core();
    let mut practitioner = fixture("uscore-Practitioner-practitioner-1.json");
    assert_eq!(errors(validate(&set, &practitioner, PRACTITIONER)), vec![]);
    let luhn = issue(
        Error,
        "invariant",
        "Practitioner.identifier[0]",
        &format!("us-core-17: NPI check digit must be valid (Luhn algorithm check) (profile {PRACTITIONER}, element Practitioner.identifier:NPI)"),
    );
    practitioner["identifier"][0]["value"] = json!("9941339101");
    assert_eq!(
        errors(validate(&set, &practitioner, PRACTITIONER)),
        vec![luhn.clone()]
    );
    // Letters: not ten digits, and no check digit to compute either.
    practitioner["identifier"][0]["value"] = json!("99413391AB");
    assert_eq!(
        errors(validate(&set, &practitioner, PRACTITIONER)),
        vec![
            issue(
                Error,
                "invariant",
                "Practitioner.identifier[0]",
                &format!("us-core-16: NPI must be 10 digits (profile {PRACTITIONER}, element Practitioner.identifier:NPI)")
            ),
            luhn
        ]
    );
    // The other identifier is not an NPI: the NPI rules do not apply to it.
    practitioner["identifier"][0]["value"] = json!("9941339100");
    practitioner["identifier"][1]["value"] = json!("1");
    assert_eq!(errors(validate(&set, &practitioner, PRACTITIONER)), vec![]);
}

#[test]
fn related_person_us_core_14() {
    let set = us_core();
    let mut person = fixture("uscore-RelatedPerson-shaw-niece.json");
    let obj = person.as_object_mut().unwrap();
    obj.remove("name");
    obj.remove("relationship");
    assert_eq!(
        validate(&set, &person, RELATED),
        vec![issue(
            Error,
            "invariant",
            "RelatedPerson",
            &format!("us-core-14: Either a name or a relationship SHALL be provided (or both) (profile {RELATED}, element RelatedPerson)")
        )]
    );
}

const TEST_GOAL: &str = "http://example.org/fhir/StructureDefinition/test-goal-invariants";

#[test]
fn warnings_resource_context_and_expressions_that_cannot_run() {
    let broken = "target.where(";
    let compile_error = fhir_fhirpath::Engine::shared()
        .unwrap()
        .compile(broken)
        .unwrap_err()
        .to_string();
    let set = us_core_with(vec![profile(
        TEST_GOAL,
        "Goal",
        GOAL,
        json!([
            {"id": "Goal", "path": "Goal", "constraint": [
                {"key": "tg-1", "severity": "warning", "human": "A goal should have a target", "expression": "target.exists()"},
                {"key": "tg-2", "severity": "error", "human": "broken", "expression": broken},
                {"key": "tg-3", "severity": "error", "human": "checks other profiles", "expression": "subject.conformsTo('http://example.org/p')"}
            ]},
            {"id": "Goal.target", "path": "Goal.target", "constraint": [
                {"key": "tg-4", "severity": "error", "human": "A target of an active goal has a due date",
                 "expression": "%resource.lifecycleStatus = 'active' implies due.exists()"}
            ]}
        ]),
    )]);
    let not_checked = vec![
        issue(Information, "not-supported", "Goal", &format!("Invariant tg-2 not checked: {compile_error} (profile {TEST_GOAL}, element Goal)")),
        issue(Information, "not-supported", "Goal", &format!("Invariant tg-3 not checked: it uses conformsTo, which needs more than the resource itself (profile {TEST_GOAL}, element Goal)")),
    ];
    let goal = fixture("uscore-Goal-goal-1.json");
    assert_eq!(validate(&set, &goal, TEST_GOAL), not_checked);

    let mut without_due = goal.clone();
    without_due["target"] = json!([{"measure": {"text": "weight"}}]);
    let mut expected = not_checked.clone();
    expected.push(issue(
        Error,
        "invariant",
        "Goal.target[0]",
        &format!("tg-4: A target of an active goal has a due date (profile {TEST_GOAL}, element Goal.target)"),
    ));
    assert_eq!(validate(&set, &without_due, TEST_GOAL), expected);
    without_due["lifecycleStatus"] = json!("proposed");
    assert_eq!(validate(&set, &without_due, TEST_GOAL), not_checked);

    let mut no_target = goal.clone();
    no_target.as_object_mut().unwrap().remove("target");
    let mut expected = vec![issue(
        Warning,
        "invariant",
        "Goal",
        &format!("tg-1: A goal should have a target (profile {TEST_GOAL}, element Goal)"),
    )];
    expected.extend(not_checked);
    assert_eq!(validate(&set, &no_target, TEST_GOAL), expected);
}
