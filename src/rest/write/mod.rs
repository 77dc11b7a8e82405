//! The one write pipeline (R4 http.html#create, #update, #patch, #delete, #transaction).
//! Every write — plain, conditional, patch, delete, and each entry of a batch or transaction —
//! runs the same steps; the interactions below only say what they want written:
//!
//! 1. **authorize** (`authorize.rs`): the caller's permission for the interaction and, under a
//!    confining rule, whether the target is within reach (a 404, never a hint);
//! 2. **prepare** (`prepare.rs`): read the current version, check `If-Match`, build the proposed
//!    content (the request body, or the patch applied to the current content), check its
//!    references, extract its search index rows, check the new content stays within reach, stamp
//!    `id`/`meta.versionId`/`meta.lastUpdated` and check the stored structure — giving a
//!    [`PreparedWrite`] that carries the current *and* the proposed content;
//! 3. **hooks** (`hooks.rs`): every [`WriteHook`] sees all prepared writes of one commit and the
//!    caller, and may refuse them or add resource versions and outbox events to the same batch.
//!    Provenance, the coproduction rules, PROM scoring and notifications are hooks;
//! 4. **commit** (`commit.rs`): one [`crate::store::Store::commit`] of the whole batch, all or
//!    nothing, then the hooks' after-commit steps (in-memory caches).
//!
//! Versions never silently overwrite each other: every write names the version it replaces.
//! With `If-Match` a stale version is 412; without it a plain write that lost a race is
//! prepared again against the new current version (last writer wins, nothing half-applied).

mod authorize;
mod commit;
mod conform_to_profiles;
mod coproduction;
mod derived_ids;
mod hooks;
mod move_goals;
mod patch;
mod prepare;
mod record_provenance;
mod require_if_match;
mod score_responses;
pub mod warnings;

pub(crate) use commit::{now_matches, CommitError, WriteFailure};
pub use derived_ids::{DerivedIds, DERIVED_PREFIX};
pub(crate) use hooks::default_hooks;
pub use hooks::{WriteContext, WriteHook};
pub(crate) use patch::Patch;
pub use patch::{apply_patch, PatchBody};
pub use prepare::PreparedWrite;
pub(crate) use prepare::{Change, Intent};
pub use record_provenance::NAME as PROVENANCE_HOOK;
pub(crate) use score_responses::{outcome_issue, refuse_errors};

use super::read::parse_version;
use super::{check_known_type, FhirService, VersionedResource};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::store::{NoneMatching, StoredVersion, WriteMethod};
use crate::validate::{check_resource, is_valid_id};
use serde_json::Value;
use std::sync::Arc;

/// The result of an update: the new version, and whether it created the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    pub resource: VersionedResource,
    pub created: bool,
}

/// The result of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// A tombstone version was written.
    Deleted { version_id: i64 },
    /// There was nothing to delete (unknown or already deleted).
    NothingToDelete,
}

pub(crate) fn precondition_failed(
    resource_type: &str,
    id: &str,
    current: Option<&StoredVersion>,
    wanted: i64,
) -> FhirError {
    let detail = match current {
        Some(c) => format!(
            "If-Match version {wanted} is stale: the current version of {resource_type}/{id} is {}",
            c.version_id
        ),
        None => format!("If-Match version {wanted} given, but {resource_type}/{id} does not exist"),
    };
    FhirError::new(ErrorKind::PreconditionFailed, "conflict", detail)
}

pub(crate) fn check_id(resource_type: &str, id: &str) -> FhirResult<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(FhirError::invalid_at(
            format!("{id:?} is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)"),
            format!("{resource_type}.id"),
        ))
    }
}

impl FhirService {
    /// Create a resource with a server-assigned id (any id in the body is ignored).
    pub async fn create(
        &self,
        access: &Access,
        resource_type: &str,
        body: Value,
    ) -> FhirResult<VersionedResource> {
        self.create_unless_matching(access, resource_type, body, None)
            .await
            .map_err(WriteFailure::into_error)
    }

    /// [`FhirService::create`], committed only if `search` (a conditional create's) still
    /// matches nothing then.
    pub(crate) async fn create_unless_matching(
        &self,
        access: &Access,
        resource_type: &str,
        body: Value,
        search: Option<NoneMatching>,
    ) -> Result<VersionedResource, WriteFailure> {
        check_known_type(resource_type)?;
        // The permission is decided before the body is checked (as for every write).
        let rule = self
            .authorize(access, resource_type, "", WriteMethod::Create, true)
            .await?;
        let checked = check_resource(body, resource_type)?;
        let intent = Intent::new(resource_type, Change::Create(Arc::new(checked)), None)
            .unless_matching(search);
        let written = self.write_attempts(access, intent, rule).await?;
        Ok(written
            .map(|w| w.resource())
            .ok_or_else(|| FhirError::internal("a create wrote nothing"))?)
    }

    /// Update (or create, with a client-chosen id) `resource_type/id`.
    pub async fn update(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> FhirResult<UpdateOutcome> {
        self.update_unless_matching(access, resource_type, id, body, if_match, None)
            .await
            .map_err(WriteFailure::into_error)
    }

    /// [`FhirService::update`]; if it creates the resource, committed only if `search` (a
    /// conditional update's) still matches nothing then.
    pub(crate) async fn update_unless_matching(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
        search: Option<NoneMatching>,
    ) -> Result<UpdateOutcome, WriteFailure> {
        check_known_type(resource_type)?;
        check_id(resource_type, id)?;
        match body.get("id") {
            Some(Value::String(body_id)) if body_id == id => {}
            Some(Value::String(body_id)) => {
                return Err(FhirError::invalid_at(
                    format!("the resource id {body_id:?} does not match the URL id {id:?}"),
                    format!("{resource_type}.id"),
                )
                .into())
            }
            _ => {
                return Err(FhirError::invalid_at(
                    "an update must carry the resource id, equal to the id in the URL",
                    format!("{resource_type}.id"),
                )
                .into())
            }
        }
        // The permission is decided before the body is checked: a caller who may not write
        // here learns nothing about what the server would have accepted.
        let rule = self
            .authorize(access, resource_type, id, WriteMethod::Update, false)
            .await?;
        let checked = check_resource(body, resource_type)?;
        let intent = Intent::new(resource_type, Change::Update(Arc::new(checked)), if_match)
            .with_id(id.to_string(), false)
            .unless_matching(search);
        let written = self.write_attempts(access, intent, rule).await?;
        Ok(written
            .map(|w| UpdateOutcome {
                resource: w.resource(),
                created: w.created,
            })
            .ok_or_else(|| FhirError::internal("an update wrote nothing"))?)
    }

    /// Apply a patch — JSON Patch (RFC 6902) or FHIRPath Patch (fhirpatch.html) — to the
    /// current version.
    pub async fn patch(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        body: PatchBody,
        if_match: Option<i64>,
    ) -> FhirResult<VersionedResource> {
        check_known_type(resource_type)?;
        // The permission (and the target's visibility) is checked before the patch document.
        let rule = self
            .authorize(access, resource_type, id, WriteMethod::Patch, false)
            .await?;
        let patch = Patch::read(body)?;
        let intent = Intent::new(resource_type, Change::Patch(Arc::new(patch)), if_match)
            .with_id(id.to_string(), false);
        let written = self.write_authorized(access, intent, rule).await?;
        written
            .map(|w| w.resource())
            .ok_or_else(|| FhirError::internal("a patch wrote nothing"))
    }

    /// Delete `resource_type/id`: writes a tombstone version; history keeps every version.
    pub async fn delete(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> FhirResult<DeleteOutcome> {
        check_known_type(resource_type)?;
        let intent =
            Intent::new(resource_type, Change::Delete, if_match).with_id(id.to_string(), false);
        Ok(match self.write_one(access, intent).await? {
            Some(w) => DeleteOutcome::Deleted {
                version_id: w.version.version_id,
            },
            None => DeleteOutcome::NothingToDelete,
        })
    }
}

/// Parse a version ETag as `If-Match` and `If-None-Match` carry it: `W/"3"` or `"3"`
/// (http.html#concurrency), and the bare `3` some clients send (fhirpy's `refresh()`): its
/// meaning is just as plain.
pub fn parse_etag(text: &str) -> FhirResult<i64> {
    let t = text.trim();
    let (weak, t) = match t.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let quoted = t.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    let bare = Some(t).filter(|_| !weak);
    quoted.or(bare).and_then(parse_version).ok_or_else(|| {
        FhirError::bad_request(format!(
            "a version tag must look like W/\"3\", got {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::parse_etag;

    #[test]
    fn etags_weak_and_strong() {
        assert_eq!(parse_etag("W/\"3\"").unwrap(), 3);
        assert_eq!(parse_etag("\"12\"").unwrap(), 12);
        assert_eq!(parse_etag("3").unwrap(), 3, "the bare form fhirpy sends");
        for bad in ["W/3", "W/\"\"", "\"x\"", "*", "", "3\"", "-3", "3 4"] {
            assert!(parse_etag(bad).is_err(), "{bad}");
        }
    }
}
