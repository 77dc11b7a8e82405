//! Validating a QuestionnaireResponse against its Questionnaire (R4 questionnaireresponse.html
//! "Questionnaire Responses and Questionnaires", questionnaire.html item rules).
//!
//! Stub: filled in below the API.

use serde_json::Value;

use crate::issue::Issue;

/// Validates `response` against `questionnaire` (`None`: the form is unknown).
///
/// * `completed` / `amended`: every rule (linkIds and nesting, answer types, answerOption /
///   contained answerValueSet, required, repeats, enableWhen, maxLength);
/// * any other status: structural rules only (linkIds, nesting, answer types);
/// * no questionnaire: the response's own structure (linkIds, one value[x] per answer) and
///   one warning that it was not checked against a form and cannot be scored.
pub fn validate(questionnaire: Option<&Value>, response: &Value) -> Vec<Issue> {
    let _ = (questionnaire, response);
    Vec::new()
}
