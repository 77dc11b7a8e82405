//! create, update, patch and delete (http.html#create, #update, #patch, #delete) with
//! version-aware concurrency: every write names the version it replaces, so two writers can
//! never silently overwrite each other. With `If-Match` a stale version is 412; without it the
//! write is retried against the new current version (last writer wins, nothing half-applied).

use super::guard::hidden;
use super::meta::stamp;
use super::read::parse_version;
use super::{backoff, check_known_type, FhirService, VersionedResource, WRITE_RETRIES};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::{Access, Permission, Rule};
use crate::store::{Expected, StoreError, StoredVersion, VersionWrite, WriteMethod};
use crate::validate::{check_resource, check_structure, is_valid_id, CheckedResource};
use serde_json::Value;
use std::collections::HashSet;
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
        check_known_type(resource_type)?;
        let rule = self.permit(access, resource_type, Permission::Create)?;
        let checked = check_resource(body, resource_type)?;
        self.check_references(access, checked.value(), &HashSet::new())
            .await?;
        let index = self.search_params.index_rows(checked.value())?;
        let mut last_err = None;
        for _ in 0..WRITE_RETRIES {
            let id = self.ids.new_id();
            if let Some(rule) = &rule {
                self.check_new_content(rule, resource_type, &id, &index)?;
            }
            let now = self.now_us();
            let bytes = stamp(&checked, &id, 1, now)?;
            check_structure(&bytes, resource_type)?;
            let write = VersionWrite {
                resource_type: resource_type.to_string(),
                id: id.clone(),
                expected: Expected::Absent,
                version_id: 1,
                last_updated_us: now,
                method: WriteMethod::Create,
                body: Some(bytes.clone()),
                index: index.clone(),
            };
            match self.store.commit(std::slice::from_ref(&write)).await {
                Ok(()) => {
                    self.remember_membership(resource_type, &id, 1, &write.index);
                    return Ok(VersionedResource {
                        resource_type: resource_type.to_string(),
                        id,
                        version_id: 1,
                        last_updated_us: now,
                        body: bytes,
                    });
                }
                Err(StoreError::Conflict { .. }) => last_err = Some("id collision"),
                Err(other) => return Err(FhirError::from(other)),
            }
        }
        Err(FhirError::internal(last_err.unwrap_or("create failed")))
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
        check_known_type(resource_type)?;
        check_id(resource_type, id)?;
        match body.get("id") {
            Some(Value::String(body_id)) if body_id == id => {}
            Some(Value::String(body_id)) => {
                return Err(FhirError::invalid_at(
                    format!("the resource id {body_id:?} does not match the URL id {id:?}"),
                    format!("{resource_type}.id"),
                ))
            }
            _ => {
                return Err(FhirError::invalid_at(
                    "an update must carry the resource id, equal to the id in the URL",
                    format!("{resource_type}.id"),
                ))
            }
        }
        let rule = self.put_rule(access, resource_type, id).await?;
        let checked = Arc::new(check_resource(body, resource_type)?);
        self.write_new_version(
            access,
            rule.as_ref(),
            resource_type,
            id,
            if_match,
            WriteMethod::Update,
            |_| Ok(Arc::clone(&checked)),
        )
        .await
    }

    /// Apply a JSON Patch (RFC 6902) document to the current version.
    pub async fn patch(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        patch: Value,
        if_match: Option<i64>,
    ) -> FhirResult<VersionedResource> {
        check_known_type(resource_type)?;
        let rule = self.permit(access, resource_type, Permission::Update)?;
        if let Some(rule) = &rule {
            self.check_visible(rule, resource_type, id).await?;
        }
        let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
            FhirError::new(
                ErrorKind::BadRequest,
                "structure",
                format!("not a valid JSON Patch document: {e}"),
            )
        })?;
        let outcome = self
            .write_new_version(
                access,
                rule.as_ref(),
                resource_type,
                id,
                if_match,
                WriteMethod::Patch,
                |current| {
                    let Some(body) = current.and_then(|c| c.body.as_ref()) else {
                        return Err(FhirError::internal("patch reached a missing resource"));
                    };
                    let mut doc: Value =
                        serde_json::from_slice(body).map_err(FhirError::internal)?;
                    json_patch::patch(&mut doc, &patch).map_err(|e| {
                        FhirError::new(
                            ErrorKind::Unprocessable,
                            "processing",
                            format!("the patch cannot be applied: {e}"),
                        )
                    })?;
                    if doc.get("id") != Some(&Value::String(id.to_string())) {
                        return Err(FhirError::new(
                            ErrorKind::Unprocessable,
                            "processing",
                            "a patch must not change or remove the resource id",
                        ));
                    }
                    if doc.get("resourceType") != Some(&Value::String(resource_type.to_string())) {
                        return Err(FhirError::new(
                            ErrorKind::Unprocessable,
                            "processing",
                            "a patch must not change the resourceType",
                        ));
                    }
                    check_resource(doc, resource_type)
                        .map(Arc::new)
                        .map_err(|mut e| {
                            e.kind = ErrorKind::Unprocessable;
                            e
                        })
                },
            )
            .await?;
        Ok(outcome.resource)
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
        let rule = self.permit(access, resource_type, Permission::Delete)?;
        for attempt in 0..WRITE_RETRIES {
            backoff(attempt).await;
            // Checked on every attempt: after a lost race the resource may have moved away.
            if let Some(rule) = &rule {
                self.check_visible(rule, resource_type, id).await?;
            }
            let current = self.store.current(resource_type, id).await?;
            if let Some(wanted) = if_match {
                if current.as_ref().map(|c| c.version_id) != Some(wanted) {
                    return Err(precondition_failed(
                        resource_type,
                        id,
                        current.as_ref(),
                        wanted,
                    ));
                }
            }
            let Some(current) = current.filter(|c| c.body.is_some()) else {
                return Ok(DeleteOutcome::NothingToDelete);
            };
            let version_id = current.version_id + 1;
            let write = VersionWrite {
                resource_type: resource_type.to_string(),
                id: id.to_string(),
                expected: Expected::Version(current.version_id),
                version_id,
                last_updated_us: self.now_us(),
                method: WriteMethod::Delete,
                body: None,
                index: Vec::new(),
            };
            match self.store.commit(&[write]).await {
                Ok(()) => return Ok(DeleteOutcome::Deleted { version_id }),
                Err(StoreError::Conflict { .. }) if if_match.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(self
                        .lost_race(resource_type, id, if_match.unwrap_or(0))
                        .await)
                }
                Err(other) => return Err(FhirError::from(other)),
            }
        }
        Err(busy(resource_type, id))
    }

    /// The 412 for a client whose pinned version another writer replaced between our read and
    /// our commit, naming the version that is current now.
    async fn lost_race(&self, resource_type: &str, id: &str, wanted: i64) -> FhirError {
        match self.store.current(resource_type, id).await {
            Ok(now) => precondition_failed(resource_type, id, now.as_ref(), wanted),
            Err(e) => FhirError::from(e),
        }
    }

    /// The shared loop of update and patch: read current, check If-Match, build the new
    /// content from the current version, commit expecting that version; retry on a lost race
    /// unless the client pinned a version.
    #[allow(clippy::too_many_arguments)]
    async fn write_new_version(
        &self,
        access: &Access,
        rule: Option<&Rule>,
        resource_type: &str,
        id: &str,
        if_match: Option<i64>,
        method: WriteMethod,
        build: impl Fn(Option<&StoredVersion>) -> FhirResult<Arc<CheckedResource>>,
    ) -> FhirResult<UpdateOutcome> {
        for attempt in 0..WRITE_RETRIES {
            backoff(attempt).await;
            // After a lost race the resource may have moved out of the caller's reach.
            if let (true, Some(rule)) = (attempt > 0, rule) {
                if rule.patients.is_some() || rule.query.is_some() {
                    self.check_visible(rule, resource_type, id).await?;
                }
            }
            let current = self.store.current(resource_type, id).await?;
            if let Some(wanted) = if_match {
                if current.as_ref().map(|c| c.version_id) != Some(wanted) {
                    return Err(precondition_failed(
                        resource_type,
                        id,
                        current.as_ref(),
                        wanted,
                    ));
                }
            }
            if method == WriteMethod::Patch {
                match &current {
                    None => {
                        return Err(FhirError::not_found(format!(
                            "{resource_type}/{id} is not known"
                        )))
                    }
                    Some(c) if c.body.is_none() => {
                        return Err(FhirError::new(
                            ErrorKind::Gone,
                            "deleted",
                            format!("{resource_type}/{id} was deleted"),
                        ))
                    }
                    _ => {}
                }
            }
            let checked = build(current.as_ref())?;
            self.check_references(access, checked.value(), &HashSet::new())
                .await?;
            let index = self.search_params.index_rows(checked.value())?;
            if let Some(rule) = rule {
                self.check_new_content(rule, resource_type, id, &index)?;
            }
            let (expected, version_id) = match &current {
                Some(c) => (Expected::Version(c.version_id), c.version_id + 1),
                None => (Expected::Absent, 1),
            };
            let created = current.as_ref().is_none_or(|c| c.body.is_none());
            let now = self.now_us();
            let bytes = stamp(&checked, id, version_id, now)?;
            check_structure(&bytes, resource_type)?;
            let write = VersionWrite {
                resource_type: resource_type.to_string(),
                id: id.to_string(),
                expected,
                version_id,
                last_updated_us: now,
                method,
                body: Some(bytes.clone()),
                index,
            };
            match self.store.commit(std::slice::from_ref(&write)).await {
                Ok(()) => {
                    self.remember_membership(resource_type, id, version_id, &write.index);
                    return Ok(UpdateOutcome {
                        resource: VersionedResource {
                            resource_type: resource_type.to_string(),
                            id: id.to_string(),
                            version_id,
                            last_updated_us: now,
                            body: bytes,
                        },
                        created,
                    });
                }
                Err(StoreError::Conflict { .. }) if if_match.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(self
                        .lost_race(resource_type, id, if_match.unwrap_or(0))
                        .await)
                }
                Err(other) => return Err(FhirError::from(other)),
            }
        }
        Err(busy(resource_type, id))
    }
}

impl FhirService {
    /// The rule an update (`PUT`) of `resource_type/id` runs under. Under confined access a
    /// resource the caller cannot see is a 404 whether or not it exists, and a client-chosen
    /// id cannot create one (that would reveal which ids are taken).
    pub(crate) async fn put_rule(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<Option<Rule>> {
        if matches!(access, Access::Unrestricted) {
            return Ok(None);
        }
        let update = self.permit(access, resource_type, Permission::Update);
        let create = self.permit(access, resource_type, Permission::Create);
        if let (Err(denied), Err(_)) = (&update, &create) {
            return Err(denied.clone());
        }
        let exists = self
            .store
            .current(resource_type, id)
            .await?
            .is_some_and(|c| c.body.is_some());
        match (exists, update, create) {
            (true, Ok(rule), _) => {
                if let Some(rule) = &rule {
                    self.check_visible(rule, resource_type, id).await?;
                }
                Ok(rule)
            }
            (true, Err(denied), Ok(create_rule)) => {
                if let Some(rule) = &create_rule {
                    self.check_visible(rule, resource_type, id).await?;
                }
                Err(denied)
            }
            (false, _, Ok(rule)) if rule.as_ref().is_none_or(|r| r.patients.is_none()) => Ok(rule),
            _ => Err(hidden(resource_type, id)),
        }
    }
}

fn busy(resource_type: &str, id: &str) -> FhirError {
    FhirError::new(
        ErrorKind::Conflict,
        "conflict",
        format!("{resource_type}/{id} is being changed by other clients right now; try again"),
    )
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
