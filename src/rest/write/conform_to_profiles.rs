//! The write pipeline's profile hook (issue "Profiles"; R4 profiling.html "Using profiles":
//! a resource that claims conformance in `meta.profile` is checked against it). Every create,
//! update and patch — plain, conditional, batch entry, transaction — is checked against the
//! profiles it claims and those configured for its type (`required_profiles`): a resource that
//! breaks one is refused with 422 and the issues, each with its `expression`. A claimed
//! profile this server does not know is accepted with a warning (returned with `Prefer:
//! return=OperationOutcome`), or refused under `Prefer: handling=strict`. What could not be
//! checked (information issues) is left to `$validate`, which reports it. A StructureDefinition,
//! ValueSet or CodeSystem under the canonical of a shipped one must be the shipped content (403
//! otherwise): the copy the server serves is the one it enforces.

use super::hooks::{WriteContext, WriteHook};
use super::{warnings, PreparedWrite};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::rest::profiles::{check, claimed, contradicts_shipped, profile_set};
use crate::rest::FhirService;
use crate::store::CommitBatch;
use async_trait::async_trait;

/// The rule (the profiles required per type are the service's `required_profiles`).
pub(crate) struct ConformToProfiles;

/// The hook's name.
pub const NAME: &str = "profiles";

#[async_trait]
impl WriteHook for ConformToProfiles {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn before_commit(
        &self,
        service: &FhirService,
        _cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        _batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let set = profile_set();
        let strict = warnings::strict();
        for w in writes {
            let Some(proposed) = w.proposed.as_ref().map(|p| p.value()) else {
                continue;
            };
            let rt = w.version.resource_type.as_str();
            if let Some(why) = contradicts_shipped(proposed) {
                return Err(FhirError::new(
                    ErrorKind::Forbidden,
                    "forbidden",
                    format!("{rt}/{}: {why}", w.version.id),
                ));
            }
            let mut profiles = claimed(proposed);
            profiles.extend(
                service
                    .required_profiles
                    .get(rt)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            if profiles.is_empty() {
                continue;
            }
            let found = check(&set, proposed, &profiles, strict);
            if !found.errors.is_empty() {
                let mut issues = found.errors;
                for issue in &mut issues {
                    issue.diagnostics = format!("{rt}/{}: {}", w.version.id, issue.diagnostics);
                }
                return Err(FhirError::with_issues(ErrorKind::Unprocessable, issues));
            }
            for warning in found.warnings {
                warnings::warn(warning);
            }
        }
        Ok(())
    }
}
