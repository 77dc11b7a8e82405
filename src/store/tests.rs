//! The storage story, run against every backend (SQLite always, PostgreSQL when configured).

use super::*;
use crate::testing::{backends, TestDatabase};

mod logs;
mod statistics;
mod wal;
use logs::{audit_log_story, outbox_story};

/// A SQLite store at `path` with these log and statistics policies, migrated as a server
/// starts it.
async fn migrated_sqlite(
    path: &std::path::Path,
    wal: sqlite_checkpoints::WalPolicy,
    statistics: sqlite_statistics::StatisticsPolicy,
) -> SqliteStore {
    let store = SqliteStore::open_tuned(path, wal, statistics, DEFAULT_CACHE_BYTES)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    store
}

fn write(
    id: &str,
    expected: Expected,
    version_id: i64,
    method: WriteMethod,
    body: Option<&str>,
) -> VersionWrite {
    VersionWrite {
        resource_type: "Patient".into(),
        id: id.into(),
        expected,
        version_id,
        last_updated_us: 1_000 * version_id,
        method,
        body: body.map(|b| Bytes::from(b.to_string())),
        index: Vec::new(),
    }
}

async fn story(store: &dyn Store) {
    // migrations are idempotent
    store.migrate().await.expect("second migrate");
    store.ping().await.expect("ping");
    assert_eq!(store.current("Patient", "a").await.unwrap(), None);

    // create, then a second create of the same id conflicts
    store
        .commit_versions(&[write(
            "a",
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{\"v\":1}"),
        )])
        .await
        .unwrap();
    let err = store
        .commit_versions(&[write(
            "a",
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{}"),
        )])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");

    // update from the right version works, from a stale one conflicts
    store
        .commit_versions(&[write(
            "a",
            Expected::Version(1),
            2,
            WriteMethod::Update,
            Some("{\"v\":2}"),
        )])
        .await
        .unwrap();
    let stale = store
        .commit_versions(&[write(
            "a",
            Expected::Version(1),
            2,
            WriteMethod::Update,
            Some("{}"),
        )])
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let current = store.current("Patient", "a").await.unwrap().unwrap();
    assert_eq!(current.version_id, 2);
    assert_eq!(current.body.as_deref(), Some(&b"{\"v\":2}"[..]));

    // the bytes stored are the bytes returned, for every version
    let v1 = store.version("Patient", "a", 1).await.unwrap().unwrap();
    assert_eq!(v1.body.as_deref(), Some(&b"{\"v\":1}"[..]));
    assert_eq!(v1.last_updated_us, 1_000);
    assert_eq!(store.version("Patient", "a", 9).await.unwrap(), None);

    // delete writes a tombstone version
    store
        .commit_versions(&[write(
            "a",
            Expected::Version(2),
            3,
            WriteMethod::Delete,
            None,
        )])
        .await
        .unwrap();
    let tomb = store.current("Patient", "a").await.unwrap().unwrap();
    assert_eq!((tomb.version_id, tomb.body), (3, None));

    // a batch is atomic: the conflicting second write undoes the first
    let batch = [
        write("b", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
        write(
            "a",
            Expected::Version(1),
            4,
            WriteMethod::Update,
            Some("{}"),
        ),
    ];
    assert!(matches!(
        store.commit_versions(&batch).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.current("Patient", "b").await.unwrap(), None);

    // history: newest first, scoped, paged by sequence, filtered by since
    let mut other = write("c", Expected::Absent, 1, WriteMethod::Create, Some("{}"));
    other.resource_type = "Goal".into();
    store.commit_versions(&[other]).await.unwrap();
    let instance = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance("Patient".into(), "a".into()),
            since_us: None,
            before_seq: None,
            limit: 10,
            within: None,
        })
        .await
        .unwrap();
    let versions: Vec<i64> = instance.iter().map(|r| r.version.version_id).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert_eq!(instance[0].method, WriteMethod::Delete);
    assert_eq!(instance[2].method, WriteMethod::Create);
    let page2 = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance("Patient".into(), "a".into()),
            since_us: None,
            before_seq: Some(instance[1].seq),
            limit: 10,
            within: None,
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].version.version_id, 1);
    let system = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since_us: None,
            before_seq: None,
            limit: 2,
            within: None,
        })
        .await
        .unwrap();
    assert_eq!(system.len(), 2);
    assert_eq!(system[0].resource_type, "Goal");
    let typed = store
        .history(&HistoryQuery {
            scope: HistoryScope::Type("Patient".into()),
            since_us: Some(2_000),
            before_seq: None,
            limit: 10,
            within: None,
        })
        .await
        .unwrap();
    assert_eq!(
        typed
            .iter()
            .map(|r| r.version.version_id)
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
}

async fn racing_writers_never_lose_an_update(store: Arc<dyn Store>) {
    store
        .commit_versions(&[write(
            "race",
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{}"),
        )])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("{{\"writer\":{n}}}");
            store
                .commit_versions(&[write(
                    "race",
                    Expected::Version(1),
                    2,
                    WriteMethod::Update,
                    Some(&body),
                )])
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one of the racing writers wins");
    assert_eq!(
        store
            .current("Patient", "race")
            .await
            .unwrap()
            .unwrap()
            .version_id,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_story_on_every_backend() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        story(db.store.as_ref()).await;
        outbox_story(db.store.as_ref()).await;
        audit_log_story(db.store.as_ref()).await;
        none_matching_story(db.store.as_ref()).await;
        racing_writers_never_lose_an_update(db.store.clone()).await;
        db.cleanup().await;
    }
}

fn plan(
    id: &str,
    expected: Expected,
    version_id: i64,
    last_updated_us: i64,
    index: Vec<index::IndexRow>,
) -> VersionWrite {
    VersionWrite {
        resource_type: "CarePlan".into(),
        id: id.into(),
        expected,
        version_id,
        last_updated_us,
        method: WriteMethod::Create,
        body: Some(Bytes::from(format!("{{\"id\":\"{id}\"}}"))),
        index,
    }
}

fn token(code: &str, system: Option<&str>, value: &str) -> index::IndexRow {
    index::IndexRow::Token {
        code: code.into(),
        system: system.map(str::to_string),
        value: Some(value.into()),
        text_norm: None,
    }
}

fn subject(patient: &str) -> index::IndexRow {
    index::IndexRow::Reference {
        code: "patient".into(),
        target_type: Some("Patient".into()),
        target_id: Some(patient.into()),
        url: format!("Patient/{patient}"),
    }
}

fn period(low_us: i64, high_us: i64) -> index::IndexRow {
    index::IndexRow::Date {
        code: "date".into(),
        low_us,
        high_us,
    }
}

async fn search_ids(store: &dyn Store, clauses: Vec<search::Clause>) -> Vec<String> {
    let query = search::SearchQuery {
        resource_type: "CarePlan".into(),
        clauses,
        order: search::Order::IdAsc,
        after: None,
        limit: 100,
    };
    store
        .search(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn all(condition: search::Condition) -> search::Clause {
    search::Clause {
        any_of: vec![condition],
        negated: false,
    }
}

async fn search_story(store: &dyn Store) {
    use search::{Condition, RangeOp, StringMatch, SystemMatch};
    let cat = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category";
    store
        .commit_versions(&[plan(
            "a",
            Expected::Absent,
            1,
            10,
            vec![
                subject("p1"),
                token("status", None, "active"),
                token("category", Some(cat), "assess-plan"),
                period(100, 200),
            ],
        )])
        .await
        .unwrap();
    store
        .commit_versions(&[plan(
            "b",
            Expected::Absent,
            1,
            20,
            vec![
                subject("p1"),
                token("status", None, "draft"),
                period(300, 400),
                index::IndexRow::String {
                    code: "title".into(),
                    norm: "walk to the park".into(),
                    exact: "Walk to the park".into(),
                },
            ],
        )])
        .await
        .unwrap();
    store
        .commit_versions(&[plan(
            "c",
            Expected::Absent,
            1,
            30,
            vec![subject("p2"), token("status", None, "active")],
        )])
        .await
        .unwrap();

    let by_patient = |p: &str| Condition::Reference {
        code: "patient".into(),
        target_type: Some("Patient".into()),
        target_id: Some(p.into()),
        url: None,
    };
    let status = |v: &str| Condition::Token {
        code: "status".into(),
        system: SystemMatch::Any,
        value: Some(v.into()),
    };
    assert_eq!(
        search_ids(store, vec![all(by_patient("p1"))]).await,
        ["a", "b"]
    );
    assert_eq!(
        search_ids(store, vec![all(by_patient("p1")), all(status("active"))]).await,
        ["a"]
    );
    let either = search::Clause {
        any_of: vec![status("active"), status("draft")],
        negated: false,
    };
    assert_eq!(search_ids(store, vec![either]).await, ["a", "b", "c"]);
    assert_eq!(
        search_ids(
            store,
            vec![search::Clause {
                any_of: vec![status("active")],
                negated: true
            }]
        )
        .await,
        ["b"]
    );
    let category = Condition::Token {
        code: "category".into(),
        system: SystemMatch::Is(cat.into()),
        value: Some("assess-plan".into()),
    };
    assert_eq!(search_ids(store, vec![all(category)]).await, ["a"]);
    let no_system = Condition::Token {
        code: "category".into(),
        system: SystemMatch::Absent,
        value: Some("assess-plan".into()),
    };
    assert!(search_ids(store, vec![all(no_system)]).await.is_empty());
    let date = |op, low, high| Condition::Date {
        code: "date".into(),
        range: search::Range { op, low, high },
    };
    assert_eq!(
        search_ids(store, vec![all(date(RangeOp::Ge, 250, 260))]).await,
        ["b"]
    );
    assert_eq!(
        search_ids(store, vec![all(date(RangeOp::Lt, 250, 260))]).await,
        ["a"]
    );
    assert_eq!(
        search_ids(store, vec![all(date(RangeOp::Eq, 0, 1000))]).await,
        ["a", "b"]
    );
    let missing = Condition::Missing {
        code: "date".into(),
        table: "idx_date",
        missing: true,
    };
    assert_eq!(search_ids(store, vec![all(missing)]).await, ["c"]);
    let title = |m| Condition::String {
        code: "title".into(),
        matching: m,
    };
    assert_eq!(
        search_ids(
            store,
            vec![all(title(StringMatch::StartsWith("walk".into())))]
        )
        .await,
        ["b"]
    );
    assert_eq!(
        search_ids(
            store,
            vec![all(title(StringMatch::Contains("park".into())))]
        )
        .await,
        ["b"]
    );
    assert!(search_ids(
        store,
        vec![all(title(StringMatch::Exact("walk to the park".into())))]
    )
    .await
    .is_empty());
    assert_eq!(
        search_ids(store, vec![all(Condition::Id("c".into()))]).await,
        ["c"]
    );

    // Sorted by date (newest first) and counted, with the patient driving: the checks made on
    // the patient's reference rows find what they find per resource.
    let sorted_and_counted = |clauses: Vec<search::Clause>| async move {
        let query = search::SearchQuery {
            resource_type: "CarePlan".into(),
            clauses,
            order: search::newest_date_first(),
            after: None,
            limit: 100,
        };
        let ids: Vec<String> = store
            .search(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        (ids, store.count(&query).await.unwrap())
    };
    let not = |condition| search::Clause {
        any_of: vec![condition],
        negated: true,
    };
    let has_date = |p: &str, missing| {
        vec![
            all(by_patient(p)),
            all(Condition::Missing {
                code: "date".into(),
                table: "idx_date",
                missing,
            }),
        ]
    };
    let cases: Vec<(Vec<search::Clause>, Vec<&str>)> = vec![
        (vec![all(by_patient("p1"))], vec!["b", "a"]),
        (
            vec![all(by_patient("p1")), all(status("active"))],
            vec!["a"],
        ),
        (
            vec![all(status("active")), all(by_patient("p1"))],
            vec!["a"],
        ),
        (
            vec![all(by_patient("p1")), not(status("active"))],
            vec!["b"],
        ),
        (
            vec![
                all(by_patient("p1")),
                search::Clause {
                    any_of: vec![status("active"), status("draft")],
                    negated: false,
                },
            ],
            vec!["b", "a"],
        ),
        (has_date("p1", false), vec!["b", "a"]),
        (has_date("p1", true), vec![]),
        (has_date("p2", true), vec!["c"]),
        (
            vec![
                all(by_patient("p1")),
                all(Condition::IdIn(vec!["b".into(), "c".into()])),
            ],
            vec!["b"],
        ),
        (
            vec![
                all(by_patient("p1")),
                all(status("active")),
                not(Condition::Id("a".into())),
            ],
            vec![],
        ),
    ];
    for (clauses, expected) in cases {
        let (ids, count) = sorted_and_counted(clauses.clone()).await;
        assert_eq!(ids, expected, "{clauses:?}");
        assert_eq!(count, expected.len() as i64, "{clauses:?}");
    }

    // an update replaces the index rows; a delete removes the resource from results
    store
        .commit_versions(&[plan(
            "a",
            Expected::Version(1),
            2,
            40,
            vec![subject("p2"), token("status", None, "completed")],
        )])
        .await
        .unwrap();
    assert_eq!(search_ids(store, vec![all(by_patient("p1"))]).await, ["b"]);
    assert_eq!(
        search_ids(store, vec![all(by_patient("p2"))]).await,
        ["a", "c"]
    );
    let mut tomb = plan("c", Expected::Version(1), 2, 50, Vec::new());
    tomb.body = None;
    tomb.method = WriteMethod::Delete;
    store.commit_versions(&[tomb]).await.unwrap();
    assert_eq!(search_ids(store, vec![all(by_patient("p2"))]).await, ["a"]);

    // newest first with a keyset cursor, and an accurate count
    let mut query = search::SearchQuery {
        resource_type: "CarePlan".into(),
        clauses: vec![],
        order: search::Order::LastUpdatedDesc,
        after: None,
        limit: 1,
    };
    let first = store.search(&query).await.unwrap();
    assert_eq!(first[0].id, "a");
    query.after = Some(search::Cursor {
        last_updated_us: first[0].version.last_updated_us,
        id: first[0].id.clone(),
        sort_values: Vec::new(),
    });
    assert_eq!(store.search(&query).await.unwrap()[0].id, "b");
    assert_eq!(store.count(&query).await.unwrap(), 2);
}

#[tokio::test]
async fn search_story_on_every_backend() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        search_story(db.store.as_ref()).await;
        db.cleanup().await;
    }
}

/// A transaction of several creates (one statement on PostgreSQL): every resource gets its
/// own versions and index rows, and one existing resource among them fails them all.
async fn creates_together(store: &dyn Store) {
    use search::{Condition, SystemMatch};
    let status = |v: &str| {
        all(Condition::Token {
            code: "status".into(),
            system: SystemMatch::Any,
            value: Some(v.into()),
        })
    };
    let patient = |p: &str| {
        all(Condition::Reference {
            code: "patient".into(),
            target_type: Some("Patient".into()),
            target_id: Some(p.into()),
            url: None,
        })
    };
    let title = |t: &str| index::IndexRow::String {
        code: "title".into(),
        norm: t.into(),
        exact: t.into(),
    };
    store
        .commit_versions(&[
            plan(
                "m1",
                Expected::Absent,
                1,
                10,
                vec![subject("p1"), token("status", None, "active"), title("one")],
            ),
            plan(
                "m2",
                Expected::Absent,
                1,
                10,
                vec![subject("p2"), token("status", None, "draft")],
            ),
            plan(
                "m3",
                Expected::Absent,
                1,
                10,
                vec![subject("p1"), period(1, 2)],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(search_ids(store, vec![patient("p1")]).await, ["m1", "m3"]);
    assert_eq!(search_ids(store, vec![status("draft")]).await, ["m2"]);
    assert_eq!(
        search_ids(store, vec![patient("p1"), status("active")]).await,
        ["m1"]
    );
    for id in ["m1", "m2", "m3"] {
        let current = store.current("CarePlan", id).await.unwrap().unwrap();
        assert_eq!(current.body.unwrap(), format!("{{\"id\":\"{id}\"}}"));
        assert!(store.version("CarePlan", id, 1).await.unwrap().is_some());
    }
    // m2 exists: nothing of this transaction is written, and the conflict names m2.
    let err = store
        .commit_versions(&[
            plan("m4", Expected::Absent, 1, 20, vec![subject("p3")]),
            plan("m2", Expected::Absent, 1, 20, vec![subject("p3")]),
        ])
        .await;
    assert!(
        matches!(&err, Err(StoreError::Conflict { id, .. }) if id == "m2"),
        "{err:?}"
    );
    assert_eq!(store.current("CarePlan", "m4").await.unwrap(), None);
    assert!(search_ids(store, vec![patient("p3")]).await.is_empty());
    // The same resource twice in one transaction is a conflict too.
    let err = store
        .commit_versions(&[
            plan("m5", Expected::Absent, 1, 30, vec![]),
            plan("m5", Expected::Absent, 1, 30, vec![]),
        ])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert_eq!(store.current("CarePlan", "m5").await.unwrap(), None);
}

#[tokio::test]
async fn creates_together_on_every_backend() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        creates_together(db.store.as_ref()).await;
        db.cleanup().await;
    }
}

/// After a bulk load the planner knows how many rows there are (PostgreSQL's estimate; SQLite's
/// refresh is tested in `tests/statistics.rs`).
#[tokio::test]
async fn statistics_are_refreshed_after_a_bulk_load() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        if backend == crate::testing::Backend::Postgres {
            // A store started on tables never analyzed analyzes them (in the background).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while db.planner_row_estimate("resource_current").await != Some(0.0) {
                assert!(std::time::Instant::now() < deadline, "no ANALYZE at start");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let writes: Vec<VersionWrite> = (0..3)
            .map(|n| {
                write(
                    &format!("p{n}"),
                    Expected::Absent,
                    1,
                    WriteMethod::Create,
                    Some("{}"),
                )
            })
            .collect();
        db.store.commit_versions(&writes).await.expect("bulk load");
        let before = db.planner_row_estimate("resource_current").await;
        db.store
            .refresh_statistics()
            .await
            .expect("statistics refreshed");
        let after = db.planner_row_estimate("resource_current").await;
        match backend {
            crate::testing::Backend::Postgres => {
                assert_eq!(before, Some(0.0), "analyzed empty, at start");
                assert_eq!(after, Some(3.0));
            }
            crate::testing::Backend::Sqlite => assert_eq!((before, after), (None, None)),
        }
        db.cleanup().await;
    }
}

/// A conditional create's batch commits only while its search matches nothing, and a batch
/// whose search matches writes nothing at all.
async fn none_matching_story(store: &dyn Store) {
    let none_with_id = |id: &str| NoneMatching {
        key: format!("Patient?_id={id}"),
        query: search::SearchQuery {
            resource_type: "Patient".into(),
            clauses: vec![all(search::Condition::Id(id.into()))],
            order: search::Order::IdAsc,
            after: None,
            limit: 2,
        },
    };
    let create = |id: &str, unless: &str| CommitBatch {
        versions: vec![write(
            id,
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{}"),
        )],
        none_matching: vec![none_with_id(unless)],
        ..CommitBatch::default()
    };
    // Nothing is nm1 yet: the create commits (its own write is not searched).
    store.commit(&create("nm1", "nm1")).await.unwrap();
    assert!(store.current("Patient", "nm1").await.unwrap().is_some());
    // nm1 exists now: a batch that needs it absent fails whole.
    match store.commit(&create("nm2", "nm1")).await {
        Err(StoreError::NowMatches { resource_type }) => assert_eq!(resource_type, "Patient"),
        other => panic!("expected NowMatches, got {other:?}"),
    }
    assert!(store.current("Patient", "nm2").await.unwrap().is_none());
    // A deleted resource matches nothing.
    store
        .commit_versions(&[write(
            "nm1",
            Expected::Version(1),
            2,
            WriteMethod::Delete,
            None,
        )])
        .await
        .unwrap();
    store.commit(&create("nm3", "nm1")).await.unwrap();
    assert_eq!(
        none_with_id("a").lock_id(),
        none_with_id("a").lock_id(),
        "the lock number is the same on every node"
    );
    assert_ne!(none_with_id("a").lock_id(), none_with_id("b").lock_id());
}
