//! (tests only) The fixtures under tests/fixtures and the shipped library, parsed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub fn $name() -> Value {
            serde_json::from_str(include_str!(concat!("../tests/fixtures/", $file))).unwrap()
        }
    };
}

fixture!(
    uscore_phq9_questionnaire,
    "uscore-Questionnaire-phq-9-example.json"
);
fixture!(
    uscore_phq9_response,
    "uscore-QuestionnaireResponse-phq-9-example.json"
);
fixture!(
    uscore_phq9_total_observation,
    "uscore-Observation-PHQ9-total-score-44261-6.json"
);
fixture!(
    lhc_phq9,
    "lhc-Questionnaire-PHQ9-ordinalValue-calculatedExpression.json"
);
fixture!(
    stanford_phq9,
    "stanford-Questionnaire-SDC-PHQ9-example.json"
);
fixture!(stanford_gad7, "stanford-Questionnaire-GAD7-noLOINC.json");
fixture!(phr_gad7_response, "phr-QuestionnaireResponse-GAD7.json");
fixture!(uscore_patient, "uscore-Patient-example.json");

pub fn shipped(file: &str) -> Value {
    crate::library::shipped()
        .into_iter()
        .find(|(name, _)| *name == file)
        .map(|(_, q)| q)
        .unwrap()
}
