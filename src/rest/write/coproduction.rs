//! The write pipeline's coproduction hook (issue "The shared care plan" §3): every write of a
//! user-facing app is checked against the rule table (`policy/coproduction/mod.rs`) with the
//! current and the proposed content; a broken rule is a 403 naming it. The one fact the table
//! cannot see in the content — is the editing clinician on an active CareTeam of the
//! patient — is looked up here, only when a CareTeam's members change.

use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::coproduction::{check, Facts, Side};
use crate::policy::Access;
use crate::rest::FhirService;
use crate::store::CommitBatch;
use async_trait::async_trait;
use serde_json::Value;

/// Checks each write against the coproduction rules.
pub(crate) struct Coproduction;

/// The hook's name.
pub const NAME: &str = "coproduction";

#[async_trait]
impl WriteHook for Coproduction {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn before_commit(
        &self,
        service: &FhirService,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        _batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let editor = Side::of(cx.access);
        if editor == Side::Service {
            return Ok(());
        }
        for w in writes {
            let rt = w.version.resource_type.as_str();
            if !matches!(rt, "CarePlan" | "Goal" | "CareTeam") {
                continue;
            }
            let current = w.current_content()?;
            let proposed = w.proposed.as_ref().map(|p| p.value());
            let facts = Facts {
                on_care_team: rt == "CareTeam"
                    && editor == Side::Clinician
                    && members_change(current.as_ref(), proposed)
                    && service
                        .on_active_care_team(cx.access, current.as_ref().or(proposed))
                        .await?,
            };
            if let Err(refusal) = check(editor, rt, current.as_ref(), proposed, facts) {
                return Err(FhirError::new(
                    ErrorKind::Forbidden,
                    "forbidden",
                    format!("{}/{}: {}", rt, w.version.id, refusal.message),
                ));
            }
        }
        Ok(())
    }
}

fn members_change(current: Option<&Value>, proposed: Option<&Value>) -> bool {
    match (current, proposed) {
        (Some(c), Some(p)) => c.get("participant") != p.get("participant"),
        // A new team brings its members.
        (None, Some(_)) => true,
        _ => false,
    }
}

impl FhirService {
    /// Is the caller (a clinician, by `fhirUser`) a member of an active CareTeam of the patient
    /// whose team `team` is?
    async fn on_active_care_team(&self, access: &Access, team: Option<&Value>) -> FhirResult<bool> {
        let (Some(user), Some(patient)) = (
            access.grant().and_then(|g| g.fhir_user.as_deref()),
            team.and_then(|t| t["subject"]["reference"].as_str()),
        ) else {
            return Ok(false);
        };
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("subject", patient)
            .append_pair("status", "active")
            .append_pair("participant", user)
            .finish();
        let found = self
            .matching(&Access::Unrestricted, "CareTeam", &query, 1)
            .await?;
        Ok(!found.is_empty())
    }
}
