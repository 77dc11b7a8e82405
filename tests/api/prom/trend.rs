//! The trend reads: `$lastn`, the comparison with the score before, and a PHQ-9 over real
//! HTTP seen by the clinician and by nobody else.

use super::*;

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
