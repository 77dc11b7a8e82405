//! The published R4 and US Core examples the tests of this crate share (tests/fixtures,
//! origins in ../../../shared/fixtures/MANIFEST.txt).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

pub const FIXTURES: &[&str] = &[
    "r4spec-Patient-example.json",
    "r4spec-Practitioner-example.json",
    "r4spec-CareTeam-example.json",
    "r4spec-Goal-example.json",
    "r4spec-QuestionnaireResponse-bluebook.json",
    "r4spec-Questionnaire-example-f201.json",
    "uscore-CarePlan-colonoscopy.json",
    "uscore-Patient-example.json",
    "uscore-Goal-goal-1.json",
    "uscore-QuestionnaireResponse-phq-9-example.json",
    "uscore-Questionnaire-phq-9-example.json",
    "uscore-Observation-PHQ9-total-score-44261-6.json",
    "uscore-Condition-health-concern.json",
    "uscore-RelatedPerson-shaw-niece.json",
    "uscore-Bundle-searchset-with-Provenance-revinclude.json",
];

pub fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
