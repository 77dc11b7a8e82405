//! The SQLite query planner's statistics kept current as the database grows, without stalling
//! the writer (sqlite.org/lang_analyze.html; when: `analyze_schedule.rs`).
//!
//! Measured on a 5.2 GB database grown by 9 minutes of the careplan soak workload: the SQLite
//! this server bundles (3.46) counts every index's rows exactly in `ANALYZE`, even with
//! `analysis_limit` (which samples only the per-prefix averages): 1.4–2.9 s a run (`idx_token`
//! 0.69 s, `idx_reference` 0.66 s, `resource_current` 0.34 s; Debian's 3.40 estimates the counts
//! and takes 0.02 s). `ANALYZE` is one write transaction, and it ran on the writer's thread:
//! every commit queued behind it — the p99 spikes of the SQLite soak, growing with the file
//! (1.0 → 3.7 s over 30 minutes). And `ANALYZE` does not change the schema cookie, so a
//! connection that had loaded the schema kept planning with the statistics it loaded then:
//! the pool's readers never saw a refresh.
//!
//! Now:
//! * while a full `ANALYZE` is cheap (the database had fewer than
//!   [`StatisticsPolicy::full_analyze_below_rows`] resources at start, and no run has taken
//!   longer than [`StatisticsPolicy::full_analyze_budget`]), the writer runs it as before;
//! * after that a refresh counts rows only: a background thread with a connection of its own
//!   counts each table's rows in a read transaction (nothing a writer waits for), and after
//!   its next group the writer writes each count as the row count of that table's statistics
//!   rows (a few small updates), keeping SQLite's sampled averages, except those the sample
//!   could not tell (every sampled row sharing the prefix), which grow with the table. A table with rows but no
//!   statistics yet is analyzed then if it is small ([`StatisticsPolicy::analyze_new_below_rows`]);
//! * either way, the same transaction creates and drops a table: the schema cookie changes,
//!   and every connection reloads the statistics before its next statement.
//!
//! Hand-written: no crate maintains SQLite statistics; this is the schedule around two SQL
//! statements.

use super::analyze_schedule::AnalyzeSchedule;
use super::{StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// When the writer may still run a full `ANALYZE`, and which new tables it analyzes.
#[derive(Debug, Clone, Copy)]
pub(super) struct StatisticsPolicy {
    /// A full `ANALYZE` that took longer makes every later refresh a count.
    pub full_analyze_budget: Duration,
    /// A database opened with this many resources or more is refreshed by counts from the
    /// start.
    pub full_analyze_below_rows: u64,
    /// A table without statistics is analyzed when a count finds it holds fewer rows.
    pub analyze_new_below_rows: u64,
}

impl StatisticsPolicy {
    /// 50 ms (a full `ANALYZE` took 51 ms at ~40,000 versions and 116 ms at ~150,000 in the
    /// soak), 20,000 resources, tables of up to 100,000 rows.
    pub(super) const DEFAULT: StatisticsPolicy = StatisticsPolicy {
        full_analyze_budget: Duration::from_millis(50),
        full_analyze_below_rows: 20_000,
        analyze_new_below_rows: 100_000,
    };
}

/// The writer's side: the schedule, and the counting thread's requests and answers (channels,
/// as the checkpoints' thread is woken: it ends when the writer drops its side).
pub(super) struct Statistics {
    schedule: AnalyzeSchedule,
    policy: StatisticsPolicy,
    full: bool,
    /// Due at the next group whatever it writes: the versions written since the last refresh,
    /// before this start, made it due already.
    due: bool,
    /// Wakes the counting thread; a request already waiting is enough.
    request: mpsc::SyncSender<()>,
    /// Each table's rows, and how long counting them took.
    counted: mpsc::Receiver<(Vec<TableRows>, Duration)>,
}

/// A table's rows, as the counting thread found them.
type TableRows = (String, u64);

impl Statistics {
    /// Starts the counting thread on its own connection to `path`; the writer's database is
    /// as [`AtStart`] describes it.
    pub(super) fn start(
        path: &Path,
        at_start: AtStart,
        policy: StatisticsPolicy,
    ) -> StoreResult<Self> {
        let failed =
            |e: String| StoreError::Internal(format!("cannot start the SQLite statistics: {e}"));
        let conn = Connection::open(path).map_err(|e| failed(e.to_string()))?;
        // A read in WAL mode waits only while the log is being recovered or reset.
        conn.busy_timeout(Duration::from_secs(1))
            .map_err(|e| failed(e.to_string()))?;
        let (request, requests) = mpsc::sync_channel::<()>(1);
        let (answer, counted) = mpsc::channel();
        std::thread::Builder::new()
            .name("coplan-sqlite-statistics".into())
            .spawn(move || count_when_asked(&conn, &requests, &answer))
            .map_err(|e| failed(e.to_string()))?;
        let mut schedule = AnalyzeSchedule::new(at_start.rows);
        let due = schedule.record(at_start.written_since);
        Ok(Statistics {
            schedule,
            policy,
            full: at_start.rows + at_start.written_since < policy.full_analyze_below_rows,
            due,
            request,
            counted,
        })
    }

    /// After a group's replies (nobody waits for this): write counts that have arrived (the
    /// latest, if several have), and refresh the statistics if `written` more versions make
    /// them due.
    pub(super) fn after_group(&mut self, writer: &Connection, written: u64) {
        if let Some((counts, counting)) = self.counted.try_iter().last() {
            let started = Instant::now();
            match write_counts(writer, &counts, self.policy.analyze_new_below_rows) {
                Ok(()) => tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    counted_in_ms = counting.as_millis() as u64,
                    tables = counts.len(),
                    "SQLite planner statistics refreshed from row counts"
                ),
                Err(e) => tracing::warn!(error = %e, "SQLite statistics could not be refreshed"),
            }
        }
        let due = std::mem::take(&mut self.due);
        if !(self.schedule.record(written) || due) {
            return;
        }
        if !self.full {
            let _ = self.request.try_send(());
            return;
        }
        let started = Instant::now();
        match full_analyze(writer) {
            Ok(()) => {
                let took = started.elapsed();
                tracing::info!(
                    ms = took.as_millis() as u64,
                    "SQLite planner statistics refreshed"
                );
                if took > self.policy.full_analyze_budget {
                    self.full = false;
                }
            }
            Err(e) => tracing::warn!(error = %e, "SQLite statistics could not be refreshed"),
        }
    }
}

/// What the statistics say of a database being opened, read without scanning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AtStart {
    /// Current resources, as the statistics last counted them (counted now if there are none).
    pub rows: u64,
    /// Versions written since the statistics were last refreshed, by any earlier process: the
    /// history's sequence now less the history's rows in the statistics. A process counts the
    /// versions it writes, so without this a server restarted more often than it writes a
    /// quarter of its database would keep its first statistics for ever.
    pub written_since: u64,
}

impl AtStart {
    pub(super) fn read(conn: &Connection) -> AtStart {
        let stat_rows = |table: &str| {
            conn.query_row(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = ?1 LIMIT 1",
                [table],
                |r| r.get::<_, String>(0),
            )
            .ok()
            .and_then(|stat| stat_rows(&stat))
        };
        let Some(rows) = stat_rows("resource_current") else {
            // No statistics yet: a count (a small database, or the first start of a large one).
            let rows = conn
                .query_row("SELECT count(*) FROM resource_current", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_or(0, |n| u64::try_from(n).unwrap_or(0));
            return AtStart {
                rows,
                written_since: 0,
            };
        };
        // Every version ever written has a sequence number (AUTOINCREMENT), and the history
        // keeps its rows, so the gap is what was written since the history was last described.
        let sequence = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'resource_version'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_or(0, |n| u64::try_from(n).unwrap_or(0));
        let described = stat_rows("resource_version").unwrap_or(0);
        AtStart {
            rows,
            written_since: sequence.saturating_sub(described),
        }
    }
}

/// The counting thread: one count of every table per request; it ends with the writer.
fn count_when_asked(
    conn: &Connection,
    requests: &mpsc::Receiver<()>,
    answer: &mpsc::Sender<(Vec<TableRows>, Duration)>,
) {
    while requests.recv().is_ok() {
        let started = Instant::now();
        match count_tables(conn) {
            Ok(counts) => {
                if answer.send((counts, started.elapsed())).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "SQLite tables could not be counted"),
        }
    }
}

/// Every table's rows, counted in one read transaction.
fn count_tables(conn: &Connection) -> rusqlite::Result<Vec<TableRows>> {
    let snapshot = conn.unchecked_transaction()?;
    let tables: Vec<String> = snapshot
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables.into_iter().filter(|t| is_plain_name(t)) {
        let rows: i64 =
            snapshot.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })?;
        counts.push((table, u64::try_from(rows).unwrap_or(0)));
    }
    snapshot.finish()?;
    Ok(counts)
}

/// Table names this server creates (a name is never bound, so only these are put in SQL).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Creating and dropping a table changes the schema cookie: every connection reloads the
/// schema, and with it the statistics, before its next statement (`ANALYZE` alone does not).
pub(super) const RELOAD: &str = "CREATE TABLE IF NOT EXISTS coplan_statistics_reload (x); \
     DROP TABLE IF EXISTS coplan_statistics_reload;";

fn full_analyze(writer: &Connection) -> rusqlite::Result<()> {
    writer
        .execute_batch(&format!(
            "BEGIN IMMEDIATE; PRAGMA analysis_limit = {ANALYSIS_LIMIT}; ANALYZE; {RELOAD} COMMIT"
        ))
        .inspect_err(|_| end_transaction(writer))
}

/// After a failure: never leave the writer inside a transaction (its next group begins one). A
/// failed COMMIT can leave the transaction open (busy, full disk, I/O error).
fn end_transaction(writer: &Connection) {
    if !writer.is_autocommit() {
        let _ = writer.execute_batch("ROLLBACK");
    }
}

/// Rows `ANALYZE` samples per index (`analysis_limit`).
const ANALYSIS_LIMIT: u64 = 1_000;

/// Each counted table's row count into its statistics rows ([`rescaled`]); a small table
/// without statistics analyzed; then the reload.
fn write_counts(
    writer: &Connection,
    counts: &[TableRows],
    analyze_below: u64,
) -> rusqlite::Result<()> {
    writer.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = (|| {
        for (table, rows) in counts {
            let stats: Vec<(Option<String>, String)> = writer
                .prepare_cached("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = ?1")?
                .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (index, stat) in &stats {
                writer
                    .prepare_cached(
                        "UPDATE sqlite_stat1 SET stat = ?3 WHERE tbl = ?1 AND idx IS ?2",
                    )?
                    .execute(params![table, index, rescaled(stat, *rows)])?;
            }
            if stats.is_empty() && *rows > 0 && *rows < analyze_below && is_plain_name(table) {
                writer.execute_batch(&format!(
                    "PRAGMA analysis_limit = {ANALYSIS_LIMIT}; ANALYZE \"{table}\""
                ))?;
            }
        }
        writer.execute_batch(RELOAD)
    })();
    outcome
        .and_then(|()| writer.execute_batch("COMMIT"))
        .inspect_err(|_| end_transaction(writer))
}

/// The table's rows a `sqlite_stat1` row states (its first number).
fn stat_rows(stat: &str) -> Option<u64> {
    stat.split(' ').next()?.parse().ok()
}

/// A `sqlite_stat1` row (`rows avg1 avg2 … [options]`) for a table now holding `rows`. An
/// average of at least [`ANALYSIS_LIMIT`] rows per prefix means every sampled row shared the
/// prefix: a lower bound, which grows with the table (rows per type, say), so it is scaled by
/// the growth; smaller averages were measured and are kept, as are options (`unordered`, …).
fn rescaled(stat: &str, rows: u64) -> String {
    let before = stat_rows(stat).filter(|&n| n > 0);
    let words = stat.split(' ').skip(1);
    let mut out = rows.to_string();
    for word in words {
        out.push(' ');
        match (word.parse::<u64>(), before) {
            (Ok(average), Some(before)) if average >= ANALYSIS_LIMIT => {
                let scaled = u128::from(average) * u128::from(rows) / u128::from(before);
                out.push_str(&u64::try_from(scaled).unwrap_or(u64::MAX).max(1).to_string());
            }
            _ => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{is_plain_name, rescaled};

    #[test]
    fn a_count_replaces_the_rows_and_scales_the_averages_the_sample_could_not_tell() {
        assert_eq!(rescaled("1001 1001 3 1", 2002), "2002 2002 3 1");
        assert_eq!(rescaled("4000 1001 1001 2 2", 8000), "8000 2002 2002 2 2");
        assert_eq!(rescaled("1001 77 1", 2001), "2001 77 1");
        assert_eq!(rescaled("2782", 5000), "5000");
        assert_eq!(rescaled("100 3 unordered", 200), "200 3 unordered");
        assert_eq!(rescaled("0 1001", 10), "10 1001", "no growth known from 0");
        assert_eq!(rescaled("junk 1001", 10), "10 1001");
    }

    #[test]
    fn only_plain_table_names_are_counted() {
        assert!(is_plain_name("idx_token"));
        assert!(is_plain_name("resource_current"));
        assert!(!is_plain_name(""));
        assert!(!is_plain_name("a\"; DROP TABLE x; --"));
        assert!(!is_plain_name("Mixed"));
    }
}
