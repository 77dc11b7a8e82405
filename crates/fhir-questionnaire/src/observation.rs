//! The score and the observable items of a response as Observations, shaped like US Core's
//! PHQ-9 total score example (Observation-PHQ9-item-example-44261-6) and SDC 3.0
//! Observation-based extraction (`observationExtract`).
//!
//! Stub: filled in below the API.

use serde_json::Value;

use crate::score::Scores;

/// The total score as an Observation (no id): status final, category survey, code = the
/// total item's code, valueQuantity in `{score}`, effective = authored, subject, performer =
/// author, derivedFrom = `response_ref`, interpretation from the total item's
/// `score-interpretation` bands. `None` when there is no total or no value. `hasMember` is
/// left to the caller (link the [`item_observations`] it stores).
pub fn score_observation(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
    scores: &Scores,
) -> Option<Value> {
    let _ = (questionnaire, response, response_ref, scores);
    None
}

/// One Observation (no id) per answer of each item marked `observationExtract` (on the item
/// or an ancestor or the root) that has a code, except calculated items (the total is
/// [`score_observation`]'s).
pub fn item_observations(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
) -> Vec<Value> {
    let _ = (questionnaire, response, response_ref);
    Vec::new()
}
