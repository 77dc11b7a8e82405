//! No lost update between patient and clinician (issue "The shared care plan" §2; R4
//! http.html "Managing Resource Contention": a server may require version-aware updates and
//! answer 412 when `If-Match` is missing). Updates, patches and deletes of the shared plan's
//! types (`require_if_match`, by default CarePlan, Goal, CareTeam) made by the apps that co-edit
//! them — `patient/` and `user/` tokens — must name the version they replace. Backend services
//! (`system/` tokens) and servers without access control keep plain R4 semantics, since generic
//! clients (fhirpy's `save()`) send no version, unless `require_if_match_for_all` is set. A PUT
//! that creates a resource needs none: there is nothing to overwrite.

use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::FhirService;
use crate::store::{CommitBatch, WriteMethod};
use async_trait::async_trait;

/// The rule, as configured.
pub(crate) struct RequireIfMatch {
    /// The resource types it covers.
    pub types: Vec<String>,
    /// Whether it binds every caller, not only the co-editing apps.
    pub all_callers: bool,
}

/// The hook's name, which refusals carry.
pub const NAME: &str = "require-if-match";

impl RequireIfMatch {
    /// The co-editing apps (`Access::co_edits`: the patient's portal, a carer's app, a
    /// clinician's EHR app), or everyone when so configured.
    fn binds(&self, access: &Access) -> bool {
        self.all_callers || access.co_edits()
    }
}

#[async_trait]
impl WriteHook for RequireIfMatch {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn before_commit(
        &self,
        _service: &FhirService,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        _batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        if self.types.is_empty() || !self.binds(cx.access) {
            return Ok(());
        }
        for w in writes {
            let v = &w.version;
            let replaces = !w.created
                && matches!(
                    v.method,
                    WriteMethod::Update | WriteMethod::Patch | WriteMethod::Delete
                );
            if replaces && w.if_match.is_none() && self.types.contains(&v.resource_type) {
                let current = w.current.as_ref().map_or(0, |c| c.version_id);
                let how = if cx.transaction {
                    "Bundle.entry.request.ifMatch"
                } else {
                    "an If-Match header"
                };
                return Err(FhirError::new(
                    ErrorKind::PreconditionFailed,
                    "conflict",
                    format!(
                        "{}/{} is shared between the patient and the care team: a change must \
                         name the version it replaces. Read it and send its ETag in {how} \
                         (the current version is W/\"{current}\") [rule {NAME}]",
                        v.resource_type, v.id
                    ),
                ));
            }
        }
        Ok(())
    }
}
