//! The `careplan` scenario, the shared-care-plan workload. Owns its untimed setup (one Goal and
//! one CarePlan referencing it per seeded patient), its payloads, and the loop every task runs
//! over the patients it owns (disjoint sets, like `update`): read the plan (the CarePlan with
//! its goal, its Provenance and the PHQ-9s based on it, in one search), co-edit the goal (JSON
//! Patch of its `note` with `If-Match` on the version the read showed; a 412 is re-read and
//! retried once and counted as a conflict, not an error) and post a PHQ-9 based on the plan
//! (which moves the goal). Reported per operation like `crud` (crud.rs's tallies and table).

use crate::client::Target;
use crate::client::{created_id_of, etag_version, Conn, Response, FHIR_JSON};
use crate::crud::{merge_ops, ops_json, ops_table, Tally};
use crate::load::{describe_status, RunConfig, Seeded};
use crate::payload;
use crate::rng::Rng;
use crate::stats::{CpuWindow, Summary};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JSON_PATCH: &str = "application/json-patch+json";

/// The operations reported on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ReadPlan,
    CoEdit,
    Phq9,
}

pub const OPS: [Op; 3] = [Op::ReadPlan, Op::CoEdit, Op::Phq9];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ReadPlan => "read-plan",
            Op::CoEdit => "co-edit",
            Op::Phq9 => "phq9",
        }
    }

    /// The success status: a search and a patch answer 200, a create 201.
    pub fn accepts(self, status: StatusCode) -> bool {
        match self {
            Op::ReadPlan | Op::CoEdit => status == StatusCode::OK,
            Op::Phq9 => status == StatusCode::CREATED,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a measured response counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A 412 to a co-edit: the other side edited first (re-read and retried, not an error).
    Conflict,
    Error,
}

/// Record one measured response of `op` in `tally`: its latency, and a conflict or an error.
pub fn record(
    tally: &mut Tally,
    op: Op,
    status: StatusCode,
    micros: u128,
    describe: impl FnOnce() -> String,
) -> Outcome {
    tally
        .latencies
        .push(u32::try_from(micros).unwrap_or(u32::MAX));
    tally.requests += 1;
    if op.accepts(status) {
        Outcome::Ok
    } else if op == Op::CoEdit && status == StatusCode::PRECONDITION_FAILED {
        tally.conflicts += 1;
        Outcome::Conflict
    } else {
        tally.error(describe);
        Outcome::Error
    }
}

/// One seeded patient's shared plan, as the task that owns it last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub patient: String,
    pub goal: String,
    pub careplan: String,
    /// The goal's version the task last saw, for `If-Match`.
    pub goal_version: u64,
    /// Rounds run on this plan (the soak renews a plan after so many).
    pub rounds: u64,
}

/// The plan read: the patient's CarePlans, their goals, their Provenance and the responses
/// based on them.
pub fn plan_read_rel(patient: &str) -> String {
    format!(
        "/CarePlan?patient={patient}&_include=CarePlan:goal&_revinclude=Provenance:target\
&_revinclude=QuestionnaireResponse:based-on"
    )
}

/// The US Core CarePlan of `payload::careplan` for `patient`, with `goal` referencing the
/// patient's Goal `goal`.
pub fn careplan_with_goal(patient: &str, goal: &str, rng: &mut Rng) -> Value {
    let mut plan = payload::careplan(patient, rng);
    if let Some(obj) = plan.as_object_mut() {
        obj.insert(
            "goal".to_string(),
            json!([{"reference": format!("Goal/{goal}")}]),
        );
    }
    plan
}

/// The co-edit: a JSON Patch replacing (or adding) the goal's `note`.
pub fn goal_note_patch(text: &str) -> Value {
    json!([{"op": "add", "path": "/note", "value": [{"text": text}]}])
}

/// A completed PHQ-9 by `patient` (`payload::phq9_response`) based on the CarePlan `careplan`,
/// answered in week `week` of the plan (weekly from 2026-01-01, so each is the patient's
/// latest, as when a patient fills in the form on the day): the plan read's
/// `_revinclude=QuestionnaireResponse:based-on` finds it, and it moves the plan's goal.
pub fn phq9_for_plan(patient: &str, careplan: &str, week: u64, rng: &mut Rng) -> Value {
    let mut qr = payload::phq9_response(patient, rng);
    if let Some(obj) = qr.as_object_mut() {
        obj.insert(
            "basedOn".to_string(),
            json!([{"reference": format!("CarePlan/{careplan}")}]),
        );
        obj.insert(
            "authored".to_string(),
            json!(format!("{}T09:00:00Z", weekly_date(week))),
        );
    }
    qr
}

/// The date `week` weeks after 2026-01-01, `YYYY-MM-DD` (proleptic Gregorian; Howard
/// Hinnant's civil-from-days).
pub fn weekly_date(week: u64) -> String {
    // Days from 1970-01-01 to 2026-01-01.
    const START: i64 = 20_454;
    let days = START + 7 * i64::try_from(week).unwrap_or(i64::MAX / 8);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The version of Goal `goal` in a search Bundle (its `meta.versionId`), if included.
pub fn goal_version_in(bundle: &Value, goal: &str) -> Option<u64> {
    bundle["entry"]
        .as_array()?
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Goal" && r["id"] == goal)?["meta"]["versionId"]
        .as_str()?
        .parse()
        .ok()
}

/// The scenario's outcome: the whole mix (the row of the main table) and each operation.
pub struct CarePlanReport {
    pub overall: Summary,
    pub ops: Vec<(Op, Summary)>,
    /// Rounds (read, co-edit, PHQ-9 of one patient) begun in the window and finished.
    pub rounds: u64,
}

impl CarePlanReport {
    fn rows(&self) -> Vec<(&str, &Summary)> {
        self.ops.iter().map(|(op, s)| (op.name(), s)).collect()
    }

    /// The per-operation table (p95 included), an overall row last.
    pub fn table(&self) -> Vec<String> {
        let title = format!(
            "{}: {} complete rounds of read-plan, co-edit (If-Match), phq9",
            self.overall.name, self.rounds
        );
        ops_table(title, &self.rows(), &self.overall)
    }

    /// The scenario's JSON: the overall summary's fields, `rounds` and `operations`.
    pub fn to_json(&self) -> Value {
        ops_json(&self.overall, &self.rows(), "rounds", self.rounds)
    }
}

/// Merge the tasks' tallies into one summary per operation and one overall.
pub fn report(name: &str, tasks: Vec<[Tally; 3]>, rounds: u64, elapsed_s: f64) -> CarePlanReport {
    let (overall, ops) = merge_ops(name, tasks, OPS, Op::name, elapsed_s);
    CarePlanReport {
        overall,
        ops,
        rounds,
    }
}

/// Untimed: POST `body` to `/{rtype}`; the created id and version.
async fn create(
    target: &Target,
    conn: &mut Conn,
    rtype: &str,
    body: &Value,
) -> Result<(String, u64), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| format!("serialise {rtype}: {e}"))?;
    let req = target.request(
        Method::POST,
        &format!("/{rtype}"),
        Some(Bytes::from(bytes)),
        None,
    )?;
    let resp = conn.send(req).await?;
    if resp.status != StatusCode::CREATED {
        return Err(format!("creating a {rtype}: {}", describe_status(&resp)));
    }
    let id = created_id_of(&resp, rtype)
        .ok_or_else(|| format!("{rtype} created without an id in body or Location"))?;
    Ok((id, etag_version(&resp.headers).unwrap_or(1)))
}

/// A Goal and a CarePlan naming it for `patient`.
async fn make_plan(
    target: &Target,
    conn: &mut Conn,
    patient: String,
    rng: &mut Rng,
) -> Result<Plan, String> {
    let (goal, goal_version) = create(target, conn, "Goal", &payload::phq9_goal(&patient)).await?;
    let plan = careplan_with_goal(&patient, &goal, rng);
    let (careplan, _) = create(target, conn, "CarePlan", &plan).await?;
    Ok(Plan {
        patient,
        goal,
        careplan,
        goal_version,
        rounds: 0,
    })
}

/// A new patient with a fresh plan (the soak's renewal: a plan's read grows with every PHQ-9
/// based on it, so a soak moves on to a new patient after a fixed number of rounds, keeping
/// each read bounded while the database grows).
async fn renewed_plan(
    target: &Target,
    conn: &mut Conn,
    n: u64,
    rng: &mut Rng,
) -> Result<Plan, String> {
    let (patient, _) = create(target, conn, "Patient", &payload::patient(n as usize)).await?;
    make_plan(target, conn, patient, rng).await
}

/// Untimed setup of one task's patients: a Goal and a CarePlan referencing it each.
async fn set_up(
    target: Arc<Target>,
    patients: Vec<String>,
    salt: u64,
    timeout: Duration,
) -> (Vec<Plan>, Vec<String>) {
    let mut conn = Conn::new(target.addr, timeout);
    let mut rng = Rng::from_time(0xC0DE + salt);
    let (mut plans, mut errors) = (Vec::new(), Vec::new());
    for patient in patients {
        match make_plan(&target, &mut conn, patient, &mut rng).await {
            Ok(p) => plans.push(p),
            Err(e) => errors.push(e),
        }
    }
    (plans, errors)
}

/// One task's connection, window and tallies.
struct Worker {
    target: Arc<Target>,
    conn: Conn,
    warm_end: Instant,
    end: Instant,
    tallies: [Tally; 3],
}

/// A request of the loop: its operation, method, path, body (with its content type) and
/// `If-Match`.
struct Exchange<'a> {
    op: Op,
    method: Method,
    rel: &'a str,
    body: Option<(Value, &'static str)>,
    if_match: Option<String>,
}

impl Worker {
    /// Send one request, recording it when the window is open; the response whatever its
    /// status, `None` on a transport or building failure.
    async fn exchange(&mut self, x: Exchange<'_>) -> Option<Response> {
        let tally = &mut self.tallies[x.op.index()];
        let (body, content_type) = match x.body {
            Some((v, ct)) => match serde_json::to_vec(&v) {
                Ok(b) => (Some(Bytes::from(b)), ct),
                Err(e) => {
                    tally.error(|| format!("{} {}: serialise: {e}", x.op.name(), x.rel));
                    return None;
                }
            },
            None => (None, FHIR_JSON),
        };
        let req =
            match self
                .target
                .request_as(x.method, x.rel, body, x.if_match.as_deref(), content_type)
            {
                Ok(r) => r,
                Err(e) => {
                    tally.error(|| format!("{} {}: {e}", x.op.name(), x.rel));
                    return None;
                }
            };
        let sent = Instant::now();
        let measuring = sent >= self.warm_end;
        match self.conn.send(req).await {
            Ok(resp) => {
                if measuring {
                    let micros = sent.elapsed().as_micros();
                    record(tally, x.op, resp.status, micros, || {
                        format!("{} {}: {}", x.op.name(), x.rel, describe_status(&resp))
                    });
                }
                Some(resp)
            }
            Err(e) => {
                if measuring {
                    tally.requests += 1;
                    tally.transport_errors += 1;
                    tally.error(|| format!("{} {}: {e}", x.op.name(), x.rel));
                }
                // Don't spin if the server is down.
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        }
    }

    fn closed(&self) -> bool {
        Instant::now() >= self.end
    }

    /// The co-edit of `plan`'s goal with `If-Match` on the version last seen; the new version
    /// on success. A 412 re-reads the goal (untimed) and retries once.
    async fn co_edit(&mut self, plan: &mut Plan, note: &str) {
        let rel = format!("/Goal/{}", plan.goal);
        for attempt in 0..2 {
            let sent = self
                .exchange(Exchange {
                    op: Op::CoEdit,
                    method: Method::PATCH,
                    rel: &rel,
                    body: Some((goal_note_patch(note), JSON_PATCH)),
                    if_match: Some(format!("W/\"{}\"", plan.goal_version)),
                })
                .await;
            let Some(resp) = sent else { return };
            if resp.status == StatusCode::OK {
                plan.goal_version = etag_version(&resp.headers).unwrap_or(plan.goal_version + 1);
                return;
            }
            if resp.status != StatusCode::PRECONDITION_FAILED || attempt > 0 || self.closed() {
                return;
            }
            // Re-read (untimed) and retry once.
            let Ok(req) = self.target.request(Method::GET, &rel, None, None) else {
                return;
            };
            match self.conn.send(req).await {
                Ok(r) if r.status == StatusCode::OK => match etag_version(&r.headers) {
                    Some(v) => plan.goal_version = v,
                    None => return,
                },
                _ => return,
            }
        }
    }

    /// One round over `plan`; `false` when the window closed before its last request.
    async fn round(&mut self, plan: &mut Plan, rng: &mut Rng, n: u64) -> bool {
        let rel = plan_read_rel(&plan.patient);
        let read = self
            .exchange(Exchange {
                op: Op::ReadPlan,
                method: Method::GET,
                rel: &rel,
                body: None,
                if_match: None,
            })
            .await;
        if let Some(resp) = read.filter(|r| r.status == StatusCode::OK) {
            let seen = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|b| goal_version_in(&b, &plan.goal));
            if let Some(v) = seen {
                plan.goal_version = v;
            }
        }
        if self.closed() {
            return false;
        }
        self.co_edit(plan, &format!("Co-edit {n}: reviewed together"))
            .await;
        if self.closed() {
            return false;
        }
        self.exchange(Exchange {
            op: Op::Phq9,
            method: Method::POST,
            rel: "/QuestionnaireResponse",
            body: Some((
                phq9_for_plan(&plan.patient, &plan.careplan, plan.rounds, rng),
                FHIR_JSON,
            )),
            if_match: None,
        })
        .await;
        true
    }
}

/// What one task returns: its tallies, complete rounds and when it stopped measuring.
type TaskOutcome = ([Tally; 3], u64, Instant, Vec<Plan>);

async fn task(
    target: Arc<Target>,
    mut owned: Vec<Plan>,
    t: u64,
    warm_end: Instant,
    end: Instant,
    timeout: Duration,
    renew_after: Option<u64>,
) -> TaskOutcome {
    let mut w = Worker {
        conn: Conn::new(target.addr, timeout),
        target,
        warm_end,
        end,
        tallies: Default::default(),
    };
    let mut rng = Rng::from_time(t + 1);
    let mut rounds = 0u64;
    if owned.is_empty() {
        tokio::time::sleep_until(end.into()).await;
        return (w.tallies, 0, Instant::now(), owned);
    }
    let mut n = t << 32;
    loop {
        let len = owned.len();
        let plan = &mut owned[(n as usize) % len];
        n += 1;
        if renew_after.is_some_and(|k| plan.rounds >= k) {
            match renewed_plan(&w.target, &mut w.conn, n, &mut rng).await {
                Ok(fresh) => *plan = fresh,
                Err(e) => w.tallies[Op::ReadPlan.index()].error(|| format!("renewing a plan: {e}")),
            }
        }
        plan.rounds += 1;
        let round_start = Instant::now();
        if round_start >= end || !w.round(plan, &mut rng, n & 0xffff_ffff).await {
            break;
        }
        if round_start >= warm_end {
            rounds += 1;
        }
    }
    (w.tallies, rounds, Instant::now(), owned)
}

/// The untimed setup: a Goal and a CarePlan per seeded patient; task `t` owns `seeded[i]` for
/// `i % connections == t`. The plans per task, and the setup's failures.
pub async fn set_up_all(
    name: &str,
    target: &Arc<Target>,
    seeded: &[Seeded],
    cfg: &RunConfig,
) -> (Vec<Vec<Plan>>, Vec<String>) {
    let conns = cfg.connections.max(1);
    let mut owned_ids: Vec<Vec<String>> = vec![Vec::new(); conns];
    for (i, s) in seeded.iter().enumerate() {
        owned_ids[i % conns].push(s.id.clone());
    }
    let setup_start = Instant::now();
    let setups: Vec<_> = owned_ids
        .into_iter()
        .enumerate()
        .map(|(t, ids)| tokio::spawn(set_up(target.clone(), ids, t as u64, cfg.timeout)))
        .collect();
    let mut owned = Vec::with_capacity(conns);
    let mut setup_errors = Vec::new();
    for h in setups {
        match h.await {
            Ok((plans, errs)) => {
                owned.push(plans);
                setup_errors.extend(errs);
            }
            Err(e) => {
                owned.push(Vec::new());
                setup_errors.push(format!("setup task failed: {e}"));
            }
        }
    }
    eprintln!(
        "{name}: set up {} care plans (a Goal and a CarePlan each) in {:.2}s, {} errors",
        owned.iter().map(Vec::len).sum::<usize>(),
        setup_start.elapsed().as_secs_f64(),
        setup_errors.len()
    );
    (owned, setup_errors)
}

/// What one window of the workload measured: every task's tallies, the rounds, when the last
/// task stopped, the tasks' plans (to carry into the next window) and task failures.
pub struct Window {
    pub tallies: Vec<[Tally; 3]>,
    pub rounds: u64,
    pub stopped: Instant,
    pub owned: Vec<Vec<Plan>>,
    pub failed: Vec<String>,
}

/// Run every task over its plans from now until `end`, measuring from `warm_end`.
pub async fn window(
    target: &Arc<Target>,
    owned: Vec<Vec<Plan>>,
    warm_end: Instant,
    end: Instant,
    timeout: Duration,
    renew_after: Option<u64>,
) -> Window {
    let handles: Vec<_> = owned
        .into_iter()
        .enumerate()
        .map(|(t, plans)| {
            tokio::spawn(task(
                target.clone(),
                plans,
                t as u64,
                warm_end,
                end,
                timeout,
                renew_after,
            ))
        })
        .collect();
    let mut done = Window {
        tallies: Vec::with_capacity(handles.len()),
        rounds: 0,
        stopped: end,
        owned: Vec::with_capacity(handles.len()),
        failed: Vec::new(),
    };
    for h in handles {
        match h.await {
            Ok((t, r, s, plans)) => {
                done.tallies.push(t);
                done.rounds += r;
                done.stopped = done.stopped.max(s);
                done.owned.push(plans);
            }
            Err(e) => {
                done.owned.push(Vec::new());
                done.failed.push(format!("load task failed: {e}"));
            }
        }
    }
    done
}

/// Run the scenario: the untimed setup, then `cfg.connections` tasks, each its own keep-alive
/// connection and its own patients. Setup failures count as errors of the overall row.
pub async fn run(
    name: &str,
    target: &Target,
    seeded: &[Seeded],
    cfg: &RunConfig,
) -> CarePlanReport {
    let target = Arc::new(target.clone());
    let (owned, setup_errors) = set_up_all(name, &target, seeded, cfg).await;
    let warm_end = Instant::now() + cfg.warmup;
    let end = warm_end + cfg.duration;
    let cpu = CpuWindow::watch(cfg.server_pid, warm_end, end);
    let measured = window(&target, owned, warm_end, end, cfg.timeout, None).await;
    let mut failed = setup_errors;
    failed.extend(measured.failed);
    let elapsed = measured
        .stopped
        .saturating_duration_since(warm_end)
        .as_secs_f64();
    let mut r = report(name, measured.tallies, measured.rounds, elapsed);
    if let Some(first) = failed.first() {
        r.overall.errors += failed.len() as u64;
        r.overall.first_error = Some(first.clone());
    }
    r.overall.server_cpu_us_per_request = cpu.per_request(r.overall.requests).await;
    r
}

#[cfg(test)]
#[path = "careplan_tests.rs"]
mod tests;
