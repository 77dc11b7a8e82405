//! SQLite schema and writer tests on an in-memory database: group commit (a failing job
//! leaves no trace, its neighbours commit), migration 0005's re-keying of index rows, and the
//! query plans the search SQL gets on the owner-keyed index tables; on a file: the writer's
//! statistics and its turn.

use super::analyze_schedule::AnalyzeSchedule;
use super::index::IndexRow;
use super::sqlite_writer::{apply_group, WriteJob};
use super::{Expected, StoreError, VersionWrite, WriteMethod};
use rusqlite::Connection;
use tokio::sync::oneshot;

const SCHEMA: [&str; 3] = [
    include_str!("../../migrations/sqlite/0001_resources.sql"),
    include_str!("../../migrations/sqlite/0002_search_index.sql"),
    include_str!("../../migrations/sqlite/0005_index_keyed_by_owner.sql"),
];

fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    for sql in SCHEMA {
        conn.execute_batch(sql).unwrap();
    }
    conn
}

fn create(id: &str) -> VersionWrite {
    VersionWrite {
        resource_type: "Patient".into(),
        id: id.into(),
        expected: Expected::Absent,
        version_id: 1,
        last_updated_us: 1,
        method: WriteMethod::Create,
        body: Some(bytes::Bytes::from_static(b"{}")),
        index: vec![
            IndexRow::Uri {
                code: "url".into(),
                value: format!("urn:{id}"),
            },
            IndexRow::Uri {
                code: "url".into(),
                value: format!("urn:{id}:2"),
            },
        ],
    }
}

fn job(writes: Vec<VersionWrite>) -> WriteJob {
    WriteJob {
        batch: super::CommitBatch::of(writes),
        reply: oneshot::channel().0,
    }
}

fn stored(conn: &Connection, table: &str) -> Vec<String> {
    let mut statement = conn
        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
        .unwrap();
    let ids = statement.query_map([], |r| r.get(0)).unwrap();
    ids.map(Result::unwrap).collect()
}

#[test]
fn a_failing_job_leaves_no_trace_and_its_neighbours_commit() {
    let mut conn = database();
    // The middle job writes b1, then conflicts on a1 (created by the first job).
    let group = [
        job(vec![create("a1"), create("a2")]),
        job(vec![create("b1"), create("a1")]),
        job(vec![create("c1")]),
    ];
    let results = apply_group(&mut conn, &group);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err(StoreError::Conflict { id, .. }) if id == "a1"),
        "{results:?}"
    );
    assert_eq!(stored(&conn, "resource_current"), ["a1", "a2", "c1"]);
    assert_eq!(stored(&conn, "resource_version"), ["a1", "a2", "c1"]);
    assert_eq!(
        stored(&conn, "idx_uri"),
        ["a1", "a1", "a2", "a2", "c1", "c1"]
    );
}

#[test]
fn a_job_failing_part_way_through_its_writes_is_undone_and_its_neighbours_commit() {
    let mut conn = database();
    // The checks pass (d1 is absent); the second write of d1 fails after the first was
    // written, so the group goes the slow way (a savepoint per job).
    let group = [
        job(vec![create("a1")]),
        job(vec![create("d1"), create("d2"), create("d1")]),
        job(vec![create("c1")]),
    ];
    let results = apply_group(&mut conn, &group);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err(StoreError::Conflict { id, .. }) if id == "d1"),
        "{results:?}"
    );
    assert_eq!(stored(&conn, "resource_current"), ["a1", "c1"]);
    assert_eq!(stored(&conn, "resource_version"), ["a1", "c1"]);
    assert_eq!(stored(&conn, "idx_uri"), ["a1", "a1", "c1", "c1"]);
}

#[test]
fn a_stale_update_is_refused_before_it_writes_and_later_jobs_see_earlier_ones() {
    let mut conn = database();
    assert!(apply_group(&mut conn, &[job(vec![create("p1")])])[0].is_ok());
    let update = |from: i64| VersionWrite {
        expected: Expected::Version(from),
        version_id: from + 1,
        method: WriteMethod::Update,
        ..create("p1")
    };
    // The second job replaces version 2, which the first job of the same group wrote; the
    // third still names version 1: stale, refused with nothing of it written (not even the
    // create before the update in its batch).
    let group = [
        job(vec![update(1)]),
        job(vec![update(2)]),
        job(vec![create("q1"), update(1)]),
    ];
    let results = apply_group(&mut conn, &group);
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(
        matches!(&results[2], Err(StoreError::Conflict { id, .. }) if id == "p1"),
        "{results:?}"
    );
    assert_eq!(stored(&conn, "resource_current"), ["p1"]);
    let version: i64 = conn
        .query_row(
            "SELECT version_id FROM resource_current WHERE id = 'p1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn a_lone_failing_job_is_rolled_back_whole() {
    let mut conn = database();
    assert!(apply_group(&mut conn, &[job(vec![create("a1")])])[0].is_ok());
    let results = apply_group(&mut conn, &[job(vec![create("x"), create("a1")])]);
    assert!(matches!(results[0], Err(StoreError::Conflict { .. })));
    assert_eq!(stored(&conn, "resource_current"), ["a1"]);
    assert_eq!(stored(&conn, "idx_uri"), ["a1", "a1"]);
    // The connection is usable afterwards (no transaction left open).
    assert!(apply_group(&mut conn, &[job(vec![create("y")])])[0].is_ok());
    assert_eq!(stored(&conn, "resource_current"), ["a1", "y"]);
}

#[test]
fn the_migration_keeps_existing_index_rows_and_numbers_them() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA[0]).unwrap();
    conn.execute_batch(SCHEMA[1]).unwrap();
    conn.execute_batch(
        "INSERT INTO idx_token (resource_type, id, code, system, value, text_norm) VALUES \
           ('Patient', 'p1', 'gender', NULL, 'female', NULL), \
           ('Patient', 'p2', 'gender', NULL, 'male', NULL), \
           ('Patient', 'p1', 'identifier', 'urn:s', '42', NULL); \
         INSERT INTO idx_reference (resource_type, id, code, target_type, target_id, url) VALUES \
           ('Goal', 'g1', 'subject', 'Patient', 'p1', 'Patient/p1');",
    )
    .unwrap();
    conn.execute_batch(SCHEMA[2]).unwrap();
    let mut statement = conn
        .prepare("SELECT id, ord, code, value FROM idx_token ORDER BY id, ord")
        .unwrap();
    let rows: Vec<(String, i64, String, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = [
        ("p1", 1, "gender", "female"),
        ("p1", 2, "identifier", "42"),
        ("p2", 1, "gender", "male"),
    ]
    .map(|(i, o, c, v)| (i.to_string(), o, c.to_string(), v.to_string()));
    assert_eq!(rows, expected);
    assert_eq!(stored(&conn, "idx_reference"), ["g1"]);
    // The lookup indexes are back; the owner indexes are gone (the key serves).
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'idx_reference' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        indexes.contains(&"idx_reference_lookup".to_string()),
        "{indexes:?}"
    );
    assert!(
        indexes.contains(&"idx_reference_target".to_string()),
        "{indexes:?}"
    );
    assert!(
        !indexes.contains(&"idx_reference_owner".to_string()),
        "{indexes:?}"
    );
}

/// Per-candidate probes must read the candidate's own rows by key. The planner would
/// otherwise pick the covering lookup index for `status = active` and scan every active
/// CarePlan per candidate (measured: 3.4 ms instead of 0.03 ms at 100k patients).
#[test]
fn per_candidate_probes_use_the_owner_key() {
    use crate::store::search::{render_page, Clause, Condition, Order, SearchQuery, SystemMatch};
    let conn = database();
    // The statistics `ANALYZE` (sampled, as at start-up) gathered on the 100k-patient file.
    conn.execute_batch(
        "ANALYZE; DELETE FROM sqlite_stat1; INSERT INTO sqlite_stat1 VALUES \
           ('idx_token', 'idx_token_lookup', '7672408 1001 1001 1 1'), \
           ('idx_token', 'idx_token', '7672408 1001 4 1'), \
           ('idx_reference', 'idx_reference_lookup', '5686976 1001 1001 4 4'), \
           ('idx_reference', 'idx_reference_target', '5686976 1001 8'), \
           ('idx_reference', 'idx_reference', '5686976 1001 5 1'); \
         ANALYZE sqlite_schema;",
    )
    .unwrap();
    let clause = |condition| Clause {
        any_of: vec![condition],
        negated: false,
    };
    let query = SearchQuery {
        resource_type: "CarePlan".into(),
        clauses: vec![
            clause(Condition::Reference {
                code: "patient".into(),
                target_type: None,
                target_id: Some("p1".into()),
                url: None,
            }),
            clause(Condition::Token {
                code: "status".into(),
                system: SystemMatch::Any,
                value: Some("active".into()),
            }),
            clause(Condition::Token {
                code: "category".into(),
                system: SystemMatch::Is("urn:s".into()),
                value: Some("assess-plan".into()),
            }),
        ],
        order: Order::LastUpdatedDesc,
        after: None,
        limit: 10,
    };
    let plan_of = |query: &SearchQuery| -> Vec<String> {
        let rendered = render_page(crate::store::sql::Dialect::Sqlite, query);
        let binds: Vec<rusqlite::types::Value> = rendered
            .binds
            .iter()
            .map(|b| match b {
                crate::store::sql::Bind::Text(t) => t.clone().into(),
                crate::store::sql::Bind::OptText(t) => t.clone().into(),
                crate::store::sql::Bind::Int(i) => (*i).into(),
                crate::store::sql::Bind::Float(f) => (*f).into(),
            })
            .collect();
        let mut statement = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", rendered.sql))
            .unwrap();
        let plan = statement
            .query_map(rusqlite::params_from_iter(binds), |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        plan
    };
    let plan = plan_of(&query);
    let probes: Vec<&String> = plan
        .iter()
        .filter(|step| step.starts_with("SEARCH x"))
        .collect();
    // The driving patient lookup, then the two per-candidate probes.
    assert_eq!(probes.len(), 3, "{plan:#?}");
    assert!(probes[0].contains("idx_reference_lookup"), "{plan:#?}");
    for probe in &probes[1..] {
        assert!(
            probe.contains("PRIMARY KEY (resource_type=? AND id=?)"),
            "{plan:#?}"
        );
    }
    // Sorted by date, the checks are made on the patient's reference rows: the same lookup and
    // probes, and the sort value's probe, all by the owner key.
    let sorted = SearchQuery {
        order: crate::store::search::newest_date_first(),
        ..query
    };
    let plan = plan_of(&sorted);
    let probes: Vec<&String> = plan
        .iter()
        .filter(|step| step.starts_with("SEARCH x"))
        .collect();
    // (SQLite computes the sort value for the output and for the order: two of its probes.)
    assert!(probes.len() >= 4, "{plan:#?}");
    assert!(probes[0].contains("idx_reference_lookup"), "{plan:#?}");
    for probe in &probes[1..] {
        assert!(
            probe.contains("PRIMARY KEY (resource_type=? AND id=?)"),
            "{plan:#?}"
        );
    }
    // The candidates that pass are read by their key.
    assert!(
        plan.iter()
            .any(|step| step == "SEARCH c USING PRIMARY KEY (resource_type=? AND id=?)"),
        "{plan:#?}"
    );
}

#[test]
fn index_rows_are_numbered_per_table_within_a_resource() {
    let mut conn = database();
    let mut write = create("a1");
    write.index.push(IndexRow::Token {
        code: "gender".into(),
        system: None,
        value: Some("female".into()),
        text_norm: None,
    });
    assert!(apply_group(&mut conn, &[job(vec![write])])[0].is_ok());
    let ords = |table: &str| -> Vec<i64> {
        let mut statement = conn
            .prepare(&format!("SELECT ord FROM {table} ORDER BY ord"))
            .unwrap();
        let ords = statement.query_map([], |r| r.get(0)).unwrap();
        ords.map(Result::unwrap).collect()
    };
    assert_eq!(ords("idx_uri"), [1, 2]);
    assert_eq!(ords("idx_token"), [1]);
}

/// Every index row of `id`, as `table|ord|content`, sorted.
fn index_rows_of(conn: &Connection, id: &str) -> Vec<String> {
    let mut rows: Vec<String> = super::sqlite_index_rows::stored_index_rows(conn, "Patient", id)
        .unwrap()
        .into_iter()
        .map(|s| format!("{}|{}|{:?}", s.row.table(), s.ord, s.row))
        .collect();
    rows.sort();
    rows
}

#[test]
fn an_update_writes_only_the_index_rows_that_changed() {
    let mut conn = database();
    let number = |value: f64| IndexRow::Number {
        code: "value".into(),
        value,
        system: Some("http://unitsofmeasure.org".into()),
        unit: Some("kg".into()),
    };
    let mut first = create("a1");
    first.index.extend([number(72.5), number(-0.25)]);
    assert!(apply_group(&mut conn, &[job(vec![first.clone()])])[0].is_ok());
    let before = index_rows_of(&conn, "a1");
    assert_eq!(before.len(), 4);

    // The same rows in another order: nothing in the index tables changes.
    let mut same = first.clone();
    same.expected = Expected::Version(1);
    same.version_id = 2;
    same.method = WriteMethod::Update;
    same.index.reverse();
    let changes = conn.total_changes();
    assert!(apply_group(&mut conn, &[job(vec![same])])[0].is_ok());
    // resource_current updated, resource_version inserted: the index rows untouched.
    assert_eq!(conn.total_changes() - changes, 2);
    assert_eq!(index_rows_of(&conn, "a1"), before);

    // One uri changed, one number gone, a token added.
    let mut edit = first.clone();
    edit.expected = Expected::Version(2);
    edit.version_id = 3;
    edit.method = WriteMethod::Update;
    edit.index = vec![
        first.index[0].clone(),
        IndexRow::Uri {
            code: "url".into(),
            value: "urn:changed".into(),
        },
        number(72.5),
        IndexRow::Token {
            code: "gender".into(),
            system: None,
            value: Some("female".into()),
            text_norm: None,
        },
    ];
    let changes = conn.total_changes();
    assert!(apply_group(&mut conn, &[job(vec![edit.clone()])])[0].is_ok());
    // 2 version rows, the old uri and number deleted, the new uri and token inserted.
    assert_eq!(conn.total_changes() - changes, 6);
    let mut expected: Vec<String> = [
        (5, 1, &edit.index[0]),
        (5, 2, &edit.index[1]),
        (3, 1, &edit.index[2]),
        (1, 1, &edit.index[3]),
    ]
    .iter()
    .map(|(table, ord, row)| format!("{table}|{ord}|{row:?}"))
    .collect();
    expected.sort();
    assert_eq!(index_rows_of(&conn, "a1"), expected);

    // A deletion removes every row.
    let mut delete = first;
    delete.expected = Expected::Version(3);
    delete.version_id = 4;
    delete.method = WriteMethod::Delete;
    delete.body = None;
    delete.index = Vec::new();
    assert!(apply_group(&mut conn, &[job(vec![delete])])[0].is_ok());
    assert!(index_rows_of(&conn, "a1").is_empty());
}

#[tokio::test]
async fn the_writer_gathers_statistics_once_an_empty_database_has_grown() {
    use super::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.db");
    let store = super::SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    let stat_rows = || -> i64 {
        let conn = Connection::open(&path).unwrap();
        conn.query_row(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'resource_current'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    assert_eq!(stat_rows(), 0, "an empty table has no statistics");
    for n in 0..(AnalyzeSchedule::MIN_GROWTH / 100) {
        let versions: Vec<VersionWrite> = (0..100).map(|k| create(&format!("g{n}-{k}"))).collect();
        store.commit_versions(&versions).await.unwrap();
    }
    // The writer gathers them after its replies: wait for it a little.
    let mut waited = 0;
    while stat_rows() == 0 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        stat_rows() > 0,
        "statistics once 1,000 versions were written"
    );
}

/// Holding the writer's turn stops both the writer thread and an authorization-server write
/// until it is let go; then both complete.
#[tokio::test]
async fn writes_wait_while_another_writer_holds_the_turn() {
    use super::Store;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turn.db");
    let store = std::sync::Arc::new(super::SqliteStore::open(&path).await.unwrap());
    store.migrate().await.unwrap();
    let auth = store.auth();

    let held = store.writer_turn().take().await;
    let commit = tokio::spawn({
        let store = store.clone();
        async move { store.commit_versions(&[create("t1")]).await }
    });
    let ticket = tokio::spawn({
        let auth = auth.clone();
        async move { auth.put_ticket("code", "h1", "{}", i64::MAX).await }
    });
    // Time enough for either to finish were it not waiting (a commit takes milliseconds).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !commit.is_finished(),
        "the writer thread waits for the turn"
    );
    assert!(!ticket.is_finished(), "an auth write waits for the turn");
    let file = Connection::open(&path).unwrap();
    assert!(stored(&file, "resource_current").is_empty());

    drop(held);
    commit.await.unwrap().unwrap();
    ticket.await.unwrap().unwrap();
    assert_eq!(stored(&file, "resource_current"), ["t1"]);
    assert_eq!(
        auth.ticket("code", "h1", 0).await.unwrap().as_deref(),
        Some("{}")
    );
}
