//! read and vread (http.html#read, #vread): serve the stored bytes of the current or a given
//! version; a deleted resource is 410 Gone, an unknown one 404.

use super::guard::hidden;
use super::search::in_patient_compartment;
use super::{check_known_type, FhirService, VersionedResource};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::{Access, Permission, Rule};
use crate::store::StoredVersion;

impl FhirService {
    /// The current version of `resource_type/id`, recorded as a read.
    pub async fn read(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<VersionedResource> {
        let served = self.read_unaudited(access, resource_type, id).await?;
        self.audit_read(access, &served, false).await?;
        Ok(served)
    }

    /// The current version of `resource_type/id`, with every check of [`Self::read`] but not
    /// recorded: for an operation that records itself as a whole (`$everything`).
    pub(crate) async fn read_unaudited(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<VersionedResource> {
        check_known_type(resource_type)?;
        let rule = self.permit(access, resource_type, Permission::Read)?;
        if resource_type == "AuditEvent" {
            self.audit_caught_up().await;
        }
        let current = self.store.current(resource_type, id).await?;
        if let Some(rule) = &rule {
            self.check_readable(rule, resource_type, id, current.as_ref())
                .await?;
        }
        served(resource_type, id, current, None)
    }

    /// Version `version` of `resource_type/id` (`version` as written in the URL).
    pub async fn vread(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> FhirResult<VersionedResource> {
        check_known_type(resource_type)?;
        let rule = self.permit(access, resource_type, Permission::Read)?;
        if let Some(rule) = &rule {
            self.check_visible(rule, resource_type, id).await?;
        }
        let version_id = parse_version(version).ok_or_else(|| {
            FhirError::not_found(format!("{resource_type}/{id} has no version {version:?}"))
        })?;
        if resource_type == "AuditEvent" {
            self.audit_caught_up().await;
        }
        let stored = self.store.version(resource_type, id, version_id).await?;
        // An old version is judged by its own content: it may have been another patient's.
        if rule.is_some()
            && !self
                .version_visible(
                    access,
                    Permission::Read,
                    resource_type,
                    id,
                    version_id,
                    stored.as_ref().and_then(|s| s.body.as_deref()),
                )
                .await?
        {
            return Err(hidden(resource_type, id));
        }
        let served = served(resource_type, id, stored, Some(version_id))?;
        self.audit_read(access, &served, true).await?;
        Ok(served)
    }
}

impl FhirService {
    /// Check a confined read of the current version `current` of `resource_type/id`: without
    /// a granular filter, from the version's remembered compartments; otherwise by query. A
    /// deleted or unknown resource is a 404 (its existence is not revealed).
    async fn check_readable(
        &self,
        rule: &Rule,
        resource_type: &str,
        id: &str,
        current: Option<&StoredVersion>,
    ) -> FhirResult<()> {
        let Some((version_id, body)) =
            current.and_then(|c| c.body.as_ref().map(|b| (c.version_id, b)))
        else {
            return Err(hidden(resource_type, id));
        };
        match (&rule.patients, &rule.query) {
            (Some(allowed), None) if in_patient_compartment(resource_type) => {
                let patients = self.patients_of(resource_type, id, version_id, body)?;
                if patients.iter().any(|p| allowed.contains(p)) {
                    Ok(())
                } else {
                    Err(hidden(resource_type, id))
                }
            }
            _ => self.check_visible(rule, resource_type, id).await,
        }
    }
}

/// A version id as written in a URL or ETag: a positive decimal integer.
pub(crate) fn parse_version(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|v| *v > 0)
}

fn served(
    resource_type: &str,
    id: &str,
    stored: Option<StoredVersion>,
    version: Option<i64>,
) -> FhirResult<VersionedResource> {
    // Named only in an error: a served read allocates nothing for it.
    let what = || match version {
        Some(v) => format!("{resource_type}/{id}/_history/{v}"),
        None => format!("{resource_type}/{id}"),
    };
    let Some(stored) = stored else {
        return Err(FhirError::not_found(format!("{} is not known", what())));
    };
    let Some(body) = stored.body else {
        return Err(FhirError::new(
            ErrorKind::Gone,
            "deleted",
            format!("{} was deleted (version {})", what(), stored.version_id),
        ));
    };
    Ok(VersionedResource {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version_id: stored.version_id,
        last_updated_us: stored.last_updated_us,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_are_positive_integers() {
        assert_eq!(parse_version("1"), Some(1));
        assert_eq!(parse_version("42"), Some(42));
        for bad in ["", "0", "-1", "1.0", "abc", "99999999999999999999"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
