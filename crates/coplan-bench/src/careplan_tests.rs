//! Tests of the `careplan` scenario: its payloads, the plan read's URL, the goal version taken
//! from the read, the tallies (a co-edit's 412 is a conflict, not an error), the report, and
//! the co-edit's re-read and single retry against a fake server.

use super::*;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::Router;
use std::sync::Mutex;

#[test]
fn careplan_references_the_patients_goal() {
    let plan = careplan_with_goal("p-1", "g-9", &mut Rng::new(3));
    assert_eq!(plan["resourceType"], "CarePlan");
    assert_eq!(plan["subject"]["reference"], "Patient/p-1");
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["intent"], "plan");
    assert_eq!(plan["goal"], json!([{"reference": "Goal/g-9"}]));
    assert!(plan.get("id").is_none());
}

#[test]
fn plan_read_includes_goal_provenance_and_responses() {
    let rel = plan_read_rel("p-1");
    assert_eq!(
        rel,
        "/CarePlan?patient=p-1&_include=CarePlan:goal&_revinclude=Provenance:target\
&_revinclude=QuestionnaireResponse:based-on"
    );
    let target = Target {
        addr: "127.0.0.1:1".parse().expect("addr"),
        host: hyper::header::HeaderValue::from_static("127.0.0.1:1"),
        base_path: "/fhir".to_string(),
        bearer: Default::default(),
    };
    let req = target
        .request(Method::GET, &rel, None, None)
        .expect("request");
    assert_eq!(req.uri().path(), "/fhir/CarePlan");
    let query = req.uri().query().expect("query");
    for p in [
        "patient=p-1",
        "_include=CarePlan:goal",
        "_revinclude=Provenance:target",
        "_revinclude=QuestionnaireResponse:based-on",
    ] {
        assert!(query.split('&').any(|q| q == p), "{p} missing in {query}");
    }
}

#[test]
fn phq9_is_based_on_the_plan_and_the_patch_sets_the_note() {
    let qr = phq9_for_plan("p-1", "cp-2", 3, &mut Rng::new(5));
    assert_eq!(qr["authored"], "2026-01-22T09:00:00Z", "week 3");
    assert_eq!(qr["resourceType"], "QuestionnaireResponse");
    assert_eq!(qr["subject"]["reference"], "Patient/p-1");
    assert_eq!(qr["basedOn"], json!([{"reference": "CarePlan/cp-2"}]));
    assert_eq!(qr["item"].as_array().map(Vec::len), Some(9));
    let patch = goal_note_patch("hello");
    assert_eq!(
        patch,
        json!([{"op": "add", "path": "/note", "value": [{"text": "hello"}]}])
    );
}

#[test]
fn goal_version_comes_from_the_included_goal() {
    let bundle = json!({"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "CarePlan", "id": "g1", "meta": {"versionId": "9"}}},
        {"resource": {"resourceType": "Goal", "id": "other", "meta": {"versionId": "7"}}},
        {"resource": {"resourceType": "Goal", "id": "g1", "meta": {"versionId": "4"}}},
    ]});
    assert_eq!(goal_version_in(&bundle, "g1"), Some(4));
    assert_eq!(goal_version_in(&bundle, "nope"), None);
    assert_eq!(
        goal_version_in(&json!({"resourceType": "Bundle"}), "g1"),
        None
    );
}

#[test]
fn a_co_edit_412_is_a_conflict_not_an_error() {
    let mut t = Tally::default();
    let pf = StatusCode::PRECONDITION_FAILED;
    assert_eq!(
        record(&mut t, Op::CoEdit, pf, 10, || "x".into()),
        Outcome::Conflict
    );
    assert_eq!((t.requests, t.conflicts, t.errors), (1, 1, 0));
    assert!(t.first_error.is_none());
    assert_eq!(
        record(&mut t, Op::CoEdit, StatusCode::OK, 20, || "x".into()),
        Outcome::Ok
    );
    // A 412 anywhere else, or a wrong success code, is an error.
    assert_eq!(
        record(&mut t, Op::Phq9, pf, 30, || "phq9 412".into()),
        Outcome::Error
    );
    assert_eq!(
        record(&mut t, Op::ReadPlan, StatusCode::CREATED, 40, || "x".into()),
        Outcome::Error
    );
    assert_eq!(
        record(&mut t, Op::Phq9, StatusCode::CREATED, 50, || "x".into()),
        Outcome::Ok
    );
    assert_eq!((t.requests, t.conflicts, t.errors), (5, 1, 2));
    assert_eq!(t.first_error.as_deref(), Some("phq9 412"));
    assert_eq!(t.latencies, vec![10, 20, 30, 40, 50]);
}

#[test]
fn report_has_a_row_per_operation_and_conflicts_are_not_errors() {
    let mut a: [Tally; 3] = Default::default();
    let mut b: [Tally; 3] = Default::default();
    record(&mut a[0], Op::ReadPlan, StatusCode::OK, 1000, String::new);
    record(
        &mut a[1],
        Op::CoEdit,
        StatusCode::PRECONDITION_FAILED,
        900,
        String::new,
    );
    record(&mut a[1], Op::CoEdit, StatusCode::OK, 800, String::new);
    record(&mut b[2], Op::Phq9, StatusCode::CREATED, 3000, String::new);
    let r = report("careplan", vec![a, b], 1, 2.0);
    let names: Vec<_> = r.ops.iter().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(names, ["read-plan", "co-edit", "phq9"]);
    assert_eq!(r.overall.requests, 4);
    assert_eq!(r.overall.conflicts, 1);
    assert_eq!(r.overall.errors, 0);
    assert_eq!(r.ops[1].1.requests, 2);
    let lines = r.table();
    assert!(lines[0].starts_with("careplan: 1 complete rounds"));
    assert!(lines.iter().any(|l| l.starts_with("co-edit ")));
    assert!(lines.last().is_some_and(|l| l.starts_with("overall ")));
    let v = r.to_json();
    assert_eq!(v["rounds"], 1);
    assert_eq!(v["operations"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["operations"][1]["operation"], "co-edit");
    assert_eq!(v["operations"][1]["errors_412"], 1);
}

/// The fake Goal: its version (the server moved it to 5 behind the task's back) and what the
/// fake saw.
#[derive(Default)]
struct FakeGoal {
    version: u64,
    patches: Vec<(Option<String>, Option<String>)>,
    gets: u64,
}

async fn fake_goal(goal: Arc<Mutex<FakeGoal>>, req: Request) -> AxumResponse {
    let method = req.method().clone();
    let (if_match, ct) = {
        let header = |h| {
            req.headers()
                .get(h)
                .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        (header(IF_MATCH), header(CONTENT_TYPE))
    };
    let _ = to_bytes(req.into_body(), 1 << 20).await;
    let mut g = goal.lock().expect("goal");
    let (status, version) = match method.as_str() {
        "GET" => {
            g.gets += 1;
            (200, g.version)
        }
        "PATCH" => {
            g.patches.push((if_match.clone(), ct));
            if if_match.as_deref() == Some(format!("W/\"{}\"", g.version).as_str()) {
                g.version += 1;
                (200, g.version)
            } else {
                (412, g.version)
            }
        }
        _ => (405, g.version),
    };
    axum::http::Response::builder()
        .status(status)
        .header(ETAG, format!("W/\"{version}\""))
        .body(Body::from("{}"))
        .map_or_else(
            |_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            IntoResponse::into_response,
        )
}

/// Start the fake; the worker against it and the fake's state.
async fn worker_against(version: u64) -> (Worker, Arc<Mutex<FakeGoal>>) {
    let goal = Arc::new(Mutex::new(FakeGoal {
        version,
        ..Default::default()
    }));
    let shared = goal.clone();
    let app = Router::new().fallback(move |req: Request| fake_goal(shared.clone(), req));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let target = Target::parse(&format!("http://127.0.0.1:{port}/fhir"), None)
        .await
        .expect("target");
    let now = Instant::now();
    let w = Worker {
        conn: Conn::new(target.addr, Duration::from_secs(5)),
        target: Arc::new(target),
        warm_end: now,
        end: now + Duration::from_secs(60),
        tallies: Default::default(),
    };
    (w, goal)
}

fn plan_at(version: u64) -> Plan {
    Plan {
        patient: "p".into(),
        goal: "g1".into(),
        careplan: "cp".into(),
        goal_version: version,
        rounds: 0,
    }
}

#[tokio::test]
async fn a_412_is_re_read_and_retried_once_and_counted_as_a_conflict() {
    let (mut w, goal) = worker_against(5).await;
    let mut plan = plan_at(3);
    w.co_edit(&mut plan, "note").await;
    let t = &w.tallies[Op::CoEdit.index()];
    assert_eq!((t.requests, t.conflicts, t.errors), (2, 1, 0));
    assert_eq!(plan.goal_version, 6);
    let g = goal.lock().expect("goal");
    assert_eq!(g.gets, 1);
    let sent: Vec<_> = g.patches.iter().map(|(m, _)| m.as_deref()).collect();
    assert_eq!(sent, [Some("W/\"3\""), Some("W/\"5\"")]);
    assert!(g
        .patches
        .iter()
        .all(|(_, ct)| ct.as_deref() == Some("application/json-patch+json")));
}

#[tokio::test]
async fn an_up_to_date_co_edit_is_one_request_and_no_conflict() {
    let (mut w, goal) = worker_against(2).await;
    let mut plan = plan_at(2);
    w.co_edit(&mut plan, "note").await;
    let t = &w.tallies[Op::CoEdit.index()];
    assert_eq!((t.requests, t.conflicts, t.errors), (1, 0, 0));
    assert_eq!(plan.goal_version, 3);
    assert_eq!(goal.lock().expect("goal").gets, 0);
}

#[test]
fn weekly_dates_cross_months_years_and_leap_days() {
    assert_eq!(weekly_date(0), "2026-01-01");
    assert_eq!(weekly_date(5), "2026-02-05");
    assert_eq!(weekly_date(52), "2026-12-31");
    assert_eq!(weekly_date(53), "2027-01-07");
    // 2028-02-24 + 7 days is 2028-03-02 (2028 is a leap year).
    assert_eq!(weekly_date(112), "2028-02-24");
    assert_eq!(weekly_date(113), "2028-03-02");
}
