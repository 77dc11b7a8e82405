//! read, vread, create, update, delete and versioning through the real router, on every
//! backend (http.html#read … #delete, #versioning).

use crate::common::{each_backend, fixture, TestApp, BASE};
use axum::http::{Method, StatusCode};
use serde_json::json;

async fn create_patient(app: &TestApp) -> String {
    let created = app.post_json("/fhir/Patient", &json!({"resourceType":"Patient","id":"ignored","active":true,"name":[{"family":"Chalmers"}]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn create_then_read_serves_the_stored_resource() {
    each_backend(|app| async move {
        let created = app.post_json("/fhir/Patient", &json!({"resourceType":"Patient","id":"client-chosen","active":true,"meta":{"versionId":"7","tag":[{"system":"http://example.org","code":"t"}]}})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        assert_eq!(created.header("location"), Some(&*format!("{BASE}/Patient/id-1/_history/1")));
        assert_eq!(created.header("etag"), Some("W/\"1\""));
        assert_eq!(created.header("last-modified"), Some("Thu, 01 Jan 2026 00:00:00 GMT"));
        assert_eq!(created.header("content-type"), Some("application/fhir+json; charset=utf-8"));
        assert_eq!(
            created.text(),
            r#"{"resourceType":"Patient","id":"id-1","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z","tag":[{"system":"http://example.org","code":"t"}]},"active":true}"#
        );

        let read = app.get("/fhir/Patient/id-1").await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body, created.body, "read serves exactly the stored bytes");
        assert_eq!(read.header("etag"), Some("W/\"1\""));

        let not_modified = app.request(Method::GET, "/fhir/Patient/id-1", &[("if-none-match", "W/\"1\"")], None).await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        // Strong and bare forms too (fhirpy's refresh() sends `If-None-Match: 1`).
        for tag in ["\"1\"", "1"] {
            let same = app.request(Method::GET, "/fhir/Patient/id-1", &[("if-none-match", tag)], None).await;
            assert_eq!(same.status, StatusCode::NOT_MODIFIED, "If-None-Match: {tag}");
        }
        let other = app.request(Method::GET, "/fhir/Patient/id-1", &[("if-none-match", "2")], None).await;
        assert_eq!(other.status, StatusCode::OK);

        let missing = app.get("/fhir/Patient/nope").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.diagnostics().contains("Patient/nope"));
        let unknown_type = app.get("/fhir/Banana/1").await;
        assert_eq!(unknown_type.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown_type.json()["issue"][0]["code"], "not-supported");
        app
    })
    .await;
}

#[tokio::test]
async fn update_is_version_aware_and_history_keeps_everything() {
    each_backend(|app| async move {
        let id = create_patient(&app).await;
        let url = format!("/fhir/Patient/{id}");
        let v2 = json!({"resourceType":"Patient","id":id,"active":false});

        let stale = app.put_json(&url, &v2, &[("if-match", "W/\"9\"")]).await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert!(
            stale
                .diagnostics()
                .contains("current version of Patient/id-1 is 1"),
            "{}",
            stale.text()
        );

        let updated = app.put_json(&url, &v2, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
        assert_eq!(updated.header("etag"), Some("W/\"2\""));
        assert_eq!(
            updated.header("location"),
            Some(&*format!("{BASE}/Patient/{id}/_history/2"))
        );
        assert_eq!(updated.json()["meta"]["versionId"], "2");

        let again = app.put_json(&url, &v2, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(
            again.status,
            StatusCode::PRECONDITION_FAILED,
            "the second writer with the same If-Match loses"
        );

        let v1 = app.get(&format!("{url}/_history/1")).await;
        assert_eq!(v1.status, StatusCode::OK);
        assert_eq!(v1.json()["active"], true);
        assert_eq!(
            app.get(&format!("{url}/_history/3")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get(&format!("{url}/_history/x")).await.status,
            StatusCode::NOT_FOUND
        );

        // delete → 410 on read; vread of old versions still works; history has the tombstone
        let deleted = app.request(Method::DELETE, &url, &[], None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert_eq!(deleted.header("etag"), Some("W/\"3\""));
        let gone = app.get(&url).await;
        assert_eq!(gone.status, StatusCode::GONE);
        assert_eq!(gone.json()["issue"][0]["code"], "deleted");
        assert_eq!(
            app.get(&format!("{url}/_history/3")).await.status,
            StatusCode::GONE
        );
        assert_eq!(
            app.get(&format!("{url}/_history/2")).await.status,
            StatusCode::OK
        );
        let again = app.request(Method::DELETE, &url, &[], None).await;
        assert_eq!(
            again.status,
            StatusCode::NO_CONTENT,
            "deleting twice is fine and writes nothing"
        );

        let history = app.get(&format!("{url}/_history")).await.json();
        assert_eq!(history["type"], "history");
        let entries = history["entry"].as_array().expect("entries");
        let methods: Vec<_> = entries
            .iter()
            .map(|e| e["request"]["method"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(methods, ["DELETE", "PUT", "POST"]);
        assert!(entries[0].get("resource").is_none());
        assert_eq!(entries[0]["response"]["status"], "204 No Content");
        assert_eq!(entries[1]["response"]["etag"], "W/\"2\"");
        assert_eq!(entries[2]["request"]["url"], "Patient");
        assert_eq!(entries[2]["fullUrl"], format!("{BASE}/Patient/{id}"));

        // update after delete brings it back as a new version
        let revived = app.put_json(&url, &v2, &[]).await;
        assert_eq!(revived.status, StatusCode::CREATED);
        assert_eq!(revived.json()["meta"]["versionId"], "4");
        app
    })
    .await;
}

#[tokio::test]
async fn update_with_a_client_id_creates() {
    each_backend(|app| async move {
        let body = json!({"resourceType":"Goal","id":"what-matters-1","lifecycleStatus":"active","description":{"text":"Walk to the park with my grandchildren"},"subject":{"reference":"Patient/p1"}});
        let created = app.put_json("/fhir/Goal/what-matters-1", &body, &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        assert_eq!(created.header("etag"), Some("W/\"1\""));
        let updated = app.put_json("/fhir/Goal/what-matters-1", &body, &[]).await;
        assert_eq!(updated.status, StatusCode::OK);
        assert_eq!(updated.header("etag"), Some("W/\"2\""));
        let if_match_missing = app.put_json("/fhir/Goal/other", &json!({"resourceType":"Goal","id":"other","lifecycleStatus":"active","description":{"text":"x"},"subject":{"reference":"Patient/p1"}}), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(if_match_missing.status, StatusCode::PRECONDITION_FAILED);
        app
    })
    .await;
}

#[tokio::test]
async fn prefer_return_controls_the_body() {
    each_backend(|app| async move {
        let body = br#"{"resourceType":"Patient","active":true}"#;
        let minimal = app
            .request(
                Method::POST,
                "/fhir/Patient",
                &[
                    ("content-type", "application/fhir+json"),
                    ("prefer", "return=minimal"),
                ],
                Some(body),
            )
            .await;
        assert_eq!(minimal.status, StatusCode::CREATED);
        assert!(minimal.body.is_empty());
        assert!(minimal.header("location").is_some());
        let outcome = app
            .request(
                Method::POST,
                "/fhir/Patient",
                &[
                    ("content-type", "application/fhir+json"),
                    ("prefer", "return=OperationOutcome"),
                ],
                Some(body),
            )
            .await;
        assert_eq!(outcome.status, StatusCode::CREATED);
        let oo = outcome.json();
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["severity"], "information");
        let representation = app
            .request(
                Method::POST,
                "/fhir/Patient",
                &[
                    ("content-type", "application/fhir+json"),
                    ("prefer", "return=representation"),
                ],
                Some(body),
            )
            .await;
        assert_eq!(representation.json()["resourceType"], "Patient");
        app
    })
    .await;
}

#[tokio::test]
async fn json_patch_applies_and_checks() {
    each_backend(|app| async move {
        let id = create_patient(&app).await;
        let url = format!("/fhir/Patient/{id}");
        let patch = br#"[{"op":"test","path":"/active","value":true},{"op":"replace","path":"/active","value":false},{"op":"add","path":"/gender","value":"female"}]"#;
        let patched = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json"), ("if-match", "W/\"1\"")], Some(patch)).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        let body = patched.json();
        assert_eq!((body["active"].clone(), body["gender"].clone(), body["meta"]["versionId"].clone()), (json!(false), json!("female"), json!("2")));
        let history = app.get(&format!("{url}/_history")).await.json();
        assert_eq!(history["entry"][0]["request"]["method"], "PATCH");

        let failed_test = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json")], Some(br#"[{"op":"test","path":"/active","value":true}]"#)).await;
        assert_eq!(failed_test.status, StatusCode::UNPROCESSABLE_ENTITY);
        let invalid_result = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json")], Some(br#"[{"op":"replace","path":"/gender","value":"banana"}]"#)).await;
        assert_eq!(invalid_result.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid_result.text());
        let id_change = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json")], Some(br#"[{"op":"replace","path":"/id","value":"other"}]"#)).await;
        assert_eq!(id_change.status, StatusCode::UNPROCESSABLE_ENTITY);
        let not_a_patch = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json")], Some(br#"{"op":"replace"}"#)).await;
        assert_eq!(not_a_patch.status, StatusCode::BAD_REQUEST);
        let wrong_type = app.request(Method::PATCH, &url, &[("content-type", "text/plain")], Some(b"[]")).await;
        assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A FHIR body must be a FHIRPath Patch (a Parameters resource).
        let not_parameters = app.request(Method::PATCH, &url, &[("content-type", "application/fhir+json")], Some(b"[]")).await;
        assert_eq!(not_parameters.status, StatusCode::BAD_REQUEST);
        let stale = app.request(Method::PATCH, &url, &[("content-type", "application/json-patch+json"), ("if-match", "W/\"1\"")], Some(b"[]")).await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        let missing = app.request(Method::PATCH, "/fhir/Patient/none", &[("content-type", "application/json-patch+json")], Some(b"[]")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(app.get(&url).await.json()["meta"]["versionId"], "2", "failed patches wrote nothing");
        app
    })
    .await;
}

#[tokio::test]
async fn published_examples_round_trip() {
    each_backend(|app| async move {
        for (name, rt) in [
            ("uscore-Patient-example.json", "Patient"),
            ("uscore-CarePlan-colonoscopy.json", "CarePlan"),
            ("uscore-Goal-goal-1.json", "Goal"),
            (
                "uscore-QuestionnaireResponse-phq-9-example.json",
                "QuestionnaireResponse",
            ),
            ("uscore-Questionnaire-phq-9-example.json", "Questionnaire"),
            (
                "uscore-Observation-PHQ9-total-score-44261-6.json",
                "Observation",
            ),
            ("uscore-Condition-health-concern.json", "Condition"),
            ("uscore-RelatedPerson-shaw-niece.json", "RelatedPerson"),
            ("r4spec-CareTeam-example.json", "CareTeam"),
            ("r4spec-Practitioner-example.json", "Practitioner"),
            (
                "r4spec-QuestionnaireResponse-bluebook.json",
                "QuestionnaireResponse",
            ),
        ] {
            let resource = fixture(name);
            let id = resource["id"].as_str().expect("fixture id").to_string();
            let put = app
                .put_json(&format!("/fhir/{rt}/{id}"), &resource, &[])
                .await;
            assert_eq!(put.status, StatusCode::CREATED, "{name}: {}", put.text());
            let read = app.get(&format!("/fhir/{rt}/{id}")).await;
            assert_eq!(read.status, StatusCode::OK);
            let mut expected = resource.clone();
            let mut got = read.json();
            expected.as_object_mut().unwrap().remove("meta");
            got.as_object_mut().unwrap().remove("meta");
            assert_eq!(got, expected, "{name} is stored without loss");
        }
        app
    })
    .await;
}
