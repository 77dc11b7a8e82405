//! The write pipeline's PROM hook (issue "PROMs" §2, §3): every QuestionnaireResponse written
//! is checked against its Questionnaire (a broken rule is a 422 naming the linkId); a
//! completed or amended one is scored by what its Questionnaire defines, and the score is
//! stored as an Observation derived from it — with the answers the Questionnaire marks for
//! extraction as its members — in the same commit, so a response never exists without its
//! score nor a score without its response. Derived ids come from the response and the item
//! (`prom-…`, reserved: clients cannot create them; `derived_ids.rs`), so an amendment gives
//! the same Observations new versions, never duplicates; a derived Observation the amended
//! response no longer gives is cancelled, and all of them are when the response is withdrawn
//! (deleted, entered-in-error, or back to in-progress). A human's note on a derived
//! Observation is kept. The goals the score measures move with it (`move_goals.rs`). What the
//! server derived gets its own Provenance: the server as author, the response as source entity.
//!
//! Scoring and population evaluate the Questionnaire's FHIRPath on a blocking thread with a
//! time limit ([`EXPRESSION_TIME_LIMIT`]): a Questionnaire whose expressions run too long
//! leaves the response stored unscored, with a warning, rather than holding a worker.
//!
//! The pure parts — validation, scoring, the Observations' content, the trajectory — are in
//! the `fhir-questionnaire` crate; this file finds things in the store and writes versions.

use super::derived_ids::DERIVED_PREFIX;
use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult, Issue, Severity};
use crate::policy::Access;
use crate::rest::meta::stamp;
use crate::rest::provenance::{self, Activity, Attribution, Target};
use crate::rest::FhirService;
use crate::store::{CommitBatch, Expected, VersionWrite, WriteMethod};
use crate::validate::check_resource;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Duration;

/// Checks and scores questionnaire responses, and moves the goals they measure.
pub(crate) struct ScoreResponses {
    /// Refuse responses to questionnaires the server does not know
    /// (`require_known_questionnaire`).
    pub require_known: bool,
}

/// The hook's name.
pub const NAME: &str = "prom";

/// How long a Questionnaire's expressions may run for one response.
pub const EXPRESSION_TIME_LIMIT: Duration = Duration::from_secs(2);

#[async_trait]
impl WriteHook for ScoreResponses {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn before_commit(
        &self,
        service: &FhirService,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        for w in writes {
            if w.version.resource_type != "QuestionnaireResponse" {
                continue;
            }
            let Some(proposed) = &w.proposed else {
                // Deleted: what was derived from it is withdrawn with it.
                service
                    .retire_derived(cx, w, &[], "entered-in-error", batch)
                    .await?;
                continue;
            };
            let response = proposed.value();
            let questionnaire = service
                .questionnaire_of(response, self.require_known)
                .await?;
            let issues = fhir_questionnaire::validate(questionnaire.as_deref(), response);
            refuse_errors(&issues)?;
            for issue in &issues {
                super::warnings::warn(outcome_issue(issue));
            }
            match (questionnaire, is_final(response)) {
                (Some(questionnaire), true) => {
                    service
                        .derive_from_response(cx, w, &questionnaire, response, writes, batch)
                        .await?
                }
                _ => {
                    let status = match response["status"].as_str() {
                        Some("entered-in-error") => "entered-in-error",
                        _ => "cancelled",
                    };
                    service.retire_derived(cx, w, &[], status, batch).await?
                }
            }
        }
        Ok(())
    }
}

/// `completed` and `amended` responses are scored; others are checked structurally only.
fn is_final(response: &Value) -> bool {
    matches!(response["status"].as_str(), Some("completed" | "amended"))
}

/// The patient a response (or goal) is about, when its subject is exactly `Patient/{id}`.
pub(super) fn patient_of(resource: &Value) -> Option<&str> {
    resource["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| crate::validate::is_valid_id(id))
}

/// The validation's errors as a 422 (warnings do not refuse a write).
pub(crate) fn refuse_errors(issues: &[fhir_questionnaire::Issue]) -> FhirResult<()> {
    let errors: Vec<Issue> = issues
        .iter()
        .filter(|i| i.severity == fhir_questionnaire::Severity::Error)
        .map(outcome_issue)
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FhirError::with_issues(ErrorKind::Unprocessable, errors))
    }
}

/// One validation issue as an OperationOutcome issue.
pub(crate) fn outcome_issue(issue: &fhir_questionnaire::Issue) -> Issue {
    Issue {
        severity: match issue.severity {
            fhir_questionnaire::Severity::Error => Severity::Error,
            fhir_questionnaire::Severity::Warning => Severity::Warning,
        },
        code: issue.code,
        diagnostics: issue.message.clone(),
        expression: vec![issue.expression.clone()],
    }
}

/// Refuse a client's creating a resource under an id the server derives (`prom-…`
/// Observations): a client could otherwise place content where the server will write a score.
/// Updating a derived Observation (a clinician's note, entered-in-error) stays allowed.
pub(crate) fn refuse_reserved_id(resource_type: &str, id: &str, exists: bool) -> FhirResult<()> {
    if resource_type == "Observation" && !exists && id.starts_with(DERIVED_PREFIX) {
        return Err(FhirError::new(
            ErrorKind::Forbidden,
            "forbidden",
            format!("ids starting with {DERIVED_PREFIX} are the server's own (scores derived from questionnaire responses); choose another id"),
        ));
    }
    Ok(())
}

/// What distinguishes one item Observation among a response's: its code and which answer of
/// that code it is (stable when other answers are added or removed).
fn item_key(observation: &Value, occurrence: usize) -> String {
    let coding = &observation["code"]["coding"][0];
    format!(
        "{}|{}#{occurrence}",
        coding["system"].as_str().unwrap_or_default(),
        coding["code"].as_str().unwrap_or_default()
    )
}

/// Run a Questionnaire's expressions off the async workers, within the time limit.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, &'static str> {
    match tokio::time::timeout(EXPRESSION_TIME_LIMIT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(_)) => Err("the questionnaire's expressions failed"),
        Err(_) => Err("the questionnaire's expressions ran longer than allowed"),
    }
}

impl FhirService {
    /// The Questionnaire `response` answers, when the server has it; refuses a response to an
    /// unknown one when `require_known`.
    async fn questionnaire_of(
        &self,
        response: &Value,
        require_known: bool,
    ) -> FhirResult<Option<std::sync::Arc<Value>>> {
        let found = match response["questionnaire"].as_str() {
            Some(canonical) => self.questionnaire(canonical).await?,
            None => None,
        };
        if found.is_none() && require_known {
            return Err(FhirError::with_issues(
                ErrorKind::Unprocessable,
                vec![Issue::error(
                    "not-found",
                    format!(
                        "the questionnaire {} is not known to this server, which requires \
                         responses to known questionnaires (require_known_questionnaire)",
                        response["questionnaire"].as_str().unwrap_or("(none given)")
                    ),
                )
                .at("QuestionnaireResponse.questionnaire")],
            ));
        }
        Ok(found)
    }

    /// Score `response`, add its Observations and the goals it moves to `batch`, with their
    /// Provenance.
    async fn derive_from_response(
        &self,
        cx: &WriteContext<'_>,
        w: &PreparedWrite,
        questionnaire: &std::sync::Arc<Value>,
        response: &Value,
        writes: &[PreparedWrite],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let response_ref = format!("QuestionnaireResponse/{}", w.version.id);
        let (q, r, at) = (
            std::sync::Arc::clone(questionnaire),
            response.clone(),
            response_ref.clone(),
        );
        let derived = bounded(move || {
            let scores = fhir_questionnaire::score(&q, &r).map_err(|e| e.to_string())?;
            let total = scores.total().cloned();
            let observation = fhir_questionnaire::score_observation(&q, &r, &at, &scores);
            let items = fhir_questionnaire::item_observations(&q, &r, &at);
            Ok::<_, String>((total, observation, items))
        })
        .await;
        let why = match derived {
            Ok(Ok(derived)) => Ok(derived),
            Ok(Err(why)) => Err(why),
            Err(why) => Err(why.to_string()),
        };
        let (total, observation, items) = match why {
            Ok(derived) => derived,
            Err(why) => {
                // The response is still the patient's answers, stored; there is no score.
                tracing::warn!(response = %w.version.id, why, "a response could not be scored");
                super::warnings::warn(Issue {
                    severity: Severity::Warning,
                    code: "processing",
                    diagnostics: format!("the response was stored but not scored: {why}"),
                    expression: vec!["QuestionnaireResponse.questionnaire".into()],
                });
                return self.retire_derived(cx, w, &[], "cancelled", batch).await;
            }
        };
        let (Some(total), Some(mut observation)) = (total, observation) else {
            return self.retire_derived(cx, w, &[], "cancelled", batch).await;
        };
        // A response that never existed before has nothing derived from it yet: derived ids
        // come from the response's id and are reserved to the server, so there is nothing to
        // look up (saves a store round trip per derived Observation).
        let first_ever = w.current.is_none();
        let ids = self.derived_ids(w, &total.link_id).await?;
        let mut targets: Vec<Target> = Vec::new();
        let mut produced: Vec<String> = Vec::new();
        // Item observations the questionnaire marks for extraction, as members of the total.
        let mut members = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for item in items {
            let base = item_key(&item, 0);
            let occurrence = seen.iter().filter(|k| **k == base).count();
            seen.push(base);
            let id = ids.id(&w.version.id, &item_key(&item, occurrence));
            members.push(json!({"reference": format!("Observation/{id}")}));
            let version = self
                .derived_version(&id, item, first_ever, cx.now_us)
                .await?;
            targets.push(target_of(&version));
            produced.push(id);
            batch.versions.push(version);
        }
        if !members.is_empty() {
            observation["hasMember"] = Value::from(members);
        }
        let score_id = ids.id(&w.version.id, &total.link_id);
        let score_value = observed(&observation).or_else(|| total.as_f64());
        let version = self
            .derived_version(&score_id, observation.clone(), first_ever, cx.now_us)
            .await?;
        targets.push(target_of(&version));
        produced.push(score_id.clone());
        batch.versions.push(version);
        if !w.created {
            for version in self
                .retire_versions(w, &produced, "cancelled", cx.now_us)
                .await?
            {
                targets.push(target_of(&version));
                batch.versions.push(version);
            }
        }

        if let (Some(code), Some(value)) = (total.code.as_ref(), score_value) {
            let mid = fhir_questionnaire::minimal_important_difference(
                questionnaire,
                Some(&total.link_id),
            );
            let score = super::move_goals::Score {
                id: &score_id,
                code,
                value,
                observation: &observation,
                mid,
            };
            for version in self
                .move_goals(response, &score, writes, batch, cx.now_us)
                .await?
            {
                targets.push(target_of(&version));
                upsert(batch, version);
            }
        }
        self.record_derivation(cx, w, response, &targets, batch)
            .await
    }

    /// Withdraw what was derived from `w`'s response and is not in `keep`: a new version of
    /// each with `status`, and their Provenance.
    async fn retire_derived(
        &self,
        cx: &WriteContext<'_>,
        w: &PreparedWrite,
        keep: &[String],
        status: &str,
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        if w.created {
            return Ok(());
        }
        let versions = self.retire_versions(w, keep, status, cx.now_us).await?;
        if versions.is_empty() {
            return Ok(());
        }
        let targets: Vec<Target> = versions.iter().map(target_of).collect();
        batch.versions.extend(versions);
        let response = match &w.proposed {
            Some(p) => p.value().clone(),
            None => w.current_content()?.unwrap_or(Value::Null),
        };
        self.record_derivation(cx, w, &response, &targets, batch)
            .await
    }

    /// Versions that withdraw the server's Observations derived from `w`'s response that are
    /// not in `keep`, giving them `status` (for the caller to add to the batch).
    async fn retire_versions(
        &self,
        w: &PreparedWrite,
        keep: &[String],
        status: &str,
        now_us: i64,
    ) -> FhirResult<Vec<VersionWrite>> {
        let pairs = [(
            "derived-from".to_string(),
            format!("QuestionnaireResponse/{}", w.version.id),
        )];
        let rows = self
            .rows_matching(&Access::Unrestricted, "Observation", &pairs, 1_000)
            .await?;
        let mut out = Vec::new();
        for row in rows {
            if !row.id.starts_with(DERIVED_PREFIX) || keep.contains(&row.id) {
                continue;
            }
            let Some(body) = &row.version.body else {
                continue;
            };
            let mut observation: Value = crate::rest::stored_json(body)?;
            if matches!(
                observation["status"].as_str(),
                Some("cancelled" | "entered-in-error")
            ) {
                continue;
            }
            observation["status"] = Value::from(status);
            without_version_stamp(&mut observation);
            out.push(versioned(
                self,
                "Observation",
                &row.id,
                observation,
                Expected::Version(row.version.version_id),
                row.version.version_id + 1,
                WriteMethod::Update,
                now_us,
            )?);
        }
        Ok(out)
    }

    /// The server's own Provenance for what it derived from `w`'s response.
    async fn record_derivation(
        &self,
        cx: &WriteContext<'_>,
        w: &PreparedWrite,
        response: &Value,
        targets: &[Target],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let Some(first) = targets.first() else {
            return Ok(());
        };
        let patients: Vec<String> = patient_of(response)
            .map(|p| vec![p.to_string()])
            .unwrap_or_default();
        let who = Attribution::of(&Access::Unrestricted, &patients);
        self.ensure_device(&who, cx.now_us).await?;
        let mut record = provenance::record(&who, targets, &patients, cx.now_us, None)?;
        record["entity"] = json!([{
            "role": "source",
            "what": {"reference": format!("QuestionnaireResponse/{}/_history/{}", w.version.id, w.version.version_id)}
        }]);
        let id = provenance::provenance_id(first, cx.now_us);
        batch
            .versions
            .push(self.server_version("Provenance", &id, record, cx.now_us)?);
        Ok(())
    }

    /// The next version of the derived Observation `id`: version 1 when there is none (or
    /// `known_absent`: its response never existed before), else the one after the current
    /// (named as replaced, so a concurrent writer makes the commit lose the race instead of
    /// being overwritten), keeping a human's `note`. Version 1 is written as a create that
    /// expects nothing there, so a wrong `known_absent` fails the commit, never overwrites.
    async fn derived_version(
        &self,
        id: &str,
        mut content: Value,
        known_absent: bool,
        now_us: i64,
    ) -> FhirResult<VersionWrite> {
        content["id"] = Value::from(id);
        let current = if known_absent {
            None
        } else {
            self.store.current_for_write("Observation", id).await?
        };
        let (expected, version_id, method) = match &current {
            None => (Expected::Absent, 1, WriteMethod::Create),
            Some(c) => (
                Expected::Version(c.version_id),
                c.version_id + 1,
                WriteMethod::Update,
            ),
        };
        if let Some(body) = current.as_ref().and_then(|c| c.body.as_ref()) {
            let before: Value = crate::rest::stored_json(body)?;
            if let Some(note) = before.get("note") {
                content["note"] = note.clone();
            }
        }
        versioned(
            self,
            "Observation",
            id,
            content,
            expected,
            version_id,
            method,
            now_us,
        )
    }
}

/// Put `version` in the batch, replacing an earlier version of the same resource that an
/// earlier response of the same commit derived (one version per resource per commit).
fn upsert(batch: &mut CommitBatch, version: VersionWrite) {
    match batch
        .versions
        .iter_mut()
        .find(|v| v.resource_type == version.resource_type && v.id == version.id)
    {
        Some(earlier) => *earlier = version,
        None => batch.versions.push(version),
    }
}

/// Drop `meta.versionId` and `meta.lastUpdated` of stored content about to be stamped again
/// (and `meta` when nothing else is in it), keeping the order of the other elements
/// (`shift_remove`; `remove` would move the last one into the gap).
pub(super) fn without_version_stamp(resource: &mut Value) {
    if let Some(object) = resource.as_object_mut() {
        if let Some(Value::Object(meta)) = object.get_mut("meta") {
            meta.shift_remove("versionId");
            meta.shift_remove("lastUpdated");
            if meta.is_empty() {
                object.shift_remove("meta");
            }
        }
    }
}

/// The numeric value of a score Observation.
pub(super) fn observed(observation: &Value) -> Option<f64> {
    observation["valueQuantity"]["value"]
        .as_f64()
        .or_else(|| observation["valueInteger"].as_f64())
        .or_else(|| {
            observation["valueQuantity"]["value"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
}

/// A version of content the server wrote: checked, indexed and stamped like any other.
#[allow(clippy::too_many_arguments)]
pub(super) fn versioned(
    service: &FhirService,
    resource_type: &str,
    id: &str,
    content: Value,
    expected: Expected,
    version_id: i64,
    method: WriteMethod,
    now_us: i64,
) -> FhirResult<VersionWrite> {
    let checked = check_resource(content, resource_type)?;
    let index = service.search_params.index_rows(checked.value())?;
    let body = stamp(&checked, id, version_id, now_us)?;
    Ok(VersionWrite {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        expected,
        version_id,
        last_updated_us: now_us,
        method,
        body: Some(body),
        index,
    })
}

pub(super) fn target_of(v: &VersionWrite) -> Target {
    Target {
        resource_type: v.resource_type.clone(),
        id: v.id.clone(),
        version_id: v.version_id,
        activity: if v.version_id == 1 {
            Activity::Create
        } else {
            Activity::Update
        },
    }
}
