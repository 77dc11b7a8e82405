//! PROMs (issue "PROMs"): questionnaire responses validated, scored and extracted, goals that
//! move with the scores, and the trend reads (`Observation?…&_sort=date`, `Observation/$lastn`),
//! on every backend.

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

#[tokio::test]
async fn lastn_gives_the_latest_scores_per_instrument_and_refuses_what_r4_requires() {
    each_backend(|app| async move {
        for p in ["p1", "p2"] {
            let put = app
                .put_json(&format!("/fhir/Patient/{p}"), &json!({"resourceType": "Patient", "id": p}), &[])
                .await;
            assert_eq!(put.status, 201, "{}", put.text());
        }
        // PHQ-9 totals (44261-6) in June, April, May; GAD-7 totals (70274-6) in March, May;
        // another patient's newer PHQ-9.
        for (id, patient, code, when, value) in [
            ("phq-jun", "p1", "44261-6", "2026-06-01", 4),
            ("phq-apr", "p1", "44261-6", "2026-04-01", 14),
            ("phq-may", "p1", "44261-6", "2026-05-01", 9),
            ("gad-mar", "p1", "70274-6", "2026-03-01", 12),
            ("gad-may", "p1", "70274-6", "2026-05-02", 6),
            ("other", "p2", "44261-6", "2026-07-01", 20),
        ] {
            let put = app
                .put_json(&format!("/fhir/Observation/{id}"), &score(id, patient, code, when, value), &[])
                .await;
            assert_eq!(put.status, 201, "{}", put.text());
        }
        let latest = app
            .get("/fhir/Observation/$lastn?patient=p1&category=survey")
            .await;
        assert_eq!(latest.status, 200, "{}", latest.text());
        let latest = latest.json();
        assert_eq!(latest["type"], "searchset");
        assert_eq!(ids(&latest), ["phq-jun", "gad-may"], "{latest}");
        assert_eq!(latest["total"], 2);

        let two = app
            .get("/fhir/Observation/$lastn?patient=Patient/p1&category=survey&max=2")
            .await
            .json();
        assert_eq!(ids(&two), ["phq-jun", "phq-may", "gad-may", "gad-mar"], "{two}");
        let phq = app
            .get("/fhir/Observation/$lastn?patient=p1&category=survey&code=http://loinc.org|44261-6&max=5")
            .await
            .json();
        assert_eq!(ids(&phq), ["phq-jun", "phq-may", "phq-apr"], "{phq}");

        // The same as a POST with a Parameters body.
        let posted = app
            .post_json(
                "/fhir/Observation/$lastn",
                &json!({"resourceType": "Parameters", "parameter": [
                    {"name": "patient", "valueString": "p1"},
                    {"name": "category", "valueString": "survey"},
                    {"name": "max", "valueInteger": 2}]}),
            )
            .await;
        assert_eq!(posted.status, 200, "{}", posted.text());
        assert_eq!(ids(&posted.json()), ["phq-jun", "phq-may", "gad-may", "gad-mar"]);

        for (query, says) in [
            ("category=survey", "needs a subject"),
            ("patient=p1", "needs a subject (patient or subject) and a category"),
            ("patient=p1&category=survey&max=0", "max must be a whole number"),
            ("patient=p1&category=survey&max=lots", "max must be a whole number"),
            ("patient=p1&category=survey&_sort=date", "takes no _sort"),
            ("patient=p1&category=survey&colour=blue", "colour"),
        ] {
            let refused = app.get(&format!("/fhir/Observation/$lastn?{query}")).await;
            assert_eq!(refused.status, 400, "{query}: {}", refused.text());
            assert!(refused.diagnostics().contains(says), "{query}: {}", refused.text());
        }
        let on_goal = app.get("/fhir/Goal/$lastn?patient=p1&category=survey").await;
        assert_eq!(on_goal.status, 404, "{}", on_goal.text());
        app
    })
    .await;
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

#[tokio::test]
async fn the_shipped_instruments_load_once_and_a_local_edit_stays() {
    each_backend(|app| async move {
        with_library(&app).await;
        let again = app.state.fhir.load_questionnaire_library().await.unwrap();
        assert!(again.is_empty(), "{again:?}");
        let found = app
            .get("/fhir/Questionnaire?url=http://coplan.dev/fhir/Questionnaire/phq-9&version=1.0.0")
            .await
            .json();
        assert_eq!(found["total"], 1, "{found}");
        let q = &found["entry"][0]["resource"];
        assert_eq!(q["code"][0]["code"], "44249-1");
        // A local edit of the same url and version is never overwritten by a restart.
        let mut edited = q.clone();
        edited["title"] = json!("PHQ-9 (our clinic's wording)");
        let put = app
            .put_json("/fhir/Questionnaire/phq-9", &edited, &[])
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        assert!(app
            .state
            .fhir
            .load_questionnaire_library()
            .await
            .unwrap()
            .is_empty());
        let now = app.get("/fhir/Questionnaire/phq-9").await.json();
        assert_eq!(now["title"], "PHQ-9 (our clinic's wording)");
        assert_eq!(now["meta"]["versionId"], "2");
        app
    })
    .await;
}

#[tokio::test]
async fn the_published_phq9_is_scored_on_arrival_like_its_published_total() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "example").await;
        let mut response = published("uscore-QuestionnaireResponse-phq-9-example.json");
        response["questionnaire"] = json!(PHQ9);
        response.as_object_mut().unwrap().remove("id");
        response.as_object_mut().unwrap().remove("author");
        let created = app
            .post_json("/fhir/QuestionnaireResponse", &response)
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let qr_id = created.json()["id"].as_str().unwrap().to_string();

        let scores = scores_of(&app, &qr_id).await;
        assert_eq!(scores.len(), 1, "{scores:?}");
        let score = &scores[0];
        // The published total (the response's own 44261-6 answer and the US Core total
        // Observation example) is 12.
        assert_eq!(score["valueQuantity"]["value"], 12, "{score}");
        assert_eq!(score["valueQuantity"]["code"], "{score}");
        assert_eq!(score["status"], "final");
        assert_eq!(score["category"][0]["coding"][0]["code"], "survey");
        assert_eq!(score["code"]["coding"][0]["code"], "44261-6");
        assert_eq!(score["subject"]["reference"], "Patient/example");
        assert_eq!(score["effectiveDateTime"], response["authored"]);
        assert_eq!(
            score["derivedFrom"][0]["reference"],
            format!("QuestionnaireResponse/{qr_id}")
        );
        assert_eq!(
            score["interpretation"][0]["text"], "Moderate depression",
            "{score}"
        );
        // The nine answers, extracted as the score's members.
        let members = score["hasMember"].as_array().unwrap();
        assert_eq!(members.len(), 9, "{score}");
        let first = app
            .get(&format!(
                "/fhir/{}",
                members[0]["reference"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(first["code"]["coding"][0]["code"], "44250-9");
        assert_eq!(
            first["valueCodeableConcept"]["coding"][0]["code"],
            "LA6570-1"
        );

        // The server says it derived them, from this response.
        let provenance = app
            .get(&format!(
                "/fhir/Provenance?target=Observation/{}",
                score["id"].as_str().unwrap()
            ))
            .await
            .json();
        let record = &provenance["entry"][0]["resource"];
        assert_eq!(
            record["agent"][0]["who"]["reference"], "Device/coplan",
            "{record}"
        );
        assert_eq!(record["entity"][0]["role"], "source");
        assert_eq!(
            record["entity"][0]["what"]["reference"],
            format!("QuestionnaireResponse/{qr_id}/_history/1")
        );
        assert_eq!(record["target"].as_array().unwrap().len(), 10, "{record}");

        // An amendment supersedes the score: a new version of the same Observation.
        let mut amended = app
            .get(&format!("/fhir/QuestionnaireResponse/{qr_id}"))
            .await
            .json();
        amended["status"] = json!("amended");
        amended["item"][0]["answer"][0]["valueCoding"]["code"] = json!("LA6571-9");
        amended["item"]
            .as_array_mut()
            .unwrap()
            .retain(|i| i["linkId"] != "/44261-6");
        let put = app
            .put_json(
                &format!("/fhir/QuestionnaireResponse/{qr_id}"),
                &amended,
                &[],
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let scores = scores_of(&app, &qr_id).await;
        assert_eq!(scores.len(), 1, "never a duplicate: {scores:?}");
        assert_eq!(scores[0]["id"], score["id"]);
        assert_eq!(scores[0]["valueQuantity"]["value"], 13);
        assert_eq!(scores[0]["meta"]["versionId"], "2");
        app
    })
    .await;
}

#[tokio::test]
async fn the_published_gad7_and_a_users_own_questionnaire_are_scored_without_code_for_them() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "PGHDPatientExample").await;
        let mut gad7 = published("phr-QuestionnaireResponse-GAD7.json");
        gad7["questionnaire"] = json!(GAD7);
        gad7.as_object_mut().unwrap().remove("id");
        gad7.as_object_mut().unwrap().remove("source");
        let created = app.post_json("/fhir/QuestionnaireResponse", &gad7).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let scores = scores_of(&app, created.json()["id"].as_str().unwrap()).await;
        // 0+0+1+1+0+1+0, the published answers' LOINC ordinals.
        assert_eq!(scores[0]["valueQuantity"]["value"], 3, "{scores:?}");
        assert_eq!(scores[0]["code"]["coding"][0]["code"], "70274-6");
        assert_eq!(scores[0]["interpretation"][0]["text"], "Minimal anxiety");

        // A questionnaire a user loads: item weights and a calculated total of their own.
        let own = json!({"resourceType": "Questionnaire", "url": "http://clinic.example/q/sleep",
            "version": "2", "status": "active",
            "item": [
                {"linkId": "nights", "type": "choice", "required": true, "text": "Bad nights this week",
                 "answerOption": [
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "none"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 0}]},
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "some"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 2}]},
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "most"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 5}]}]},
                {"linkId": "total", "type": "decimal", "readOnly": true,
                 "code": [{"system": "http://clinic.example/cs", "code": "sleep-score"}],
                 "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
                    "valueExpression": {"language": "text/fhirpath",
                        "expression": "%resource.item.where(linkId = 'nights').answer.value.weight().sum() * 10"}}]}]});
        let loaded = app.post_json("/fhir/Questionnaire", &own).await;
        assert_eq!(loaded.status, 201, "{}", loaded.text());
        let answered = json!({"resourceType": "QuestionnaireResponse",
            "questionnaire": "http://clinic.example/q/sleep|2", "status": "completed",
            "subject": {"reference": "Patient/PGHDPatientExample"}, "authored": "2026-02-01T08:00:00Z",
            "item": [{"linkId": "nights", "answer": [{"valueCoding": {"system": "http://clinic.example/cs", "code": "most"}}]}]});
        let created = app.post_json("/fhir/QuestionnaireResponse", &answered).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().unwrap().to_string();
        let found = app
            .get(&format!("/fhir/Observation?derived-from=QuestionnaireResponse/{id}"))
            .await
            .json();
        let score = &found["entry"][0]["resource"];
        assert_eq!(score["code"]["coding"][0]["code"], "sleep-score", "{found}");
        assert_eq!(score["valueQuantity"]["value"], 50, "{score}");
        app
    })
    .await;
}

#[tokio::test]
async fn bad_responses_are_refused_naming_the_item_and_unknown_forms_are_taken_unscored() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        let good = phq9("p1", [1; 9], "2026-03-01T10:00:00Z");
        let mut unknown_item = good.clone();
        unknown_item["item"][2]["linkId"] = json!("/99999-9");
        let mut not_an_option = good.clone();
        not_an_option["item"][4]["answer"][0]["valueCoding"]["code"] = json!("LA9999-9");
        let mut wrong_type = good.clone();
        wrong_type["item"][1]["answer"][0] = json!({"valueString": "a lot"});
        let mut missing = good.clone();
        missing["item"].as_array_mut().unwrap().remove(8);
        let mut twice = good.clone();
        let answer = twice["item"][0]["answer"][0].clone();
        twice["item"][0]["answer"]
            .as_array_mut()
            .unwrap()
            .push(answer);
        for (bad, link_id, expression) in [
            (unknown_item, "/99999-9", "QuestionnaireResponse.item[2]"),
            (
                not_an_option,
                "/44251-7",
                "QuestionnaireResponse.item[4].answer[0]",
            ),
            (
                wrong_type,
                "/44255-8",
                "QuestionnaireResponse.item[1].answer[0]",
            ),
            (missing, "/44260-8", "QuestionnaireResponse"),
            (twice, "/44250-9", "QuestionnaireResponse.item[0]"),
        ] {
            let refused = app.post_json("/fhir/QuestionnaireResponse", &bad).await;
            assert_eq!(refused.status, 422, "{link_id}: {}", refused.text());
            let outcome = refused.json();
            let issue = outcome["issue"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["diagnostics"].as_str().unwrap().contains(link_id))
                .unwrap_or_else(|| panic!("{link_id}: {outcome}"))
                .clone();
            assert_eq!(issue["severity"], "error");
            assert!(
                issue["expression"][0]
                    .as_str()
                    .unwrap()
                    .starts_with(expression),
                "{link_id}: {issue}"
            );
        }
        // Nothing of a refused response is stored.
        let none = app
            .get("/fhir/QuestionnaireResponse?patient=p1")
            .await
            .json();
        assert_eq!(none["total"], 0, "{none}");
        // In progress: only the structure is checked (missing answers are fine).
        let mut draft = phq9("p1", [0; 9], "2026-03-01T10:00:00Z");
        draft["status"] = json!("in-progress");
        draft["item"].as_array_mut().unwrap().truncate(3);
        let saved = app.post_json("/fhir/QuestionnaireResponse", &draft).await;
        assert_eq!(saved.status, 201, "{}", saved.text());
        assert!(scores_of(&app, saved.json()["id"].as_str().unwrap())
            .await
            .is_empty());
        // A form the server does not know: accepted, not scored.
        let mut external = phq9("p1", [3; 9], "2026-03-01T10:00:00Z");
        external["questionnaire"] = json!("http://elsewhere.example/Questionnaire/mood|1");
        let taken = app
            .post_json("/fhir/QuestionnaireResponse", &external)
            .await;
        assert_eq!(taken.status, 201, "{}", taken.text());
        assert!(scores_of(&app, taken.json()["id"].as_str().unwrap())
            .await
            .is_empty());
        // ... with a warning, for a client that asks for the outcome.
        let told = app
            .request(
                axum::http::Method::POST,
                "/fhir/QuestionnaireResponse",
                &[
                    ("content-type", "application/fhir+json"),
                    ("prefer", "return=OperationOutcome"),
                ],
                Some(external.to_string().as_bytes()),
            )
            .await;
        assert_eq!(told.status, 201, "{}", told.text());
        let outcome = told.json();
        assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
        assert_eq!(outcome["issue"][1]["severity"], "warning", "{outcome}");
        assert!(
            outcome["issue"][1]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("elsewhere.example"),
            "{outcome}"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn a_strict_server_refuses_responses_to_unknown_forms() {
    for backend in coplan::testing::backends() {
        let app = TestApp::with_config(
            backend,
            coplan::config::ConfigLayer::default().set("require_known_questionnaire", true),
        )
        .await;
        with_library(&app).await;
        patient(&app, "p1").await;
        let mut external = phq9("p1", [3; 9], "2026-03-01T10:00:00Z");
        external["questionnaire"] = json!("http://elsewhere.example/Questionnaire/mood|1");
        let refused = app
            .post_json("/fhir/QuestionnaireResponse", &external)
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        assert!(refused
            .diagnostics()
            .contains("require_known_questionnaire"));
        let known = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [3; 9], "2026-03-01T10:00:00Z"),
            )
            .await;
        assert_eq!(known.status, 201, "{}", known.text());
        app.cleanup().await;
    }
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

#[tokio::test]
async fn a_goal_moves_with_its_scores_worsening_improving_then_achieved() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        patient(&app, "p2").await;
        let goal = json!({"resourceType": "Goal", "id": "feel-better", "lifecycleStatus": "active",
            "description": {"text": "PHQ-9 below 5 by June"},
            "subject": {"reference": "Patient/p1"},
            "expressedBy": {"reference": "Patient/p1"},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                "detailQuantity": {"value": 5, "comparator": "<"}, "dueDate": "2026-06-30"}]});
        assert_eq!(
            app.put_json("/fhir/Goal/feel-better", &goal, &[])
                .await
                .status,
            201
        );
        // Another patient's goal on the same measure never moves with p1's scores.
        let mut theirs = goal.clone();
        theirs["id"] = json!("theirs");
        theirs["subject"] = json!({"reference": "Patient/p2"});
        theirs["expressedBy"] = json!({"reference": "Patient/p2"});
        assert_eq!(
            app.put_json("/fhir/Goal/theirs", &theirs, &[]).await.status,
            201
        );

        // Totals 9 → 18 (worsening by ≥ 5) → 11 (improving) → 10 (no change) → 3 (achieved).
        let series: [([usize; 9], &str, &str); 5] = [
            (
                [1, 1, 1, 1, 1, 1, 1, 1, 1],
                "2026-01-10T09:00:00Z",
                "in-progress",
            ),
            (
                [2, 2, 2, 2, 2, 2, 2, 2, 2],
                "2026-02-10T09:00:00Z",
                "worsening",
            ),
            (
                [2, 2, 2, 1, 1, 1, 1, 1, 0],
                "2026-03-10T09:00:00Z",
                "improving",
            ),
            (
                [2, 2, 1, 1, 1, 1, 1, 1, 0],
                "2026-04-10T09:00:00Z",
                "no-change",
            ),
            (
                [1, 1, 1, 0, 0, 0, 0, 0, 0],
                "2026-05-10T09:00:00Z",
                "achieved",
            ),
        ];
        for (n, (answers, when, expected)) in series.into_iter().enumerate() {
            let created = app
                .post_json("/fhir/QuestionnaireResponse", &phq9("p1", answers, when))
                .await;
            assert_eq!(created.status, 201, "{}", created.text());
            assert_eq!(
                goal_status(&app, "feel-better").await,
                (expected.to_string(), n + 1),
                "after response {n}"
            );
        }
        assert_eq!(goal_status(&app, "theirs").await, ("(none)".to_string(), 0));
        // Each move is a version of its own, by the server, from the response.
        let history = app.get("/fhir/Goal/feel-better/_history").await.json();
        let versions = history["entry"].as_array().unwrap();
        assert_eq!(versions.len(), 6, "{history}");
        // Only the status and the linked scores changed, in their places.
        let first = &versions[5]["resource"];
        let last = &versions[0]["resource"];
        let keys = |g: &Value| g.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(last)[..keys(first).len()],
            keys(first)[..],
            "the goal's own elements keep their order"
        );
        for element in [
            "description",
            "subject",
            "expressedBy",
            "target",
            "lifecycleStatus",
        ] {
            assert_eq!(last[element], first[element], "{element}");
        }
        let moved = app
            .get("/fhir/Provenance?target=Goal/feel-better/_history/6")
            .await
            .json();
        let record = &moved["entry"][0]["resource"];
        assert_eq!(
            record["agent"][0]["who"]["reference"], "Device/coplan",
            "{moved}"
        );
        assert!(record["entity"][0]["what"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("QuestionnaireResponse/"));
        // The trend, oldest first.
        let trend = app
            .get("/fhir/Observation?patient=p1&code=http://loinc.org|44261-6&_sort=date")
            .await
            .json();
        let values: Vec<i64> = trend["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["valueQuantity"]["value"].as_i64().unwrap())
            .collect();
        assert_eq!(values, [9, 18, 11, 10, 3]);
        // Each score names who answered (the response's author) and when (its authored).
        let first = &trend["entry"][0]["resource"];
        assert_eq!(first["performer"][0]["reference"], "Patient/p1", "{first}");
        assert_eq!(first["effectiveDateTime"], "2026-01-10T09:00:00Z");
        let latest = app
            .get(
                "/fhir/Observation/$lastn?patient=p1&category=survey&code=http://loinc.org|44261-6",
            )
            .await
            .json();
        assert_eq!(latest["entry"][0]["resource"]["valueQuantity"]["value"], 3);
        app
    })
    .await;
}

#[tokio::test]
async fn a_response_names_its_goal_through_its_plan_or_pertains_to_goal_and_other_goals_stay() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        for id in ["named", "other"] {
            let goal = json!({"resourceType": "Goal", "id": id, "lifecycleStatus": "active",
                "description": {"text": "PHQ-9 at most 9"}, "subject": {"reference": "Patient/p1"},
                "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                    "detailRange": {"high": {"value": 9}}}]});
            assert_eq!(app.put_json(&format!("/fhir/Goal/{id}"), &goal, &[]).await.status, 201);
        }
        let plan = json!({"resourceType": "CarePlan", "id": "plan", "status": "active",
            "intent": "plan", "subject": {"reference": "Patient/p1"},
            "goal": [{"reference": "Goal/named"}]});
        assert_eq!(app.put_json("/fhir/CarePlan/plan", &plan, &[]).await.status, 201);
        let mut response = phq9("p1", [1, 1, 1, 1, 1, 0, 0, 0, 0], "2026-01-10T09:00:00Z");
        response["basedOn"] = json!([{"reference": "CarePlan/plan"}]);
        let created = app.post_json("/fhir/QuestionnaireResponse", &response).await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(goal_status(&app, "named").await, ("achieved".to_string(), 1));
        assert_eq!(goal_status(&app, "other").await, ("(none)".to_string(), 0));
        // The MCC pertainsToGoal extension names the other one; the named goal stays.
        let mut response = phq9("p1", [2, 2, 2, 2, 2, 2, 0, 0, 0], "2026-02-10T09:00:00Z");
        response["extension"] = json!([{
            "url": "http://hl7.org/fhir/us/mcc/StructureDefinition/resource-pertainsToGoal",
            "valueReference": {"reference": "Goal/other"}}]);
        let created = app.post_json("/fhir/QuestionnaireResponse", &response).await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(goal_status(&app, "other").await, ("worsening".to_string(), 1));
        assert_eq!(goal_status(&app, "named").await, ("achieved".to_string(), 1));
        app
    })
    .await;
}

#[tokio::test]
async fn sdc_validate_extract_and_populate() {
    each_backend(|app| async move {
        with_library(&app).await;
        let person = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-04-02",
            "name": [{"given": ["Amy"], "family": "Shaw"}]});
        assert_eq!(app.put_json("/fhir/Patient/p1", &person, &[]).await.status, 201);

        // $validate: the write's checks, nothing stored.
        let mut bad = phq9("p1", [1; 9], "2026-03-01T10:00:00Z");
        bad["item"].as_array_mut().unwrap().remove(0);
        let checked = app
            .post_json("/fhir/QuestionnaireResponse/$validate", &bad)
            .await;
        assert_eq!(checked.status, 200, "{}", checked.text());
        let outcome = checked.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert!(outcome.to_string().contains("/44250-9"), "{outcome}");
        assert_eq!(outcome["issue"][0]["severity"], "error");
        let fine = app
            .post_json(
                "/fhir/QuestionnaireResponse/$validate",
                &json!({"resourceType": "Parameters", "parameter": [
                    {"name": "resource", "resource": phq9("p1", [1; 9], "2026-03-01T10:00:00Z")}]}),
            )
            .await
            .json();
        assert_eq!(fine["issue"][0]["severity"], "information", "{fine}");
        let stored = app.get("/fhir/QuestionnaireResponse").await.json();
        assert_eq!(stored["total"], 0);

        // $extract of a stored response: a transaction Bundle, not stored.
        let created = app
            .post_json("/fhir/QuestionnaireResponse", &phq9("p1", [2; 9], "2026-03-01T10:00:00Z"))
            .await;
        let id = created.json()["id"].as_str().unwrap().to_string();
        let before = app.get("/fhir/Observation").await.json()["total"].clone();
        let extracted = app
            .get(&format!("/fhir/QuestionnaireResponse/{id}/$extract"))
            .await;
        assert_eq!(extracted.status, 200, "{}", extracted.text());
        let bundle = extracted.json();
        assert_eq!(bundle["type"], "transaction");
        let entries = bundle["entry"].as_array().unwrap();
        assert!(entries.len() >= 9, "{bundle}");
        assert!(entries.iter().all(|e| e["request"]["method"] == "POST"
            && e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:")));
        assert!(entries.iter().any(|e| e["resource"]["code"]["coding"][0]["code"] == "44250-9"
            && e["resource"]["derivedFrom"][0]["reference"] == format!("QuestionnaireResponse/{id}")));
        assert_eq!(app.get("/fhir/Observation").await.json()["total"], before);
        let unknown = app
            .post_json("/fhir/QuestionnaireResponse/$extract", &json!({"resourceType": "QuestionnaireResponse",
                "status": "completed", "questionnaire": "http://elsewhere.example/q"}))
            .await;
        assert_eq!(unknown.status, 422, "{}", unknown.text());

        // $populate for the subject, from initialExpression.
        let form = json!({"resourceType": "Questionnaire", "id": "intake", "url": "http://clinic.example/q/intake",
            "version": "1", "status": "active", "item": [
                {"linkId": "name", "type": "string", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%patient.name.first().given.first()"}}]},
                {"linkId": "born", "type": "date", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%patient.birthDate"}}]},
                {"linkId": "visit", "type": "string", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%encounter.id"}}]}]});
        assert_eq!(app.put_json("/fhir/Questionnaire/intake", &form, &[]).await.status, 201);
        let populated = app
            .get("/fhir/Questionnaire/intake/$populate?subject=Patient/p1")
            .await;
        assert_eq!(populated.status, 200, "{}", populated.text());
        let out = populated.json();
        let response = &out["parameter"][0]["resource"];
        assert_eq!(out["parameter"][0]["name"], "response");
        assert_eq!(response["subject"]["reference"], "Patient/p1");
        assert_eq!(response["item"][0]["answer"][0]["valueString"], "Amy", "{out}");
        assert_eq!(response["item"][1]["answer"][0]["valueDate"], "1980-04-02");
        assert_eq!(out["parameter"][1]["name"], "issues");
        assert!(out["parameter"][1]["resource"].to_string().contains("visit"), "{out}");
        let by_canonical = app
            .post_json("/fhir/Questionnaire/$populate", &json!({"resourceType": "Parameters", "parameter": [
                {"name": "questionnaire", "valueCanonical": "http://clinic.example/q/intake|1"},
                {"name": "subject", "valueReference": {"reference": "Patient/p1"}}]}))
            .await;
        assert_eq!(by_canonical.status, 200, "{}", by_canonical.text());
        let missing = app.get("/fhir/Questionnaire/intake/$populate?subject=Patient/nobody").await;
        assert_eq!(missing.status, 404, "{}", missing.text());
        app
    })
    .await;
}

#[tokio::test]
async fn a_transaction_with_a_response_stores_its_score_in_the_same_commit() {
    each_backend(|app| async move {
        with_library(&app).await;
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
             "resource": {"resourceType": "Patient", "name": [{"family": "Okafor"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": phq9("X", [3; 9], "2026-03-01T10:00:00Z"),
             "request": {"method": "POST", "url": "QuestionnaireResponse"}}]});
        let mut bundle = bundle;
        bundle["entry"][1]["resource"]["subject"]["reference"] =
            json!("urn:uuid:11111111-1111-4111-8111-111111111111");
        bundle["entry"][1]["resource"]["author"]["reference"] =
            json!("urn:uuid:11111111-1111-4111-8111-111111111111");
        let done = app.post_json("/fhir", &bundle).await;
        assert_eq!(done.status, 200, "{}", done.text());
        let location = done.json()["entry"][1]["response"]["location"]
            .as_str()
            .unwrap()
            .to_string();
        let id = location.split('/').nth(1).unwrap().to_string();
        let scores = scores_of(&app, &id).await;
        assert_eq!(scores[0]["valueQuantity"]["value"], 27, "{scores:?}");
        assert_eq!(scores[0]["interpretation"][0]["text"], "Severe depression");
        // A failing transaction leaves neither response nor score.
        let mut failing = bundle.clone();
        failing["entry"][0]["request"] =
            json!({"method": "PUT", "url": "Patient/p9", "ifMatch": "W/\"7\""});
        failing["entry"][0]["resource"]["id"] = json!("p9");
        let before = app.get("/fhir/Observation").await.json()["total"].clone();
        let refused = app.post_json("/fhir", &failing).await;
        assert!(refused.status.is_client_error(), "{}", refused.text());
        assert_eq!(app.get("/fhir/Observation").await.json()["total"], before);
        app
    })
    .await;
}

/// Over real HTTP with real tokens: the patient's app submits a PHQ-9, the clinician's app
/// sees the score, the trend and the goal; another patient sees none of it.
#[tokio::test]
async fn a_patient_submits_a_phq9_and_the_clinician_sees_score_trend_and_goal() {
    use crate::common::auth::{send, token, Server};
    for backend in coplan::testing::backends() {
        let server = Server::start_with(backend, coplan::config::ConfigLayer::default()).await;
        server
            .state
            .fhir
            .load_questionnaire_library()
            .await
            .unwrap();
        for id in ["p1", "p2"] {
            server
                .seed(json!({"resourceType": "Patient", "id": id}))
                .await;
        }
        server
            .seed(json!({"resourceType": "Practitioner", "id": "dr"}))
            .await;
        // The clinician reaches p1's record as a member of p1's care team.
        server
            .seed(
                json!({"resourceType": "CareTeam", "id": "team", "status": "active",
                "subject": {"reference": "Patient/p1"},
                "participant": [{"member": {"reference": "Practitioner/dr"}}]}),
            )
            .await;
        server
            .seed(json!({"resourceType": "Goal", "id": "mood", "lifecycleStatus": "active",
                "description": {"text": "PHQ-9 below 5"}, "subject": {"reference": "Patient/p1"},
                "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                    "detailQuantity": {"value": 5, "comparator": "<"}}]}))
            .await;
        let portal = token(
            &server,
            "portal",
            "patient/QuestionnaireResponse.cru patient/Observation.rs patient/Goal.rs",
            Some("p1"),
            Some("Patient/p1"),
        );
        let other = token(
            &server,
            "portal",
            "patient/Observation.rs patient/Goal.rs",
            Some("p2"),
            Some("Patient/p2"),
        );
        let ehr = token(
            &server,
            "ehr",
            "user/*.cruds",
            None,
            Some("Practitioner/dr"),
        );
        let post = |bearer: String, body: Value| {
            let url = server.url("/fhir/QuestionnaireResponse");
            async move {
                send(
                    "POST",
                    &url,
                    &[
                        ("authorization", bearer.as_str()),
                        ("content-type", "application/fhir+json"),
                    ],
                    Some(body.to_string()),
                )
                .await
            }
        };
        for (answers, when) in [
            ([2; 9], "2026-01-05T08:00:00Z"),
            ([1; 9], "2026-02-05T08:00:00Z"),
        ] {
            let created = post(portal.clone(), phq9("p1", answers, when)).await;
            assert_eq!(created.status, 201, "{}", created.body);
        }
        // Not for another patient.
        let refused = post(portal.clone(), phq9("p2", [0; 9], "2026-02-05T08:00:00Z")).await;
        assert!(matches!(refused.status, 403 | 404), "{}", refused.body);

        let get = |bearer: &str, path: &str| {
            let url = server.url(&format!("/fhir/{path}"));
            let bearer = bearer.to_string();
            async move { send("GET", &url, &[("authorization", bearer.as_str())], None).await }
        };
        let trend = get(
            &ehr,
            "Observation?patient=p1&code=http://loinc.org|44261-6&_sort=date",
        )
        .await;
        assert_eq!(trend.status, 200, "{}", trend.body);
        let values: Vec<i64> = trend.json()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["valueQuantity"]["value"].as_i64().unwrap())
            .collect();
        assert_eq!(values, [18, 9]);
        let goal = get(&ehr, "Goal/mood").await.json();
        assert_eq!(
            goal["achievementStatus"]["coding"][0]["code"], "improving",
            "{goal}"
        );
        // The patient sees the same; the other patient sees nothing of it.
        // The latest of each instrument's total and each item: ten codes, one each.
        let mine = get(&portal, "Observation/$lastn?patient=p1&category=survey").await;
        assert_eq!(mine.json()["total"], 10, "{}", mine.body);
        let total = mine.json()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["code"]["coding"][0]["code"] == "44261-6")
            .unwrap()["resource"]
            .clone();
        assert_eq!(total["valueQuantity"]["value"], 9, "{total}");
        let theirs = get(&other, "Observation?code=http://loinc.org|44261-6").await;
        assert_eq!(theirs.json()["total"], 0, "{}", theirs.body);
        assert_eq!(get(&other, "Goal/mood").await.status, 404);
        // Who did what: the patient wrote the response, the server derived the score.
        let response_id = trend.json()["entry"][1]["resource"]["derivedFrom"][0]["reference"]
            .as_str()
            .unwrap()
            .to_string();
        let by_patient = get(&ehr, &format!("Provenance?target={response_id}"))
            .await
            .json();
        assert_eq!(
            by_patient["entry"][0]["resource"]["agent"][0]["who"]["reference"], "Patient/p1",
            "{by_patient}"
        );
        server.stop().await;
    }
}

/// A clinician edits the goal while the patient keeps submitting: the server's moves never
/// overwrite the clinician's edits, and no score link is lost — for a plain write and for a
/// transaction alike.
#[tokio::test]
async fn scores_and_a_clinicians_goal_edits_racing_lose_nothing() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        put_mood_goal(&app, "p1").await;
        const ROUNDS: usize = 12;
        for round in 0..ROUNDS {
            let when = format!("2026-01-{:02}T08:00:00Z", round + 1);
            // Plainly, and as the entry of a transaction (whose hooks run again the same way).
            let submit = async {
                let response = phq9("p1", [round % 4; 9], &when);
                if round % 2 == 0 {
                    let created = app.post_json("/fhir/QuestionnaireResponse", &response).await;
                    assert_eq!(created.status, 201, "{}", created.text());
                } else {
                    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                        {"resource": response, "request": {"method": "POST", "url": "QuestionnaireResponse"}}]});
                    let done = app.post_json("/fhir", &bundle).await;
                    assert_eq!(done.status, 200, "{}", done.text());
                }
            };
            let edit = async {
                loop {
                    let current = app.get("/fhir/Goal/mood").await;
                    let etag = current.header("etag").unwrap().to_string();
                    let mut changed = current.json();
                    let notes = changed
                        .as_object_mut()
                        .unwrap()
                        .entry("note")
                        .or_insert_with(|| json!([]));
                    notes
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"text": format!("round {round}")}));
                    let put = app
                        .put_json("/fhir/Goal/mood", &changed, &[("if-match", &etag)])
                        .await;
                    match put.status.as_u16() {
                        200 => break,
                        412 => continue,
                        other => panic!("{other}: {}", put.text()),
                    }
                }
            };
            tokio::join!(submit, edit);
        }
        let goal = app.get("/fhir/Goal/mood").await.json();
        assert_eq!(goal["note"].as_array().unwrap().len(), ROUNDS, "{goal}");
        assert_eq!(
            goal["outcomeReference"].as_array().unwrap().len(),
            ROUNDS,
            "{goal}"
        );
        app
    })
    .await;
}

/// What the security review found, each as it would be tried.
#[tokio::test]
async fn review_a_subject_that_names_two_patients_moves_nothing_and_reads_nobodys_scores() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "A").await;
        patient(&app, "B").await;
        let created = app
            .post_json("/fhir/QuestionnaireResponse", &phq9("A", [2; 9], "2026-01-10T09:00:00Z"))
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        // B's goal and response name a subject that a search would split into B and A.
        let sneaky = "Patient/B?://,Patient/A";
        let goal = json!({"resourceType": "Goal", "id": "probe", "lifecycleStatus": "active",
            "description": {"text": "probe"}, "subject": {"reference": sneaky},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                "detailQuantity": {"value": -1, "comparator": "<"}}]});
        let put = app.put_json("/fhir/Goal/probe", &goal, &[]).await;
        if put.status == 201 {
            let mut response = phq9("B", [1; 9], "2030-01-01T00:00:00Z");
            response["subject"]["reference"] = json!(sneaky);
            response["extension"] = json!([{"url": "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
                "valueReference": {"reference": "Goal/probe"}}]);
            let posted = app.post_json("/fhir/QuestionnaireResponse", &response).await;
            assert!(posted.status.is_success() || posted.status.is_client_error(), "{}", posted.text());
            // Whatever was stored, the probe goal learned nothing: it did not move.
            assert_eq!(goal_status(&app, "probe").await, ("(none)".to_string(), 0));
        } else {
            assert!(put.status.is_client_error(), "{}", put.text());
        }
        app
    })
    .await;
}

#[tokio::test]
async fn review_goal_edge_cases_each_target_order_status_and_several_responses_per_commit() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        let phq9_target = json!({"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "detailQuantity": {"value": 5, "comparator": "<"}});
        // Two targets: the weight target (< 80) is not the PHQ-9 one.
        let two = json!({"resourceType": "Goal", "id": "two", "lifecycleStatus": "active",
            "description": {"text": "weight and mood"}, "subject": {"reference": "Patient/p1"},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "detailQuantity": {"value": 80, "comparator": "<"}}, phq9_target]});
        // A status a person set stays.
        let held = json!({"resourceType": "Goal", "id": "held", "lifecycleStatus": "active",
            "description": {"text": "mood"}, "subject": {"reference": "Patient/p1"},
            "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": "not-attainable"}]},
            "target": [phq9_target]});
        for goal in [&two, &held] {
            let id = goal["id"].as_str().unwrap();
            assert_eq!(app.put_json(&format!("/fhir/Goal/{id}"), goal, &[]).await.status, 201);
        }
        let plan = json!({"resourceType": "CarePlan", "id": "plan", "status": "active", "intent": "plan",
            "subject": {"reference": "Patient/p1"}, "goal": [{"reference": "Goal/two"}, {"reference": "Goal/held"}]});
        assert_eq!(app.put_json("/fhir/CarePlan/plan", &plan, &[]).await.status, 201);
        // Named twice (plan and extension), and two responses in one transaction.
        let named = |answers: [usize; 9], when: &str| {
            let mut r = phq9("p1", answers, when);
            r["basedOn"] = json!([{"reference": "CarePlan/plan"}]);
            r["extension"] = json!([{"url": "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
                "valueReference": {"reference": "Goal/two"}}]);
            r
        };
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": named([2; 9], "2026-03-01T09:00:00Z"), "request": {"method": "POST", "url": "QuestionnaireResponse"}},
            {"resource": named([1, 1, 1, 1, 1, 1, 1, 1, 0], "2026-04-01T09:00:00Z"), "request": {"method": "POST", "url": "QuestionnaireResponse"}}]});
        let done = app.post_json("/fhir", &bundle).await;
        assert_eq!(done.status, 200, "{}", done.text());
        let (status, linked) = goal_status(&app, "two").await;
        assert_eq!(linked, 2, "both scores linked");
        assert_ne!(status, "achieved", "18 and 8 do not meet PHQ-9 < 5 (the weight target is another's)");
        assert_eq!(goal_status(&app, "held").await, ("not-attainable".to_string(), 2));
        // A late response (authored before the latest score) links its score, turns nothing back.
        let before = goal_status(&app, "two").await.0;
        let late = app
            .post_json("/fhir/QuestionnaireResponse", &named([0; 9], "2026-02-01T09:00:00Z"))
            .await;
        assert_eq!(late.status, 201, "{}", late.text());
        assert_eq!(goal_status(&app, "two").await, (before, 3));
        app
    })
    .await;
}

#[tokio::test]
async fn review_withdrawn_responses_withdraw_their_scores_and_a_note_on_a_score_is_kept() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        let created = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [2; 9], "2026-03-01T09:00:00Z"),
            )
            .await;
        let id = created.json()["id"].as_str().unwrap().to_string();
        let score = scores_of(&app, &id).await.remove(0);
        let score_id = score["id"].as_str().unwrap().to_string();
        // A clinician's note on the score survives an amendment.
        let mut noted = score.clone();
        noted["note"] = json!([{"text": "discussed at review"}]);
        let put = app
            .put_json(&format!("/fhir/Observation/{score_id}"), &noted, &[])
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let mut amended = app
            .get(&format!("/fhir/QuestionnaireResponse/{id}"))
            .await
            .json();
        amended["status"] = json!("amended");
        amended["item"][0]["answer"][0]["valueCoding"]["code"] = json!("LA6568-5");
        let put = app
            .put_json(&format!("/fhir/QuestionnaireResponse/{id}"), &amended, &[])
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let now = app
            .get(&format!("/fhir/Observation/{score_id}"))
            .await
            .json();
        assert_eq!(now["valueQuantity"]["value"], 16);
        assert_eq!(now["note"][0]["text"], "discussed at review");
        // Entered in error: every derived Observation says so.
        amended["status"] = json!("entered-in-error");
        let put = app
            .put_json(&format!("/fhir/QuestionnaireResponse/{id}"), &amended, &[])
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let derived = app
            .get(&format!(
                "/fhir/Observation?derived-from=QuestionnaireResponse/{id}&_count=50"
            ))
            .await
            .json();
        let statuses: Vec<&str> = derived["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.len(), 10, "{derived}");
        assert!(
            statuses.iter().all(|s| *s == "entered-in-error"),
            "{statuses:?}"
        );
        // A client cannot create under the server's derived ids.
        let squat = json!({"resourceType": "Observation", "id": "prom-0000", "status": "final",
            "code": {"text": "x"}});
        let refused = app
            .put_json("/fhir/Observation/prom-0000", &squat, &[])
            .await;
        assert_eq!(refused.status, 403, "{}", refused.text());
        // Deleting a response withdraws what it gave too.
        let other = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [1; 9], "2026-04-01T09:00:00Z"),
            )
            .await;
        let other_id = other.json()["id"].as_str().unwrap().to_string();
        let deleted = app
            .request(
                axum::http::Method::DELETE,
                &format!("/fhir/QuestionnaireResponse/{other_id}"),
                &[],
                None,
            )
            .await;
        assert!(deleted.status.is_success(), "{}", deleted.text());
        let gone = app
            .get(&format!(
                "/fhir/Observation?derived-from=QuestionnaireResponse/{other_id}&status=final"
            ))
            .await
            .json();
        assert_eq!(gone["total"], 0, "{gone}");
        app
    })
    .await;
}

#[tokio::test]
async fn the_trend_compares_with_the_score_just_before_whatever_the_history_holds() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        put_mood_goal(&app, "p1").await;
        // A long history: 25 old scores of 20, the one just before at 9, and 22 later scores
        // entered in error (a page of them: none is a later score, and the previous one lies
        // beyond them).
        let mut entries = Vec::new();
        for n in 0..25 {
            let when = format!("2025-{:02}-{:02}T09:00:00Z", n % 12 + 1, n / 12 + 1);
            entries.push(score(&format!("old-{n}"), "p1", "44261-6", &when, 20));
        }
        entries.push(score("before", "p1", "44261-6", "2026-01-05T09:00:00Z", 9));
        for n in 0..22 {
            let mut withdrawn = score(
                &format!("withdrawn-{n}"),
                "p1",
                "44261-6",
                &format!("2026-06-{:02}T09:00:00Z", n + 1),
                0,
            );
            withdrawn["status"] = json!("entered-in-error");
            entries.push(withdrawn);
        }
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries
            .iter()
            .map(|o| json!({"resource": o, "request": {"method": "PUT",
                "url": format!("Observation/{}", o["id"].as_str().unwrap())}}))
            .collect::<Vec<_>>()});
        let loaded = app.post_json("/fhir", &bundle).await;
        assert_eq!(loaded.status, 200, "{}", loaded.text());

        // 18 after 9 is worse by more than the PHQ-9's minimal important difference (5); after
        // one of the old 20s it would be no change, and a withdrawn score taken as later would
        // leave the goal's status alone.
        let created = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [2; 9], "2026-02-01T09:00:00Z"),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(
            goal_status(&app, "mood").await,
            ("worsening".to_string(), 1)
        );

        // A live later score makes a response between them late: linked, status kept.
        let later = score("later", "p1", "44261-6", "2026-07-01T09:00:00Z", 3);
        assert_eq!(
            app.put_json("/fhir/Observation/later", &later, &[])
                .await
                .status,
            201
        );
        let late = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [0; 9], "2026-03-01T09:00:00Z"),
            )
            .await;
        assert_eq!(late.status, 201, "{}", late.text());
        assert_eq!(
            goal_status(&app, "mood").await,
            ("worsening".to_string(), 2)
        );

        // The next one compares with the live later score (3), not the late response (0):
        // 7 is within the minimal important difference of 3, and worse than 0 by 7.
        let next = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [1, 1, 1, 1, 1, 1, 1, 0, 0], "2026-08-01T09:00:00Z"),
            )
            .await;
        assert_eq!(next.status, 201, "{}", next.text());
        assert_eq!(
            goal_status(&app, "mood").await,
            ("no-change".to_string(), 3)
        );
        app
    })
    .await;
}
