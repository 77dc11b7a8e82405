//! The storage story, run against every backend (SQLite always, PostgreSQL when configured).

use super::*;
use crate::testing::{backends, TestDatabase};

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
    }
}

async fn story(store: &dyn Store) {
    // migrations are idempotent
    store.migrate().await.expect("second migrate");
    store.ping().await.expect("ping");
    assert_eq!(store.current("Patient", "a").await.unwrap(), None);

    // create, then a second create of the same id conflicts
    store
        .commit(&[write(
            "a",
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{\"v\":1}"),
        )])
        .await
        .unwrap();
    let err = store
        .commit(&[write(
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
        .commit(&[write(
            "a",
            Expected::Version(1),
            2,
            WriteMethod::Update,
            Some("{\"v\":2}"),
        )])
        .await
        .unwrap();
    let stale = store
        .commit(&[write(
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
        .commit(&[write(
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
        store.commit(&batch).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.current("Patient", "b").await.unwrap(), None);

    // history: newest first, scoped, paged by sequence, filtered by since
    let mut other = write("c", Expected::Absent, 1, WriteMethod::Create, Some("{}"));
    other.resource_type = "Goal".into();
    store.commit(&[other]).await.unwrap();
    let instance = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance("Patient".into(), "a".into()),
            since_us: None,
            before_seq: None,
            limit: 10,
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
        .commit(&[write(
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
                .commit(&[write(
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
        racing_writers_never_lose_an_update(db.store.clone()).await;
        db.cleanup().await;
    }
}
