//! Goals that move with the scores (issue "PROMs" §5), for the PROM hook
//! (`score_responses.rs`): a live Goal of the response's patient whose `target.measure` is the
//! score's code — only the goals the response names, when it names any (`basedOn` →
//! CarePlan.goal, the R4 or MCC `resource-pertainsToGoal` extension) — gets the score in
//! `outcomeReference` and an `achievementStatus` from the trend: `achieved` when the target
//! measuring that code is met, otherwise `improving` / `worsening` / `no-change` against the
//! patient's previous score by the instrument's minimal important difference, `in-progress`
//! for a first score (`fhir_questionnaire::trajectory`).
//!
//! Whose goals: the patient is the response's subject exactly (`Patient/{id}`), and a goal
//! moves only when its own subject is that patient; the previous score is searched by that
//! patient and code and checked again on the stored content, so no value a client writes can
//! widen either search to another patient's record.
//!
//! What is never overwritten: a Goal version names the version it replaces (a concurrent
//! human edit makes the commit lose the race, and the hooks run again over the edit); only
//! `outcomeReference` and `achievementStatus` change; a status a person set that the trend
//! does not produce (`sustaining`, `not-attainable`, …) stays, as does any status when a
//! later score than this one exists (a late or backdated response links its score but does
//! not turn the goal back).

use super::score_responses::{observed, patient_of, versioned, without_version_stamp};
use super::PreparedWrite;
use crate::error::{FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::FhirService;
use crate::store::{CommitBatch, Expected, VersionWrite, WriteMethod};
use fhir_search_query::literal;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The extensions that link a response to the goal it measures (R4 core and US MCC).
const PERTAINS_TO_GOAL: &[&str] = &[
    "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
    "http://hl7.org/fhir/us/mcc/StructureDefinition/resource-pertainsToGoal",
];

/// Goal states in which a goal no longer moves.
const GOAL_ENDED: &[&str] = &["completed", "cancelled", "entered-in-error", "rejected"];

/// The achievement statuses the trend gives; any other was set by a person and stays.
const TREND_STATUSES: &[&str] = &[
    "in-progress",
    "improving",
    "worsening",
    "no-change",
    "achieved",
];

const GOAL_ACHIEVEMENT: &str = "http://terminology.hl7.org/CodeSystem/goal-achievement";

/// Rows a score search reads: later or skipped rows beyond these are not looked at.
const SCORE_ROWS: u32 = 20;

/// A new score, as the goals see it.
pub(super) struct Score<'a> {
    /// The score Observation's id.
    pub id: &'a str,
    /// Its code (a Coding: system and code).
    pub code: &'a Value,
    pub value: f64,
    /// The score Observation (for its effective time).
    pub observation: &'a Value,
    /// The instrument's minimal important difference.
    pub mid: Option<f64>,
}

/// The goal target that measures `code`.
fn target_measuring<'g>(goal: &'g Value, code: &Value) -> Option<&'g Value> {
    goal["target"].as_array().into_iter().flatten().find(|t| {
        t["measure"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["system"] == code["system"] && c["code"] == code["code"])
    })
}

/// Whether `observation` is a live score of `code` for `subject`.
fn is_score_of(observation: &Value, subject: &str, code: &Value) -> bool {
    observation["subject"]["reference"] == subject
        && !matches!(
            observation["status"].as_str(),
            Some("cancelled" | "entered-in-error")
        )
        && observation["code"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["system"] == code["system"] && c["code"] == code["code"])
}

impl FhirService {
    /// The Goal versions that `score`, derived from `response`, moves (for the caller to put in
    /// `batch`, replacing a version an earlier response of the same commit made).
    pub(super) async fn move_goals(
        &self,
        response: &Value,
        score: &Score<'_>,
        writes: &[PreparedWrite],
        batch: &CommitBatch,
        now_us: i64,
    ) -> FhirResult<Vec<VersionWrite>> {
        let Some(patient) = patient_of(response) else {
            return Ok(Vec::new());
        };
        let goals = self
            .goals_measured(patient, response, score.code, writes)
            .await?;
        if goals.is_empty() {
            return Ok(Vec::new());
        }
        let (previous, latest) = self.score_context(patient, score).await?;
        let mut moved = Vec::new();
        for (id, version_id, goal) in goals {
            // An earlier response of this commit may have moved it already: build on that.
            let earlier = batch
                .versions
                .iter()
                .find(|v| v.resource_type == "Goal" && v.id == id);
            let (replaces, goal) = match earlier.and_then(|v| v.body.as_ref().map(|b| (v, b))) {
                Some((v, body)) => (v.version_id - 1, crate::rest::stored_json(body)?),
                None => (version_id, goal),
            };
            if let Some(version) =
                self.moved_goal(&id, replaces, goal, score, previous, latest, now_us)?
            {
                moved.push(version);
            }
        }
        Ok(moved)
    }

    /// The live Goals of `patient` whose target measures `code`: those the response names
    /// when it names any, else all of the patient's. Goals written in the same commit are left
    /// to the person who wrote them.
    async fn goals_measured(
        &self,
        patient: &str,
        response: &Value,
        code: &Value,
        writes: &[PreparedWrite],
    ) -> FhirResult<Vec<(String, i64, Value)>> {
        let goal_id = |reference: &Value| {
            reference["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Goal/"))
                .filter(|id| crate::validate::is_valid_id(id))
                .map(str::to_string)
        };
        let mut named: BTreeSet<String> = BTreeSet::new();
        for ext in response["extension"].as_array().into_iter().flatten() {
            if PERTAINS_TO_GOAL.contains(&ext["url"].as_str().unwrap_or_default()) {
                named.extend(goal_id(&ext["valueReference"]));
            }
        }
        for plan in response["basedOn"].as_array().into_iter().flatten() {
            let Some(plan_id) = plan["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("CarePlan/"))
                .filter(|id| crate::validate::is_valid_id(id))
            else {
                continue;
            };
            if let Some(body) = self
                .store
                .current_for_write("CarePlan", plan_id)
                .await?
                .and_then(|v| v.body)
            {
                let plan: Value = crate::rest::stored_json(&body)?;
                for goal in plan["goal"].as_array().into_iter().flatten() {
                    named.extend(goal_id(goal));
                }
            }
        }
        let mut candidates: Vec<(String, i64, Value)> = Vec::new();
        if named.is_empty() {
            let pairs = [("subject".to_string(), format!("Patient/{patient}"))];
            for row in self
                .rows_matching(&Access::Unrestricted, "Goal", &pairs, 200)
                .await?
            {
                if let Some(body) = &row.version.body {
                    let goal: Value = crate::rest::stored_json(body)?;
                    candidates.push((row.id, row.version.version_id, goal));
                }
            }
        } else {
            for id in named {
                if let Some(v) = self.store.current_for_write("Goal", &id).await? {
                    if let Some(body) = &v.body {
                        let goal: Value = crate::rest::stored_json(body)?;
                        candidates.push((id, v.version_id, goal));
                    }
                }
            }
        }
        Ok(candidates
            .into_iter()
            .filter(|(id, _, goal)| {
                patient_of(goal) == Some(patient)
                    && !GOAL_ENDED.contains(&goal["lifecycleStatus"].as_str().unwrap_or_default())
                    && target_measuring(goal, code).is_some()
                    && !writes
                        .iter()
                        .any(|w| w.version.resource_type == "Goal" && w.version.id == *id)
            })
            .collect())
    }

    /// The patient's score of the same code just before this one (by effective time), and
    /// whether this one is the latest: what `Observation?subject&code&date=le{when}&_sort=-date`
    /// and `…&date=gt{when}` (20 rows each) would say, from one search in the common case.
    ///
    /// One search sorted by `-date` without a date bound: its rows come by their highest
    /// indexed time (the sort value), so those that `gt{when}` matches (highest time above the
    /// top of `when`'s range) come first, and every row after them matches `le{when}`. A live
    /// score among the first makes this one not the latest (a late response); the previous
    /// score is the first live one that `le{when}` matches: after them, or one of them whose
    /// `effectiveDateTime` starts within `when` (a coarser time, a day say). Only a score
    /// whose start the walk cannot tell (an `effectivePeriod`, …) or a page of nothing but
    /// skipped or later rows needs the `le` search itself.
    async fn score_context(
        &self,
        patient: &str,
        score: &Score<'_>,
    ) -> FhirResult<(Option<f64>, bool)> {
        let (Some(system), Some(code)) =
            (score.code["system"].as_str(), score.code["code"].as_str())
        else {
            return Ok((None, true));
        };
        let subject = format!("Patient/{patient}");
        let when = score.observation["effectiveDateTime"].as_str();
        let search = |date: Option<String>| {
            let mut pairs = vec![
                ("subject".to_string(), subject.clone()),
                (
                    "code".to_string(),
                    format!("{}|{}", literal(system), literal(code)),
                ),
                ("_sort".to_string(), "-date".to_string()),
            ];
            pairs.extend(date.map(|d| ("date".to_string(), d)));
            pairs
        };
        // A live score of this patient and code other than this one.
        let live_score = |row: &crate::store::SearchRow| -> FhirResult<Option<Value>> {
            if row.id == score.id {
                return Ok(None);
            }
            let Some(body) = &row.version.body else {
                return Ok(None);
            };
            let o: Value = crate::rest::stored_json(body)?;
            Ok(is_score_of(&o, &subject, score.code).then_some(o))
        };
        let first_earlier = |rows: Vec<crate::store::SearchRow>| -> FhirResult<Option<f64>> {
            for row in &rows {
                if let Some(o) = live_score(row)? {
                    return Ok(observed(&o));
                }
            }
            Ok(None)
        };
        let Some(when) = when else {
            // Without a time every score is earlier (what `le` without a value would be).
            let rows = self.score_rows(&search(None)).await?;
            return Ok((first_earlier(rows)?, true));
        };
        let Some(top) = self.search_value_top(when) else {
            // Not a time a search reads: the searches themselves say what is wrong.
            let earlier = self.score_rows(&search(Some(format!("le{when}")))).await?;
            let later = self.score_rows(&search(Some(format!("gt{when}")))).await?;
            let latest = first_earlier(later)?.is_none();
            return Ok((first_earlier(earlier)?, latest));
        };
        let rows = self.score_rows(&search(None)).await?;
        let page_full = rows.len() >= SCORE_ROWS as usize;
        let mut later = false;
        let mut previous = None;
        let mut undecided = false;
        for row in &rows {
            // The row's highest indexed time; none (the sort's sentinel): no `date` at all,
            // which neither `le` nor `gt` matches.
            let highest = row
                .sort_values
                .first()
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v != i64::MIN);
            let Some(highest) = highest else { continue };
            let Some(o) = live_score(row)? else { continue };
            if highest <= top {
                previous = Some(observed(&o));
                break;
            }
            later = true;
            // A later score matches `le` too when its one indexed range starts within `when`.
            match self.effective_range(&o) {
                Some((low, high)) if high == highest => {
                    if low <= top {
                        previous = Some(observed(&o));
                        break;
                    }
                }
                _ => {
                    undecided = true;
                    break;
                }
            }
        }
        let previous = match previous {
            Some(found) => found,
            None if undecided || page_full => {
                let earlier = self.score_rows(&search(Some(format!("le{when}")))).await?;
                first_earlier(earlier)?
            }
            None => None,
        };
        Ok((previous, !later))
    }

    /// The first rows of a score search (every patient's; the caller's pairs confine it).
    async fn score_rows(
        &self,
        pairs: &[(String, String)],
    ) -> FhirResult<Vec<crate::store::SearchRow>> {
        self.rows_matching(&Access::Unrestricted, "Observation", pairs, SCORE_ROWS)
            .await
    }

    /// The top of the range a date search value `when` names (search.html#date), as the
    /// store compares it; `None` if it is not a date/time.
    fn search_value_top(&self, when: &str) -> Option<i64> {
        self.date_range(when).map(|(_, high)| high)
    }

    /// The range an Observation's `effectiveDateTime` is indexed with (its only `date` row);
    /// `None` for any other `effective[x]`.
    fn effective_range(&self, observation: &Value) -> Option<(i64, i64)> {
        self.date_range(observation["effectiveDateTime"].as_str()?)
    }

    /// The range a date/time text covers (search.html#date), read in the server's zone when it
    /// has none: what the index and a search compute for it.
    fn date_range(&self, text: &str) -> Option<(i64, i64)> {
        let value: fhir_primitives::PartialDateTime = text.trim().parse().ok()?;
        let range = value.range(self.search_params.tz_offset_seconds);
        Some((range.low_us, range.high_us))
    }

    /// The Goal's next version (replacing version `replaces`) with the score linked and — when
    /// the score is the latest and no person set another status — its achievement status from
    /// the trend; `None` when it already says so.
    #[allow(clippy::too_many_arguments)]
    fn moved_goal(
        &self,
        id: &str,
        replaces: i64,
        mut goal: Value,
        score: &Score<'_>,
        previous: Option<f64>,
        latest: bool,
        now_us: i64,
    ) -> FhirResult<Option<VersionWrite>> {
        let Some(target) = target_measuring(&goal, score.code)
            .and_then(fhir_questionnaire::GoalTarget::from_goal_target)
        else {
            return Ok(None);
        };
        let lower_is_better = target.lower_is_better().unwrap_or(true);
        let status = fhir_questionnaire::trajectory(
            previous,
            score.value,
            &target,
            score.mid,
            lower_is_better,
        );
        let before = goal.clone();
        let reference = format!("Observation/{}", score.id);
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
        let current_status = goal["achievementStatus"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["system"] == GOAL_ACHIEVEMENT)
            .and_then(|c| c["code"].as_str());
        let set_by_person = goal.get("achievementStatus").is_some()
            && !current_status.is_some_and(|c| TREND_STATUSES.contains(&c));
        if latest && !set_by_person {
            goal["achievementStatus"] =
                json!({"coding": [{"system": GOAL_ACHIEVEMENT, "code": status}]});
        }
        if goal == before {
            return Ok(None);
        }
        without_version_stamp(&mut goal);
        versioned(
            self,
            "Goal",
            id,
            goal,
            Expected::Version(replaces),
            replaces + 1,
            WriteMethod::Update,
            now_us,
        )
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_one_measuring_the_score() {
        let goal = json!({"target": [
            {"measure": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
             "detailQuantity": {"value": 80, "comparator": "<"}},
            {"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
             "detailQuantity": {"value": 5, "comparator": "<"}}]});
        let phq9 = json!({"system": "http://loinc.org", "code": "44261-6"});
        assert_eq!(
            target_measuring(&goal, &phq9).unwrap()["detailQuantity"]["value"],
            5
        );
        let other = json!({"system": "http://loinc.org", "code": "70274-6"});
        assert!(target_measuring(&goal, &other).is_none());
    }
}
