//! PostgreSQL backend tests on a real cluster (skipped loudly without
//! `COPLAN_TEST_POSTGRES_URL`): statement timeouts, the cross-node cache of current versions
//! (postgres_cache.rs) seen from two stores on one schema, planner statistics as the database
//! grows, and the plan a prepared search keeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::super::postgres_cache::STALE_AFTER;
use super::*;
use crate::testing::POSTGRES_ENV;

/// The test database's URL, or `None` (said loudly) where PostgreSQL is not configured.
fn test_url() -> Option<String> {
    let url = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("*** {POSTGRES_ENV} is not set: SKIPPING a PostgreSQL backend test ***");
    }
    url
}

/// A fresh schema and a store on it with the migrations run.
async fn migrated_store() -> (crate::testing::TestDatabase, PostgresStore) {
    let db = crate::testing::TestDatabase::new(crate::testing::Backend::Postgres).await;
    let store = PostgresStore::connect(&db.database_url().unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

async fn statement_timeout(store: &PostgresStore) -> String {
    sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn statements_are_bounded_by_default_and_by_the_url() {
    let Some(url) = test_url() else { return };
    // A fresh schema, reached the way a `coplan` process reaches it (its URL).
    let db = crate::testing::TestDatabase::new(crate::testing::Backend::Postgres).await;
    let schema_url = db.database_url().unwrap();
    let store = PostgresStore::connect(&schema_url).await.unwrap();
    assert_eq!(statement_timeout(&store).await, STATEMENT_TIMEOUT);
    // Maintenance runs unbounded, and gives its connection back bounded again.
    store.migrate().await.unwrap();
    store.refresh_statistics().await.unwrap();
    assert_eq!(statement_timeout(&store).await, STATEMENT_TIMEOUT);
    drop(store);
    db.cleanup().await;
    // The URL's own setting wins.
    let separator = if url.contains('?') { '&' } else { '?' };
    let short = format!("{url}{separator}options=-c%20statement_timeout%3D50ms");
    let store = PostgresStore::connect(&short).await.unwrap();
    assert_eq!(statement_timeout(&store).await, "50ms");
    // A statement past it is cancelled: the database is unavailable for now (a 503 with
    // Retry-After at the FHIR boundary), not an internal error.
    let err = sqlx::query("SELECT pg_sleep(2)")
        .execute(&store.pool)
        .await
        .unwrap_err();
    assert!(
        matches!(StoreError::from(err), StoreError::Unavailable(_)),
        "a cancelled statement is Unavailable"
    );
}

/// The store's connections run READ COMMITTED, whatever the URL (or the role, or the
/// database) makes the default: every write's guarantee is argued for that level.
#[tokio::test]
async fn connections_run_read_committed_whatever_the_default() {
    let Some(url) = test_url() else { return };
    let separator = if url.contains('?') { '&' } else { '?' };
    let asking =
        format!("{url}{separator}options=-c%20default_transaction_isolation%3Dserializable");
    let store = PostgresStore::connect(&asking).await.unwrap();
    let level: String = sqlx::query_scalar("SHOW default_transaction_isolation")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(level, "read committed");
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(timeout, STATEMENT_TIMEOUT, "the other options still apply");
}

fn patient(id: &str, expected: Expected, version_id: i64) -> VersionWrite {
    VersionWrite {
        resource_type: "Patient".into(),
        id: id.into(),
        expected,
        version_id,
        last_updated_us: version_id,
        method: if version_id == 1 {
            super::super::WriteMethod::Create
        } else {
            super::super::WriteMethod::Update
        },
        body: Some(bytes::Bytes::from(format!("{{\"v\":{version_id}}}"))),
        index: Vec::new(),
    }
}

async fn listening(store: &PostgresStore) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !store.current.is_on() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cache never switched on"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_commits_reach_this_nodes_cache_within_the_bound() {
    let Some(_) = test_url() else { return };
    let db = crate::testing::TestDatabase::new(crate::testing::Backend::Postgres).await;
    let url = db.database_url().unwrap();
    let (a, b) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    listening(&a).await;
    listening(&b).await;
    a.commit(&CommitBatch::of(vec![
        patient("x", Expected::Absent, 1),
        patient("y", Expected::Absent, 1),
    ]))
    .await
    .unwrap();
    // B caches what it reads (a read that an invalidation overtook is not cached, and A's
    // own notification may arrive just after B's read began: read again then).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        assert_eq!(
            b.current("Patient", "x").await.unwrap().unwrap().version_id,
            1
        );
        if matches!(b.current.lookup("Patient", "x"), Some(Ok(_))) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node B never serves x from its cache"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut slowest = Duration::ZERO;
    for version in 2..=40 {
        // A single write (one statement) and a batch (a transaction), alternately.
        let y = a.current("Patient", "y").await.unwrap().unwrap().version_id;
        let x = patient("x", Expected::Version(version - 1), version);
        let batch = if version % 2 == 0 {
            CommitBatch::of(vec![x])
        } else {
            CommitBatch::of(vec![x, patient("y", Expected::Version(y), y + 1)])
        };
        a.commit(&batch).await.unwrap();
        let committed = std::time::Instant::now();
        // The writing node reads its own write at once.
        assert_eq!(
            a.current("Patient", "x").await.unwrap().unwrap().version_id,
            version
        );
        loop {
            let seen = b.current("Patient", "x").await.unwrap().unwrap().version_id;
            if seen == version {
                break;
            }
            assert!(seen < version);
            assert!(
                committed.elapsed() < STALE_AFTER + super::super::postgres_cache::HEARTBEAT,
                "node B served version {seen} for longer than the bound after {version} committed"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        slowest = slowest.max(committed.elapsed());
    }
    eprintln!("the slowest invalidation across nodes took {slowest:?}");
    drop((a, b));
    db.cleanup().await;
}

/// The planner's row estimate of `resource_current` in the store's schema.
async fn estimated_resources(store: &PostgresStore) -> f32 {
    sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = to_regclass('resource_current')")
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn statistics_are_gathered_as_the_database_grows() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    // Tables never analyzed are analyzed at start (in the background).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while estimated_resources(&store).await < 0.0 || store.statistics.running() {
        assert!(std::time::Instant::now() < deadline, "no ANALYZE at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(estimated_resources(&store).await, 0.0);
    // 999 versions: not yet due; the thousandth makes them due (autovacuum is no part of it:
    // it is off for this table).
    sqlx::query("ALTER TABLE resource_current SET (autovacuum_enabled = false)")
        .execute(&store.pool)
        .await
        .unwrap();
    let versions: Vec<VersionWrite> = (0..999)
        .map(|n| patient(&format!("p{n}"), Expected::Absent, 1))
        .collect();
    store.commit_versions(&versions).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(estimated_resources(&store).await, 0.0, "not due yet");
    store
        .commit_versions(&[patient("p999", Expected::Absent, 1)])
        .await
        .unwrap();
    while estimated_resources(&store).await < 1_000.0 || store.statistics.running() {
        assert!(
            std::time::Instant::now() < deadline,
            "no ANALYZE after the database grew"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(store);
    db.cleanup().await;
}

/// A bound value as an SQL literal, for `EXECUTE` of a prepared search in a test.
/// The resource a commit of `writes` names as its conflict (`None`: committed, or another error).
async fn conflict_on(store: &PostgresStore, writes: &[VersionWrite]) -> Option<String> {
    match store.commit_versions(writes).await {
        Err(StoreError::Conflict { id, .. }) => Some(id),
        _ => None,
    }
}

/// A commit of creates and updates (a PHQ-9 with its Observations moving its goal) writes the
/// creates in one statement and the updates each in theirs, all or nothing.
#[tokio::test]
async fn a_commit_of_creates_and_updates_is_all_or_nothing() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    store
        .commit_versions(&[patient("goal", Expected::Absent, 1)])
        .await
        .unwrap();
    let version = |id: &'static str| {
        let store = &store;
        async move {
            store
                .current("Patient", id)
                .await
                .unwrap()
                .map(|v| v.version_id)
        }
    };
    // The update's expected version is stale: the creates before it are rolled back too.
    let stale = [
        patient("a", Expected::Absent, 1),
        patient("b", Expected::Absent, 1),
        patient("goal", Expected::Version(2), 3),
    ];
    assert_eq!(conflict_on(&store, &stale).await.as_deref(), Some("goal"));
    assert_eq!((version("a").await, version("goal").await), (None, Some(1)));
    let fresh = [
        patient("a", Expected::Absent, 1),
        patient("goal", Expected::Version(1), 2),
        patient("b", Expected::Absent, 1),
    ];
    store.commit_versions(&fresh).await.unwrap();
    assert_eq!(
        (
            version("a").await,
            version("b").await,
            version("goal").await
        ),
        (Some(1), Some(1), Some(2))
    );
    // A create of a resource that exists now: nothing of the commit is written.
    let taken = [
        patient("c", Expected::Absent, 1),
        patient("a", Expected::Absent, 1),
        patient("goal", Expected::Version(2), 3),
    ];
    assert_eq!(conflict_on(&store, &taken).await.as_deref(), Some("a"));
    assert_eq!((version("c").await, version("goal").await), (None, Some(2)));
    drop(store);
    db.cleanup().await;
}

/// One index row in each table for `tag`, each column's value saying which column it is.
fn every_index_row(tag: &str) -> Vec<crate::store::index::IndexRow> {
    use crate::store::index::IndexRow;
    let code = |t: &str| format!("{t}-{tag}");
    vec![
        IndexRow::String {
            code: code("s"),
            norm: code("norm"),
            exact: code("exact"),
        },
        IndexRow::Token {
            code: code("t"),
            system: Some(code("system")),
            value: Some(code("value")),
            text_norm: Some(code("text")),
        },
        IndexRow::Date {
            code: code("d"),
            low_us: 11,
            high_us: 22,
        },
        IndexRow::Number {
            code: code("n"),
            value: 2.5,
            system: Some(code("nsystem")),
            unit: Some(code("unit")),
        },
        IndexRow::Reference {
            code: code("r"),
            target_type: Some("Patient".into()),
            target_id: Some(code("target")),
            url: code("url"),
        },
        IndexRow::Uri {
            code: code("u"),
            value: code("uri"),
        },
    ]
}

/// The index rows stored for `id`, every column as text, table by table.
async fn stored_index_rows(store: &PostgresStore, id: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT concat_ws('|', resource_type, code, norm, exact) FROM idx_string WHERE id = $1",
        "SELECT concat_ws('|', resource_type, code, system, value, text_norm) FROM idx_token WHERE id = $1",
        "SELECT concat_ws('|', resource_type, code, low_us, high_us) FROM idx_date WHERE id = $1",
        "SELECT concat_ws('|', resource_type, code, value, system, unit) FROM idx_number WHERE id = $1",
        "SELECT concat_ws('|', resource_type, code, target_type, target_id, url) FROM idx_reference WHERE id = $1",
        "SELECT concat_ws('|', resource_type, code, value) FROM idx_uri WHERE id = $1",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_all(&store.pool)
            .await
            .unwrap();
        rows.extend(found);
    }
    rows
}

fn expected_index_rows(tag: &str) -> Vec<String> {
    [
        "Patient|s-{}|norm-{}|exact-{}",
        "Patient|t-{}|system-{}|value-{}|text-{}",
        "Patient|d-{}|11|22",
        "Patient|n-{}|2.5|nsystem-{}|unit-{}",
        "Patient|r-{}|Patient|target-{}|url-{}",
        "Patient|u-{}|uri-{}",
    ]
    .iter()
    .map(|pattern| pattern.replace("{}", tag))
    .collect()
}

/// A commit of creates only, or of one update and creates, is one statement with no
/// transaction around it (postgres_alone.rs): all of it, or (a resource exists already, a
/// stale version) none of it.
/// Where each index row of `id` is stored (`table|code|ctid`), sorted: a row rewritten by a
/// write moves to a new place.
async fn index_row_places(store: &PostgresStore, id: &str) -> Vec<String> {
    let mut places = Vec::new();
    for table in crate::store::index::INDEX_TABLES {
        let found: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT concat_ws('|', '{table}', code, ctid::text) FROM {table} WHERE id = $1"
        ))
        .bind(id)
        .fetch_all(&store.pool)
        .await
        .unwrap();
        places.extend(found);
    }
    places.sort();
    places
}

/// An update deletes only the stored rows its version no longer has and inserts only those it
/// adds (NULL columns compared as values); the rows left are exactly the new version's.
#[tokio::test]
async fn an_update_writes_only_the_index_rows_that_changed() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    let nulls = crate::store::index::IndexRow::Token {
        code: "t-nulls".into(),
        system: None,
        value: Some("v".into()),
        text_norm: None,
    };
    let version = |expected: Expected, version_id: i64, mut index: Vec<_>| {
        let mut w = patient("x", expected, version_id);
        index.push(nulls.clone());
        w.index = index;
        w
    };
    store
        .commit_versions(&[version(Expected::Absent, 1, every_index_row("a"))])
        .await
        .unwrap();
    let first = index_row_places(&store, "x").await;
    assert_eq!(first.len(), 7);

    // The same rows in another order: not one rewritten.
    let mut reordered = every_index_row("a");
    reordered.reverse();
    store
        .commit_versions(&[version(Expected::Version(1), 2, reordered)])
        .await
        .unwrap();
    assert_eq!(index_row_places(&store, "x").await, first);

    // The token row changed: it alone moves.
    let mut edited = every_index_row("a");
    edited[1] = every_index_row("b").remove(1);
    store
        .commit_versions(&[version(Expected::Version(2), 3, edited)])
        .await
        .unwrap();
    let after = index_row_places(&store, "x").await;
    let kept: Vec<&String> = after.iter().filter(|p| first.contains(p)).collect();
    assert_eq!(kept.len(), 6, "{first:?} → {after:?}");
    assert!(after.iter().any(|p| p.starts_with("idx_token|t-b|")));
    let mut stored = stored_index_rows(&store, "x").await;
    stored.sort();
    let mut expected = expected_index_rows("a");
    expected[1] = expected_index_rows("b").remove(1);
    expected.push("Patient|t-nulls|v".into());
    expected.sort();
    assert_eq!(stored, expected);

    // A deletion leaves none.
    let mut deletion = patient("x", Expected::Version(3), 4);
    deletion.body = None;
    deletion.method = super::super::WriteMethod::Delete;
    store.commit_versions(&[deletion]).await.unwrap();
    assert!(index_row_places(&store, "x").await.is_empty());
    drop(store);
    db.cleanup().await;
}

#[tokio::test]
async fn commits_alone_are_all_or_nothing() {
    if test_url().is_none() {
        return;
    }
    use super::super::postgres_alone::{alone, commit_alone};
    let (db, store) = migrated_store().await;
    let versions = |id: &'static str| {
        let store = &store;
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM resource_version WHERE id = $1")
                .bind(id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
            n
        }
    };
    let mut conn = store.pool.acquire().await.unwrap();
    let indexed = |id: &str, expected: Expected, version: i64, tag: &str| VersionWrite {
        index: every_index_row(tag),
        ..patient(id, expected, version)
    };
    let writes = [
        indexed("x", Expected::Absent, 1, "x1"),
        indexed("y", Expected::Absent, 1, "y1"),
    ];
    assert!(commit_alone(&mut conn, &alone(&writes).unwrap())
        .await
        .unwrap());
    // Outside any transaction: committed as the statement ended, seen from another
    // connection while this one is still held, every index column where it belongs.
    assert!(store.current("Patient", "x").await.unwrap().is_some());
    assert_eq!(
        stored_index_rows(&store, "x").await,
        expected_index_rows("x1")
    );
    assert_eq!(
        stored_index_rows(&store, "y").await,
        expected_index_rows("y1")
    );
    // A create of a resource that exists: nothing written, and the transaction names it.
    let z = patient("z", Expected::Absent, 1);
    let taken = [z.clone(), writes[1].clone()];
    assert!(!commit_alone(&mut conn, &alone(&taken).unwrap())
        .await
        .unwrap());
    assert_eq!(versions("z").await, 0);
    assert_eq!(conflict_on(&store, &taken).await.as_deref(), Some("y"));
    assert_eq!(versions("z").await, 0);
    // An update with a create (its Provenance): both, in one statement, the update's index
    // rows replaced and the create's written.
    let updated = [
        indexed("x", Expected::Version(1), 2, "x2"),
        indexed("z", Expected::Absent, 1, "z1"),
    ];
    assert!(commit_alone(&mut conn, &alone(&updated).unwrap())
        .await
        .unwrap());
    assert_eq!((versions("x").await, versions("z").await), (2, 1));
    assert_eq!(
        stored_index_rows(&store, "x").await,
        expected_index_rows("x2")
    );
    assert_eq!(
        stored_index_rows(&store, "z").await,
        expected_index_rows("z1")
    );
    // A stale version: a conflict naming the update, and its create is not written either.
    let w = indexed("w", Expected::Absent, 1, "w1");
    let stale = [indexed("x", Expected::Version(1), 3, "x3"), w.clone()];
    let err = commit_alone(&mut conn, &alone(&stale).unwrap()).await;
    assert!(
        matches!(&err, Err(StoreError::Conflict { id, .. }) if id == "x"),
        "{err:?}"
    );
    assert_eq!((versions("x").await, versions("w").await), (2, 0));
    assert_eq!(
        stored_index_rows(&store, "x").await,
        expected_index_rows("x2")
    );
    assert!(stored_index_rows(&store, "w").await.is_empty());
    // The update holds but its create exists: nothing of either.
    let clash = [patient("x", Expected::Version(2), 3), z.clone()];
    assert!(!commit_alone(&mut conn, &alone(&clash).unwrap())
        .await
        .unwrap());
    assert_eq!(versions("x").await, 2);
    let current: i64 = sqlx::query_scalar("SELECT version_id FROM resource_current WHERE id = 'x'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(current, 2);
    drop(conn);
    drop(store);
    db.cleanup().await;
}

/// Commits notifying at the same time are sent together, and each is answered only once its
/// notification is out: a listener has every one of them.
#[tokio::test]
async fn concurrent_commits_notifications_all_arrive() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&store.pool)
        .await
        .unwrap();
    listener
        .listen(super::super::postgres_cache::CHANNEL)
        .await
        .unwrap();
    let store = Arc::new(store);
    let commits: Vec<_> = (0..64)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .notifier
                    .notify(vec![
                        format!("test/Patient/p{n}/1"),
                        format!("test/Goal/g{n}/2"),
                    ])
                    .await
            })
        })
        .collect();
    for commit in commits {
        commit.await.unwrap();
    }
    let mut lines = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while lines.len() < 128 {
        let received = tokio::time::timeout_at(deadline, listener.recv()).await;
        let notification = received.expect("every notification within 10 s").unwrap();
        if notification.payload().starts_with("test/") {
            lines.insert(notification.payload().to_string());
        }
    }
    assert!(lines.contains("test/Patient/p0/1") && lines.contains("test/Goal/g63/2"));
    drop(listener);
    let store = Arc::try_unwrap(store).ok().unwrap();
    drop(store);
    db.cleanup().await;
}

/// Migration 0011: the audit log's chunks are compressed with lz4 where the server has it
/// (this machine's PostgreSQL 15 does), pglz's CPU cost per audited read halved.
#[tokio::test]
async fn the_audit_log_is_compressed_with_lz4() {
    if test_url().is_none() {
        return;
    }
    let (_db, store) = migrated_store().await;
    let lz4_available: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM pg_settings WHERE name = 'default_toast_compression' \
         AND 'lz4' = ANY(enumvals)",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    let method: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute \
         WHERE attrelid = 'audit_log'::regclass AND attname = 'record'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(method, if lz4_available { "l" } else { "" });
}

#[path = "postgres_reindex_tests.rs"]
mod reindex;

#[path = "postgres_plan_tests.rs"]
mod plans;
