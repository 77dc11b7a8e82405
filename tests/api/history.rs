//! history at every level, `_since`, `_count` and paging that stays correct while data changes
//! (http.html#history).

use crate::common::{each_backend, BASE};
use axum::http::StatusCode;
use serde_json::{json, Value};

fn entries(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| {
                    format!(
                        "{} {}",
                        x["request"]["method"].as_str().unwrap_or(""),
                        x["response"]["etag"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(|u| u.trim_start_matches("http://coplan.test").to_string())
}

#[tokio::test]
async fn type_and_system_history_newest_first() {
    each_backend(|app| async move {
        for n in 0..3 {
            app.post_json("/fhir/Patient", &json!({"resourceType":"Patient","name":[{"text":format!("p{n}")}]})).await;
        }
        app.post_json("/fhir/Goal", &json!({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"sleep"},"subject":{"reference":"Patient/id-1"}})).await;
        let patients = app.get("/fhir/Patient/_history").await.json();
        let ids: Vec<_> = patients["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids, ["id-3", "id-2", "id-1"]);
        assert_eq!(patients["link"][0]["relation"], "self");
        assert_eq!(patients["link"][0]["url"], format!("{BASE}/Patient/_history?_count=50"));
        let system = app.get("/fhir/_history").await.json();
        let types: Vec<_> = system["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string())
            .filter(|t| t != "Provenance" && t != "Device")
            .collect();
        assert_eq!(types, ["Goal", "Patient", "Patient", "Patient"]);
        // Every write recorded its Provenance (and the first one the Device of the client).
        let count = |t: &str| system["entry"].as_array().unwrap().iter()
            .filter(|e| e["resource"]["resourceType"] == t).count();
        assert_eq!((count("Provenance"), count("Device")), (4, 1));
        assert_eq!(app.get("/fhir/Banana/_history").await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.get("/fhir/Patient/nope/_history").await.status, StatusCode::NOT_FOUND);
        app
    })
    .await;
}

#[tokio::test]
async fn since_filters_by_last_updated() {
    each_backend(|app| async move {
        // The test clock starts at 2026-01-01T00:00:00.000Z and steps 1 ms per write.
        for _ in 0..4 {
            app.post_json("/fhir/Patient", &json!({"resourceType":"Patient"}))
                .await;
        }
        let since = app
            .get("/fhir/Patient/_history?_since=2026-01-01T00:00:00.002Z")
            .await
            .json();
        let got: Vec<_> = since["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["meta"]["lastUpdated"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            got,
            ["2026-01-01T00:00:00.003Z", "2026-01-01T00:00:00.002Z"]
        );
        assert_eq!(
            since["link"][0]["url"],
            format!("{BASE}/Patient/_history?_since=2026-01-01T00%3A00%3A00.002Z&_count=50")
        );
        let bad = app.get("/fhir/Patient/_history?_since=last-tuesday").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.diagnostics().contains("_since"));
        assert_eq!(
            app.get("/fhir/_history?_count=-1").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            app.get("/fhir/_history?_page=abc").await.status,
            StatusCode::BAD_REQUEST
        );
        app
    })
    .await;
}

#[tokio::test]
async fn paging_has_no_duplicates_or_gaps_while_writes_continue() {
    each_backend(|app| async move {
        let url = "/fhir/Patient/paged";
        for n in 0..7 {
            let r = app.put_json(url, &json!({"resourceType":"Patient","id":"paged","name":[{"text":format!("v{n}")}]}), &[]).await;
            assert!(r.status.is_success());
        }
        let first = app.get(&format!("{url}/_history?_count=3")).await.json();
        assert_eq!(entries(&first), ["PUT W/\"7\"", "PUT W/\"6\"", "PUT W/\"5\""]);
        // a write between pages does not shift what the next pages contain
        app.put_json(url, &json!({"resourceType":"Patient","id":"paged"}), &[]).await;
        let second_url = next_link(&first).expect("next link");
        let second = app.get(&second_url).await.json();
        assert_eq!(entries(&second), ["PUT W/\"4\"", "PUT W/\"3\"", "PUT W/\"2\""]);
        let third = app.get(&next_link(&second).expect("next")).await.json();
        assert_eq!(entries(&third), ["PUT W/\"1\""]);
        assert_eq!(next_link(&third), None, "the last page has no next link");
        let huge = app.get(&format!("{url}/_history?_count=100000")).await.json();
        assert_eq!(huge["entry"].as_array().unwrap().len(), 8, "_count is capped, not refused");
        app
    })
    .await;
}
