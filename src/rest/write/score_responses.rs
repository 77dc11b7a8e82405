//! The write pipeline's PROM hook (issue "PROMs" §2, §3, §5): every QuestionnaireResponse
//! written is checked against its Questionnaire (a broken rule is a 422 naming the linkId);
//! a completed or amended one is scored by what its Questionnaire defines, and the score is
//! stored as an Observation derived from it — in the same commit, so a response never exists
//! without its score nor a score without its response. An amended response gives its
//! Observation a new version (ids derive from the response and the item, never a duplicate).
//!
//! The goals the score measures move with it, in the same commit: a Goal of the patient
//! whose `target.measure` is the score's code (only those the response names, when it names
//! any through `basedOn` → CarePlan.goal or the `pertainsToGoal` extension) gets the
//! Observation in `outcomeReference` and an `achievementStatus` from the trend (achieved,
//! improving, worsening, no-change, in-progress; the instrument's minimal important
//! difference is data in its Questionnaire). Each such Goal version names the version it
//! replaces, so a concurrent human edit makes the commit lose the race and the pipeline
//! prepares it again from what the human wrote; only `achievementStatus` and
//! `outcomeReference` are ever changed. What the server derived gets its own Provenance:
//! the server as author, the response as source entity.
//!
//! The pure parts — validation, scoring, the Observation's content, the trajectory — are in
//! the `fhir-questionnaire` crate; this file finds things in the store and writes versions.

use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult, Issue, Severity};
use crate::policy::Access;
use crate::rest::meta::stamp;
use crate::rest::provenance::{self, Activity, Attribution, Target};
use crate::rest::FhirService;
use crate::store::{CommitBatch, Expected, VersionWrite, WriteMethod};
use crate::validate::{check_resource, check_structure};
use async_trait::async_trait;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Checks and scores questionnaire responses, and moves the goals they measure.
pub(crate) struct ScoreResponses {
    /// Refuse responses to questionnaires the server does not know
    /// (`require_known_questionnaire`).
    pub require_known: bool,
}

/// The hook's name.
pub const NAME: &str = "prom";

/// The extensions that link a response to the goal it measures (R4 core and US MCC).
const PERTAINS_TO_GOAL: &[&str] = &[
    "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
    "http://hl7.org/fhir/us/mcc/StructureDefinition/resource-pertainsToGoal",
];

/// Goal states in which a goal no longer moves.
const GOAL_ENDED: &[&str] = &["completed", "cancelled", "entered-in-error", "rejected"];

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
                continue;
            };
            let response = proposed.value();
            let questionnaire = service
                .questionnaire_of(response, self.require_known)
                .await?;
            let issues = fhir_questionnaire::validate(questionnaire.as_ref(), response);
            refuse_errors(&issues)?;
            for issue in &issues {
                super::warnings::warn(outcome_issue(issue));
            }
            let (Some(questionnaire), true) = (questionnaire, is_final(response)) else {
                continue;
            };
            service
                .derive_from_response(cx, w, &questionnaire, response, writes, batch)
                .await?;
        }
        Ok(())
    }
}

/// `completed` and `amended` responses are scored; others are checked structurally only.
fn is_final(response: &Value) -> bool {
    matches!(response["status"].as_str(), Some("completed" | "amended"))
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

/// The id of what the server derives from item `link_id` of response `response_id`: the
/// same for every version of the response, so an amendment updates rather than duplicates.
fn derived_id(response_id: &str, link_id: &str) -> String {
    let digest = Sha256::digest(format!("QuestionnaireResponse/{response_id}#{link_id}"));
    format!("prom-{}", &provenance::hex(&digest)[..40])
}

/// A Goal target's measure matches the score's code (same system and code).
fn measures(goal: &Value, code: &Value) -> bool {
    goal["target"].as_array().into_iter().flatten().any(|t| {
        t["measure"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["system"] == code["system"] && c["code"] == code["code"])
    })
}

/// The numeric value of a score Observation.
fn observed(observation: &Value) -> Option<f64> {
    observation["valueQuantity"]["value"]
        .as_f64()
        .or_else(|| observation["valueInteger"].as_f64())
        .or_else(|| {
            observation["valueQuantity"]["value"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
}

impl FhirService {
    /// The Questionnaire `response` answers, when the server has it; refuses a response to an
    /// unknown one when `require_known`.
    async fn questionnaire_of(
        &self,
        response: &Value,
        require_known: bool,
    ) -> FhirResult<Option<Value>> {
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
        questionnaire: &Value,
        response: &Value,
        writes: &[PreparedWrite],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        let scores = match fhir_questionnaire::score(questionnaire, response) {
            Ok(scores) => scores,
            Err(e) => {
                // The questionnaire's own expressions fail: the response is still the
                // patient's answers, stored; there is no score to derive.
                tracing::warn!(error = ?e, response = %w.version.id, "a response could not be scored");
                return Ok(());
            }
        };
        let response_ref = format!("QuestionnaireResponse/{}", w.version.id);
        let Some(total) = scores.total().cloned() else {
            return Ok(());
        };
        let Some(mut observation) =
            fhir_questionnaire::score_observation(questionnaire, response, &response_ref, &scores)
        else {
            return Ok(());
        };
        let mut targets: Vec<Target> = Vec::new();
        // Item observations the questionnaire marks for extraction, as members of the total.
        let items = fhir_questionnaire::item_observations(questionnaire, response, &response_ref);
        let mut members = Vec::new();
        for (n, item) in items.into_iter().enumerate() {
            let id = derived_id(&w.version.id, &format!("{}#{n}", total.link_id));
            members.push(json!({"reference": format!("Observation/{id}")}));
            let version = self
                .derived_version("Observation", &id, item, cx.now_us)
                .await?;
            targets.push(target_of(&version));
            batch.versions.push(version);
        }
        if !members.is_empty() {
            observation["hasMember"] = Value::from(members);
        }
        let score_id = derived_id(&w.version.id, &total.link_id);
        let score_value = observed(&observation).or_else(|| total.as_f64());
        let version = self
            .derived_version("Observation", &score_id, observation.clone(), cx.now_us)
            .await?;
        targets.push(target_of(&version));
        batch.versions.push(version);

        if let (Some(code), Some(value)) = (total.code.as_ref(), score_value) {
            let goals = self.goals_measured(response, code, writes).await?;
            if !goals.is_empty() {
                let previous = self
                    .previous_score(response, code, &score_id, &observation)
                    .await?;
                let mid = fhir_questionnaire::minimal_important_difference(
                    questionnaire,
                    Some(&total.link_id),
                );
                for (goal_id, goal_version, goal) in goals {
                    if let Some(version) = self.moved_goal(
                        &goal_id,
                        goal_version,
                        goal,
                        &score_id,
                        value,
                        previous,
                        mid,
                        cx.now_us,
                    )? {
                        targets.push(target_of(&version));
                        batch.versions.push(version);
                    }
                }
            }
        }

        // The server's own Provenance for what it derived, naming the response as source.
        let patients: Vec<String> = response["subject"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
            .map(|p| vec![p.to_string()])
            .unwrap_or_default();
        let who = Attribution::of(&Access::Unrestricted, &patients);
        self.ensure_device(&who, cx.now_us).await?;
        let mut record = provenance::record(&who, &targets, &patients, cx.now_us, None)?;
        record["entity"] = json!([{
            "role": "source",
            "what": {"reference": format!("{response_ref}/_history/{}", w.version.version_id)}
        }]);
        let id = provenance::provenance_id(&targets[0]);
        batch
            .versions
            .push(self.server_version("Provenance", &id, record, cx.now_us)?);
        Ok(())
    }

    /// The next version of `resource_type/id`, which the server writes from what it derives:
    /// version 1 when there is none, else the one after the current (named as replaced, so a
    /// concurrent writer makes the commit lose the race instead of being overwritten).
    async fn derived_version(
        &self,
        resource_type: &str,
        id: &str,
        mut content: Value,
        now_us: i64,
    ) -> FhirResult<VersionWrite> {
        content["id"] = Value::from(id);
        let current = self.store.current(resource_type, id).await?;
        let (expected, version_id, method) = match &current {
            None => (Expected::Absent, 1, WriteMethod::Create),
            Some(c) => (
                Expected::Version(c.version_id),
                c.version_id + 1,
                WriteMethod::Update,
            ),
        };
        versioned(
            self,
            resource_type,
            id,
            content,
            expected,
            version_id,
            method,
            now_us,
        )
    }

    /// The live Goals of the response's patient whose target measures `code`: those the
    /// response names (pertainsToGoal, basedOn → CarePlan.goal) when it names any, else all.
    /// Goals written in the same commit are left to the human who wrote them.
    async fn goals_measured(
        &self,
        response: &Value,
        code: &Value,
        writes: &[PreparedWrite],
    ) -> FhirResult<Vec<(String, i64, Value)>> {
        let Some(patient) = response["subject"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
        else {
            return Ok(Vec::new());
        };
        let mut named: Vec<String> = Vec::new();
        for ext in response["extension"].as_array().into_iter().flatten() {
            if PERTAINS_TO_GOAL.contains(&ext["url"].as_str().unwrap_or_default()) {
                if let Some(id) = ext["valueReference"]["reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("Goal/"))
                {
                    named.push(id.to_string());
                }
            }
        }
        for plan in response["basedOn"].as_array().into_iter().flatten() {
            let Some(plan_id) = plan["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("CarePlan/"))
            else {
                continue;
            };
            if let Some(body) = self
                .store
                .current("CarePlan", plan_id)
                .await?
                .and_then(|v| v.body)
            {
                let plan: Value = serde_json::from_slice(&body).map_err(FhirError::internal)?;
                for goal in plan["goal"].as_array().into_iter().flatten() {
                    if let Some(id) = goal["reference"]
                        .as_str()
                        .and_then(|r| r.strip_prefix("Goal/"))
                    {
                        named.push(id.to_string());
                    }
                }
            }
        }
        let mut candidates: Vec<(String, i64, Value)> = Vec::new();
        if named.is_empty() {
            let pairs = [("patient".to_string(), patient.to_string())];
            for row in self
                .rows_matching(&Access::Unrestricted, "Goal", &pairs, 200)
                .await?
            {
                if let Some(body) = &row.version.body {
                    let goal: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
                    candidates.push((row.id, row.version.version_id, goal));
                }
            }
        } else {
            named.dedup();
            for id in named {
                if let Some(v) = self.store.current("Goal", &id).await? {
                    if let Some(body) = &v.body {
                        let goal: Value =
                            serde_json::from_slice(body).map_err(FhirError::internal)?;
                        candidates.push((id, v.version_id, goal));
                    }
                }
            }
        }
        let subject = format!("Patient/{patient}");
        Ok(candidates
            .into_iter()
            .filter(|(id, _, goal)| {
                goal["subject"]["reference"] == subject.as_str()
                    && !GOAL_ENDED.contains(&goal["lifecycleStatus"].as_str().unwrap_or_default())
                    && measures(goal, code)
                    && !writes
                        .iter()
                        .any(|w| w.version.resource_type == "Goal" && w.version.id == *id)
            })
            .collect())
    }

    /// The patient's latest score of `code` before this one (`score_id`'s), if any.
    async fn previous_score(
        &self,
        response: &Value,
        code: &Value,
        score_id: &str,
        observation: &Value,
    ) -> FhirResult<Option<f64>> {
        let (Some(subject), Some(system), Some(code)) = (
            response["subject"]["reference"].as_str(),
            code["system"].as_str(),
            code["code"].as_str(),
        ) else {
            return Ok(None);
        };
        let when = observation["effectiveDateTime"]
            .as_str()
            .unwrap_or_default();
        let pairs = [
            ("subject".to_string(), subject.to_string()),
            ("code".to_string(), format!("{system}|{code}")),
            ("_sort".to_string(), "-date".to_string()),
        ];
        for row in self
            .rows_matching(&Access::Unrestricted, "Observation", &pairs, 50)
            .await?
        {
            let Some(body) = &row.version.body else {
                continue;
            };
            if row.id == score_id {
                continue;
            }
            let earlier: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
            if earlier["status"] == "entered-in-error" {
                continue;
            }
            if earlier["effectiveDateTime"].as_str().unwrap_or_default() <= when {
                return Ok(observed(&earlier));
            }
        }
        Ok(None)
    }

    /// The Goal's next version with the new score linked and its achievement status from the
    /// trend; `None` when it already says so.
    #[allow(clippy::too_many_arguments)]
    fn moved_goal(
        &self,
        id: &str,
        version_id: i64,
        mut goal: Value,
        score_id: &str,
        value: f64,
        previous: Option<f64>,
        mid: Option<f64>,
        now_us: i64,
    ) -> FhirResult<Option<VersionWrite>> {
        let Some(target) = goal["target"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(fhir_questionnaire::GoalTarget::from_goal_target)
        else {
            return Ok(None);
        };
        let lower_is_better = target.lower_is_better().unwrap_or(true);
        let status = fhir_questionnaire::trajectory(previous, value, &target, mid, lower_is_better);
        let reference = format!("Observation/{score_id}");
        let before = goal.clone();
        let outcomes = goal
            .as_object_mut()
            .ok_or_else(|| FhirError::internal("a stored Goal is not an object"))?
            .entry("outcomeReference")
            .or_insert_with(|| json!([]));
        if let Some(list) = outcomes.as_array_mut() {
            if !list.iter().any(|r| r["reference"] == reference.as_str()) {
                list.push(json!({"reference": reference}));
            }
        }
        goal["achievementStatus"] = json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
            "code": status
        }]});
        if goal == before {
            return Ok(None);
        }
        // The stamp sets these afresh; the rest of `meta` (profiles, tags) stays.
        if let Some(object) = goal.as_object_mut() {
            if let Some(Value::Object(meta)) = object.get_mut("meta") {
                // `shift_remove` keeps the order of the other elements (`remove` would move
                // the last one into the gap).
                meta.shift_remove("versionId");
                meta.shift_remove("lastUpdated");
                if meta.is_empty() {
                    object.shift_remove("meta");
                }
            }
        }
        versioned(
            self,
            "Goal",
            id,
            goal,
            Expected::Version(version_id),
            version_id + 1,
            WriteMethod::Update,
            now_us,
        )
        .map(Some)
    }
}

/// A version of content the server wrote: checked, indexed and stamped like any other.
#[allow(clippy::too_many_arguments)]
fn versioned(
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
    check_structure(&body, resource_type)?;
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

fn target_of(v: &VersionWrite) -> Target {
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
