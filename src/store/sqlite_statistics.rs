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
//!   counts each table's rows (nothing a writer waits for), and after its next group the
//!   writer writes each count as the row count of that table's statistics rows (a few small
//!   updates), keeping SQLite's sampled averages, except those the sample could not tell
//!   (every sampled row sharing the prefix), which grow with the table. A table with rows but
//!   no statistics yet is analyzed then if it is small
//!   ([`StatisticsPolicy::analyze_new_below_rows`]);
//! * a count reads at most [`StatisticsPolicy::count_at_most`] rows of a table, each table in a
//!   read transaction of its own; a larger table's rows are estimated: the rows its statistics
//!   stated, grown as the history's sequence grew since ([`estimated_rows`]). Measured in the
//!   30-minute authenticated soak (2026-12-07, benches/RESULTS.md): counting every table whole
//!   in one read transaction held its snapshot ever longer as the file grew (to 35 GB), up to
//!   a minute; the checkpoints cannot reset the write-ahead log past a reader's snapshot, so
//!   at each refresh (minutes 7, 9, 11, 14, 18, 23, 29) the log grew, to 0.9–4 GB from the
//!   11th minute instead of its 64 MiB, and requests a second halved and the p99 rose to
//!   230–337 ms (from ~120) until it was copied back;
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
    /// A table without statistics is analyzed when a count finds it holds fewer rows (counted
    /// exactly: a table past [`StatisticsPolicy::count_at_most`] is never analyzed by a count).
    pub analyze_new_below_rows: u64,
    /// A count reads at most this many rows of a table; a larger table's rows are estimated
    /// ([`estimated_rows`]).
    pub count_at_most: u64,
}

impl StatisticsPolicy {
    /// 50 ms (a full `ANALYZE` took 51 ms at ~40,000 versions and 116 ms at ~150,000 in the
    /// soak), 20,000 resources, tables of up to 100,000 rows, counts of up to 1,000,000 rows
    /// (a snapshot of well under a second while the file is in the page cache).
    pub(super) const DEFAULT: StatisticsPolicy = StatisticsPolicy {
        full_analyze_budget: Duration::from_millis(50),
        full_analyze_below_rows: 20_000,
        analyze_new_below_rows: 100_000,
        count_at_most: 1_000_000,
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
type TableRows = (String, Counted);

/// What a bounded count found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// The table's rows, all counted.
    Exact(u64),
    /// The count stopped at the bound: the table holds at least this many.
    AtLeast(u64),
}

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
            .spawn(move || count_when_asked(&conn, policy.count_at_most, &requests, &answer))
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
                    estimated = counts
                        .iter()
                        .filter(|(_, c)| matches!(c, Counted::AtLeast(_)))
                        .count(),
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
        let stat_rows = |table: &str| described_rows(conn, table).ok().flatten();
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
        let sequence = history_sequence(conn);
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
    at_most: u64,
    requests: &mpsc::Receiver<()>,
    answer: &mpsc::Sender<(Vec<TableRows>, Duration)>,
) {
    while requests.recv().is_ok() {
        let started = Instant::now();
        match count_tables(conn, at_most) {
            Ok(counts) => {
                if answer.send((counts, started.elapsed())).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "SQLite tables could not be counted"),
        }
    }
}

/// Every table's rows, each table counted by a statement of its own that reads at most
/// `at_most` of them: each is its own short read transaction, so the checkpoints can reset the
/// write-ahead log between them (one transaction over every table of a 35 GB file held its
/// snapshot for up to a minute: see the module comment).
fn count_tables(conn: &Connection, at_most: u64) -> rusqlite::Result<Vec<TableRows>> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let limit = i64::try_from(at_most).unwrap_or(i64::MAX);
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables.into_iter().filter(|t| is_plain_name(t)) {
        let rows: i64 = conn.query_row(
            &format!("SELECT count(*) FROM (SELECT 1 FROM \"{table}\" LIMIT ?1)"),
            [limit],
            |r| r.get(0),
        )?;
        let rows = u64::try_from(rows).unwrap_or(0);
        let counted = if rows >= at_most {
            Counted::AtLeast(rows)
        } else {
            Counted::Exact(rows)
        };
        counts.push((table, counted));
    }
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

/// Each counted table's row count into its statistics rows ([`rescaled`]; a table past the
/// count's bound estimated by [`estimated_rows`]); a small table without statistics analyzed;
/// then the reload.
fn write_counts(
    writer: &Connection,
    counts: &[TableRows],
    analyze_below: u64,
) -> rusqlite::Result<()> {
    writer.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = (|| {
        // Read before the loop rewrites the history's statistics.
        let growth = HistoryGrowth {
            versions_now: history_sequence(writer),
            versions_described: described_rows(writer, "resource_version")?,
        };
        for (table, counted) in counts {
            let stats: Vec<(Option<String>, String)> = writer
                .prepare_cached("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = ?1")?
                .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let rows = match *counted {
                Counted::Exact(rows) => rows,
                Counted::AtLeast(rows) => {
                    let before = stats.iter().filter_map(|(_, stat)| stat_rows(stat)).max();
                    estimated_rows(rows, before, growth)
                }
            };
            for (index, stat) in &stats {
                writer
                    .prepare_cached(
                        "UPDATE sqlite_stat1 SET stat = ?3 WHERE tbl = ?1 AND idx IS ?2",
                    )?
                    .execute(params![table, index, rescaled(stat, rows)])?;
            }
            let small = matches!(counted, Counted::Exact(n) if *n > 0 && *n < analyze_below);
            if stats.is_empty() && small && is_plain_name(table) {
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

/// The history's growth since its statistics were written: the versions written (its
/// sequence, read without a scan) against the rows its statistics state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HistoryGrowth {
    versions_now: u64,
    versions_described: Option<u64>,
}

/// The rows of a table whose count stopped at `at_least`: the rows its statistics stated,
/// grown as the history grew since, and never fewer than were counted; without statistics to
/// grow from, what was counted. An approximation: a create adds rows to every large table, an
/// update only to the history, so an update-heavy database overstates its current resources
/// and their index rows — all by the same factor, which keeps their sizes relative to each
/// other, what the planner compares. The tables purged as they grow (the audit log, the
/// authorization tables) stay small enough to be counted.
fn estimated_rows(at_least: u64, before: Option<u64>, growth: HistoryGrowth) -> u64 {
    let grown = match (before, growth.versions_described) {
        (Some(before), Some(described)) if described > 0 => {
            let scaled = u128::from(before) * u128::from(growth.versions_now.max(described))
                / u128::from(described);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        }
        _ => 0,
    };
    grown.max(at_least)
}

/// The rows a table's statistics state (the most any of its rows states), if it has any.
fn described_rows(conn: &Connection, table: &str) -> rusqlite::Result<Option<u64>> {
    let stats: Vec<String> = conn
        .prepare_cached("SELECT stat FROM sqlite_stat1 WHERE tbl = ?1")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(stats.iter().filter_map(|stat| stat_rows(stat)).max())
}

/// The history's sequence: every version ever written (AUTOINCREMENT), 0 before the first.
fn history_sequence(conn: &Connection) -> u64 {
    conn.query_row(
        "SELECT seq FROM sqlite_sequence WHERE name = 'resource_version'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| u64::try_from(n).unwrap_or(0))
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
    use super::{
        count_tables, estimated_rows, is_plain_name, rescaled, write_counts, Counted, HistoryGrowth,
    };
    use rusqlite::Connection;

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
    fn a_table_past_the_count_grows_with_the_history() {
        let growth = |now, described| HistoryGrowth {
            versions_now: now,
            versions_described: described,
        };
        // Statistics of 4,000,000 rows when the history held 2,000,000; it holds 3,000,000.
        assert_eq!(
            estimated_rows(
                1_000_000,
                Some(4_000_000),
                growth(3_000_000, Some(2_000_000))
            ),
            6_000_000
        );
        assert_eq!(
            estimated_rows(1_000_000, Some(500_000), growth(3_000_000, Some(2_000_000))),
            1_000_000,
            "never fewer than were counted"
        );
        assert_eq!(
            estimated_rows(1_000_000, None, growth(3_000_000, Some(2_000_000))),
            1_000_000,
            "no statistics to grow from"
        );
        assert_eq!(
            estimated_rows(1_000_000, Some(4_000_000), growth(3_000_000, None)),
            1_000_000,
            "no history described"
        );
        assert_eq!(
            estimated_rows(1_000_000, Some(4_000_000), growth(3_000_000, Some(0))),
            1_000_000
        );
        assert_eq!(
            estimated_rows(1_000_000, Some(4_000_000), growth(1_000, Some(2_000_000))),
            4_000_000,
            "a sequence behind the statistics does not shrink them"
        );
        assert_eq!(
            estimated_rows(1, Some(u64::MAX), growth(u64::MAX, Some(1))),
            u64::MAX
        );
    }

    /// An in-memory database with `tables` of the given rows each.
    fn database_with(tables: &[(&str, u64)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for (table, rows) in tables {
            conn.execute_batch(&format!(
                "CREATE TABLE {table} (x); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO {table} SELECT i FROM n WHERE {rows} > 0;"
            ))
            .unwrap();
        }
        conn
    }

    #[test]
    fn a_count_reads_at_most_the_bound() {
        let conn = database_with(&[("big", 150), ("small", 50), ("empty", 0)]);
        let mut counts = count_tables(&conn, 100).unwrap();
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            counts,
            [
                ("big".to_string(), Counted::AtLeast(100)),
                ("empty".to_string(), Counted::Exact(0)),
                ("small".to_string(), Counted::Exact(50)),
            ]
        );
        assert_eq!(
            count_tables(&conn, 150).unwrap()[0],
            ("big".to_string(), Counted::AtLeast(150)),
            "a table of exactly the bound may hold more"
        );
    }

    #[test]
    fn every_estimate_grows_from_the_history_as_it_was_before_the_refresh() {
        let conn = database_with(&[("idx_token", 1)]);
        conn.execute_batch(
            "CREATE TABLE resource_version (seq INTEGER PRIMARY KEY AUTOINCREMENT, x); \
             CREATE INDEX by_x ON resource_version (x); CREATE INDEX tokens ON idx_token (x); \
             INSERT INTO resource_version (x) VALUES (1); ANALYZE; DELETE FROM sqlite_stat1; \
             INSERT INTO sqlite_stat1 VALUES ('resource_version', 'by_x', '1000 1'), \
               ('idx_token', 'tokens', '4000 2'); \
             UPDATE sqlite_sequence SET seq = 3000 WHERE name = 'resource_version';",
        )
        .unwrap();
        // The history first: the tables after it grow by what it stated before its rewrite.
        let counts = [
            ("resource_version".to_string(), Counted::AtLeast(100)),
            ("idx_token".to_string(), Counted::AtLeast(100)),
        ];
        write_counts(&conn, &counts, 100_000).unwrap();
        let stat = |table: &str| -> String {
            conn.query_row(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(stat("resource_version"), "3000 1");
        assert_eq!(stat("idx_token"), "12000 2");
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
