//! The SQLite writer: one OS thread that owns the only write connection and applies queued
//! commits synchronously with cached prepared statements (no hop between threads per
//! statement). Group commit: the queued jobs run in one transaction, so one fsync
//! (`synchronous = FULL`) makes a whole group durable, and a failing job never affects its
//! neighbours: the group first runs without savepoints (a savepoint copies every page it
//! touches into a sub-journal, which cost a fifth of the writer's time), and only if a job
//! fails is the transaction rolled back and the group re-run with one SAVEPOINT per job. A
//! job's reply is sent only after COMMIT returns. Checkpoints of the log run on a thread of
//! their own, the writer only keeping the log bounded (`sqlite_checkpoints.rs`); so do the
//! planner statistics' row counts (`sqlite_statistics.rs`).
//!
//! The writer's turn ([`WriterTurn`]): the thread holds it through each group and the work after
//! it, and the only other SQLite writes while serving, the authorization server's
//! (`store/auth.rs`, on the read pool), take it before they write (migrations, and the
//! statistics of `coplan reindex` and `coplan seed`, run before serving or from the command
//! line). A steady writer is never
//! idle long enough for SQLite's busy handler, which retries after sleeps of up to 100 ms, to
//! find the lock free: token refreshes waited up to 7.6 s under the soak's load. With the turn
//! (a FIFO lock) a write waits for the writer's work in progress and the writes queued before it.

use super::search::render_exists;
use super::sql::{Bind, Dialect};
use super::sqlite_checkpoints::{Checkpoints, WalPolicy, WRITER_BUSY_TIMEOUT};
use super::sqlite_index_rows::{insert_index_row, replace_index_rows};
use super::sqlite_statistics::{AtStart, Statistics, StatisticsPolicy};
use super::{CommitBatch, Expected, StoreError, StoreResult, VersionWrite};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Most jobs folded into one transaction.
const MAX_GROUP: usize = 128;

/// The right to write to the file: held by the writer thread through each group and the work
/// after it (checkpoints, statistics), taken by any other writer before it writes. First come,
/// first served (tokio's `Mutex` is fair).
#[derive(Clone, Default)]
pub struct WriterTurn(Arc<tokio::sync::Mutex<()>>);

impl WriterTurn {
    /// Wait for the writer's work in progress, if any (a group and what follows it), and keep
    /// the next group from starting until the guard is dropped.
    pub async fn take(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.0.clone().lock_owned().await
    }

    /// [`WriterTurn::take`] for the writer thread (never in an async context).
    fn take_blocking(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.blocking_lock()
    }
}

/// One atomic batch and where to send its outcome.
pub struct WriteJob {
    pub batch: CommitBatch,
    pub reply: oneshot::Sender<StoreResult<()>>,
}

fn internal(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(format!("SQLite is busy: {e}"))
        }
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::DiskFull => {
            StoreError::Full(format!("SQLite: {e}"))
        }
        other => StoreError::Internal(format!("SQLite write failed: {other}")),
    }
}

/// Open the write connection and start the writer thread, which writes only in its `turn`; jobs
/// are sent on the returned channel.
pub fn start(
    path: &Path,
    wal: WalPolicy,
    statistics: StatisticsPolicy,
    turn: WriterTurn,
) -> StoreResult<mpsc::Sender<WriteJob>> {
    let conn = Connection::open(path).map_err(internal)?;
    conn.busy_timeout(WRITER_BUSY_TIMEOUT).map_err(internal)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(internal)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(internal)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(internal)?;
    conn.pragma_update(None, "cache_size", "-65536")
        .map_err(internal)?;
    // Savepoint sub-journals (the slow path below) stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(internal)?;
    conn.set_prepared_statement_cache_capacity(64);
    let checkpoints = Checkpoints::start(path, &conn, wal)?;
    let statistics = Statistics::start(path, AtStart::read(&conn), statistics)?;
    let (sender, jobs) = mpsc::channel::<WriteJob>();
    std::thread::Builder::new()
        .name("coplan-sqlite-writer".into())
        .spawn(move || run(conn, jobs, checkpoints, statistics, turn))
        .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer: {e}")))?;
    Ok(sender)
}

fn run(
    mut conn: Connection,
    jobs: mpsc::Receiver<WriteJob>,
    checkpoints: Checkpoints,
    mut statistics: Statistics,
    turn: WriterTurn,
) {
    while let Ok(first) = jobs.recv() {
        let _turn = turn.take_blocking();
        // Jobs that came while another writer had the turn join the group.
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let results = apply_group(&mut conn, &group);
        let written: u64 = group
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(job, _)| job.batch.versions.len() as u64)
            .sum();
        for (job, result) in group.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
        // After the replies: nobody waits for these (sqlite_checkpoints.rs,
        // sqlite_statistics.rs).
        checkpoints.after_group(&conn);
        statistics.after_group(&conn, written);
    }
}

/// Resources stored now (the statistics' starting point).
pub(super) fn apply_group(conn: &mut Connection, group: &[WriteJob]) -> Vec<StoreResult<()>> {
    let fail_all = |e: rusqlite::Error| {
        let err = internal(e);
        group.iter().map(|_| Err(err.clone())).collect()
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(e);
    }
    // Fast path: every job straight into the transaction. A job refused by its checks (a lost
    // race, a conditional create that matches now) has written nothing and is simply answered;
    // only a job that fails part-way through its writes needs the slow path.
    let mut results = Vec::with_capacity(group.len());
    let mut partial = None;
    for job in group {
        match apply_batch(conn, &job.batch) {
            Ok(()) => results.push(Ok(())),
            Err(Failure::Untouched(err)) => results.push(Err(err)),
            Err(Failure::Partial(err)) => {
                partial = Some(err);
                break;
            }
        }
    }
    let results = match partial {
        None => results,
        Some(err) if group.len() == 1 => {
            // A lone job needs no savepoint: its failure is the transaction's.
            return match conn.execute_batch("ROLLBACK") {
                Ok(()) => vec![Err(err)],
                Err(e) => fail_all(e),
            };
        }
        Some(_) => {
            // Undo everything and apply the jobs again, each in its own savepoint.
            if let Err(e) = conn
                .execute_batch("ROLLBACK")
                .and_then(|()| conn.execute_batch("BEGIN IMMEDIATE"))
            {
                return fail_all(e);
            }
            group
                .iter()
                .map(|job| apply_job_in_savepoint(conn, &job.batch))
                .collect()
        }
    };
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return fail_all(e);
    }
    results
}

fn apply_job_in_savepoint(conn: &Connection, batch: &CommitBatch) -> StoreResult<()> {
    conn.execute_batch("SAVEPOINT job").map_err(internal)?;
    let outcome = apply_batch(conn, batch).map_err(Failure::into_error);
    if outcome.is_err() {
        conn.execute_batch("ROLLBACK TO job").map_err(internal)?;
    }
    conn.execute_batch("RELEASE job").map_err(internal)?;
    outcome
}

/// Why a batch was not applied.
enum Failure {
    /// Refused by its checks before it wrote anything (a conflict, a conditional create that
    /// matches now): the transaction holds none of it.
    Untouched(StoreError),
    /// Failed part-way through its writes: the transaction must be rolled back.
    Partial(StoreError),
}

impl Failure {
    fn into_error(self) -> StoreError {
        match self {
            Failure::Untouched(e) | Failure::Partial(e) => e,
        }
    }
}

/// The checks of a batch, before it writes anything: its conditional creates' searches, the
/// version each resource's first write replaces (measured on concurrent PHQ-9s, a lost race
/// found only while writing sent a third of the groups down the slow path, every job applied
/// twice), and the audit log entries it consumes. On this one writer nothing can change
/// between these checks and the writes.
fn check_batch(conn: &Connection, batch: &CommitBatch) -> StoreResult<()> {
    for guard in &batch.none_matching {
        let rendered = render_exists(Dialect::Sqlite, &guard.query);
        let binds = rendered.binds.iter().map(|b| match b {
            Bind::Text(t) => SqlValue::Text(t.clone()),
            Bind::OptText(t) => t.clone().map_or(SqlValue::Null, SqlValue::Text),
            Bind::Int(i) => SqlValue::Integer(*i),
            Bind::Float(f) => SqlValue::Real(*f),
        });
        let matching: bool = conn
            .prepare(&rendered.sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(binds), |row| row.get(0)))
            .map_err(internal)?;
        if matching {
            return Err(StoreError::NowMatches {
                resource_type: guard.query.resource_type.clone(),
            });
        }
    }
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(batch.versions.len());
    for w in &batch.versions {
        if !seen.insert((w.resource_type.as_str(), w.id.as_str())) {
            // A later write of the same resource replaces the batch's own earlier one: checked
            // as it is written.
            continue;
        }
        let current: Option<i64> = conn
            .prepare_cached(
                "SELECT version_id FROM resource_current WHERE resource_type = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![w.resource_type, w.id], |r| r.get(0))
                    .optional()
            })
            .map_err(internal)?;
        let holds = match w.expected {
            Expected::Absent => current.is_none(),
            Expected::Version(v) | Expected::Reindex(v) => current == Some(v),
        };
        if !holds {
            return Err(StoreError::Conflict {
                resource_type: w.resource_type.clone(),
                id: w.id.clone(),
            });
        }
    }
    for seq in &batch.consumed_audit_log {
        let present: i64 = conn
            .prepare_cached("SELECT count(*) FROM audit_log WHERE seq = ?1")
            .and_then(|mut s| s.query_row(params![seq], |r| r.get(0)))
            .map_err(internal)?;
        if present != 1 {
            return Err(super::audit_log_taken(*seq));
        }
    }
    Ok(())
}

/// Every version of a batch, then its outbox events and audit log entries — after
/// [`check_batch`], so a refused batch leaves the transaction untouched.
fn apply_batch(conn: &Connection, batch: &CommitBatch) -> Result<(), Failure> {
    check_batch(conn, batch).map_err(|e| match e {
        // A refusal: nothing was written.
        StoreError::Conflict { .. } | StoreError::NowMatches { .. } => Failure::Untouched(e),
        // The database failed (I/O, memory, a full disk: SQLite may have rolled the whole
        // transaction back): never carry on with the group as if nothing happened.
        other => Failure::Partial(other),
    })?;
    write_batch(conn, batch).map_err(Failure::Partial)
}

/// The writes of a checked batch.
fn write_batch(conn: &Connection, batch: &CommitBatch) -> StoreResult<()> {
    for w in &batch.versions {
        apply_write(conn, w)?;
    }
    for event in &batch.outbox {
        conn.prepare_cached("INSERT INTO outbox (topic, recorded_us, payload) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| {
                s.execute(params![
                    event.topic,
                    event.recorded_us,
                    event.payload.as_ref()
                ])
            })
            .map_err(internal)?;
    }
    for entry in &batch.audit_log {
        conn.prepare_cached("INSERT INTO audit_log (id, recorded_us, record) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| {
                s.execute(params![entry.id, entry.recorded_us, entry.record.as_ref()])
            })
            .map_err(internal)?;
    }
    for seq in &batch.consumed_audit_log {
        let deleted = conn
            .prepare_cached("DELETE FROM audit_log WHERE seq = ?1")
            .and_then(|mut s| s.execute(params![seq]))
            .map_err(internal)?;
        if deleted != 1 {
            return Err(super::audit_log_taken(*seq));
        }
    }
    Ok(())
}

fn apply_write(conn: &Connection, w: &VersionWrite) -> StoreResult<()> {
    let deleted = w.body.is_none();
    let body = w.body.as_deref();
    let changed = match w.expected {
        Expected::Absent => conn
            .prepare_cached(
                "INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![w.resource_type, w.id, w.version_id, w.last_updated_us, deleted, body])),
        Expected::Version(current) => conn
            .prepare_cached(
                "UPDATE resource_current SET version_id = ?1, last_updated_us = ?2, deleted = ?3, body = ?4 \
                 WHERE resource_type = ?5 AND id = ?6 AND version_id = ?7",
            )
            .and_then(|mut s| s.execute(params![w.version_id, w.last_updated_us, deleted, body, w.resource_type, w.id, current])),
        Expected::Reindex(current) => conn
            .prepare_cached(
                "SELECT count(*) FROM resource_current \
                 WHERE resource_type = ?1 AND id = ?2 AND version_id = ?3 AND body IS NOT NULL",
            )
            .and_then(|mut s| s.query_row(params![w.resource_type, w.id, current], |r| r.get::<_, i64>(0)))
            .map(|n| n as usize),
    }
    .map_err(internal)?;
    if changed != 1 {
        return Err(StoreError::Conflict {
            resource_type: w.resource_type.clone(),
            id: w.id.clone(),
        });
    }
    if matches!(w.expected, Expected::Version(_) | Expected::Reindex(_)) {
        replace_index_rows(conn, w).map_err(internal)?;
    } else {
        // `ord` numbers the resource's rows within each table (the tables' keys end with it).
        let mut next_ord = [0i64; super::index::INDEX_TABLES.len()];
        for row in &w.index {
            let ord = &mut next_ord[row.table()];
            *ord += 1;
            insert_index_row(conn, &w.resource_type, &w.id, *ord, row).map_err(internal)?;
        }
    }
    if matches!(w.expected, Expected::Reindex(_)) {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![w.resource_type, w.id, w.version_id, w.last_updated_us, w.method.as_str(), body]))
    .map_err(internal)?;
    Ok(())
}
