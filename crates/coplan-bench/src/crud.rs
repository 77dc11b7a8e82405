//! The cross-server `crud` scenario (the shape of HealthSamurai's
//! fhir-server-performance-benchmark): every task loops over cycles of nine linked creates,
//! nine reads, nine updates and nine deletes in reverse order, against any FHIR R4 server by its
//! base URL, with standard requests only. Owns the per-operation tallies, their merge and the
//! per-operation report (with p95).

use crate::client::{created_id_of, Conn, Response, Target};
use crate::crud_payload::{self, Links, Res, ORDER};
use crate::load::{describe_status, RunConfig};
use crate::stats::{ms, CpuWindow, Summary};
use bytes::Bytes;
use hyper::header::{HeaderMap, ETAG};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operations reported on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Update,
    Delete,
}

pub const OPS: [Op; 4] = [Op::Create, Op::Read, Op::Update, Op::Delete];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Read => "read",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    /// Whether `status` is a success for this operation on any conformant server (R4 http.html):
    /// a create answers 201, or 200 on servers that do; a read 200; an update 200, or 201 when
    /// the PUT created the resource; a delete 200, 202 or 204.
    pub fn accepts(self, status: StatusCode) -> bool {
        match self {
            Op::Create | Op::Update => status == StatusCode::OK || status == StatusCode::CREATED,
            Op::Read => status == StatusCode::OK,
            Op::Delete => matches!(status.as_u16(), 200 | 202 | 204),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one operation saw in the measured window, on one task or merged over all.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Latency of every measured response, in µs.
    pub latencies: Vec<u32>,
    pub requests: u64,
    pub errors: u64,
    pub conflicts: u64,
    pub transport_errors: u64,
    pub first_error: Option<String>,
}

impl Tally {
    /// Add `other`'s samples and counts; the first error kept is this tally's, if any.
    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.requests += other.requests;
        self.errors += other.errors;
        self.conflicts += other.conflicts;
        self.transport_errors += other.transport_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Count an error; `message` becomes the first error when there is none yet.
    pub fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        self.first_error.get_or_insert_with(message);
    }

    /// The summary of the samples (sorted in place) over `elapsed_s` seconds.
    pub fn summary(&mut self, name: &str, elapsed_s: f64) -> Summary {
        self.latencies.sort_unstable();
        let mut s = Summary::from_samples(name, &self.latencies, elapsed_s);
        s.requests = self.requests;
        s.errors = self.errors;
        s.conflicts = self.conflicts;
        s.transport_errors = self.transport_errors;
        s.first_error = self.first_error.clone();
        s
    }
}

/// The scenario's outcome: the whole mix (the row of the main table) and each operation.
pub struct CrudReport {
    pub overall: Summary,
    pub ops: Vec<(Op, Summary)>,
    /// Cycles every request of which was sent in the window.
    pub cycles: u64,
}

/// Merge the tasks' per-operation tallies into one summary per operation and one overall.
pub fn report(name: &str, tasks: Vec<[Tally; 4]>, cycles: u64, elapsed_s: f64) -> CrudReport {
    let (overall, ops) = merge_ops(name, tasks, OPS, Op::name, elapsed_s);
    CrudReport {
        overall,
        ops,
        cycles,
    }
}

/// Merge the tasks' tallies of the operations `ops` (named by `label`) into one summary per
/// operation and an overall one named `name`; shared by the multi-operation scenarios.
pub fn merge_ops<O: Copy, const N: usize>(
    name: &str,
    tasks: Vec<[Tally; N]>,
    ops: [O; N],
    label: fn(O) -> &'static str,
    elapsed_s: f64,
) -> (Summary, Vec<(O, Summary)>) {
    let mut merged: [Tally; N] = std::array::from_fn(|_| Tally::default());
    for tallies in tasks {
        for (into, from) in merged.iter_mut().zip(tallies) {
            into.merge(from);
        }
    }
    let mut overall = Tally::default();
    let mut summaries = Vec::with_capacity(N);
    for (op, mut tally) in ops.into_iter().zip(merged) {
        summaries.push((op, tally.summary(label(op), elapsed_s)));
        overall.merge(tally);
    }
    (overall.summary(name, elapsed_s), summaries)
}

impl CrudReport {
    /// The per-operation table (p95 included), an overall row last.
    pub fn table(&self) -> Vec<String> {
        let title = format!(
            "{}: {} complete cycles of 9 creates, 9 reads, 9 updates, 9 deletes",
            self.overall.name, self.cycles
        );
        let rows: Vec<(&str, &Summary)> = self.ops.iter().map(|(op, s)| (op.name(), s)).collect();
        ops_table(title, &rows, &self.overall)
    }

    /// The scenario's JSON: the overall summary's fields, `cycles` and `operations`.
    pub fn to_json(&self) -> Value {
        let rows: Vec<(&str, &Summary)> = self.ops.iter().map(|(op, s)| (op.name(), s)).collect();
        ops_json(&self.overall, &rows, "cycles", self.cycles)
    }
}

/// A per-operation table (requests, errors, 412s, req/s, p50/p95/p99/max) under `title`, the
/// `overall` row last; shared by the multi-operation scenarios (crud, careplan).
pub fn ops_table(title: String, rows: &[(&str, &Summary)], overall: &Summary) -> Vec<String> {
    let row = |label: &str, s: &Summary| {
        format!(
            "{:<10} {:>9} {:>7} {:>6} {:>6} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            label,
            s.requests,
            s.errors,
            s.conflicts,
            s.transport_errors,
            s.throughput(),
            ms(s.p50_us),
            ms(s.p95_us),
            ms(s.p99_us),
            ms(s.max_us)
        )
    };
    let mut lines = vec![
        title,
        format!(
            "{:<10} {:>9} {:>7} {:>6} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "operation",
            "requests",
            "errors",
            "412s",
            "io_err",
            "ok_req/s",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms"
        ),
    ];
    lines.extend(rows.iter().map(|(label, s)| row(label, s)));
    lines.push(row("overall", overall));
    lines
}

/// A multi-operation scenario's JSON: the overall summary's fields, `{count_key: count}` and
/// `operations` (each operation's summary without the scenario name and server figures).
pub fn ops_json(
    overall: &Summary,
    rows: &[(&str, &Summary)],
    count_key: &str,
    count: u64,
) -> Value {
    let mut v = overall.to_json();
    let ops: Vec<Value> = rows
        .iter()
        .map(|(label, s)| {
            let mut o = s.to_json();
            if let Some(obj) = o.as_object_mut() {
                obj.remove("scenario");
                obj.retain(|k, _| !k.starts_with("server_"));
                obj.insert("operation".to_string(), json!(label));
            }
            o
        })
        .collect();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(count_key.to_string(), json!(count));
        obj.insert("operations".to_string(), Value::Array(ops));
    }
    v
}

/// A resource created in the current cycle.
struct Live {
    res: Res,
    id: String,
    /// The last ETag the server sent for it, verbatim, for `If-Match`.
    etag: Option<String>,
    body: Value,
}

fn etag(headers: &HeaderMap) -> Option<String> {
    headers
        .get(ETAG)?
        .to_str()
        .ok()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// One task's connection, window and tallies.
struct Worker {
    target: Arc<Target>,
    conn: Conn,
    warm_end: Instant,
    end: Instant,
    tallies: [Tally; 4],
}

impl Worker {
    /// Send one request of `op`, recording it when the window is open; the response when its
    /// status is a success for `op`.
    async fn exchange(
        &mut self,
        op: Op,
        method: Method,
        rel: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Option<Response> {
        let tally = &mut self.tallies[op.index()];
        let body = match body.map(serde_json::to_vec).transpose() {
            Ok(b) => b.map(Bytes::from),
            Err(e) => {
                tally.error(|| format!("{} {rel}: serialise: {e}", op.name()));
                return None;
            }
        };
        let req = match self.target.request(method, rel, body, if_match) {
            Ok(r) => r,
            Err(e) => {
                tally.error(|| format!("{} {rel}: {e}", op.name()));
                return None;
            }
        };
        let sent = Instant::now();
        let measuring = sent >= self.warm_end;
        match self.conn.send(req).await {
            Ok(resp) => {
                let micros = sent.elapsed().as_micros();
                let ok = op.accepts(resp.status);
                if measuring {
                    tally
                        .latencies
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                    tally.requests += 1;
                    if !ok {
                        if resp.status == StatusCode::PRECONDITION_FAILED {
                            tally.conflicts += 1;
                        }
                        tally.error(|| format!("{} {rel}: {}", op.name(), describe_status(&resp)));
                    }
                }
                ok.then_some(resp)
            }
            Err(e) => {
                if measuring {
                    tally.requests += 1;
                    tally.transport_errors += 1;
                    tally.error(|| format!("{} {rel}: {e}", op.name()));
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

    /// One cycle; `false` when the window closed before its last request (what it created is
    /// then left in `live`).
    async fn cycle(&mut self, n: u64, live: &mut Vec<Live>) -> bool {
        let (mut patient, mut encounter) = (String::new(), String::new());
        for res in ORDER {
            if self.closed() {
                return false;
            }
            let links = Links {
                patient: &patient,
                encounter: &encounter,
            };
            let body = crud_payload::resource(res, &links, n);
            let rel = format!("/{}", res.name());
            let measuring = Instant::now() >= self.warm_end;
            let Some(resp) = self
                .exchange(Op::Create, Method::POST, &rel, Some(&body), None)
                .await
            else {
                break;
            };
            let Some(id) = created_id_of(&resp, res.name()) else {
                if measuring {
                    self.tallies[Op::Create.index()].error(|| {
                        format!(
                            "create {rel}: HTTP {} without an id in body or Location",
                            resp.status.as_u16()
                        )
                    });
                }
                break;
            };
            match res {
                Res::Patient => patient.clone_from(&id),
                Res::Encounter => encounter.clone_from(&id),
                _ => {}
            }
            live.push(Live {
                res,
                id,
                etag: etag(&resp.headers),
                body,
            });
        }
        for l in live.iter_mut() {
            if self.closed() {
                return false;
            }
            let rel = format!("/{}/{}", l.res.name(), l.id);
            if let Some(resp) = self.exchange(Op::Read, Method::GET, &rel, None, None).await {
                if let Some(tag) = etag(&resp.headers) {
                    l.etag = Some(tag);
                }
            }
        }
        for l in live.iter_mut() {
            if self.closed() {
                return false;
            }
            let rel = format!("/{}/{}", l.res.name(), l.id);
            let body = crud_payload::updated(l.res, &l.body, &l.id, n);
            let sent = self
                .exchange(
                    Op::Update,
                    Method::PUT,
                    &rel,
                    Some(&body),
                    l.etag.as_deref(),
                )
                .await;
            if let Some(resp) = sent {
                l.etag = etag(&resp.headers);
            }
        }
        while let Some(l) = live.last() {
            if self.closed() {
                return false;
            }
            let rel = format!("/{}/{}", l.res.name(), l.id);
            self.exchange(Op::Delete, Method::DELETE, &rel, None, None)
                .await;
            live.pop();
        }
        true
    }

    /// Untimed, best effort: delete what an unfinished cycle left, newest first.
    async fn clean_up(&mut self, live: Vec<Live>) {
        for l in live.iter().rev() {
            let rel = format!("/{}/{}", l.res.name(), l.id);
            let Ok(req) = self.target.request(Method::DELETE, &rel, None, None) else {
                break;
            };
            if self.conn.send(req).await.is_err() {
                break;
            }
        }
    }
}

/// What one task returns: its tallies, complete cycles and when it stopped measuring.
type TaskOutcome = ([Tally; 4], u64, Instant);

async fn task(
    target: Arc<Target>,
    t: u64,
    warm_end: Instant,
    end: Instant,
    timeout: Duration,
) -> TaskOutcome {
    let mut w = Worker {
        conn: Conn::new(target.addr, timeout),
        target,
        warm_end,
        end,
        tallies: Default::default(),
    };
    let mut live = Vec::new();
    let mut cycles = 0u64;
    // Cycle numbers only vary the data; tasks use disjoint ranges.
    let mut n = t << 32;
    loop {
        n += 1;
        let cycle_start = Instant::now();
        if cycle_start >= end || !w.cycle(n, &mut live).await {
            break;
        }
        if cycle_start >= warm_end {
            cycles += 1;
        }
    }
    let stopped = Instant::now();
    w.clean_up(live).await;
    (w.tallies, cycles, stopped)
}

/// Run the scenario: `cfg.connections` tasks, each its own keep-alive connection.
pub async fn run(name: &str, target: &Target, cfg: &RunConfig) -> CrudReport {
    let conns = cfg.connections.max(1);
    let target = Arc::new(target.clone());
    let warm_end = Instant::now() + cfg.warmup;
    let end = warm_end + cfg.duration;
    let cpu = CpuWindow::watch(cfg.server_pid, warm_end, end);
    let handles: Vec<_> = (0..conns)
        .map(|t| tokio::spawn(task(target.clone(), t as u64, warm_end, end, cfg.timeout)))
        .collect();
    let mut tallies = Vec::with_capacity(conns);
    let mut cycles = 0;
    let mut stopped = end;
    let mut failed_tasks = Vec::new();
    for h in handles {
        match h.await {
            Ok((t, c, s)) => {
                tallies.push(t);
                cycles += c;
                stopped = stopped.max(s);
            }
            Err(e) => failed_tasks.push(format!("load task failed: {e}")),
        }
    }
    let elapsed = stopped.saturating_duration_since(warm_end).as_secs_f64();
    let mut r = report(name, tallies, cycles, elapsed);
    if let Some(first) = failed_tasks.first() {
        r.overall.errors += failed_tasks.len() as u64;
        r.overall.first_error.get_or_insert_with(|| first.clone());
    }
    r.overall.server_cpu_us_per_request = cpu.per_request(r.overall.requests).await;
    r
}

#[cfg(test)]
#[path = "crud_tests.rs"]
mod tests;
