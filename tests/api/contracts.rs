//! Contract snapshots (insta; `tests/api/snapshots/`): what clients build against — the
//! CapabilityStatement and smart-configuration this server serves, and the OperationOutcome
//! (status, headers that matter, body) of every main kind of error. A change to any of them
//! fails here until the snapshot is reviewed and accepted (`INSTA_UPDATE=always cargo test
//! --test api contracts::`, then read the diff before committing).

use crate::common::{auth, TestApp, TestResponse};
use axum::http::{Method, StatusCode};
use coplan::config::ConfigLayer;
use coplan::testing::Backend;
use serde_json::{json, Value};

/// Pretty JSON text: the snapshot (insta's own JSON writer cannot print the server's
/// arbitrary-precision numbers).
fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

/// Status, the headers a client acts on, and the body of an error response.
fn outcome(response: &TestResponse) -> Value {
    let mut headers = serde_json::Map::new();
    for name in ["content-type", "www-authenticate", "allow"] {
        if let Some(value) = response.header(name) {
            headers.insert(name.into(), Value::from(value));
        }
    }
    json!({
        "status": response.status.as_u16(),
        "headers": headers,
        "body": response.json(),
    })
}

#[tokio::test]
async fn capability_statement_contract() {
    let app = TestApp::new(Backend::Sqlite).await;
    let response = app.get("/fhir/metadata").await;
    assert_eq!(response.status, StatusCode::OK);
    insta::assert_snapshot!("capability_statement", pretty(&response.json()));
    app.cleanup().await;
}

#[tokio::test]
async fn smart_configuration_contract() {
    let server = auth::Server::start(Backend::Sqlite).await;
    let reply = auth::send(
        "GET",
        &server.url("/fhir/.well-known/smart-configuration"),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The harness listens on a random port: name it ORIGIN so the snapshot is stable.
    let text = reply.body.replace(&server.origin, "ORIGIN");
    let document: Value = serde_json::from_str(&text).unwrap();
    insta::assert_snapshot!("smart_configuration", pretty(&document));
    server.stop().await;
}

#[tokio::test]
async fn operation_outcomes_of_the_fhir_api() {
    let layer = ConfigLayer::default().set("max_body_bytes", 4096);
    let app = TestApp::with_config(Backend::Sqlite, layer).await;
    let json_type = [("content-type", "application/fhir+json")];
    let post = |path: &'static str, body: &'static str| {
        let app = &app;
        async move {
            app.request(Method::POST, path, &json_type, Some(body.as_bytes()))
                .await
        }
    };
    let created = post(
        "/fhir/Patient",
        r#"{"resourceType":"Patient","active":true}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let gone = post("/fhir/Patient", r#"{"resourceType":"Patient"}"#).await;
    let gone_id = gone.json()["id"].as_str().unwrap().to_string();
    app.request(
        Method::DELETE,
        &format!("/fhir/Patient/{gone_id}"),
        &[],
        None,
    )
    .await;
    let too_large = format!(
        r#"{{"resourceType":"Patient","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>"}}}}"#,
        "x".repeat(5000)
    );

    let cases: Vec<(&str, TestResponse)> = vec![
        ("not_json", post("/fhir/Patient", "{").await),
        (
            "invalid_resource",
            post("/fhir/Patient", r#"{"resourceType":"Patient","gender":"banana","birthDate":"soon"}"#).await,
        ),
        (
            "wrong_resource_type",
            post("/fhir/Patient", r#"{"resourceType":"Goal"}"#).await,
        ),
        ("unknown_type", app.get("/fhir/Banana/1").await),
        ("not_found", app.get("/fhir/Patient/nope").await),
        ("gone", app.get(&format!("/fhir/Patient/{gone_id}")).await),
        (
            "stale_if_match",
            app.put_json(
                "/fhir/Patient/id-1",
                &json!({"resourceType": "Patient", "id": "id-1"}),
                &[("if-match", "W/\"7\"")],
            )
            .await,
        ),
        (
            "malformed_if_match",
            app.put_json(
                "/fhir/Patient/id-1",
                &json!({"resourceType": "Patient", "id": "id-1"}),
                &[("if-match", "seven")],
            )
            .await,
        ),
        (
            "bad_search_value",
            app.get("/fhir/Goal?target-date=not-a-date").await,
        ),
        (
            "unknown_search_parameter_strict",
            app.request(
                Method::GET,
                "/fhir/Goal?colour=red",
                &[("prefer", "handling=strict")],
                None,
            )
            .await,
        ),
        (
            "method_not_allowed",
            app.request(Method::DELETE, "/fhir/metadata", &[], None).await,
        ),
        ("not_acceptable", app.get("/fhir/Patient/id-1?_format=text/csv").await),
        (
            "patch_media_type",
            app.request(
                Method::PATCH,
                "/fhir/Patient/id-1",
                &[("content-type", "text/plain")],
                Some(b"[]"),
            )
            .await,
        ),
        (
            "fhirpath_patch_unprocessable",
            app.request(
                Method::PATCH,
                "/fhir/Patient/id-1",
                &[("content-type", "application/fhir+json")],
                Some(br#"{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.birthDate"},{"name":"value","valueDate":"2000-01-01"}]}]}"#),
            )
            .await,
        ),
        (
            "patch_unprocessable",
            app.request(
                Method::PATCH,
                "/fhir/Patient/id-1",
                &[("content-type", "application/json-patch+json")],
                Some(br#"[{"op":"remove","path":"/id"}]"#),
            )
            .await,
        ),
        (
            "payload_too_large",
            app.request(
                Method::POST,
                "/fhir/Patient",
                &json_type,
                Some(too_large.as_bytes()),
            )
            .await,
        ),
        ("unknown_operation", app.get("/fhir/$nope").await),
        (
            "transaction_entry_failure",
            app.post_json(
                "/fhir",
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
                    {"resource": {"resourceType": "Patient", "gender": "banana"}, "request": {"method": "POST", "url": "Patient"}}
                ]}),
            )
            .await,
        ),
    ];
    let mut all = serde_json::Map::new();
    for (name, response) in &cases {
        assert!(
            response.status.is_client_error(),
            "{name}: {} {}",
            response.status,
            response.text()
        );
        all.insert(name.to_string(), outcome(response));
    }
    insta::assert_snapshot!("fhir_api_operation_outcomes", pretty(&Value::Object(all)));
    app.cleanup().await;
}

#[tokio::test]
async fn operation_outcomes_of_access_control() {
    let server = auth::Server::start(Backend::Sqlite).await;
    let goals = server.url("/fhir/Goal?patient=p1");
    let no_token = auth::send("GET", &goals, &[], None).await;
    let now = server.clock.unix();
    let token = server
        .auth
        .keys
        .sign(
            &json!({
                "iss": server.fhir, "aud": server.fhir, "sub": "amy", "exp": now + 60, "iat": now,
                "jti": "contract", "client_id": "portal", "scope": "patient/Observation.rs",
                "patient": "p1",
            }),
            now,
        )
        .unwrap();
    let bearer = format!("Bearer {token}");
    let wrong_scope = auth::send("GET", &goals, &[("authorization", bearer.as_str())], None).await;
    let forged = auth::send(
        "GET",
        &goals,
        &[("authorization", "Bearer not.a.token")],
        None,
    )
    .await;
    let mut all = serde_json::Map::new();
    for (name, reply) in [
        ("no_token", &no_token),
        ("invalid_token", &forged),
        ("insufficient_scope", &wrong_scope),
    ] {
        let mut headers = serde_json::Map::new();
        for header in ["content-type", "www-authenticate"] {
            if let Some(value) = reply.header(header) {
                headers.insert(header.into(), Value::from(value));
            }
        }
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        all.insert(
            name.into(),
            json!({"status": reply.status, "headers": headers, "body": body}),
        );
    }
    let text = serde_json::to_string(&all)
        .unwrap()
        .replace(&server.origin, "ORIGIN");
    let all: Value = serde_json::from_str(&text).unwrap();
    insta::assert_snapshot!("access_control_operation_outcomes", pretty(&all));
    server.stop().await;
}
