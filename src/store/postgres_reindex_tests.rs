//! Reindexing on PostgreSQL beside live writes (`PostgresStore::commit_reindex`): a racing
//! update keeps only its own index rows, and a reindex waiting for its lock does not hold
//! writes back.

use super::*;

/// The backends `blocked_by` holds up (directly), by pid.
async fn blocked_by(store: &PostgresStore, pids: &[i32]) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && $1::int4[] ORDER BY pid",
    )
    .bind(pids)
    .fetch_all(&store.pool)
    .await
    .unwrap()
}

/// Polls until backends held up by `pids` other than `known` appear; returns them.
async fn until_blocked(store: &PostgresStore, pids: &[i32], known: &[i32]) -> Vec<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Vec<i32> = blocked_by(store, pids)
            .await
            .into_iter()
            .filter(|p| !known.contains(p))
            .collect();
        if !waiting.is_empty() {
            return waiting;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing waited on {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The reindex of `x` at version 1 with `index` (no body: a reindex writes index rows only).
fn reindex_of_x(index: Vec<crate::store::index::IndexRow>) -> VersionWrite {
    let mut w = patient("x", Expected::Reindex(1), 1);
    w.body = None;
    w.index = index;
    w
}

/// Commits `write` in a task of its own (so the test can watch it wait).
fn spawn_commit(
    store: &Arc<PostgresStore>,
    write: VersionWrite,
) -> tokio::task::JoinHandle<StoreResult<()>> {
    let store = Arc::clone(store);
    tokio::spawn(async move { store.commit_versions(&[write]).await })
}

/// A reindex and an update of the same resource at once leave exactly the update's index
/// rows. The update's statement must not take its snapshot while the reindex holds the row:
/// it would miss the rows the reindex inserts, and they would outlive their version (here:
/// the reindex waits on a row lock held by a third connection, the update arrives meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_racing_a_reindex_keeps_only_its_own_index_rows() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    let store = Arc::new(store);
    let with_rows = |mut w: VersionWrite, tag: &str| {
        w.index = every_index_row(tag);
        w
    };
    store
        .commit_versions(&[with_rows(patient("x", Expected::Absent, 1), "v1")])
        .await
        .unwrap();
    // A third connection holds the resource's row.
    let mut holder = store.pool.begin().await.unwrap();
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM resource_current WHERE id = 'x' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();

    let reindex = spawn_commit(&store, reindex_of_x(every_index_row("re")));
    let reindexer = until_blocked(&store, &[holder_pid], &[]).await;
    let update = spawn_commit(
        &store,
        with_rows(patient("x", Expected::Version(1), 2), "new"),
    );
    let mut waiting = reindexer.clone();
    waiting.push(holder_pid);
    until_blocked(&store, &waiting, &reindexer).await;
    holder.commit().await.unwrap();

    reindex.await.unwrap().unwrap();
    update.await.unwrap().unwrap();
    let mut stored = stored_index_rows(&store, "x").await;
    stored.sort();
    let mut expected = expected_index_rows("new");
    expected.sort();
    assert_eq!(stored, expected, "only the current version's index rows");
    drop(store);
    db.cleanup().await;
}

/// A reindex that cannot have its lock yet (a write transaction is open) asks again and again
/// briefly, so writes arriving meanwhile are not queued behind it until that transaction ends;
/// it completes once it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reindex_does_not_hold_writes_back() {
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    let store = Arc::new(store);
    store
        .commit_versions(&[
            patient("x", Expected::Absent, 1),
            patient("open", Expected::Absent, 1),
        ])
        .await
        .unwrap();
    // A write transaction left open holds the lock a reindex conflicts with.
    let mut open = store.pool.begin().await.unwrap();
    sqlx::query("UPDATE resource_current SET last_updated_us = 7 WHERE id = 'open'")
        .execute(&mut *open)
        .await
        .unwrap();
    let reindex = spawn_commit(&store, reindex_of_x(Vec::new()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another write goes through while the transaction is still open (it would wait behind the
    // reindex's request for the lock until the transaction ended).
    let other = tokio::time::timeout(
        Duration::from_secs(3),
        store.commit_versions(&[patient("other", Expected::Absent, 1)]),
    )
    .await;
    assert!(
        matches!(other, Ok(Ok(()))),
        "a write waited for the reindex: {other:?}"
    );
    assert!(!reindex.is_finished(), "the reindex waits for its lock");
    open.commit().await.unwrap();
    reindex.await.unwrap().unwrap();
    drop(store);
    db.cleanup().await;
}
