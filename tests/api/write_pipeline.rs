//! The one write pipeline (`src/rest/write/`): every write path — create, conditional create,
//! update, conditional update, patch, delete, conditional delete, batch and transaction
//! entries — runs the registered hooks with the current and proposed content, and what a hook
//! adds (resource versions, outbox events) is committed atomically with the write, on every
//! backend.

use crate::common::{each_backend, TestApp};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use coplan::error::{FhirError, FhirResult};
use coplan::rest::{FhirService, PreparedWrite, WriteContext, WriteHook};
use coplan::store::{CommitBatch, Expected, OutboxEvent, VersionWrite, WriteMethod};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What the hook saw of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: &'static str,
    target: String,
    /// The version replaced (0: none).
    current: i64,
    /// The proposed content's `active` element, if there is content.
    proposed_active: Option<Option<bool>>,
    transaction: bool,
}

/// A hook that records what it sees, adds a `Basic` resource and an outbox event for every
/// write, and refuses writes of a Patient whose `gender` is `unknown`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Vec<Seen>>>,
}

#[async_trait]
impl WriteHook for Recorder {
    fn name(&self) -> &'static str {
        "test-recorder"
    }

    async fn before_commit(
        &self,
        _service: &FhirService,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let mut seen = Vec::new();
        for w in writes {
            let v = &w.version;
            let proposed = w.proposed.as_ref().map(|p| p.value().clone());
            if proposed.as_ref().and_then(|p| p.get("gender")) == Some(&json!("unknown")) {
                return Err(FhirError::forbidden("test-recorder refuses gender unknown"));
            }
            let target = format!("{}/{}/_history/{}", v.resource_type, v.id, v.version_id);
            seen.push(Seen {
                method: v.method.as_str(),
                target: target.clone(),
                current: w.current.as_ref().map_or(0, |c| c.version_id),
                proposed_active: proposed.map(|p| p.get("active").and_then(Value::as_bool)),
                transaction: cx.transaction,
            });
            // The companion's id is the target's (a test may make it collide on purpose).
            let companion_id = format!("note-{}-{}", v.id, v.version_id);
            let body =
                json!({"resourceType": "Basic", "id": companion_id, "code": {"text": target}});
            batch.versions.push(VersionWrite {
                resource_type: "Basic".into(),
                id: companion_id,
                expected: Expected::Absent,
                version_id: 1,
                last_updated_us: cx.now_us,
                method: WriteMethod::Create,
                body: Some(Bytes::from(body.to_string())),
                index: Vec::new(),
            });
            batch.outbox.push(OutboxEvent {
                topic: "test".into(),
                recorded_us: cx.now_us,
                payload: Bytes::from(target),
            });
        }
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }
}

fn with_recorder(mut app: TestApp) -> (TestApp, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    app.state
        .fhir_mut()
        .expect("the service is not shared yet")
        .hooks
        .insert(0, recorder.clone());
    (app, recorder)
}

fn take(recorder: &Recorder) -> Vec<Vec<Seen>> {
    std::mem::take(&mut *recorder.seen.lock().unwrap())
}

fn seen(method: &'static str, target: &str, current: i64, active: Option<Option<bool>>) -> Seen {
    Seen {
        method,
        target: target.into(),
        current,
        proposed_active: active,
        transaction: false,
    }
}

async fn outbox(app: &TestApp) -> Vec<String> {
    let events = app
        .db
        .as_ref()
        .unwrap()
        .store
        .outbox_after(0, 100)
        .await
        .unwrap();
    events
        .into_iter()
        .map(|e| {
            assert_eq!(e.event.topic, "test");
            String::from_utf8(e.event.payload.to_vec()).unwrap()
        })
        .collect()
}

async fn companion_exists(app: &TestApp, id: &str) -> bool {
    app.db
        .as_ref()
        .unwrap()
        .store
        .current("Basic", id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn every_write_path_runs_the_hooks_and_commits_what_they_add() {
    each_backend(|app| async move {
        let (app, rec) = with_recorder(app);
        let patient = json!({"resourceType": "Patient", "active": true});

        // create
        let created = app.post_json("/fhir/Patient", &patient).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        assert_eq!(take(&rec), [vec![seen("POST", "Patient/id-1/_history/1", 0, Some(Some(true)))]]);

        // conditional create that creates, then one that finds the match (no write, no hook)
        let identified = json!({"resourceType": "Patient", "identifier": [{"system": "urn:s", "value": "1"}]});
        let r = app.request(Method::POST, "/fhir/Patient", &[("content-type", "application/fhir+json"), ("if-none-exist", "identifier=urn:s|1")], Some(identified.to_string().as_bytes())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = app.request(Method::POST, "/fhir/Patient", &[("content-type", "application/fhir+json"), ("if-none-exist", "identifier=urn:s|1")], Some(identified.to_string().as_bytes())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("POST", "Patient/id-2/_history/1", 0, Some(None))]]);

        // update: the hook sees the version it replaces and the proposed content
        let r = app.put_json("/fhir/Patient/id-1", &json!({"resourceType": "Patient", "id": "id-1", "active": false}), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("PUT", "Patient/id-1/_history/2", 1, Some(Some(false)))]]);

        // conditional update
        let r = app.put_json("/fhir/Patient?identifier=urn:s|1", &json!({"resourceType": "Patient", "identifier": [{"system": "urn:s", "value": "1"}], "active": true}), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("PUT", "Patient/id-2/_history/2", 1, Some(Some(true)))]]);

        // patch: the proposed content is the patched one
        let r = app.request(Method::PATCH, "/fhir/Patient/id-1", &[("content-type", "application/json-patch+json")], Some(br#"[{"op":"replace","path":"/active","value":true}]"#)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("PATCH", "Patient/id-1/_history/3", 2, Some(Some(true)))]]);

        // delete: no proposed content; a delete of nothing runs no hook
        let r = app.request(Method::DELETE, "/fhir/Patient/id-1", &[], None).await;
        assert!(r.status.is_success(), "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("DELETE", "Patient/id-1/_history/4", 3, None)]]);
        let r = app.request(Method::DELETE, "/fhir/Patient/id-1", &[], None).await;
        assert!(r.status.is_success(), "{}", r.text());
        assert!(take(&rec).is_empty());

        // conditional delete
        let r = app.request(Method::DELETE, "/fhir/Patient?identifier=urn:s|1", &[], None).await;
        assert!(r.status.is_success(), "{}", r.text());
        assert_eq!(take(&rec), [vec![seen("DELETE", "Patient/id-2/_history/3", 2, None)]]);

        // a batch: each entry is its own commit
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "b1"}, "request": {"method": "PUT", "url": "Patient/b1"}}
        ]});
        let r = app.post_json("/fhir", &batch).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(take(&rec), [
            vec![seen("POST", "Patient/id-3/_history/1", 0, Some(Some(true)))],
            vec![seen("PUT", "Patient/b1/_history/1", 0, Some(None))],
        ]);

        // a transaction: one commit, the hook sees every write at once
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0c3e9a4e-0000-4000-8000-000000000001", "resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "b1", "active": false}, "request": {"method": "PUT", "url": "Patient/b1"}},
            {"request": {"method": "DELETE", "url": "Patient/id-3"}}
        ]});
        let r = app.post_json("/fhir", &tx).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let in_tx = |mut s: Seen| {
            s.transaction = true;
            s
        };
        assert_eq!(take(&rec), [vec![
            in_tx(seen("DELETE", "Patient/id-3/_history/2", 1, None)),
            in_tx(seen("POST", "Patient/id-4/_history/1", 0, Some(Some(true)))),
            in_tx(seen("PUT", "Patient/b1/_history/2", 1, Some(Some(false)))),
        ]]);

        // Everything the hook added was committed, in order, with its write.
        let expected = [
            "Patient/id-1/_history/1", "Patient/id-2/_history/1", "Patient/id-1/_history/2",
            "Patient/id-2/_history/2", "Patient/id-1/_history/3", "Patient/id-1/_history/4",
            "Patient/id-2/_history/3", "Patient/id-3/_history/1", "Patient/b1/_history/1",
            "Patient/id-3/_history/2", "Patient/id-4/_history/1", "Patient/b1/_history/2",
        ];
        assert_eq!(outbox(&app).await, expected);
        for target in expected {
            let parts: Vec<&str> = target.split('/').collect();
            let id = format!("note-{}-{}", parts[1], parts[3]);
            assert!(companion_exists(&app, &id).await, "{id}");
        }
        app
    })
    .await;
}

#[tokio::test]
async fn a_hook_that_refuses_or_a_conflict_in_what_it_adds_leaves_nothing() {
    each_backend(|app| async move {
        let (app, rec) = with_recorder(app);
        let before = app.version_count().await;

        // A refusal fails the write: nothing of it, nothing of the hook's.
        let r = app.post_json("/fhir/Patient", &json!({"resourceType": "Patient", "gender": "unknown"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.diagnostics().contains("test-recorder"), "{}", r.text());
        // ... and in a transaction, the whole transaction.
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "u", "gender": "unknown"}, "request": {"method": "PUT", "url": "Patient/u"}}
        ]});
        let r = app.post_json("/fhir", &tx).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(app.version_count().await, before);
        assert!(outbox(&app).await.is_empty());

        // What a hook adds commits with the write or not at all: make the companion of the
        // next transaction's update collide with an existing resource.
        let r = app.put_json("/fhir/Patient/p", &json!({"resourceType": "Patient", "id": "p"}), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let taken = json!({"resourceType": "Basic", "id": "note-p-2", "code": {"text": "taken"}});
        let r = app.put_json("/fhir/Basic/note-p-2", &taken, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let before = (app.version_count().await, outbox(&app).await.len());
        for tx in [
            // an update and a create (one statement per version on PostgreSQL)
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Patient", "id": "p", "active": true}, "request": {"method": "PUT", "url": "Patient/p"}}
            ]}),
        ] {
            let r = app.post_json("/fhir", &tx).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        }
        assert_eq!((app.version_count().await, outbox(&app).await.len()), before);
        // Creates only (one statement on PostgreSQL): the companion of the second create
        // collides. Ids are sequential: the refused create took id-1, the refused transaction
        // id-2, the conflicting one id-3; this one mints id-4 and id-5.
        let taken = json!({"resourceType": "Basic", "id": "note-id-5-1", "code": {"text": "taken"}});
        let r = app.put_json("/fhir/Basic/note-id-5-1", &taken, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let before = (app.version_count().await, outbox(&app).await.len());
        take(&rec);
        let creates = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
        ]});
        let r = app.post_json("/fhir", &creates).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        let seen: Vec<String> = take(&rec).concat().into_iter().map(|s| s.target).collect();
        assert_eq!(seen, ["Patient/id-4/_history/1", "Patient/id-5/_history/1"], "one commit");
        assert_eq!((app.version_count().await, outbox(&app).await.len()), before);
        assert!(app.db.as_ref().unwrap().store.current("Patient", "id-4").await.unwrap().is_none());
        assert_eq!(app.get("/fhir/Patient/p").await.json()["meta"]["versionId"], "1");
        app
    })
    .await;
}
