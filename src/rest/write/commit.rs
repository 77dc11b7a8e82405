//! Step 4 of the write pipeline: the hooks run over the prepared writes, then one atomic
//! [`Store::commit`](crate::store::Store::commit) of the batch, then the hooks' after-commit
//! steps. A plain write that lost a race to a concurrent writer is prepared again (unless the
//! client pinned a version: 412, http.html#concurrency).

use super::hooks::WriteContext;
use super::{precondition_failed, Intent, PreparedWrite};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::{Access, Rule};
use crate::rest::{backoff, FhirService, WRITE_RETRIES};
use crate::store::{CommitBatch, StoreError};
use std::collections::HashSet;

/// Why a commit did not happen.
pub(crate) enum CommitError {
    /// A concurrent writer changed `resource_type/id` first (or a batch writes it twice).
    Conflict {
        resource_type: String,
        id: String,
        /// What lost is an update a hook derived (a Goal a score moves), not one of the
        /// writes: running the hooks again over what is there now can succeed.
        derived_update: bool,
    },
    /// A conditional create's search matches now: a concurrent conditional create won
    /// (nothing was written; searching again finds what it made).
    NowMatches { resource_type: String },
    /// Anything else: refused by a hook, or the store failed.
    Failed(FhirError),
}

/// Why [`FhirService::write_attempts`] wrote nothing.
pub(crate) enum WriteFailure {
    /// The write's conditional-create search matches now ([`CommitError::NowMatches`]).
    NowMatches {
        resource_type: String,
    },
    Refused(FhirError),
}

impl From<FhirError> for WriteFailure {
    fn from(err: FhirError) -> Self {
        WriteFailure::Refused(err)
    }
}

impl WriteFailure {
    /// The answer for a client when searching again is not an option (or did not settle it).
    pub(crate) fn into_error(self) -> FhirError {
        match self {
            WriteFailure::Refused(err) => err,
            WriteFailure::NowMatches { resource_type } => now_matches(&resource_type),
        }
    }
}

/// The 409 when conditional creates of `resource_type` kept racing other writers.
pub(crate) fn now_matches(resource_type: &str) -> FhirError {
    FhirError::new(
        ErrorKind::Conflict,
        "conflict",
        format!(
            "a {resource_type} matching the conditional criteria was being created by another request at the same time; try again"
        ),
    )
}

impl From<FhirError> for CommitError {
    fn from(err: FhirError) -> Self {
        CommitError::Failed(err)
    }
}

impl FhirService {
    /// Run the hooks over `writes` and commit them, with whatever the hooks added, as one
    /// batch. Returns the committed batch.
    pub(crate) async fn commit_prepared(
        &self,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
    ) -> Result<CommitBatch, CommitError> {
        let mut batch = CommitBatch::of(writes.iter().map(|w| w.version.clone()).collect());
        batch.none_matching = writes
            .iter()
            .filter_map(|w| w.none_matching.clone())
            .collect();
        for hook in &self.hooks {
            hook.before_commit(self, cx, writes, &mut batch).await?;
        }
        match self.store.commit(&batch).await {
            Ok(()) => {}
            Err(StoreError::Conflict { resource_type, id }) => {
                let is = |rt: &str, i: &str| rt == resource_type && i == id;
                let derived_update = !writes
                    .iter()
                    .any(|w| is(&w.version.resource_type, &w.version.id))
                    && batch.versions.iter().any(|v| {
                        is(&v.resource_type, &v.id)
                            && matches!(v.expected, crate::store::Expected::Version(_))
                    });
                return Err(CommitError::Conflict {
                    resource_type,
                    id,
                    derived_update,
                });
            }
            Err(StoreError::NowMatches { resource_type }) => {
                return Err(CommitError::NowMatches { resource_type })
            }
            Err(other) => return Err(CommitError::Failed(other.into())),
        }
        for hook in &self.hooks {
            hook.after_commit(self, cx, &batch);
        }
        Ok(batch)
    }

    /// Authorize and write one resource (`Ok(None)`: a delete of nothing).
    pub(crate) async fn write_one(
        &self,
        access: &Access,
        intent: Intent,
    ) -> FhirResult<Option<PreparedWrite>> {
        let rule = self
            .authorize(
                access,
                &intent.resource_type,
                &intent.id,
                intent.change.method(),
                intent.fresh,
            )
            .await?;
        self.write_authorized(access, intent, rule).await
    }

    /// Write one resource under `rule`, already decided by [`FhirService::authorize`]: prepare,
    /// hooks, commit; after a lost race prepare again from the new current version (a create
    /// with a new id), unless the client pinned a version.
    pub(crate) async fn write_authorized(
        &self,
        access: &Access,
        intent: Intent,
        rule: Option<Rule>,
    ) -> FhirResult<Option<PreparedWrite>> {
        self.write_attempts(access, intent, rule)
            .await
            .map_err(WriteFailure::into_error)
    }

    /// [`FhirService::write_authorized`], telling a conditional create whose search matches
    /// now ([`WriteFailure::NowMatches`]) from a refusal, so its caller can search again.
    pub(crate) async fn write_attempts(
        &self,
        access: &Access,
        mut intent: Intent,
        mut rule: Option<Rule>,
    ) -> Result<Option<PreparedWrite>, WriteFailure> {
        let mints_ids = intent.fresh;
        let no_pending = HashSet::new();
        for attempt in 0..WRITE_RETRIES {
            backoff(attempt).await;
            if mints_ids {
                intent.id = self.ids.new_id();
            } else if attempt > 0 {
                // After a lost race the resource may have moved out of the caller's reach, or
                // come into or gone out of existence (a PUT needs create or update permission
                // for what is there now): decide again.
                rule = self
                    .authorize(
                        access,
                        &intent.resource_type,
                        &intent.id,
                        intent.change.method(),
                        false,
                    )
                    .await?;
            }
            let now_us = self.now_us();
            let Some(prepared) = self
                .prepare(access, &intent, rule.as_ref(), &no_pending, now_us)
                .await?
            else {
                return Ok(None);
            };
            let cx = WriteContext::new(access, now_us, false);
            match self
                .commit_prepared(&cx, std::slice::from_ref(&prepared))
                .await
            {
                Ok(_) => return Ok(Some(prepared)),
                Err(CommitError::Failed(err)) => return Err(err.into()),
                Err(CommitError::NowMatches { resource_type }) => {
                    return Err(WriteFailure::NowMatches { resource_type })
                }
                Err(CommitError::Conflict { .. }) if intent.if_match.is_none() => continue,
                // What lost the race is an update a hook derived (a Goal a score moves), not
                // the version the client pinned: prepare again from what is there now.
                Err(CommitError::Conflict {
                    derived_update: true,
                    ..
                }) => continue,
                Err(CommitError::Conflict { .. }) => {
                    let wanted = intent.if_match.unwrap_or(0);
                    return Err(self
                        .lost_race(&intent.resource_type, &intent.id, wanted)
                        .await
                        .into());
                }
            }
        }
        Err(WriteFailure::Refused(FhirError::new(
            ErrorKind::Conflict,
            "conflict",
            format!(
                "{}/{} is being changed by other clients right now; try again",
                intent.resource_type, intent.id
            ),
        )))
    }

    /// The 412 for a client whose pinned version another writer replaced between our read and
    /// our commit, naming the version that is current now.
    async fn lost_race(&self, resource_type: &str, id: &str, wanted: i64) -> FhirError {
        match self.store.current_for_write(resource_type, id).await {
            Ok(now) => precondition_failed(resource_type, id, now.as_ref(), wanted),
            Err(e) => FhirError::from(e),
        }
    }
}
