//! Rate limits through the real router with the limiter's clock in the test's hands
//! (`clock::ManualTicker`): a burst, then a 429 with `Retry-After` and a `throttled`
//! OperationOutcome, room again exactly when the rate allows; each address its own limit.
//! The peer address a real connection carries (`ConnectInfo`) is set by hand here;
//! tests/tools/abuse.rs drives the same limits over TCP.

use crate::common::{send_from_peer, TestApp};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use coplan::clock::ManualTicker;
use coplan::config::ConfigLayer;
use coplan::testing::Backend;
use coplan::throttle::Throttle;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

async fn get(app: &TestApp, uri: &str, peer: &str) -> (StatusCode, Option<String>, Value) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let peer: SocketAddr = peer.parse().expect("address");
    let (status, retry_after, body) = send_from_peer(&app.state, request, peer).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, retry_after, json)
}

#[tokio::test]
async fn the_api_limit_refuses_with_retry_after_until_the_rate_allows() {
    let layer = ConfigLayer::default()
        .set("insecure_no_auth", true)
        .set("api_requests_per_second", 2)
        .set("api_burst", 3)
        .set("anonymous_requests_per_second", 1)
        .set("anonymous_burst", 1);
    let mut app = TestApp::with_config(Backend::Sqlite, layer).await;
    let ticker = Arc::new(ManualTicker::default());
    app.state = app
        .state
        .clone()
        .with_throttle(Throttle::with_ticker(&app.state.config, ticker.clone()));
    let alice = "192.0.2.10:50000";

    for _ in 0..3 {
        let (status, _, _) = get(&app, "/fhir/Patient", alice).await;
        assert_eq!(status, StatusCode::OK, "within the burst");
    }
    let (status, retry_after, outcome) = get(&app, "/fhir/Patient", alice).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"), "500 ms, rounded up");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    // Another port of the same address is the same client; another address is not.
    let (status, _, _) = get(&app, "/fhir/Patient", "192.0.2.10:50001").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = get(&app, "/fhir/Patient", "192.0.2.11:50000").await;
    assert_eq!(status, StatusCode::OK);

    ticker.advance(Duration::from_millis(499));
    assert_eq!(
        get(&app, "/fhir/Patient", alice).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    ticker.advance(Duration::from_millis(1));
    assert_eq!(get(&app, "/fhir/Patient", alice).await.0, StatusCode::OK);

    // The public CapabilityStatement counts against the anonymous limit.
    assert_eq!(get(&app, "/fhir/metadata", alice).await.0, StatusCode::OK);
    let (status, retry_after, outcome) = get(&app, "/fhir/metadata", alice).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    // Health probes are never limited.
    for _ in 0..5 {
        assert_eq!(get(&app, "/healthz", alice).await.0, StatusCode::OK);
    }
    app.cleanup().await;
}
