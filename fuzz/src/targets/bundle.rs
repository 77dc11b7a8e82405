//! Target `bundle`: `POST /` with a batch or transaction Bundle (R4 http.html#transaction;
//! `FhirService::process_bundle`) against a SQLite database made once per process, with the
//! shipped profiles and Questionnaires loaded and the default write hooks (PROM scoring,
//! Provenance, coproduction rules).
//!
//! Input: the request body (JSON). A leading `P` sends it with a launch-patient token
//! (`patient/*.cruds` for `Patient/p1`) instead of unrestricted access, so the access checks of
//! every entry run too.
//!
//! Invariants beyond "no panic, no 500":
//! - no entry of a batch answers 500 either;
//! - the response is a valid R4 Bundle (fhirbolt's strict parse);
//! - a transaction that fails writes nothing (the newest version in the system history is the
//!   same before and after).

use super::{assert_not_internal, BASE};
use coplan::clock::{SequentialIds, SteppingClock};
use coplan::config::ConfigLayer;
use coplan::policy::{Access, Grant, Reach, ScopeSet, ScopedAccess};
use coplan::rest::{FhirService, HistoryParams};
use coplan::store::{HistoryScope, SqliteStore, Store};
use coplan::validate::parse_json;
use serde_json::Value;
use std::sync::Arc;

/// The service over its database.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    service: FhirService,
    patient: Access,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = super::scratch_directory();
        let path = dir.path().join("fhir.db");
        let service = runtime.block_on(async move {
            let store = SqliteStore::open(&path).await.expect("open SQLite");
            store.migrate().await.expect("migrate");
            let config = ConfigLayer::default()
                .set("base_url", BASE)
                .set("audit_events", false)
                .resolve()
                .expect("config");
            let start = time::OffsetDateTime::from_unix_timestamp(super::bearer_token::NOW)
                .expect("a valid instant");
            let service = FhirService::new(
                Arc::new(store),
                Arc::new(SteppingClock::new(start, 1_000)),
                Arc::new(SequentialIds::new("f")),
                &config,
            );
            service
                .load_conformance_library()
                .await
                .expect("the shipped profiles load");
            service
                .load_questionnaire_library()
                .await
                .expect("the shipped Questionnaires load");
            service
        });
        let scope = "launch/patient patient/*.cruds";
        let patient = Access::Scoped(Arc::new(ScopedAccess {
            grant: Grant {
                client_id: "fuzz-app".into(),
                subject: "amy".into(),
                scope: scope.into(),
                patient: Some("p1".into()),
                fhir_user: Some("Patient/p1".into()),
                expires_at: i64::MAX,
            },
            scopes: ScopeSet::parse(scope),
            user_reach: Reach::Nobody,
        }));
        Harness {
            runtime,
            dir,
            service,
            patient,
        }
    }

    /// Where the database lives (removed when the harness is dropped).
    pub fn directory(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn check(&self, data: &[u8]) {
        let (access, body) = match data.split_first() {
            Some((b'P', rest)) => (&self.patient, rest),
            _ => (&Access::Unrestricted, data),
        };
        let Ok(bundle) = parse_json(body) else {
            return;
        };
        let transaction = bundle.get("type").and_then(Value::as_str) == Some("transaction");
        let before = transaction.then(|| self.newest_version());
        let response = self
            .runtime
            .block_on(self.service.process_bundle(access, bundle));
        let bytes = match response {
            Ok(bytes) => bytes,
            Err(e) => {
                assert_not_internal(&e, "process_bundle");
                if let Some(before) = before {
                    assert_eq!(
                        self.newest_version(),
                        before,
                        "a failed transaction wrote something ({e:?})"
                    );
                }
                return;
            }
        };
        if let Err(e) = fhir_r4::check_json(&bytes) {
            panic!(
                "the response is not a valid Bundle: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let response: Value = serde_json::from_slice(&bytes).expect("the response is JSON");
        for entry in response["entry"].as_array().into_iter().flatten() {
            let status = entry["response"]["status"].as_str().unwrap_or_default();
            assert!(!status.starts_with("500"), "an entry answered 500: {entry}");
        }
    }

    /// The newest version in the system history (`fullUrl` and `etag`), if any.
    fn newest_version(&self) -> Option<(Value, Value)> {
        let params = HistoryParams {
            count: Some("1".into()),
            ..HistoryParams::default()
        };
        let page = self
            .runtime
            .block_on(
                self.service
                    .history(&Access::Unrestricted, HistoryScope::System, &params),
            )
            .expect("system history");
        let bundle: Value = serde_json::from_slice(&page.body).expect("history is JSON");
        let entry = &bundle["entry"][0];
        (!entry.is_null()).then(|| (entry["fullUrl"].clone(), entry["response"]["etag"].clone()))
    }
}
