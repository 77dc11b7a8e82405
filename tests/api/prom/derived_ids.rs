//! The ids of what is derived from a response (`src/rest/write/derived_ids.rs`): in time order
//! from the response's first version, the same across its versions, and a response scored
//! before the ids were ordered keeps its digest ids when amended.

use super::*;
use coplan::rest::DerivedIds;
use coplan::store::{Expected, VersionWrite, WriteMethod};
use fhir_primitives::parse_instant_or_date as parse_instant;

/// Posts the published PHQ-9 response for Patient/example with `status`; the stored response
/// and its first version's instant.
async fn post_phq9(app: &TestApp, status: &str) -> (Value, i64) {
    let mut response = published("uscore-QuestionnaireResponse-phq-9-example.json");
    response["questionnaire"] = json!(PHQ9);
    response["status"] = json!(status);
    response.as_object_mut().unwrap().remove("id");
    response.as_object_mut().unwrap().remove("author");
    let created = app
        .post_json("/fhir/QuestionnaireResponse", &response)
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    let at = parse_instant(body["meta"]["lastUpdated"].as_str().unwrap()).unwrap();
    (body, at)
}

/// [`post_phq9`] completed: the response's id and its first version's instant.
async fn post_completed_phq9(app: &TestApp) -> (String, i64) {
    let (body, at) = post_phq9(app, "completed").await;
    (body["id"].as_str().unwrap().to_string(), at)
}

#[tokio::test]
async fn derived_ids_follow_the_responses_first_version_across_amendments() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "example").await;
        let (qr_id, first_written_us) = post_completed_phq9(&app).await;
        let ordered = DerivedIds::Ordered { first_written_us };
        let score_id = ordered.id(&qr_id, "/44261-6");
        let score = app.get(&format!("/fhir/Observation/{score_id}")).await;
        assert_eq!(
            score.status,
            200,
            "the score is under its ordered id: {}",
            score.text()
        );
        assert_eq!(score.json()["valueQuantity"]["value"], 12);
        assert!(
            score_id.starts_with(&format!("prom-{first_written_us:013x}")),
            "{score_id}"
        );
        // Every member is under an id in the same order (the response's instant first).
        for member in score.json()["hasMember"].as_array().unwrap() {
            let reference = member["reference"].as_str().unwrap();
            assert!(
                reference.starts_with(&format!("Observation/prom-{first_written_us:013x}")),
                "{reference}"
            );
        }
        // An amendment, later: the same ids, new versions.
        amend_published_phq9(&app, &qr_id).await;
        let after = app
            .get(&format!("/fhir/Observation/{score_id}"))
            .await
            .json();
        assert_eq!(after["meta"]["versionId"], "2", "{after}");
        assert_eq!(after["valueQuantity"]["value"], 13, "{after}");
        assert_eq!(after["status"], "final");
        app
    })
    .await;
}

#[tokio::test]
async fn a_response_scored_under_digest_ids_keeps_them_when_amended() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "example").await;
        let (qr_id, first_written_us) = post_completed_phq9(&app).await;
        let ordered_id = DerivedIds::Ordered { first_written_us }.id(&qr_id, "/44261-6");
        let digest_id = DerivedIds::Digest.id(&qr_id, "/44261-6");
        // As a server before the ordered ids would have left it: the score under its digest
        // id (written straight into the store, then indexed by a reindex), the ordered one
        // gone.
        let store = app.db.as_ref().unwrap().store.clone();
        let mut score = app
            .get(&format!("/fhir/Observation/{ordered_id}"))
            .await
            .json();
        score["id"] = json!(digest_id);
        let last_updated_us =
            parse_instant(score["meta"]["lastUpdated"].as_str().unwrap()).unwrap();
        store
            .commit_versions(&[VersionWrite {
                resource_type: "Observation".into(),
                id: digest_id.clone(),
                expected: Expected::Absent,
                version_id: 1,
                last_updated_us,
                method: WriteMethod::Create,
                body: Some(serde_json::to_vec(&score).unwrap().into()),
                index: Vec::new(),
            }])
            .await
            .unwrap();
        let gone = app
            .request(
                axum::http::Method::DELETE,
                &format!("/fhir/Observation/{ordered_id}"),
                &[],
                None,
            )
            .await;
        assert!(gone.status.is_success(), "{}", gone.text());
        app.state.fhir.reindex(|_| {}).await.unwrap();

        amend_published_phq9(&app, &qr_id).await;
        let kept = app
            .get(&format!("/fhir/Observation/{digest_id}"))
            .await
            .json();
        assert_eq!(
            kept["meta"]["versionId"], "2",
            "the digest id goes on: {kept}"
        );
        assert_eq!(kept["valueQuantity"]["value"], 13, "{kept}");
        assert_eq!(kept["status"], "final", "{kept}");
        // Nothing was derived under the ordered id again.
        let ordered = app.get(&format!("/fhir/Observation/{ordered_id}")).await;
        assert_eq!(ordered.status, 410, "{}", ordered.text());
        app
    })
    .await;
}

#[tokio::test]
async fn a_response_first_stored_in_progress_is_scored_under_its_first_versions_instant() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "example").await;
        let (draft, first_written_us) = post_phq9(&app, "in-progress").await;
        let qr_id = draft["id"].as_str().unwrap().to_string();
        let mut completed = draft.clone();
        completed["status"] = json!("completed");
        let put = app
            .put_json(
                &format!("/fhir/QuestionnaireResponse/{qr_id}"),
                &completed,
                &[],
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        let second_us = parse_instant(put.json()["meta"]["lastUpdated"].as_str().unwrap()).unwrap();
        assert_ne!(
            second_us, first_written_us,
            "the test clock moves between writes"
        );
        // Scored at version 2, under the instant of version 1.
        let score_id = DerivedIds::Ordered { first_written_us }.id(&qr_id, "/44261-6");
        let score = app.get(&format!("/fhir/Observation/{score_id}")).await;
        assert_eq!(score.status, 200, "{}", score.text());
        assert_eq!(score.json()["valueQuantity"]["value"], 12);
        app
    })
    .await;
}
