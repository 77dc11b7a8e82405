//! Service endpoints and contracts: the CapabilityStatement (kept in sync with
//! conformance/CapabilityStatement.json), health and readiness probes, request ids.

use crate::common::{each_backend, TestApp, BASE};
use axum::http::{Method, StatusCode};
use coplan::testing::Backend;

const SNAPSHOT: &str = "conformance/CapabilityStatement.json";

#[tokio::test]
async fn capability_statement_matches_the_conformance_copy() {
    let app = TestApp::new(Backend::Sqlite).await;
    let response = app.get("/fhir/metadata").await;
    assert_eq!(response.status, StatusCode::OK);
    let statement = response.json();
    assert_eq!(statement["fhirVersion"], "4.0.1");
    assert_eq!(statement["implementation"]["url"], BASE);
    let care_plan = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "CarePlan")
        .expect("CarePlan is listed")
        .clone();
    assert_eq!(care_plan["versioning"], "versioned-update");
    assert!(care_plan["documentation"]
        .as_str()
        .unwrap()
        .contains("If-Match"));
    let observation = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .expect("Observation is listed");
    assert_eq!(observation["versioning"], "versioned");
    // The conformance copy is generated for the default configuration.
    let defaults = coplan::config::Config::default();
    let default = coplan::rest::capability_statement(
        "http://127.0.0.1:8080/fhir",
        coplan::validate::resource_types(),
        &defaults.require_if_match,
        defaults.require_if_match_for_all,
    );
    let pretty = serde_json::to_string_pretty(&default).unwrap() + "\n";
    let path = format!("{}/{SNAPSHOT}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &pretty).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(stored == pretty, "{SNAPSHOT} is out of date: run `UPDATE_SNAPSHOTS=1 cargo test --test api service::` and commit it");
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

/// Operations have routes at every level, GET and POST (a `Parameters` body); unknown ones
/// and ones invoked where they are not defined are 404 `not-supported`.
#[tokio::test]
async fn operations_are_routed_at_every_level_with_parameters_in() {
    each_backend(|app| async move {
        let patient = serde_json::json!({"resourceType": "Patient", "id": "op1"});
        assert_eq!(app.put_json("/fhir/Patient/op1", &patient, &[]).await.status, StatusCode::CREATED);
        for (id, text) in [("g1", "walk"), ("g2", "swim")] {
            let goal = serde_json::json!({"resourceType": "Goal", "id": id, "lifecycleStatus": "active",
                "description": {"text": text}, "subject": {"reference": "Patient/op1"}});
            assert_eq!(app.put_json(&format!("/fhir/Goal/{id}"), &goal, &[]).await.status, StatusCode::CREATED);
        }

        let got = app.get("/fhir/Patient/op1/$everything").await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text());
        // The patient, the goals, the Provenance of each write and the Device they name.
        let mut types: Vec<String> = got.json()["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string()).collect();
        types.sort();
        assert_eq!(types, ["Device", "Goal", "Goal", "Patient", "Provenance", "Provenance", "Provenance"]);

        let fhir = [("content-type", "application/fhir+json")];
        let parameters = serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Goal"}, {"name": "_count", "valueInteger": 1}]});
        let body = serde_json::to_vec(&parameters).expect("json");
        let posted = app.request(Method::POST, "/fhir/Patient/op1/$everything", &fhir, Some(&body)).await;
        assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());
        let page = posted.json();
        assert_eq!(page["entry"].as_array().map_or(0, Vec::len), 1, "{page}");
        assert_eq!(page["entry"][0]["resource"]["resourceType"], "Goal");
        assert!(page["link"].as_array().expect("links").iter().any(|l| l["relation"] == "next"), "{page}");
        let empty = app.request(Method::POST, "/fhir/Patient/op1/$everything", &[], Some(b"")).await;
        assert_eq!(empty.status, StatusCode::OK, "no body is no parameters: {}", empty.text());

        for (method, path, says) in [
            (Method::GET, "/fhir/$nope", "no operation $nope"),
            (Method::POST, "/fhir/$nope", "no operation $nope"),
            (Method::GET, "/fhir/Patient/$nope", "no operation $nope"),
            (Method::POST, "/fhir/Patient/$everything", "not defined on the Patient type"),
            (Method::GET, "/fhir/Goal/g1/$everything", "not defined on a Goal"),
            (Method::GET, "/fhir/$everything", "not defined at the system level"),
        ] {
            let refused = app.request(method.clone(), path, &[], None).await;
            assert_eq!(refused.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(refused.json()["issue"][0]["code"], "not-supported", "{method} {path}");
            assert!(refused.diagnostics().contains(says), "{method} {path}: {}", refused.text());
        }
        let not_parameters = serde_json::to_vec(&patient).expect("json");
        let wrong = app.request(Method::POST, "/fhir/Patient/op1/$everything", &fhir, Some(&not_parameters)).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        let unknown = app.get("/fhir/Patient/op1/$everything?colour=blue").await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text());
        assert!(unknown.diagnostics().contains("colour"));
        let not_an_operation = app.request(Method::POST, "/fhir/Patient/op1", &fhir, Some(&not_parameters)).await;
        assert_eq!(not_an_operation.status, StatusCode::METHOD_NOT_ALLOWED);

        let metadata = app.get("/fhir/metadata").await.json();
        let patient_entry = metadata["rest"][0]["resource"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["type"] == "Patient")
            .cloned()
            .expect("Patient");
        assert_eq!(patient_entry["operation"][0]["name"], "everything");
        app
    })
    .await;
}
