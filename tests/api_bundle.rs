//! batch and transaction Bundles (http.html#transaction) on every backend: atomicity,
//! processing order, `urn:uuid:` and conditional references, per-entry outcomes.

mod common;

use axum::http::StatusCode;
use common::{each_backend, TestApp};
use serde_json::{json, Value};

async fn post_bundle(app: &TestApp, bundle: &Value) -> common::TestResponse {
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
