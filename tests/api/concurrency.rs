//! Concurrency over real HTTP: many clients racing to update the same version — exactly one
//! wins, the rest get 412, and no update is ever lost (http.html#concurrency), on every backend.

use crate::common::TestApp;
use coplan::app;
use coplan::testing::backends;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn start(
    app: &TestApp,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        app::serve(listener, state, async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (addr, stop, server)
}

async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    if_match: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/fhir+json");
    if let Some(tag) = if_match {
        builder = builder.header("if-match", tag);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_if_match_writers_exactly_one_wins() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (addr, stop, server) = start(&app).await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let url = format!("http://{addr}/fhir/CarePlan/shared");
        let plan = |note: &str| {
            format!(
                r#"{{"resourceType":"CarePlan","id":"shared","status":"active","intent":"plan","subject":{{"reference":"Patient/p1"}},"note":[{{"text":"{note}"}}]}}"#
            )
        };
        let (status, _) = send(&client, "PUT", &url, None, &plan("start")).await;
        assert_eq!(status, 201);

        for round in 1..=5 {
            let etag = format!("W/\"{round}\"");
            let mut tasks = Vec::new();
            for writer in 0..24 {
                let client = client.clone();
                let url = url.clone();
                let body = plan(&format!("round {round} writer {writer}"));
                let etag = etag.clone();
                tasks.push(tokio::spawn(async move {
                    send(&client, "PUT", &url, Some(&etag), &body).await
                }));
            }
            let mut statuses = Vec::new();
            for task in tasks {
                statuses.push(task.await.expect("task").0);
            }
            let wins = statuses.iter().filter(|s| **s == 200).count();
            let stale = statuses.iter().filter(|s| **s == 412).count();
            assert_eq!(
                (wins, stale),
                (1, 23),
                "{backend:?} round {round}: {statuses:?}"
            );
        }
        // Writers without If-Match all succeed, each on its own version: none is lost.
        let mut tasks = Vec::new();
        for writer in 0..20 {
            let client = client.clone();
            let url = url.clone();
            let body = plan(&format!("blind {writer}"));
            tasks.push(tokio::spawn(async move {
                send(&client, "PUT", &url, None, &body).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task").0, 200);
        }
        let (status, body) = send(
            &client,
            "GET",
            &format!("{url}/_history?_count=1000"),
            None,
            "",
        )
        .await;
        assert_eq!(status, 200);
        let history: serde_json::Value = serde_json::from_str(&body).expect("json");
        let mut versions: Vec<i64> = history["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                e["resource"]["meta"]["versionId"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        versions.sort();
        assert_eq!(
            versions,
            (1..=26).collect::<Vec<_>>(),
            "{backend:?}: one version per successful write, no gaps"
        );

        let _ = stop.send(());
        server.await.expect("server stops gracefully");
        app.cleanup().await;
    }
}
