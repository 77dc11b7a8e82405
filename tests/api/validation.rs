//! Every bad input is a clear 4xx OperationOutcome that says what and where, never a 500, and
//! nothing is stored (http.html#create/#update, validation.html).

use crate::common::{each_backend, TestApp, TestResponse};
use axum::http::{Method, StatusCode};
use coplan::config::ConfigLayer;
use coplan::testing::backends;
use serde_json::json;

async fn post_raw(app: &TestApp, content_type: &str, body: &[u8]) -> TestResponse {
    app.request(
        Method::POST,
        "/fhir/Patient",
        &[("content-type", content_type)],
        Some(body),
    )
    .await
}

#[tokio::test]
async fn invalid_resources_are_refused_with_the_location_of_the_problem() {
    each_backend(|app| async move {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("bad date", json!({"resourceType":"Patient","birthDate":"not-a-date"}), "Patient.birthDate"),
            ("bad code", json!({"resourceType":"Patient","gender":"banana"}), "Patient.gender"),
            ("empty string", json!({"resourceType":"Patient","name":[{"family":""}]}), "Patient.name[0].family"),
            ("empty array", json!({"resourceType":"Patient","name":[]}), "Patient.name"),
            ("empty object", json!({"resourceType":"Patient","maritalStatus":{}}), "Patient.maritalStatus"),
            ("unknown element", json!({"resourceType":"Patient","colour":"blue"}), "Patient.colour"),
            ("script in narrative", json!({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"}}), "Patient.text.div"),
            ("event attribute", json!({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"x()\">hi</p></div>"}}), "Patient.text.div"),
            ("missing required", json!({"resourceType":"CarePlan","intent":"plan","subject":{"reference":"Patient/1"}}), "CarePlan.status"),
        ];
        for (what, body, expression) in cases {
            let rt = body["resourceType"].as_str().unwrap().to_string();
            let response = app.post_json(&format!("/fhir/{rt}"), &body).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{what}: {}", response.text());
            let oo = response.json();
            assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
            let expressions: Vec<String> = oo["issue"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
            assert!(expressions.iter().any(|e| e.starts_with(expression)), "{what}: expected {expression} in {oo}");
        }
        assert_eq!(app.version_count().await, 0, "nothing was stored");
        app
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_are_4xx_never_500() {
    each_backend(|app| async move {
        let cases: Vec<(&str, &str, Vec<u8>, StatusCode)> = vec![
            (
                "malformed JSON",
                "application/fhir+json",
                b"{\"resourceType\":".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "not an object",
                "application/fhir+json",
                b"[1,2,3]".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "empty body",
                "application/fhir+json",
                Vec::new(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "deep nesting",
                "application/fhir+json",
                format!(
                    "{{\"resourceType\":\"Patient\",\"extension\":{}",
                    "[".repeat(50_000)
                )
                .into_bytes(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "wrong resourceType",
                "application/fhir+json",
                br#"{"resourceType":"Goal"}"#.to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "unknown resourceType",
                "application/fhir+json",
                br#"{"resourceType":"Banana"}"#.to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "plain text",
                "text/plain",
                b"hello".to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "invalid UTF-8",
                "application/fhir+json",
                b"{\"resourceType\":\"Patient\",\"id\":\"\xff\"}".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "duplicate keys",
                "application/fhir+json",
                br#"{"resourceType":"Patient","active":true,"active":false}"#.to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "truncated XML",
                "application/fhir+xml",
                b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\">".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (what, content_type, body, status) in cases {
            let response = post_raw(&app, content_type, &body).await;
            assert_eq!(response.status, status, "{what}: {}", response.text());
            assert_eq!(
                response.json()["resourceType"],
                "OperationOutcome",
                "{what}"
            );
        }
        let no_content_type = app
            .request(Method::POST, "/fhir/Patient", &[], Some(b"{}"))
            .await;
        assert_eq!(no_content_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let unknown_type_endpoint = app
            .post_json("/fhir/Banana", &json!({"resourceType":"Banana"}))
            .await;
        assert_eq!(unknown_type_endpoint.status, StatusCode::NOT_FOUND);
        assert_eq!(app.version_count().await, 0, "nothing was stored");
        app
    })
    .await;
}

#[tokio::test]
async fn update_checks_ids() {
    each_backend(|app| async move {
        let mismatch = app
            .put_json(
                "/fhir/Patient/a",
                &json!({"resourceType":"Patient","id":"b"}),
                &[],
            )
            .await;
        assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
        assert_eq!(mismatch.json()["issue"][0]["expression"][0], "Patient.id");
        let missing = app
            .put_json("/fhir/Patient/a", &json!({"resourceType":"Patient"}), &[])
            .await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        let bad_id = app
            .put_json(
                "/fhir/Patient/has%20space",
                &json!({"resourceType":"Patient","id":"has space"}),
                &[],
            )
            .await;
        assert_eq!(bad_id.status, StatusCode::BAD_REQUEST, "{}", bad_id.text());
        let too_long = "x".repeat(65);
        let long = app
            .put_json(
                &format!("/fhir/Patient/{too_long}"),
                &json!({"resourceType":"Patient","id":too_long}),
                &[],
            )
            .await;
        assert_eq!(long.status, StatusCode::BAD_REQUEST);
        let bad_if_match = app
            .put_json(
                "/fhir/Patient/a",
                &json!({"resourceType":"Patient","id":"a"}),
                &[("if-match", "yesterday")],
            )
            .await;
        assert_eq!(bad_if_match.status, StatusCode::BAD_REQUEST);
        assert_eq!(app.version_count().await, 0);
        app
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    for backend in backends() {
        let app =
            TestApp::with_config(backend, ConfigLayer::default().set("max_body_bytes", 1024)).await;
        let big = json!({"resourceType":"Patient","name":[{"text": "a".repeat(2000)}]});
        let response = app.post_json("/fhir/Patient", &big).await;
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.json()["issue"][0]["code"], "too-long");
        let small = app
            .post_json("/fhir/Patient", &json!({"resourceType":"Patient"}))
            .await;
        assert_eq!(small.status, StatusCode::CREATED);
        app.cleanup().await;
    }
}

#[tokio::test]
async fn error_bodies_are_stable_contracts() {
    each_backend(|app| async move {
        let stale = {
            app.put_json("/fhir/Patient/snap", &json!({"resourceType":"Patient","id":"snap"}), &[]).await;
            app.put_json("/fhir/Patient/snap", &json!({"resourceType":"Patient","id":"snap"}), &[("if-match", "W/\"5\"")]).await
        };
        assert_eq!(
            stale.json(),
            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"conflict","diagnostics":"If-Match version 5 is stale: the current version of Patient/snap is 1"}]})
        );
        let gone = {
            app.request(Method::DELETE, "/fhir/Patient/snap", &[], None).await;
            app.get("/fhir/Patient/snap").await
        };
        assert_eq!(
            gone.json(),
            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"deleted","diagnostics":"Patient/snap was deleted (version 2)"}]})
        );
        let not_found = app.get("/fhir/Patient/none").await;
        assert_eq!(
            not_found.json(),
            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Patient/none is not known"}]})
        );
        let method = app.request(Method::POST, "/fhir/Patient/x/_history", &[], None).await;
        assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            method.json(),
            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"POST is not allowed on /fhir/Patient/x/_history"}]})
        );
        let nowhere = app.get("/nowhere").await;
        assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
        assert_eq!(nowhere.json()["issue"][0]["diagnostics"], "no FHIR endpoint at /nowhere");
        app
    })
    .await;
}
