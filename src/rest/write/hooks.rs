//! Step 3 of the write pipeline: the hooks. A [`WriteHook`] sees every prepared write of one
//! commit — the caller, the current and the proposed content — before anything is stored, and
//! may refuse them (nothing is stored) or add to the same atomic batch: resource versions
//! (Provenance, extracted Observations) and outbox events (notifications). After the commit it
//! may update in-memory state. A new rule or side effect of writing is one hook, registered
//! once in [`default_hooks`]; no write path knows about it.

use super::PreparedWrite;
use crate::error::FhirResult;
use crate::policy::Access;
use crate::rest::provenance::SuppliedProvenance;
use crate::rest::FhirService;
use crate::store::CommitBatch;
use async_trait::async_trait;
use std::sync::Arc;

/// What every hook knows about one commit.
pub struct WriteContext<'a> {
    /// The caller (grant, `fhirUser`, client), or the server's own tooling.
    pub access: &'a Access,
    /// The commit's time: the `meta.lastUpdated` of the versions it writes (microseconds).
    pub now_us: i64,
    /// The writes are the entries of one transaction Bundle, committed together.
    pub transaction: bool,
    /// What the client added to the Provenance of its write (`X-Provenance`).
    pub supplied: Option<Arc<SuppliedProvenance>>,
}

impl<'a> WriteContext<'a> {
    /// The context of a commit by `access` at `now_us`, with the request's `X-Provenance`.
    pub fn new(access: &'a Access, now_us: i64, transaction: bool) -> Self {
        WriteContext {
            access,
            now_us,
            transaction,
            supplied: crate::rest::provenance::supplied(),
        }
    }
}

/// A rule or side effect of writing, run inside the write pipeline.
#[async_trait]
pub trait WriteHook: Send + Sync {
    /// The hook's name, for logs and for refusals that name their rule.
    fn name(&self) -> &'static str;

    /// Before anything is stored, with every write of the commit (`batch.versions` starts with
    /// their versions, in the same order): refuse with an error (nothing of the commit is
    /// stored) or add resource versions and outbox events to `batch`.
    async fn before_commit(
        &self,
        _service: &FhirService,
        _cx: &WriteContext<'_>,
        _writes: &[PreparedWrite],
        _batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        Ok(())
    }

    /// After the batch is durable: update in-memory state. Cannot fail the write.
    fn after_commit(&self, _service: &FhirService, _cx: &WriteContext<'_>, _batch: &CommitBatch) {}
}

/// The hooks every server runs, in order. Recording Provenance comes last among the steps
/// before the commit: rules that may refuse a write run before it (insert them ahead of it).
pub(crate) fn default_hooks(config: &crate::config::Config) -> Vec<Arc<dyn WriteHook>> {
    vec![
        Arc::new(super::require_if_match::RequireIfMatch {
            types: config.require_if_match.clone(),
            all_callers: config.require_if_match_for_all,
        }),
        Arc::new(super::conform_to_profiles::ConformToProfiles),
        Arc::new(super::coproduction::Coproduction),
        Arc::new(super::score_responses::ScoreResponses {
            require_known: config.require_known_questionnaire,
        }),
        Arc::new(super::record_provenance::RecordProvenance),
        Arc::new(RememberMembership),
        Arc::new(AuditWrites),
    ]
}

/// Records each write of patient data as an AuditEvent (`rest/audit/`), after the commit.
struct AuditWrites;

#[async_trait]
impl WriteHook for AuditWrites {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn after_commit(&self, service: &FhirService, cx: &WriteContext<'_>, batch: &CommitBatch) {
        for w in &batch.versions {
            let rt = w.resource_type.as_str();
            // What the server adds (Provenance, Devices) is not the caller's write.
            if !service.audits(rt) || rt == "Provenance" {
                continue;
            }
            let subtype = match w.method {
                // A PUT to a new id brings the resource into being: recorded as a create.
                _ if w.version_id == 1 => "create",
                crate::store::WriteMethod::Create => "create",
                crate::store::WriteMethod::Update => "update",
                crate::store::WriteMethod::Patch => "patch",
                crate::store::WriteMethod::Delete => "delete",
            };
            let mut patients = crate::rest::membership::patients_in(rt, &w.id, &w.index);
            if w.body.is_none() {
                // A deletion's tombstone has no content: whose record it was is named by the
                // Provenance that lists this version as a target (one per patient).
                let this = format!("{rt}/{}/_history/{}", w.id, w.version_id);
                let names_this = |p: &&crate::store::VersionWrite| {
                    p.resource_type == "Provenance"
                        && p.index.iter().any(|row| {
                            matches!(row, crate::store::index::IndexRow::Reference { code, url, .. }
                                if code == "target" && *url == this)
                        })
                };
                patients = batch
                    .versions
                    .iter()
                    .filter(names_this)
                    .flat_map(|p| {
                        crate::rest::membership::patients_in(&p.resource_type, &p.id, &p.index)
                    })
                    .collect();
            }
            let what = crate::rest::audit::Named::Resource(rt, &w.id, Some(w.version_id));
            service.audit_write(cx.access, subtype, &patients, what);
        }
    }
}

/// Remembers the compartments of every version a commit stored (`rest/membership.rs`), so a
/// confined read of it right after costs a lookup.
struct RememberMembership;

#[async_trait]
impl WriteHook for RememberMembership {
    fn name(&self) -> &'static str {
        "compartment-membership"
    }

    fn after_commit(&self, service: &FhirService, _cx: &WriteContext<'_>, batch: &CommitBatch) {
        for w in batch.versions.iter().filter(|w| w.body.is_some()) {
            service.remember_membership(&w.resource_type, &w.id, w.version_id, &w.index);
        }
    }
}
