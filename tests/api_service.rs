//! Service endpoints and contracts: the CapabilityStatement (kept in sync with
//! conformance/CapabilityStatement.json), health and readiness probes, request ids.

mod common;

use axum::http::{Method, StatusCode};
use common::{each_backend, TestApp};
use coplan::testing::Backend;

const SNAPSHOT: &str = "conformance/CapabilityStatement.json";

#[tokio::test]
async fn capability_statement_matches_the_conformance_copy() {
    let app = TestApp::new(Backend::Sqlite).await;
    let response = app.get("/fhir/metadata").await;
    assert_eq!(response.status, StatusCode::OK);
    let statement = response.json();
    assert_eq!(statement["fhirVersion"], "4.0.1");
    assert_eq!(statement["implementation"]["url"], common::BASE);
    let care_plan = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "CarePlan")
        .expect("CarePlan is listed")
        .clone();
    assert_eq!(care_plan["versioning"], "versioned-update");
    // The conformance copy is generated for the default base URL.
    let default = coplan::rest::capability_statement(
        "http://127.0.0.1:8080/fhir",
        coplan::validate::resource_types(),
    );
    let pretty = serde_json::to_string_pretty(&default).unwrap() + "\n";
    let path = format!("{}/{SNAPSHOT}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &pretty).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(stored == pretty, "{SNAPSHOT} is out of date: run `UPDATE_SNAPSHOTS=1 cargo test --test api_service` and commit it");
    app.cleanup().await;
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    each_backend(|app| async move {
        let health = app.get("/healthz").await;
        assert_eq!(health.status, StatusCode::OK);
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status, StatusCode::OK);
        let backend = match app.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(ready.json()["database"], backend);
        let generated = app.get("/fhir/metadata").await;
        assert!(generated
            .header("x-request-id")
            .is_some_and(|v| !v.is_empty()));
        let echoed = app
            .request(
                Method::GET,
                "/fhir/Patient/x",
                &[("x-request-id", "trace-123")],
                None,
            )
            .await;
        assert_eq!(echoed.header("x-request-id"), Some("trace-123"));
        app
    })
    .await;
}

/// A trailing slash names the same endpoint: fhirpy posts Bundles to `[base]/`.
#[tokio::test]
async fn a_trailing_slash_names_the_same_endpoint() {
    each_backend(|app| async move {
        let batch = serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "PUT", "url": "Patient/slash"},
             "resource": {"resourceType": "Patient", "id": "slash", "active": true}}
        ]});
        let posted = app.post_json("/fhir/", &batch).await;
        assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());
        assert_eq!(posted.json()["type"], "batch-response");
        let metadata = app.get("/fhir/metadata/").await;
        assert_eq!(metadata.status, StatusCode::OK);
        assert_eq!(metadata.json()["resourceType"], "CapabilityStatement");
        let search = app.get("/fhir/Patient/?active=true").await;
        assert_eq!(search.status, StatusCode::OK);
        assert_eq!(search.json()["entry"][0]["resource"]["id"], "slash");
        let read = app.get("/fhir/Patient/slash/").await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.json()["id"], "slash");
        assert_eq!(app.get("/fhir/Banana/").await.status, StatusCode::NOT_FOUND);
        app
    })
    .await;
}
