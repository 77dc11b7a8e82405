//! The load engine: seeding patients, and running one scenario as N tasks,
//! each with its own keep-alive connection, for warm-up + measured duration,
//! recording every latency (µs) and counting unexpected outcomes.

use crate::client::{created_id, etag_version, Conn, Response, Target};
use crate::payload;
use crate::rng::Rng;
use crate::stats::{merge_sorted, CpuWindow, Summary};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A seeded patient: server id, index used to generate its body, and the
/// version the benchmark believes is current.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: String,
    pub n: usize,
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GET `/Patient/{id}` against the ceiling server.
    Ceiling,
    Read,
    Vread,
    CreateCarePlan,
    /// The same CarePlans without `meta.profile`: the cost of validating against the claimed
    /// US Core profile is the difference.
    CreateCarePlanUnprofiled,
    Update,
    /// GET a search built from a template with `{patient}` replaced by a random patient id.
    Search(&'static str),
    /// POST a transaction Bundle of 10 Observations for a random patient.
    Transaction10,
    /// POST a completed PHQ-9 QuestionnaireResponse for a random patient (validated, scored,
    /// extracted, the patient's goal moved); each patient gets a goal first (not timed).
    Phq9,
}

/// The US Core and Coplan searches the benchmark measures (`{patient}` = a seeded patient id).
pub const SEARCHES: &[(&str, &str)] = &[
    ("search-careplan", "/CarePlan?patient={patient}&category=http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan"),
    ("search-careplan-status-date", "/CarePlan?patient={patient}&category=http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan&status=active&date=ge2026-01-01"),
    ("search-goal", "/Goal?patient={patient}&lifecycle-status=active"),
    ("search-qr", "/QuestionnaireResponse?patient={patient}&status=completed&authored=ge2026-01-01"),
    ("search-careteam", "/CareTeam?patient={patient}&status=active"),
    ("search-plan-bundle", "/CarePlan?patient={patient}&_include=CarePlan:goal&_revinclude=Provenance:target&_revinclude=QuestionnaireResponse:based-on"),
    ("search-chain", "/Goal?subject:Patient._id={patient}&lifecycle-status=active"),
];

impl Kind {
    fn expected(self) -> StatusCode {
        match self {
            Kind::Ceiling
            | Kind::Read
            | Kind::Vread
            | Kind::Update
            | Kind::Search(_)
            | Kind::Transaction10 => StatusCode::OK,
            Kind::CreateCarePlan | Kind::CreateCarePlanUnprofiled | Kind::Phq9 => {
                StatusCode::CREATED
            }
        }
    }
}

pub struct RunConfig {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// The server's process, for its CPU time in the measured window.
    pub server_pid: Option<u32>,
}

/// Seed `count` patients with `concurrency` connections. Returns the seeded
/// patients (in no particular order) and the failures.
pub async fn seed(
    target: &Target,
    count: usize,
    concurrency: usize,
    timeout: Duration,
) -> (Vec<Seeded>, Vec<String>) {
    let concurrency = concurrency.clamp(1, count.max(1));
    let target = Arc::new(target.clone());
    let mut handles = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let target = target.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::new(target.addr, timeout);
            let mut ok = Vec::new();
            let mut errs = Vec::new();
            for n in (t..count).step_by(concurrency) {
                let body = match serde_json::to_vec(&payload::patient(n)) {
                    Ok(b) => Bytes::from(b),
                    Err(e) => {
                        errs.push(format!("serialise patient: {e}"));
                        continue;
                    }
                };
                let req = match target.request(Method::POST, "/Patient", Some(body), None) {
                    Ok(r) => r,
                    Err(e) => {
                        errs.push(e);
                        continue;
                    }
                };
                match conn.send(req).await {
                    Ok(resp) if resp.status == StatusCode::CREATED => match created_id(&resp) {
                        Some(id) => ok.push(Seeded {
                            id,
                            n,
                            version: etag_version(&resp.headers).unwrap_or(1),
                        }),
                        None => errs.push("201 without id in body or Location".to_string()),
                    },
                    Ok(resp) => errs.push(describe_status(&resp)),
                    Err(e) => errs.push(e),
                }
            }
            (ok, errs)
        }));
    }
    let mut seeded = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for h in handles {
        match h.await {
            Ok((ok, errs)) => {
                seeded.extend(ok);
                errors.extend(errs);
            }
            Err(e) => errors.push(format!("seeding task failed: {e}")),
        }
    }
    seeded.sort_by_key(|s| s.n);
    (seeded, errors)
}

/// Use `count` patients that already exist on the server (e.g. from `coplan seed`) instead of
/// seeding: their ids are read by paging through `GET /Patient?_elements=id`.
pub async fn existing_patients(
    target: &Target,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Seeded>, String> {
    let mut conn = Conn::new(target.addr, timeout);
    let mut found = Vec::new();
    let mut rel = format!("/Patient?_count={}&_elements=id", count.min(1000));
    let base_path = target.base_path.clone();
    while found.len() < count {
        let req = target.request(Method::GET, &rel, None, None)?;
        let resp = conn.send(req).await?;
        if resp.status != StatusCode::OK {
            return Err(format!("listing patients: {}", describe_status(&resp)));
        }
        let bundle: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|e| format!("listing patients: {e}"))?;
        for e in bundle["entry"].as_array().into_iter().flatten() {
            if let Some(id) = e["resource"]["id"].as_str() {
                found.push(Seeded {
                    id: id.to_string(),
                    n: found.len(),
                    version: 1,
                });
            }
        }
        let next = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        match next.and_then(|u| {
            u.find(&base_path)
                .map(|i| u[i + base_path.len()..].to_string())
        }) {
            Some(n) => rel = n,
            None => break,
        }
    }
    found.truncate(count);
    Ok(found)
}

pub fn describe_status(resp: &Response) -> String {
    let snippet: String = String::from_utf8_lossy(&resp.body)
        .chars()
        .take(300)
        .collect();
    format!("HTTP {} {}", resp.status.as_u16(), snippet)
}

/// Per-task request generator for one scenario.
enum TaskState {
    /// GET `{path_prefix}{id}{suffix}` for random ids.
    Get {
        ids: Arc<Vec<String>>,
        suffix: &'static str,
    },
    CarePlan {
        bodies: Arc<Vec<Bytes>>,
    },
    Search {
        ids: Arc<Vec<String>>,
        template: &'static str,
    },
    Transaction {
        ids: Arc<Vec<String>>,
    },
    Phq9 {
        ids: Arc<Vec<String>>,
    },
    Update {
        owned: Vec<Seeded>,
        cursor: usize,
        counter: u64,
    },
}

struct Planned {
    method: Method,
    rel: String,
    body: Option<Bytes>,
    if_match: Option<String>,
    /// Index into `owned` for updates.
    slot: Option<usize>,
}

impl TaskState {
    fn next(&mut self, rng: &mut Rng) -> Option<Planned> {
        match self {
            TaskState::Get { ids, suffix } => {
                if ids.is_empty() {
                    return None;
                }
                let id = &ids[rng.below(ids.len())];
                Some(Planned {
                    method: Method::GET,
                    rel: format!("/Patient/{id}{suffix}"),
                    body: None,
                    if_match: None,
                    slot: None,
                })
            }
            TaskState::Search { ids, template } => {
                if ids.is_empty() {
                    return None;
                }
                let id = &ids[rng.below(ids.len())];
                Some(Planned {
                    method: Method::GET,
                    rel: template.replace("{patient}", id),
                    body: None,
                    if_match: None,
                    slot: None,
                })
            }
            TaskState::Transaction { ids } => {
                if ids.is_empty() {
                    return None;
                }
                let id = &ids[rng.below(ids.len())];
                let body = serde_json::to_vec(&payload::observation_transaction(
                    id,
                    10,
                    rng.below(1_000_000),
                ))
                .map(Bytes::from)
                .ok()?;
                Some(Planned {
                    method: Method::POST,
                    rel: String::new(),
                    body: Some(body),
                    if_match: None,
                    slot: None,
                })
            }
            TaskState::Phq9 { ids } => {
                if ids.is_empty() {
                    return None;
                }
                let id = &ids[rng.below(ids.len())];
                let body = serde_json::to_vec(&payload::phq9_response(id, rng))
                    .map(Bytes::from)
                    .ok()?;
                Some(Planned {
                    method: Method::POST,
                    rel: "/QuestionnaireResponse".to_string(),
                    body: Some(body),
                    if_match: None,
                    slot: None,
                })
            }
            TaskState::CarePlan { bodies } => {
                if bodies.is_empty() {
                    return None;
                }
                Some(Planned {
                    method: Method::POST,
                    rel: "/CarePlan".to_string(),
                    body: Some(bodies[rng.below(bodies.len())].clone()),
                    if_match: None,
                    slot: None,
                })
            }
            TaskState::Update {
                owned,
                cursor,
                counter,
            } => {
                if owned.is_empty() {
                    return None;
                }
                let slot = *cursor % owned.len();
                *cursor = cursor.wrapping_add(1);
                *counter += 1;
                let p = &owned[slot];
                let body = serde_json::to_vec(&payload::patient_update(&p.id, p.n, *counter))
                    .map(Bytes::from)
                    .ok()?;
                Some(Planned {
                    method: Method::PUT,
                    rel: format!("/Patient/{}", p.id),
                    body: Some(body),
                    if_match: Some(format!("W/\"{}\"", p.version)),
                    slot: Some(slot),
                })
            }
        }
    }
}

#[derive(Default)]
struct TaskResult {
    latencies: Vec<u32>,
    requests: u64,
    errors: u64,
    conflicts: u64,
    transport_errors: u64,
    first_error: Option<String>,
    /// Versions after the run (update scenario), to write back.
    owned: Vec<Seeded>,
}

/// Pre-generate CarePlan bodies so that JSON building is not on the
/// measured path of the load generator.
/// `profiled`: the CarePlans claim US Core's CarePlan profile (validated against it on write).
pub fn careplan_bodies(seeded: &[Seeded], count: usize, profiled: bool) -> Vec<Bytes> {
    let mut rng = Rng::from_time(0xCA1E);
    (0..count)
        .filter_map(|_| {
            let subject = &seeded.get(rng.below(seeded.len().max(1)))?.id;
            let mut plan = payload::careplan(subject, &mut rng);
            if !profiled {
                plan.as_object_mut()?.remove("meta");
            }
            serde_json::to_vec(&plan).ok().map(Bytes::from)
        })
        .collect()
}

/// Run one scenario. `seeded` is updated in place with the versions the
/// update scenario reached.
pub async fn run(
    kind: Kind,
    name: &str,
    target: &Target,
    seeded: &mut [Seeded],
    cfg: &RunConfig,
) -> Summary {
    let conns = cfg.connections.max(1);
    let target = Arc::new(target.clone());
    let ids: Arc<Vec<String>> = Arc::new(seeded.iter().map(|s| s.id.clone()).collect());
    let bodies = if matches!(kind, Kind::CreateCarePlan | Kind::CreateCarePlanUnprofiled) {
        Arc::new(careplan_bodies(seeded, 256, kind == Kind::CreateCarePlan))
    } else {
        Arc::new(Vec::new())
    };
    // Update: task t owns seeded[i] for i % conns == t (disjoint sets).
    let mut owned_sets: Vec<Vec<Seeded>> = vec![Vec::new(); conns];
    if kind == Kind::Update {
        for (i, s) in seeded.iter().enumerate() {
            owned_sets[i % conns].push(s.clone());
        }
    }

    if kind == Kind::Phq9 {
        // Every patient's goal, for the scores to move (not timed).
        let mut conn = Conn::new(target.addr, cfg.timeout);
        for s in seeded.iter() {
            let Ok(body) = serde_json::to_vec(&payload::phq9_goal(&s.id)) else {
                continue;
            };
            if let Ok(req) = target.request(Method::POST, "/Goal", Some(Bytes::from(body)), None) {
                if let Ok(resp) = conn.send(req).await {
                    if resp.status != StatusCode::CREATED {
                        eprintln!("{name}: seeding a goal: {}", describe_status(&resp));
                        break;
                    }
                }
            }
        }
    }

    let start = Instant::now();
    let warm_end = start + cfg.warmup;
    let end = warm_end + cfg.duration;
    let mut handles = Vec::with_capacity(conns);
    for (t, owned) in owned_sets.into_iter().enumerate() {
        let state = match kind {
            Kind::Ceiling | Kind::Read => TaskState::Get {
                ids: ids.clone(),
                suffix: "",
            },
            Kind::Vread => TaskState::Get {
                ids: ids.clone(),
                suffix: "/_history/1",
            },
            Kind::CreateCarePlan | Kind::CreateCarePlanUnprofiled => TaskState::CarePlan {
                bodies: bodies.clone(),
            },
            Kind::Update => TaskState::Update {
                owned,
                cursor: 0,
                counter: 0,
            },
            Kind::Search(template) => TaskState::Search {
                ids: ids.clone(),
                template,
            },
            Kind::Transaction10 => TaskState::Transaction { ids: ids.clone() },
            Kind::Phq9 => TaskState::Phq9 { ids: ids.clone() },
        };
        let target = target.clone();
        let timeout = cfg.timeout;
        handles.push(tokio::spawn(task(
            kind, target, state, t as u64, warm_end, end, timeout,
        )));
    }

    // The server's CPU time over the measured window (after the warm-up).
    let cpu = CpuWindow::watch(cfg.server_pid, warm_end, end);
    let mut parts = Vec::with_capacity(conns);
    let mut total = TaskResult::default();
    for h in handles {
        match h.await {
            Ok(mut r) => {
                parts.push(std::mem::take(&mut r.latencies));
                total.requests += r.requests;
                total.errors += r.errors;
                total.conflicts += r.conflicts;
                total.transport_errors += r.transport_errors;
                if total.first_error.is_none() {
                    total.first_error = r.first_error.take();
                }
                total.owned.extend(r.owned);
            }
            Err(e) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("load task failed: {e}"));
            }
        }
    }
    let elapsed = Instant::now().saturating_duration_since(warm_end);
    if kind == Kind::Update {
        for o in total.owned {
            if let Some(s) = seeded.iter_mut().find(|s| s.n == o.n) {
                s.version = o.version;
            }
        }
    }
    let sorted = merge_sorted(parts);
    let mut summary = Summary::from_samples(name, &sorted, elapsed.as_secs_f64());
    summary.requests = total.requests;
    summary.errors = total.errors;
    summary.conflicts = total.conflicts;
    summary.transport_errors = total.transport_errors;
    summary.first_error = total.first_error;
    summary.server_cpu_us_per_request = cpu.per_request(total.requests).await;
    summary
}

async fn task(
    kind: Kind,
    target: Arc<Target>,
    mut state: TaskState,
    salt: u64,
    warm_end: Instant,
    end: Instant,
    timeout: Duration,
) -> TaskResult {
    let mut rng = Rng::from_time(salt + 1);
    let mut conn = Conn::new(target.addr, timeout);
    let mut r = TaskResult {
        latencies: Vec::with_capacity(64 * 1024),
        ..Default::default()
    };
    let expected = kind.expected();
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let measuring = started >= warm_end;
        let Some(plan) = state.next(&mut rng) else {
            // Nothing to do (e.g. no ids owned): idle until the end.
            tokio::time::sleep_until(end.into()).await;
            break;
        };
        let req = match target.request(plan.method, &plan.rel, plan.body, plan.if_match.as_deref())
        {
            Ok(req) => req,
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
                break;
            }
        };
        // Latency covers send + full body read, not building the request.
        let sent = Instant::now();
        match conn.send(req).await {
            Ok(resp) => {
                let micros = sent.elapsed().as_micros();
                if measuring {
                    r.latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    r.requests += 1;
                    if resp.status != expected {
                        r.errors += 1;
                        if resp.status == StatusCode::PRECONDITION_FAILED {
                            r.conflicts += 1;
                        }
                        r.first_error.get_or_insert_with(|| {
                            format!("{} {}: {}", "unexpected", plan.rel, describe_status(&resp))
                        });
                    }
                }
                if let (TaskState::Update { owned, .. }, Some(slot)) = (&mut state, plan.slot) {
                    if resp.status == StatusCode::OK {
                        let p = &mut owned[slot];
                        p.version = etag_version(&resp.headers).unwrap_or(p.version + 1);
                    } else if resp.status == StatusCode::PRECONDITION_FAILED {
                        let id = owned[slot].id.clone();
                        if let Some(v) = current_version(&target, &mut conn, &id).await {
                            owned[slot].version = v;
                        }
                    }
                }
            }
            Err(e) => {
                if measuring {
                    r.requests += 1;
                    r.errors += 1;
                    r.transport_errors += 1;
                }
                r.first_error.get_or_insert(e);
                // Don't spin if the server is down.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    if let TaskState::Update { owned, .. } = state {
        r.owned = owned;
    }
    r
}

/// Untimed GET to resynchronise a version after a 412.
async fn current_version(target: &Target, conn: &mut Conn, id: &str) -> Option<u64> {
    let req = target
        .request(Method::GET, &format!("/Patient/{id}"), None, None)
        .ok()?;
    let resp = conn.send(req).await.ok()?;
    if resp.status == StatusCode::OK {
        etag_version(&resp.headers)
    } else {
        None
    }
}

/// One untimed GET of a seeded patient, to size the ceiling body.
pub async fn measure_read_body(
    target: &Target,
    id: &str,
    timeout: Duration,
) -> Result<usize, String> {
    let mut conn = Conn::new(target.addr, timeout);
    let req = target.request(Method::GET, &format!("/Patient/{id}"), None, None)?;
    let resp = conn.send(req).await?;
    if resp.status != StatusCode::OK {
        return Err(describe_status(&resp));
    }
    Ok(resp.body.len())
}
