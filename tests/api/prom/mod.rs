//! PROMs (issue "PROMs"): questionnaire responses validated, scored and extracted, goals that
//! move with the scores, and the trend reads (`Observation?…&_sort=date`, `Observation/$lastn`),
//! on every backend. The tests are split by topic; the helpers they share are here.

mod derived_ids;
mod goals;
mod scoring;
mod trend;

use crate::common::*;
use serde_json::{json, Value};

fn score(id: &str, patient: &str, code: &str, when: &str, value: i64) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when,
        "valueInteger": value
    })
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

const PHQ9: &str = "http://coplan.dev/fhir/Questionnaire/phq-9|1.0.0";
const GAD7: &str = "http://coplan.dev/fhir/Questionnaire/gad-7|1.0.0";
const PHQ9_ITEMS: [&str; 9] = [
    "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3",
    "44260-8",
];
const ANSWERS: [&str; 4] = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"];

/// A published example shipped with the questionnaire crate's tests.
fn published(name: &str) -> Value {
    let path = format!(
        "{}/crates/fhir-questionnaire/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A completed PHQ-9 by `patient` with these answers (ordinals 0–3).
fn phq9(patient: &str, ordinals: [usize; 9], authored: &str) -> Value {
    let items: Vec<Value> = PHQ9_ITEMS
        .iter()
        .zip(ordinals)
        .map(|(code, o)| {
            json!({"linkId": format!("/{code}"),
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": ANSWERS[o]}}]})
        })
        .collect();
    json!({"resourceType": "QuestionnaireResponse", "questionnaire": PHQ9, "status": "completed",
        "subject": {"reference": format!("Patient/{patient}")},
        "author": {"reference": format!("Patient/{patient}")},
        "authored": authored, "item": items})
}

/// Amends response `id` of the published PHQ-9: its first answer changed to LA6571-9 (the
/// total 12 → 13), its own total answer dropped.
async fn amend_published_phq9(app: &TestApp, id: &str) {
    let mut amended = app
        .get(&format!("/fhir/QuestionnaireResponse/{id}"))
        .await
        .json();
    amended["status"] = json!("amended");
    amended["item"][0]["answer"][0]["valueCoding"]["code"] = json!("LA6571-9");
    amended["item"]
        .as_array_mut()
        .unwrap()
        .retain(|i| i["linkId"] != "/44261-6");
    let put = app
        .put_json(&format!("/fhir/QuestionnaireResponse/{id}"), &amended, &[])
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
}

async fn patient(app: &TestApp, id: &str) {
    let put = app
        .put_json(
            &format!("/fhir/Patient/{id}"),
            &json!({"resourceType": "Patient", "id": id}),
            &[],
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
}

async fn with_library(app: &TestApp) {
    let loaded = app.state.fhir.load_questionnaire_library().await.unwrap();
    assert_eq!(loaded, ["phq-9", "phq-2", "gad-7"], "{loaded:?}");
}

/// The score Observations derived from a response.
async fn scores_of(app: &TestApp, response_id: &str) -> Vec<Value> {
    let found = app
        .get(&format!(
            "/fhir/Observation?derived-from=QuestionnaireResponse/{response_id}&code=http://loinc.org|44261-6,http://loinc.org|70274-6,http://loinc.org|55758-7"
        ))
        .await;
    assert_eq!(found.status, 200, "{}", found.text());
    found.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

/// The goal `Goal/mood` of `patient`: a PHQ-9 total below 5.
async fn put_mood_goal(app: &TestApp, patient: &str) {
    let goal = json!({"resourceType": "Goal", "id": "mood", "lifecycleStatus": "active",
        "description": {"text": "PHQ-9 below 5"}, "subject": {"reference": format!("Patient/{patient}")},
        "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "detailQuantity": {"value": 5, "comparator": "<"}}]});
    let put = app.put_json("/fhir/Goal/mood", &goal, &[]).await;
    assert_eq!(put.status, 201, "{}", put.text());
}

/// The goal's status after each response: its `achievementStatus` code and how many scores
/// it links.
async fn goal_status(app: &TestApp, id: &str) -> (String, usize) {
    let goal = app.get(&format!("/fhir/Goal/{id}")).await.json();
    (
        goal["achievementStatus"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("(none)")
            .to_string(),
        goal["outcomeReference"].as_array().map_or(0, Vec::len),
    )
}
