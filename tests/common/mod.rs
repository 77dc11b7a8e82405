//! API test harness: the real router over a fresh database per test, on every backend
//! (SQLite always; PostgreSQL when COPLAN_TEST_POSTGRES_URL is set), with an exact clock and
//! sequential ids. Requests go through the router in-process, or over real HTTP via `spawn`.
//! `auth` is the authorization server's harness. Each test binary includes this once, as
//! `#[path = "../common/mod.rs"] mod common;` in its main.rs.
// Each binary uses its own part of the harness (here and in `auth`); every item is used by one.
#![allow(dead_code)]

pub mod auth;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use coplan::app::{self, AppState};
use coplan::clock::{SequentialIds, SteppingClock};
use coplan::config::ConfigLayer;
use coplan::testing::{first_empty, Backend, TestDatabase};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub const BASE: &str = "http://coplan.test/fhir";

pub struct TestApp {
    pub state: AppState,
    pub db: Option<TestDatabase>,
    pub backend: Backend,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first issue's diagnostics of an OperationOutcome body.
    pub fn diagnostics(&self) -> String {
        let oo = self.json();
        assert_eq!(oo["resourceType"], "OperationOutcome", "{oo}");
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, ConfigLayer::default()).await
    }

    pub async fn with_config(backend: Backend, layer: ConfigLayer) -> TestApp {
        let db = TestDatabase::new(backend).await;
        let config = layer
            .overridden_by(ConfigLayer::default().set("base_url", BASE))
            .resolve()
            .expect("config");
        let clock = SteppingClock::new(time::macros::datetime!(2026-01-01 00:00:00 UTC), 1_000);
        let state = AppState::new(
            config,
            db.store.clone(),
            Arc::new(clock),
            Arc::new(SequentialIds::new("id")),
        );
        TestApp {
            state,
            db: Some(db),
            backend,
        }
    }

    /// A second server node on this app's database: its own state (caches, in-process
    /// locks, ids minted as `n2-…`), the same store contents.
    pub async fn another_node(&self) -> TestApp {
        let db = self.db.as_ref().expect("the first node owns the database");
        let config = ConfigLayer::default()
            .set("base_url", BASE)
            .resolve()
            .expect("config");
        let clock = SteppingClock::new(time::macros::datetime!(2026-06-01 00:00:00 UTC), 1_000);
        let state = AppState::new(
            config,
            db.another_node().await,
            Arc::new(clock),
            Arc::new(SequentialIds::new("n2")),
        );
        TestApp {
            state,
            db: None,
            backend: self.backend,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(
                body.map(|b| Body::from(b.to_vec()))
                    .unwrap_or_else(Body::empty),
            )
            .expect("request");
        let response = app::router(self.state.clone())
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        let fhir_json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/fhir+json"));
        if fhir_json && !body.is_empty() {
            let value: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{uri}: a FHIR JSON body that is not JSON ({e})"));
            if let Some(at) = first_empty(&value, "$") {
                panic!(
                    "{uri}: FHIR JSON never has an empty array, object or string (json.html), \
                     but {at} is empty in {value}"
                );
            }
        }
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Method::GET, uri, &[], None).await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> TestResponse {
        let bytes = serde_json::to_vec(body).expect("json");
        self.request(
            Method::POST,
            uri,
            &[("content-type", "application/fhir+json")],
            Some(&bytes),
        )
        .await
    }

    pub async fn put_json(&self, uri: &str, body: &Value, extra: &[(&str, &str)]) -> TestResponse {
        let bytes = serde_json::to_vec(body).expect("json");
        let mut headers = vec![("content-type", "application/fhir+json")];
        headers.extend_from_slice(extra);
        self.request(Method::PUT, uri, &headers, Some(&bytes)).await
    }

    /// Count the versions stored across the whole server (system history).
    pub async fn version_count(&self) -> usize {
        let bundle = self.get("/fhir/_history?_count=1000").await.json();
        bundle["entry"].as_array().map_or(0, |e| e.len())
    }

    pub async fn cleanup(mut self) {
        if let Some(db) = self.db.take() {
            drop(self.state);
            db.cleanup().await;
        }
    }
}

/// Run `story` once per backend, each on a fresh database.
pub async fn each_backend<F, Fut>(story: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    for backend in coplan::testing::backends() {
        let app = TestApp::new(backend).await;
        let app = story(app).await;
        app.cleanup().await;
    }
}

/// A published example resource from the fixtures.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/crates/fhir-validate/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Drive the real router with `request` as if it came over a connection from `peer` (the
/// `ConnectInfo` the server sets, set by hand): its response.
pub async fn respond_to_peer(
    state: &AppState,
    mut request: Request<Body>,
    peer: std::net::SocketAddr,
) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    app::router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible")
}

/// [`respond_to_peer`]'s status, `Retry-After` and body.
pub async fn send_from_peer(
    state: &AppState,
    request: Request<Body>,
    peer: std::net::SocketAddr,
) -> (StatusCode, Option<String>, bytes::Bytes) {
    let response = respond_to_peer(state, request, peer).await;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, retry_after, body)
}
