//! The synthetic data generator writes through the normal path: what it seeds is valid,
//! indexed and searchable, on every backend.

mod common;

use common::each_backend;
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
