//! Tests of the `crud` scenario: status handling, the merge of per-operation tallies, the
//! report, and whole runs against an in-process fake FHIR server that answers in the two styles
//! the scenario must tolerate and checks what the client sends.

use super::*;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, IF_MATCH, LOCATION};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::Router;
use std::collections::HashMap;
use std::sync::Mutex;

#[test]
fn statuses_accepted_per_operation() {
    let s = StatusCode::from_u16;
    let cases: [(Op, u16, bool); 20] = [
        (Op::Create, 200, true),
        (Op::Create, 201, true),
        (Op::Create, 204, false),
        (Op::Create, 400, false),
        (Op::Create, 422, false),
        (Op::Read, 200, true),
        (Op::Read, 201, false),
        (Op::Read, 304, false),
        (Op::Read, 404, false),
        (Op::Read, 410, false),
        (Op::Update, 200, true),
        (Op::Update, 201, true),
        (Op::Update, 204, false),
        (Op::Update, 409, false),
        (Op::Update, 412, false),
        (Op::Delete, 200, true),
        (Op::Delete, 202, true),
        (Op::Delete, 204, true),
        (Op::Delete, 404, false),
        (Op::Delete, 409, false),
    ];
    for (op, code, want) in cases {
        assert_eq!(op.accepts(s(code).expect("status")), want, "{op:?} {code}");
    }
}

fn tally(latencies: &[u32], errors: u64, first: Option<&str>) -> Tally {
    Tally {
        latencies: latencies.to_vec(),
        requests: latencies.len() as u64,
        errors,
        conflicts: 0,
        transport_errors: 0,
        first_error: first.map(str::to_string),
    }
}

#[test]
fn per_operation_tallies_merge_across_tasks() {
    let task_a = [
        tally(&[10, 30], 0, None),
        tally(&[5], 0, None),
        tally(&[40, 20], 1, Some("update a")),
        tally(&[], 0, None),
    ];
    let mut update_b = tally(&[60], 1, Some("update b"));
    update_b.conflicts = 1;
    let mut delete_b = tally(&[7, 9, 8], 1, Some("delete b"));
    delete_b.transport_errors = 1;
    let task_b = [
        tally(&[20], 0, None),
        tally(&[], 0, None),
        update_b,
        delete_b,
    ];
    let r = report("crud", vec![task_a, task_b], 3, 2.0);

    let names: Vec<_> = r.ops.iter().map(|(op, s)| (*op, s.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (Op::Create, "create"),
            (Op::Read, "read"),
            (Op::Update, "update"),
            (Op::Delete, "delete")
        ]
    );
    let create = &r.ops[0].1;
    assert_eq!((create.requests, create.errors), (3, 0));
    assert_eq!((create.p50_us, create.max_us), (20, 30));
    let update = &r.ops[2].1;
    assert_eq!(
        (update.requests, update.errors, update.conflicts),
        (3, 2, 1)
    );
    assert_eq!(update.first_error.as_deref(), Some("update a"));
    assert_eq!((update.p50_us, update.p95_us, update.max_us), (40, 60, 60));
    assert!((update.throughput() - 0.5).abs() < 1e-9);
    let delete = &r.ops[3].1;
    assert_eq!((delete.requests, delete.transport_errors), (3, 1));
    assert_eq!(delete.first_error.as_deref(), Some("delete b"));

    let all = &r.overall;
    assert_eq!(all.name, "crud");
    assert_eq!((all.requests, all.errors, all.conflicts), (10, 3, 1));
    assert_eq!(all.transport_errors, 1);
    // Samples 5 7 8 9 10 20 20 30 40 60: nearest rank.
    assert_eq!((all.p50_us, all.p95_us, all.p99_us), (10, 60, 60));
    assert_eq!(all.p90_us, 40);
    assert!((all.throughput() - 3.5).abs() < 1e-9);
    assert_eq!(all.first_error.as_deref(), Some("update a"));
    assert_eq!(r.cycles, 3);
}

#[test]
fn report_table_and_json_carry_every_operation_and_p95() {
    let ops = [
        tally(&[1000, 2000], 0, None),
        tally(&[500], 0, None),
        tally(&[3000], 0, None),
        tally(&[1500], 0, None),
    ];
    let r = report("crud", vec![ops], 1, 1.0);
    let lines = r.table();
    assert_eq!(lines.len(), 2 + 4 + 1);
    assert!(lines[1].contains("p95_ms"));
    for (line, label) in lines[2..]
        .iter()
        .zip(["create", "read", "update", "delete", "overall"])
    {
        assert!(line.starts_with(label), "{line}");
    }
    assert!(lines[6].contains("5.0"), "{}", lines[6]);
    let v = r.to_json();
    assert_eq!(v["scenario"], "crud");
    assert_eq!(v["requests"], 5);
    assert_eq!(v["cycles"], 1);
    assert_eq!(v["p95_ms"], 3.0);
    let ops = v["operations"].as_array().expect("operations");
    let names: Vec<_> = ops.iter().map(|o| o["operation"].clone()).collect();
    assert_eq!(names, ["create", "read", "update", "delete"]);
    assert_eq!(ops[0]["requests"], 2);
    assert_eq!(ops[0]["p95_ms"], 2.0);
    assert!(ops[0].get("scenario").is_none());
    assert!(ops[0].get("server_rss_kib").is_none());
}

/// How the fake server answers.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// 201 with the resource and an ETag; `If-Match` required on PUT; 204 on DELETE.
    Full,
    /// 200 with an empty body and only `Location`; no ETags, so `If-Match` refused; DELETE
    /// answers 200 with an OperationOutcome.
    Minimal,
    /// As `Full`, but every Observation create is refused.
    RejectObservations,
}

#[derive(Default)]
struct Store {
    next: u64,
    resources: HashMap<String, (u64, Value)>,
    /// Requests seen, by method.
    seen: HashMap<String, u64>,
    /// Wrong requests the fake noticed (the test fails on any).
    complaints: Vec<String>,
}

impl Store {
    fn referenced(&self, key: &str) -> bool {
        self.resources.values().any(|(_, v)| {
            ["subject", "patient", "encounter"]
                .iter()
                .any(|e| v[*e]["reference"] == key)
        })
    }
}

fn reply(
    status: u16,
    headers: &[(axum::http::HeaderName, String)],
    body: Option<&Value>,
) -> AxumResponse {
    let mut b = axum::http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let body = match body {
        Some(v) => {
            b = b.header(CONTENT_TYPE, crate::client::FHIR_JSON);
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    b.body(body).map_or_else(
        |_| (axum::http::StatusCode::INTERNAL_SERVER_ERROR).into_response(),
        IntoResponse::into_response,
    )
}

async fn fake(style: Style, store: Arc<Mutex<Store>>, req: Request) -> AxumResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let if_match = req
        .headers()
        .get(IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type_ok = req
        .headers()
        .get(CONTENT_TYPE)
        .is_none_or(|v| v == "application/fhir+json");
    let bytes = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches("/fhir/").split('/').collect();
    let mut s = store.lock().expect("store");
    *s.seen.entry(method.to_string()).or_default() += 1;
    if !content_type_ok {
        s.complaints.push(format!("{method} {path}: content type"));
    }
    let etag = |v: u64| (axum::http::header::ETAG, format!("W/\"{v}\""));
    let full = style != Style::Minimal;
    match (method.as_str(), parts.as_slice()) {
        ("POST", [ty]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
                return reply(400, &[], None);
            };
            if body["resourceType"] != *ty || body.get("id").is_some() {
                s.complaints.push(format!("POST {ty}: {body}"));
                return reply(400, &[], None);
            }
            if style == Style::RejectObservations && *ty == "Observation" {
                return reply(422, &[], Some(&json!({"resourceType": "OperationOutcome"})));
            }
            for e in ["subject", "patient", "encounter"] {
                if let Some(r) = body[e]["reference"].as_str() {
                    if !s.resources.contains_key(r) {
                        s.complaints.push(format!("POST {ty}: dangling {r}"));
                        return reply(400, &[], None);
                    }
                }
            }
            s.next += 1;
            let id = format!("x{}", s.next);
            let mut stored = body;
            stored["id"] = json!(id);
            s.resources
                .insert(format!("{ty}/{id}"), (1, stored.clone()));
            if full {
                reply(201, &[etag(1)], Some(&stored))
            } else {
                let loc = format!("http://fake.example/fhir/{ty}/{id}/_history/1");
                reply(200, &[(LOCATION, loc)], None)
            }
        }
        (m, [ty, id]) => {
            let key = format!("{ty}/{id}");
            let Some((version, current)) = s.resources.get(&key).cloned() else {
                s.complaints.push(format!("{m} {key}: unknown"));
                return reply(404, &[], None);
            };
            match m {
                "GET" if full => reply(200, &[etag(version)], Some(&current)),
                "GET" => reply(200, &[], Some(&current)),
                "PUT" => {
                    let want = full.then(|| format!("W/\"{version}\""));
                    if if_match != want {
                        s.complaints
                            .push(format!("PUT {key}: If-Match {if_match:?}, want {want:?}"));
                        return reply(412, &[], None);
                    }
                    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
                        return reply(400, &[], None);
                    };
                    if body["id"] != *id || body["resourceType"] != *ty || body == current {
                        s.complaints.push(format!("PUT {key}: {body}"));
                        return reply(400, &[], None);
                    }
                    s.resources.insert(key, (version + 1, body));
                    if full {
                        reply(200, &[etag(version + 1)], None)
                    } else {
                        reply(200, &[], None)
                    }
                }
                "DELETE" => {
                    if s.referenced(&key) {
                        s.complaints.push(format!("DELETE {key}: still referenced"));
                        return reply(409, &[], None);
                    }
                    s.resources.remove(&key);
                    if full {
                        reply(204, &[], None)
                    } else {
                        reply(200, &[], Some(&json!({"resourceType": "OperationOutcome"})))
                    }
                }
                _ => reply(405, &[], None),
            }
        }
        _ => reply(404, &[], None),
    }
}

/// Run the scenario for a moment against a fake server answering in `style`.
async fn run_against(style: Style) -> (CrudReport, Store) {
    let store = Arc::new(Mutex::new(Store::default()));
    let shared = store.clone();
    let app = Router::new().fallback(move |req: Request| fake(style, shared.clone(), req));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let target = Target::parse(&format!("http://127.0.0.1:{port}/fhir"), None)
        .await
        .expect("target");
    let cfg = RunConfig {
        connections: 3,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(400),
        timeout: Duration::from_secs(5),
        server_pid: None,
    };
    let report = run("crud", &target, &cfg).await;
    server.abort();
    let store = std::mem::take(&mut *store.lock().expect("store"));
    (report, store)
}

fn assert_no_complaints(store: &Store) {
    let c = &store.complaints;
    assert!(
        c.is_empty(),
        "{} complaints, first: {:?}",
        c.len(),
        &c[..c.len().min(5)]
    );
}

fn op(r: &CrudReport, which: Op) -> &Summary {
    &r.ops.iter().find(|(o, _)| *o == which).expect("op").1
}

async fn check_clean_run(style: Style) {
    let (r, store) = run_against(style).await;
    assert_no_complaints(&store);
    assert_eq!(r.overall.errors, 0, "{:?}", r.overall.first_error);
    assert!(r.cycles >= 3, "only {} cycles", r.cycles);
    let creates = op(&r, Op::Create).requests;
    // Every request was measured (no warm-up), so the server saw exactly what was counted,
    // plus the untimed deletes of unfinished cycles.
    assert_eq!(store.seen.get("POST").copied(), Some(creates));
    assert_eq!(
        store.seen.get("GET").copied(),
        Some(op(&r, Op::Read).requests)
    );
    assert_eq!(
        store.seen.get("PUT").copied(),
        Some(op(&r, Op::Update).requests)
    );
    let deletes = store.seen.get("DELETE").copied().unwrap_or(0);
    assert!(deletes >= op(&r, Op::Delete).requests);
    // Each complete cycle is 9 of each; an unfinished one (at most one per task) fewer.
    assert!(creates >= 9 * r.cycles && creates <= 9 * (r.cycles + 3));
    assert!(op(&r, Op::Delete).requests >= 9 * r.cycles);
    // Unfinished cycles were cleaned up.
    assert_eq!(deletes, creates);
    assert!(store.resources.is_empty(), "{} left", store.resources.len());
    assert_eq!(
        r.overall.requests,
        r.ops.iter().map(|(_, s)| s.requests).sum::<u64>()
    );
}

#[tokio::test]
async fn runs_against_a_server_answering_201_with_bodies_and_etags() {
    check_clean_run(Style::Full).await;
}

#[tokio::test]
async fn runs_against_a_server_answering_200_with_location_only() {
    check_clean_run(Style::Minimal).await;
}

#[tokio::test]
async fn a_refused_create_is_an_error_and_the_cycle_goes_on_with_what_exists() {
    let (r, store) = run_against(Style::RejectObservations).await;
    assert_no_complaints(&store);
    let create = op(&r, Op::Create);
    assert!(create.errors > 0);
    assert!(create
        .first_error
        .as_deref()
        .is_some_and(|e| e.contains("/Observation") && e.contains("422")));
    // Patient, Encounter, Condition, then the refused Observation: 4 creates a cycle (fewer in
    // the one each of the 3 tasks had not finished), and the 3 created ones read, updated and
    // deleted without error.
    assert!(r.cycles >= 3);
    let refused = create.errors;
    assert!(
        create.requests >= 4 * refused && create.requests <= 4 * refused + 3 * 3,
        "{} creates, {refused} refused",
        create.requests
    );
    assert!(refused >= r.cycles);
    assert!(op(&r, Op::Read).requests >= 3 * r.cycles);
    let (updates, deletes) = (op(&r, Op::Update).requests, op(&r, Op::Delete).requests);
    assert!(deletes >= 3 * r.cycles && deletes <= updates);
    assert_eq!(create.errors, r.overall.errors);
    assert_eq!(op(&r, Op::Read).errors, 0);
    assert_eq!(op(&r, Op::Delete).errors, 0);
    assert!(store.resources.is_empty());
}
