//! The store's two logs, run against every backend (from `storage_story_on_every_backend`):
//! the transactional outbox, and the audit log consumed exactly once.

use super::*;

fn event(topic: &str, payload: &str) -> OutboxEvent {
    OutboxEvent {
        topic: topic.into(),
        recorded_us: 7,
        payload: Bytes::from(payload.to_string()),
    }
}

/// Outbox events commit with the versions of their batch, in order, or not at all — for a
/// lone write, an update beside a create, and creates together (one statement on PostgreSQL).
pub(super) async fn outbox_story(store: &dyn Store) {
    assert!(store.outbox_after(0, 10).await.unwrap().is_empty());
    let batches = [
        CommitBatch {
            versions: vec![write(
                "o1",
                Expected::Absent,
                1,
                WriteMethod::Create,
                Some("{}"),
            )],
            outbox: vec![event("t", "o1"), event("u", "o1 again")],
            ..CommitBatch::default()
        },
        CommitBatch {
            versions: vec![
                write(
                    "o1",
                    Expected::Version(1),
                    2,
                    WriteMethod::Update,
                    Some("{}"),
                ),
                write("o2", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
            ],
            outbox: vec![event("t", "o1 o2")],
            ..CommitBatch::default()
        },
        CommitBatch {
            versions: vec![
                write("o3", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
                write("o4", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
            ],
            outbox: vec![event("t", "o3 o4")],
            ..CommitBatch::default()
        },
        CommitBatch {
            versions: vec![],
            outbox: vec![event("t", "no versions")],
            ..CommitBatch::default()
        },
    ];
    for batch in &batches {
        store.commit(batch).await.unwrap();
    }
    // A batch that conflicts (in any position) leaves none of its events.
    for versions in [
        vec![write(
            "o1",
            Expected::Version(1),
            2,
            WriteMethod::Update,
            Some("{}"),
        )],
        vec![
            write("o5", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
            write("o2", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
        ],
        vec![
            write("o6", Expected::Absent, 1, WriteMethod::Create, Some("{}")),
            write(
                "o1",
                Expected::Version(1),
                2,
                WriteMethod::Update,
                Some("{}"),
            ),
        ],
    ] {
        let failed = CommitBatch {
            versions,
            outbox: vec![event("t", "lost")],
            ..CommitBatch::default()
        };
        let err = store.commit(&failed).await;
        assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    }
    assert_eq!(store.current("Patient", "o5").await.unwrap(), None);
    let all = store.outbox_after(0, 10).await.unwrap();
    let payloads: Vec<&[u8]> = all.iter().map(|e| e.event.payload.as_ref()).collect();
    assert_eq!(
        payloads,
        [&b"o1"[..], b"o1 again", b"o1 o2", b"o3 o4", b"no versions"]
    );
    assert_eq!(all[1].event.topic, "u");
    assert_eq!(all[1].event.recorded_us, 7);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let after = store.outbox_after(all[2].seq, 1).await.unwrap();
    assert_eq!(after, all[3..4]);
}

fn audit_entry(id: &str) -> AuditLogEntry {
    AuditLogEntry {
        id: id.into(),
        recorded_us: 42,
        record: Bytes::from(format!("record of {id}")),
    }
}

async fn everything_in_the_log(store: &dyn Store) -> Vec<StoredAuditLogEntry> {
    store.audit_log_range(0, i64::MAX, 10).await.unwrap()
}

/// Audit log entries are appended in order and consumed exactly once: a batch consuming an
/// entry that is gone fails whole (its versions are not written, its other entries stay).
pub(super) async fn audit_log_story(store: &dyn Store) {
    assert!(everything_in_the_log(store).await.is_empty());
    assert_eq!(store.audit_log_last_seq().await.unwrap(), None);
    let append = |ids: &[&str]| CommitBatch {
        audit_log: ids.iter().map(|id| audit_entry(id)).collect(),
        ..CommitBatch::default()
    };
    store.commit(&append(&["e1", "e2"])).await.unwrap();
    store.commit(&append(&["e3"])).await.unwrap();
    let all = everything_in_the_log(store).await;
    let ids: Vec<&str> = all.iter().map(|e| e.entry.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert_eq!(all[1].entry, audit_entry("e2"));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.audit_log_last_seq().await.unwrap(), Some(all[2].seq));
    // Ranges: after and through bound the seqs, limit the count.
    assert_eq!(
        store.audit_log_range(0, i64::MAX, 2).await.unwrap(),
        all[..2]
    );
    assert_eq!(
        store
            .audit_log_range(all[0].seq, all[1].seq, 10)
            .await
            .unwrap(),
        all[1..2]
    );
    assert!(store
        .audit_log_range(all[2].seq, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());

    // Consuming the first two with a version: both gone, the version written.
    let consume = |seqs: Vec<i64>, id: &str| CommitBatch {
        versions: vec![write(
            id,
            Expected::Absent,
            1,
            WriteMethod::Create,
            Some("{}"),
        )],
        consumed_audit_log: seqs,
        ..CommitBatch::default()
    };
    store
        .commit(&consume(vec![all[0].seq, all[1].seq], "made1"))
        .await
        .unwrap();
    assert!(store.current("Patient", "made1").await.unwrap().is_some());
    assert_eq!(everything_in_the_log(store).await, all[2..]);

    // A second consumer of an entry already taken (beside one still there) fails whole.
    let err = store
        .commit(&consume(vec![all[2].seq, all[0].seq], "made2"))
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert_eq!(store.current("Patient", "made2").await.unwrap(), None);
    assert_eq!(everything_in_the_log(store).await, all[2..]);
    store
        .commit(&consume(vec![all[2].seq], "made3"))
        .await
        .unwrap();
    assert!(everything_in_the_log(store).await.is_empty());
}
