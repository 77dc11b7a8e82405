//! The SQLite planner statistics (`sqlite_statistics.rs`): a full `ANALYZE` while it is cheap,
//! then refreshes from row counts made off the writer's thread, each reaching every connection.

use super::super::sqlite_checkpoints::WalPolicy;
use super::super::sqlite_statistics::StatisticsPolicy;
use super::*;
use crate::store::SqliteStore;
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates `count` resources (`s{from}`, …) in one commit.
async fn commit_creates(store: &SqliteStore, from: usize, count: usize) {
    let creates: Vec<VersionWrite> = (from..from + count)
        .map(|n| {
            write(
                &format!("s{n}"),
                Expected::Absent,
                1,
                WriteMethod::Create,
                Some("{}"),
            )
        })
        .collect();
    store.commit_versions(&creates).await.expect("commit");
}

/// Whether every statistics row counts `rows` rows (and there are some).
fn all_count(stats: &[(String, String)], rows: u64) -> bool {
    let prefix = format!("{rows} ");
    !stats.is_empty() && stats.iter().all(|(_, s)| s.starts_with(&prefix))
}

/// The statistics rows of `resource_current`'s indexes, by index, read on a connection of the
/// test's own.
fn resource_current_stats(path: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut statement = conn
        .prepare("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'resource_current' ORDER BY idx")
        .expect("prepare");
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

fn schema_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("PRAGMA schema_version", [], |r| r.get(0))
        .expect("schema_version")
}

/// Keeps the writer busy with updates of the resource `nudge` (they add no current rows) until
/// the statistics of `resource_current` count `rows`, within 10 s; returns them.
async fn until_counted(store: &SqliteStore, path: &Path, rows: u64) -> Vec<(String, String)> {
    until_stats(store, path, &format!("count {rows} rows"), |stats| {
        all_count(stats, rows)
    })
    .await
}

/// Keeps the writer busy with updates of the resource `nudge` until the statistics of
/// `resource_current` are `done` (which `what` describes), within 10 s; returns them.
async fn until_stats(
    store: &SqliteStore,
    path: &Path,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let version = store
            .current("Patient", "nudge")
            .await
            .expect("read")
            .expect("nudge exists")
            .version_id;
        store
            .commit_versions(&[write(
                "nudge",
                Expected::Version(version),
                version + 1,
                WriteMethod::Update,
                Some("{}"),
            )])
            .await
            .expect("nudge");
        let stats = resource_current_stats(path);
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "resource_current's statistics never came to {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The rows the statistics of `table` state, read on a connection of the test's own.
fn described(path: &Path, table: &str) -> Vec<u64> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut statement = conn
        .prepare("SELECT stat FROM sqlite_stat1 WHERE tbl = ?1")
        .expect("prepare");
    let rows = statement
        .query_map([table], |r| r.get::<_, String>(0))
        .expect("query");
    rows.map(|stat| {
        let stat = stat.expect("row");
        stat.split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("rows")
    })
    .collect()
}

/// A fresh store opened with `policy`, migrated, holding the resource `nudge`.
async fn store_with(path: &Path, policy: StatisticsPolicy) -> SqliteStore {
    let store = migrated_sqlite(path, WalPolicy::DEFAULT, policy).await;
    store
        .commit_versions(&[write(
            "nudge",
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{}"),
        )])
        .await
        .expect("nudge");
    store
}

/// A budget no `ANALYZE` meets: the first refresh is a full `ANALYZE`, every later one a count
/// of at most `count_at_most` rows a table.
fn analyze_once_then_count(count_at_most: u64) -> StatisticsPolicy {
    StatisticsPolicy {
        full_analyze_budget: Duration::ZERO,
        full_analyze_below_rows: 1_000_000,
        analyze_new_below_rows: 100_000,
        count_at_most,
    }
}

/// With a budget no `ANALYZE` meets, the first refresh is a full `ANALYZE` (it replaces what
/// the statistics held) and every later one a count: the row counts are exact, the sampled
/// averages are kept, and each refresh changes the schema cookie, so every connection loads
/// the new statistics.
#[tokio::test]
async fn a_full_analyze_over_budget_turns_later_refreshes_into_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let store = store_with(&path, analyze_once_then_count(1_000_000)).await;
    let marker = |path: &Path| {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "INSERT INTO sqlite_stat1 VALUES ('resource_current', 'resource_current', '5 77 1')",
        )
        .expect("marker");
    };
    marker(&path);
    let before = schema_version(&path);

    // With `nudge`, 1,001 versions: the first refresh, a full ANALYZE (the marker is gone).
    commit_creates(&store, 0, 1_000).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while schema_version(&path) == before {
        assert!(Instant::now() < deadline, "no refresh reached the schema");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let analyzed = resource_current_stats(&path);
    assert!(
        analyzed.iter().all(|(_, s)| s.starts_with("1001 ")),
        "{analyzed:?}"
    );
    assert!(
        analyzed.iter().all(|(_, s)| !s.contains(" 77 ")),
        "a full ANALYZE replaced the marker: {analyzed:?}"
    );

    // The averages set by hand survive a counted refresh; the row count is exact.
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "UPDATE sqlite_stat1 SET stat = '1001 77 1' \
             WHERE tbl = 'resource_current' AND idx = 'resource_current'",
        )
        .expect("marker");
    }
    let counted_before = schema_version(&path);
    commit_creates(&store, 1_000, 1_000).await;
    let counted = until_counted(&store, &path, 2_001).await;
    assert!(
        counted.contains(&("resource_current".to_string(), "2001 77 1".to_string())),
        "a count kept the averages: {counted:?}"
    );
    assert!(
        schema_version(&path) > counted_before,
        "the counted refresh changed the schema cookie"
    );
}

/// A table past the count's bound is not read whole (a count held its read transaction for
/// up to a minute on a 35 GB file, and the write-ahead log grew for as long): its rows are
/// those its statistics stated, grown as the history grew since.
#[tokio::test]
async fn a_table_past_the_count_bound_grows_with_the_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let store = store_with(&path, analyze_once_then_count(100)).await;
    // 1,001 versions: the first refresh, a full ANALYZE (then counts, the budget being 0).
    commit_creates(&store, 0, 1_000).await;
    until_counted(&store, &path, 1_001).await;
    let history = described(&path, "resource_version");
    assert!(
        !history.is_empty() && history.iter().all(|&n| n == 1_001),
        "{history:?}"
    );

    // 1,000 more creates: resource_current holds 2,001 resources, past the bound of 100. The
    // counts are written after a later group, so a nudge (an update: no new resource) or more
    // has been written first.
    commit_creates(&store, 1_000, 1_000).await;
    let stats = until_stats(&store, &path, "be refreshed", |stats| {
        !stats.is_empty() && !all_count(stats, 1_001)
    })
    .await;
    let current = described(&path, "resource_current");
    let history = described(&path, "resource_version");
    let conn = rusqlite::Connection::open(&path).expect("open");
    let sequence: u64 = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'resource_version'",
            [],
            |r| r.get(0),
        )
        .expect("sequence");
    let rows = current[0];
    assert!(
        current.iter().all(|&n| n == rows),
        "one count per table: {stats:?}"
    );
    assert!(
        rows > 2_001 && rows <= sequence,
        "estimated from the history's growth (an exact count would be 2,001; the history held \
         {sequence} versions after): {stats:?}"
    );
    assert!(
        !history.is_empty() && history.iter().all(|&n| n == rows),
        "the history grew from the same 1,001 rows to the versions written: {history:?}"
    );
}

/// A database opened at or above `full_analyze_below_rows` is refreshed by counts from the
/// start; a table without statistics (here all of them: `migrate` analyzed empty tables) is
/// analyzed when a count finds it small.
#[tokio::test]
async fn a_large_database_is_refreshed_by_counts_and_new_tables_are_analyzed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let policy = StatisticsPolicy {
        full_analyze_budget: Duration::from_secs(3600),
        full_analyze_below_rows: 0,
        analyze_new_below_rows: 100_000,
        count_at_most: 1_000_000,
    };
    let store = store_with(&path, policy).await;
    assert!(resource_current_stats(&path).is_empty());
    commit_creates(&store, 0, 1_000).await;
    let counted = until_counted(&store, &path, 1_001).await;
    assert_eq!(
        counted.len(),
        2,
        "both indexes of resource_current: {counted:?}"
    );
}

/// The store at `path` opened with the default policies and migrated, as a server starts.
async fn reopened(path: &Path) -> SqliteStore {
    migrated_sqlite(path, WalPolicy::DEFAULT, StatisticsPolicy::DEFAULT).await
}

/// Sets every statistics row of `resource_current` to `stat`, to see whether it is replaced.
fn mark_resource_current(path: &Path, stat: &str) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute(
        "UPDATE sqlite_stat1 SET stat = ?1 WHERE tbl = 'resource_current'",
        [stat],
    )
    .expect("marker");
}

/// Statistics persist in the file: a start gathers them only when the resources have none
/// (or a migration just ran), so restarting a large database does not read its indexes whole.
#[tokio::test]
async fn a_restart_gathers_statistics_only_when_the_resources_have_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let open = || reopened(&path);
    let store = open().await;
    assert!(
        resource_current_stats(&path).is_empty(),
        "the first start analyzed empty tables"
    );
    // Fewer versions than a refresh waits for: only a start can describe them.
    commit_creates(&store, 0, 10).await;
    drop(store);

    let store = open().await;
    let gathered = resource_current_stats(&path);
    assert!(
        all_count(&gathered, 10),
        "a start without statistics of the resources gathers them: {gathered:?}"
    );
    drop(store);

    let marked = "10 77 1";
    mark_resource_current(&path, marked);
    let store = open().await;
    let kept = resource_current_stats(&path);
    assert!(
        kept.iter().all(|(_, s)| s == marked),
        "a start with statistics keeps them: {kept:?}"
    );
    drop(store);
}

/// Versions written by earlier processes count toward the next refresh: a server restarted
/// more often than it writes a quarter of its database still refreshes its statistics.
#[tokio::test]
async fn versions_written_before_a_restart_count_toward_the_next_refresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let open = || reopened(&path);
    let store = open().await;
    commit_creates(&store, 0, 10).await;
    drop(store);
    // The second start describes the 10 resources; 600 more are fewer than a refresh waits for.
    let store = open().await;
    commit_creates(&store, 10, 600).await;
    drop(store);
    let marked = "10 77 1";
    mark_resource_current(&path, marked);
    // The third process writes 500: with the 600 before it, past the 1,000 a refresh waits for.
    let store = open().await;
    assert!(resource_current_stats(&path)
        .iter()
        .all(|(_, s)| s == marked));
    commit_creates(&store, 610, 500).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = resource_current_stats(&path);
        if all_count(&stats, 1110) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the statistics were never refreshed after 1,100 versions over two processes: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
}

/// A maintenance command's refresh (after `coplan reindex`, which writes no versions) gathers
/// the statistics at once, and every connection sees them.
#[tokio::test]
async fn a_maintenance_refresh_gathers_statistics_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.db");
    let store = reopened(&path).await;
    commit_creates(&store, 0, 3).await;
    assert!(resource_current_stats(&path).is_empty());
    let before = schema_version(&path);
    store.refresh_statistics().await.expect("refresh");
    let gathered = resource_current_stats(&path);
    assert!(
        !gathered.is_empty() && gathered.iter().all(|(_, s)| s.starts_with("3 ")),
        "{gathered:?}"
    );
    assert!(schema_version(&path) > before, "connections reload them");
    drop(store);
}
