//! Step 2 of the write pipeline: what a write wants ([`Intent`]) becomes what it would store
//! ([`PreparedWrite`]) — the current version read, `If-Match` checked (http.html#concurrency),
//! the proposed content built (the body, or a patch applied to the current content,
//! http.html#patch, `patch.rs`), its references and compartments checked against the caller's
//! reach, its search index rows extracted, and the bytes reads will serve stamped and checked.

use super::patch::Patch;
use super::{check_id, precondition_failed};
use crate::error::{FhirError, FhirResult};
use crate::policy::{Access, Rule};
use crate::rest::meta::stamp;
use crate::rest::{FhirService, VersionedResource};
use crate::store::{Expected, NoneMatching, StoredVersion, VersionWrite, WriteMethod};
use crate::validate::CheckedResource;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// What changes.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// New content for a new resource (`POST`).
    Create(Arc<CheckedResource>),
    /// New content for `Type/id` (`PUT`), creating it when it does not exist.
    Update(Arc<CheckedResource>),
    /// A JSON Patch or FHIRPath Patch applied to the current content.
    Patch(Arc<Patch>),
    /// A deletion (a tombstone version).
    Delete,
}

impl Change {
    /// How the version is recorded in history.
    pub(crate) fn method(&self) -> WriteMethod {
        match self {
            Change::Create(_) => WriteMethod::Create,
            Change::Update(_) => WriteMethod::Update,
            Change::Patch(_) => WriteMethod::Patch,
            Change::Delete => WriteMethod::Delete,
        }
    }
}

/// One write a request asks for.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    pub(crate) resource_type: String,
    /// The target id; empty until assigned for a plain create (a new id per attempt).
    pub(crate) id: String,
    /// The id was just minted by this server: no resource can have it, so there is no current
    /// version to read.
    pub(crate) fresh: bool,
    pub(crate) change: Change,
    /// The version the client says it replaces (`If-Match`, `Bundle.entry.request.ifMatch`).
    pub(crate) if_match: Option<i64>,
    /// A conditional create: the search that must still match nothing when it commits.
    pub(crate) none_matching: Option<NoneMatching>,
}

impl Intent {
    /// A write of `resource_type`; a create gets a fresh id when it is written.
    pub(crate) fn new(resource_type: &str, change: Change, if_match: Option<i64>) -> Self {
        let fresh = matches!(change, Change::Create(_));
        Intent {
            resource_type: resource_type.to_string(),
            id: String::new(),
            fresh,
            change,
            if_match,
            none_matching: None,
        }
    }

    /// The same write aimed at `id` (`fresh`: minted by this server just now).
    pub(crate) fn with_id(mut self, id: String, fresh: bool) -> Self {
        self.id = id;
        self.fresh = fresh;
        self
    }

    /// The same write, committed only if `search` still matches nothing then (a conditional
    /// create, http.html#ccreate).
    pub(crate) fn unless_matching(mut self, search: Option<NoneMatching>) -> Self {
        self.none_matching = search;
        self
    }
}

/// A write ready to commit: what was there, what will be, and the version row that stores it.
/// Hooks see this (current *and* proposed content) before anything is stored.
#[derive(Debug, Clone)]
pub struct PreparedWrite {
    /// The version this write replaces (`None`: the resource never existed; a tombstone when
    /// it was deleted).
    pub current: Option<StoredVersion>,
    /// The new content (`None` for a deletion), as checked — before stamping.
    pub proposed: Option<Arc<CheckedResource>>,
    /// The version row to store: identity, stamped bytes, search index rows.
    pub version: VersionWrite,
    /// Whether this write brings the resource into existence (create, or update of an unknown
    /// or deleted resource).
    pub created: bool,
    /// The version the client pinned (`If-Match`, `Bundle.entry.request.ifMatch`), if any.
    pub if_match: Option<i64>,
    /// A conditional create: the search that must still match nothing when it commits.
    pub none_matching: Option<NoneMatching>,
}

impl PreparedWrite {
    /// The version as served.
    pub fn resource(&self) -> VersionedResource {
        VersionedResource {
            resource_type: self.version.resource_type.clone(),
            id: self.version.id.clone(),
            version_id: self.version.version_id,
            last_updated_us: self.version.last_updated_us,
            body: self.version.body.clone().unwrap_or_default(),
        }
    }

    /// The current content, parsed (`None` when there is no live current version).
    pub fn current_content(&self) -> FhirResult<Option<Value>> {
        match self.current.as_ref().and_then(|c| c.body.as_ref()) {
            Some(body) => serde_json::from_slice(body)
                .map(Some)
                .map_err(FhirError::internal),
            None => Ok(None),
        }
    }
}

impl FhirService {
    /// Prepare one authorized write (`rule`: the limit it runs under) at time `now_us`.
    /// `pending` names resources written alongside it (a transaction), whose references are
    /// checked on their own. `Ok(None)`: a delete of something that is not there.
    pub(crate) async fn prepare(
        &self,
        access: &Access,
        intent: &Intent,
        rule: Option<&Rule>,
        pending: &HashSet<(String, String)>,
        now_us: i64,
    ) -> FhirResult<Option<PreparedWrite>> {
        let (rt, id) = (intent.resource_type.as_str(), intent.id.as_str());
        let current = if intent.fresh {
            None
        } else {
            self.store.current_for_write(rt, id).await?
        };
        super::record_provenance::refuse_changes(access, rt, id, current.is_some())?;
        super::score_responses::refuse_reserved_id(rt, id, current.is_some())?;
        if let Some(wanted) = intent.if_match {
            if current.as_ref().map(|c| c.version_id) != Some(wanted) {
                return Err(precondition_failed(rt, id, current.as_ref(), wanted));
            }
        }
        let live = current.as_ref().filter(|c| c.body.is_some());
        let (expected, version_id) = match &current {
            Some(c) => (Expected::Version(c.version_id), c.version_id + 1),
            None => (Expected::Absent, 1),
        };
        let proposed = match &intent.change {
            Change::Delete => {
                if live.is_none() {
                    return Ok(None);
                }
                let version = VersionWrite {
                    resource_type: rt.to_string(),
                    id: id.to_string(),
                    expected,
                    version_id,
                    last_updated_us: now_us,
                    method: WriteMethod::Delete,
                    body: None,
                    index: Vec::new(),
                };
                return Ok(Some(PreparedWrite {
                    current,
                    proposed: None,
                    version,
                    created: false,
                    if_match: intent.if_match,
                    none_matching: intent.none_matching.clone(),
                }));
            }
            Change::Create(content) | Change::Update(content) => {
                check_id(rt, id)?;
                Arc::clone(content)
            }
            Change::Patch(patch) => Arc::new(patch.apply(rt, id, current.as_ref())?),
        };
        self.check_references(access, proposed.value(), pending)
            .await?;
        let index = self.search_params.index_rows(proposed.value())?;
        if let Some(rule) = rule {
            self.check_new_content(rule, rt, id, &index)?;
        }
        let bytes = stamp(&proposed, id, version_id, now_us)?;
        let version = VersionWrite {
            resource_type: rt.to_string(),
            id: id.to_string(),
            expected,
            version_id,
            last_updated_us: now_us,
            method: intent.change.method(),
            body: Some(bytes),
            index,
        };
        Ok(Some(PreparedWrite {
            created: live.is_none(),
            current,
            proposed: Some(proposed),
            version,
            if_match: intent.if_match,
            none_matching: intent.none_matching.clone(),
        }))
    }
}
