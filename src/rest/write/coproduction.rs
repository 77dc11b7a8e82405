//! The write pipeline's coproduction hook (issue "The shared care plan" §3): every write of a
//! user-facing app is checked against the rule table (`policy/coproduction/mod.rs`) with the
//! current and the proposed content; a broken rule is a 403 naming it. The one fact the table
//! cannot see in the content — is the editing clinician on an active CareTeam of the
//! patient — is looked up here, only when a CareTeam's members change.

use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::coproduction::{check, side_of_reference, Facts, Side};
use crate::policy::Access;
use crate::rest::{format_instant, provenance, stored_json, FhirService};
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
            let facts = service
                .coproduction_facts(cx.access, rt, &w.version.id, current.as_ref(), proposed)
                .await?;
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
    /// What the rule table needs to know beyond the content of a change of `rt/id` by
    /// `access` (the write pipeline's hook and `$validate` ask the same).
    pub(crate) async fn coproduction_facts(
        &self,
        access: &Access,
        rt: &str,
        id: &str,
        current: Option<&Value>,
        proposed: Option<&Value>,
    ) -> FhirResult<Facts> {
        let editor = Side::of(access);
        let goal_created_by = match current {
            Some(goal) if rt == "Goal" && goal.get("expressedBy").is_none() => {
                self.goal_created_by(id).await?
            }
            _ => None,
        };
        Ok(Facts {
            on_care_team: rt == "CareTeam"
                && editor == Side::Clinician
                && members_change(current, proposed)
                && self
                    .on_active_care_team(access, current.or(proposed))
                    .await?,
            goal_created_by,
        })
    }

    /// The side of whoever created Goal `id`: the `author` agent of the server's Provenance of
    /// its first version. Only Provenance the server wrote counts (its id namespace is closed
    /// to clients, and it cannot be changed), so nobody can claim a goal by writing one.
    async fn goal_created_by(&self, id: &str) -> FhirResult<Option<Side>> {
        let created = format!("Goal/{id}/_history/1");
        let Some(version) = self.store.version("Goal", id, 1).await? else {
            return Ok(None);
        };
        // A goal created on its own: its commit's Provenance has the id derived from that
        // version and its instant.
        let first = provenance::Target {
            resource_type: "Goal".into(),
            id: id.to_string(),
            version_id: 1,
            activity: provenance::Activity::Create,
        };
        let derived = provenance::provenance_id(&first, version.last_updated_us);
        if let Some(side) = self.creation_recorded_by(&derived, &created).await? {
            return Ok(side);
        }
        // Created in a transaction with others (or recorded before the ids began with their
        // instant): the version's time narrows the search to the Provenance of that commit (a
        // reference search does not look at versions); only the server's own (their id
        // namespace is closed to clients) are read.
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("target", &format!("Goal/{id}"))
            .append_pair("recorded", &format_instant(version.last_updated_us))
            .finish();
        let found = self
            .matching(&Access::Unrestricted, "Provenance", &query, 64)
            .await?;
        for m in found
            .iter()
            .filter(|m| provenance::is_server_provenance_id(&m.id))
        {
            if let Some(side) = self.creation_recorded_by(&m.id, &created).await? {
                return Ok(side);
            }
        }
        Ok(None)
    }

    /// When Provenance `provenance_id` records the creation `created` (`Goal/7/_history/1`):
    /// the side of its author (`Some(None)`: an author on no side, a Device).
    async fn creation_recorded_by(
        &self,
        provenance_id: &str,
        created: &str,
    ) -> FhirResult<Option<Option<Side>>> {
        let Some(body) = self
            .store
            .current("Provenance", provenance_id)
            .await?
            .and_then(|v| v.body)
        else {
            return Ok(None);
        };
        let record = stored_json(&body)?;
        let names_creation = record["target"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["reference"] == created));
        if !names_creation {
            return Ok(None);
        }
        let author = record["agent"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"]["coding"][0]["code"] == "author")
            .and_then(|a| a["who"]["reference"].as_str());
        Ok(Some(author.and_then(side_of_reference)))
    }

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
