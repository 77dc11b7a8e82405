//! The synthetic data generator writes through the normal path: what it seeds is valid,
//! indexed and searchable, on every backend.

use crate::common::each_backend;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_data_is_searchable() {
    each_backend(|app| async move {
        let reported = Arc::new(AtomicU64::new(0));
        let seen = reported.clone();
        let written = coplan::seed::seed(app.state.fhir.clone(), 6, 3, 3, move |done, _| {
            seen.store(done, Ordering::Relaxed);
        })
        .await
        .expect("seeding succeeds");
        assert!(written >= 50 + 6 * 8, "{written}");
        assert_eq!(
            reported.load(Ordering::Relaxed),
            6,
            "progress reaches the end"
        );
        let patients = app.get("/fhir/Patient?_summary=count").await.json();
        assert_eq!(patients["total"], 6);
        let plans = app
            .get("/fhir/CarePlan?_total=accurate&_count=1")
            .await
            .json();
        assert!(plans["total"].as_i64().unwrap() >= 6);
        let what_matters = app
            .get("/fhir/Goal?_total=accurate&_count=1&lifecycle-status=active")
            .await
            .json();
        assert!(what_matters["total"].as_i64().unwrap() >= 6);
        let phq9 = app
            .get("/fhir/Observation?code=http://loinc.org|44261-6&_total=accurate&_count=1")
            .await
            .json();
        assert!(phq9["total"].as_i64().unwrap() >= 6);
        let first = app.get("/fhir/Patient?_count=1").await.json();
        let id = first["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let everything = app
            .get(&format!("/fhir/Patient/{id}/$everything"))
            .await
            .json();
        assert!(
            everything["total"].as_i64().unwrap() >= 9,
            "{}",
            everything["total"]
        );
        app
    })
    .await;
}

#[tokio::test]
async fn reindex_rebuilds_the_search_index_without_new_versions() {
    use coplan::store::{Expected, VersionWrite, WriteMethod};
    each_backend(|app| async move {
        // A resource stored without index rows (as if written before a parameter existed).
        let body = br#"{"resourceType":"Patient","id":"old","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"},"name":[{"family":"Chalmers"}]}"#;
        let write = VersionWrite {
            resource_type: "Patient".into(),
            id: "old".into(),
            expected: Expected::Absent,
            version_id: 1,
            last_updated_us: 1_767_225_600_000_000,
            method: WriteMethod::Create,
            body: Some(bytes::Bytes::from_static(body)),
            index: Vec::new(),
        };
        app.db.as_ref().unwrap().store.commit_versions(&[write]).await.expect("store");
        let before = app.get("/fhir/Patient?name=chalmers").await.json();
        assert!(before.get("entry").is_none());
        let done = app.state.fhir.reindex(|_| {}).await.expect("reindex");
        assert_eq!(done, 1);
        let after = app.get("/fhir/Patient?name=chalmers").await.json();
        assert_eq!(after["entry"][0]["resource"]["id"], "old");
        let read = app.get("/fhir/Patient/old").await;
        assert_eq!(read.header("etag"), Some("W/\"1\""), "no new version");
        assert_eq!(read.body, body.to_vec(), "the stored bytes are untouched");
        app
    })
    .await;
}
