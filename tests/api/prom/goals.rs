//! Goals that move with their scores, and what races and the security review tried.

use super::*;

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
