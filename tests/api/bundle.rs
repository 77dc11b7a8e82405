//! batch and transaction Bundles (http.html#transaction) on every backend: atomicity,
//! processing order, `urn:uuid:` and conditional references, per-entry outcomes.

use crate::common::{each_backend, TestApp, TestResponse};
use axum::http::StatusCode;
use serde_json::{json, Value};

async fn post_bundle(app: &TestApp, bundle: &Value) -> TestResponse {
    app.post_json("/fhir", bundle).await
}

#[tokio::test]
async fn transaction_creates_a_plan_with_its_patient_and_goal_atomically() {
    each_backend(|app| async move {
        let bundle = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:0a6b6f5e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"http://hospital.example/mrn","value":"42"}],"name":[{"family":"Chalmers"}]},
             "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://hospital.example/mrn|42"}},
            {"fullUrl":"urn:uuid:0a6b6f5e-0000-4000-8000-000000000002","resource":{"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"Walk to the park"},"subject":{"reference":"urn:uuid:0a6b6f5e-0000-4000-8000-000000000001"}},
             "request":{"method":"POST","url":"Goal"}},
            {"resource":{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"urn:uuid:0a6b6f5e-0000-4000-8000-000000000001"},"goal":[{"reference":"urn:uuid:0a6b6f5e-0000-4000-8000-000000000002"}]},
             "request":{"method":"POST","url":"CarePlan"}},
            {"request":{"method":"GET","url":"CarePlan?patient:missing=false"}}
        ]});
        let response = post_bundle(&app, &bundle).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let out = response.json();
        assert_eq!(out["type"], "transaction-response");
        let entries = out["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 4);
        for e in &entries[..3] {
            assert_eq!(e["response"]["status"], "201 Created", "{e}");
        }
        let patient_loc = entries[0]["response"]["location"].as_str().unwrap().to_string();
        let patient_ref = patient_loc.split("/_history").next().unwrap().to_string();
        let plan_loc = entries[2]["response"]["location"].as_str().unwrap().to_string();
        let plan = app.get(&format!("/fhir/{}", plan_loc.split("/_history").next().unwrap())).await.json();
        assert_eq!(plan["subject"]["reference"], patient_ref.as_str(), "urn:uuid resolved");
        assert!(plan["goal"][0]["reference"].as_str().unwrap().starts_with("Goal/"));
        assert_eq!(entries[3]["resource"]["entry"].as_array().unwrap().len(), 1, "GET runs after the writes");

        // the same transaction again: ifNoneExist finds the patient, which is then referenced
        let again = post_bundle(&app, &bundle).await.json();
        assert_eq!(again["entry"][0]["response"]["status"], "200 OK");
        assert_eq!(again["entry"][0]["response"]["location"], patient_loc.as_str());
        app
    })
    .await;
}

#[tokio::test]
async fn a_failing_entry_rolls_back_the_whole_transaction() {
    each_backend(|app| async move {
        let before = app.version_count().await;
        let bundle = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Patient","gender":"banana"},"request":{"method":"POST","url":"Patient"}}
        ]});
        let response = post_bundle(&app, &bundle).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert!(response.diagnostics().starts_with("Bundle.entry[1]"), "{}", response.text());
        assert_eq!(app.version_count().await, before, "nothing written");

        let twice = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"resource":{"resourceType":"Patient","id":"x"},"request":{"method":"PUT","url":"Patient/x"}},
            {"resource":{"resourceType":"Patient","id":"x","active":true},"request":{"method":"PUT","url":"Patient/x"}}
        ]});
        assert_eq!(post_bundle(&app, &twice).await.status, StatusCode::CONFLICT);
        assert_eq!(app.get("/fhir/Patient/x").await.status, StatusCode::NOT_FOUND);

        app.put_json("/fhir/Patient/y", &json!({"resourceType":"Patient","id":"y"}), &[]).await;
        let stale = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"request":{"method":"DELETE","url":"Patient/y","ifMatch":"W/\"7\""}}
        ]});
        assert_eq!(post_bundle(&app, &stale).await.status, StatusCode::PRECONDITION_FAILED);
        let delete = json!({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/y"}}]});
        assert_eq!(post_bundle(&app, &delete).await.json()["entry"][0]["response"]["status"], "204 No Content");
        assert_eq!(app.get("/fhir/Patient/y").await.status, StatusCode::GONE);
        app
    })
    .await;
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_on_their_own() {
    each_backend(|app| async move {
        let bundle = json!({"resourceType":"Bundle","type":"batch","entry":[
            {"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Patient","gender":"banana"},"request":{"method":"POST","url":"Patient"}},
            {"request":{"method":"GET","url":"Patient/does-not-exist"}}
        ]});
        let response = post_bundle(&app, &bundle).await;
        assert_eq!(response.status, StatusCode::OK);
        let out = response.json();
        assert_eq!(out["type"], "batch-response");
        assert_eq!(out["entry"][0]["response"]["status"], "201 Created");
        assert_eq!(out["entry"][1]["response"]["status"], "400 Bad Request");
        assert_eq!(out["entry"][1]["response"]["outcome"]["resourceType"], "OperationOutcome");
        assert_eq!(out["entry"][2]["response"]["status"], "404 Not Found");

        for bad in [json!({"resourceType":"Patient"}), json!({"resourceType":"Bundle","type":"collection"}), json!({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"BREW","url":"Pot"}}]})] {
            assert_eq!(post_bundle(&app, &bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        app
    })
    .await;
}

/// A transaction whose answer is a failure has written nothing: every kind of entry (GET by id,
/// vread, search, POST, PUT, DELETE) failing, placed first, in the middle or last among
/// good writes.
#[tokio::test]
async fn a_failing_entry_of_any_kind_in_any_position_writes_nothing() {
    each_backend(|app| async move {
        let goal = |value: &str| {
            json!({"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "walk"},
                   "subject": {"reference": "Patient/p1"}, "identifier": [{"system": "urn:t", "value": value}]})
        };
        let with_id = |mut resource: Value, id: &str| {
            resource["id"] = json!(id);
            resource
        };
        let existing = with_id(goal("existing"), "existing");
        let created = app.put_json("/fhir/Goal/existing", &existing, &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let failing: Vec<(&str, Value, u16)> = vec![
            ("GET by id", json!({"request": {"method": "GET", "url": "CarePlan/does-not-exist"}}), 404),
            ("vread", json!({"request": {"method": "GET", "url": "Goal/existing/_history/7"}}), 404),
            ("search", json!({"request": {"method": "GET", "url": "Goal?target-date=not-a-date"}}), 400),
            ("POST", json!({"request": {"method": "POST", "url": "Goal"}, "resource": {"resourceType": "Goal", "colour": "blue"}}), 400),
            ("PUT", json!({"request": {"method": "PUT", "url": "Goal/other"}, "resource": with_id(goal("x"), "mismatch")}), 400),
            ("DELETE", json!({"request": {"method": "DELETE", "url": "Goal/existing", "ifMatch": "W/\"9\""}}), 412),
        ];
        let versions = app.version_count().await;
        for (what, bad, status) in &failing {
            for position in 0..3 {
                let mut entries = vec![
                    json!({"request": {"method": "POST", "url": "Goal"}, "resource": goal("tx-1")}),
                    json!({"request": {"method": "PUT", "url": "Goal/tx-2"}, "resource": with_id(goal("tx-2"), "tx-2")}),
                ];
                entries.insert(position, bad.clone());
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
                let answer = post_bundle(&app, &bundle).await;
                assert_eq!(answer.status.as_u16(), *status, "{what} at {position}: {}", answer.text());
                assert_eq!(answer.json()["resourceType"], "OperationOutcome", "{what} at {position}");
                assert_eq!(app.version_count().await, versions, "{what} at {position} left writes behind");
                let found = app.get("/fhir/Goal?identifier=urn:t|tx-1&_total=accurate").await.json();
                assert_eq!(found["total"], 0, "{what} at {position}: {found}");
            }
        }

        // Reads see what the transaction writes, whether they come before or after it.
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": "Goal/tx-2"}},
            {"request": {"method": "GET", "url": "Goal?identifier=urn:t|tx-2"}},
            {"request": {"method": "GET", "url": "Goal/existing/_history/1"}},
            {"request": {"method": "PUT", "url": "Goal/tx-2"}, "resource": with_id(goal("tx-2"), "tx-2")},
            {"request": {"method": "DELETE", "url": "Goal/existing"}},
            {"request": {"method": "GET", "url": "Goal/tx-2/_history/1"}},
        ]});
        let answer = post_bundle(&app, &bundle).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let body = answer.json();
        assert_eq!(body["entry"][0]["resource"]["id"], "tx-2", "{body}");
        assert_eq!(body["entry"][0]["response"]["etag"], "W/\"1\"", "{body}");
        assert_eq!(body["entry"][1]["resource"]["entry"][0]["resource"]["id"], "tx-2", "{body}");
        assert_eq!(body["entry"][2]["resource"]["id"], "existing", "{body}");
        assert_eq!(body["entry"][5]["resource"]["meta"]["versionId"], "1", "{body}");
        assert_eq!(app.get("/fhir/Goal/existing").await.status, StatusCode::GONE);

        // A read of a resource the same transaction deletes is a 410, and fails it.
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": "Goal/tx-2"}},
            {"request": {"method": "GET", "url": "Goal/tx-2"}},
        ]});
        let answer = post_bundle(&app, &bundle).await;
        assert_eq!(answer.status, StatusCode::GONE, "{}", answer.text());
        assert_eq!(app.get("/fhir/Goal/tx-2").await.status, StatusCode::OK);
        app
    })
    .await;
}
