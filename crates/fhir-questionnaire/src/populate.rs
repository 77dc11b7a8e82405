//! SDC 3.0 population (populate.html): an in-progress QuestionnaireResponse from a
//! Questionnaire, with answers from `initial[x]` and from `sdc-questionnaire-initialExpression`
//! evaluated with `%patient` / `%subject`.
//!
//! Stub: filled in below the API.

use serde_json::Value;

use crate::issue::Issue;

/// A populated response and what could not be populated.
#[derive(Debug, Clone, PartialEq)]
pub struct Populated {
    /// QuestionnaireResponse, status `in-progress`, `questionnaire` = `url|version`, subject,
    /// an item for every non-display item (answers where population found some).
    pub response: Value,
    /// One warning per expression that cannot be evaluated or needs a context this crate
    /// does not have (`%encounter`, `%user`, ...), naming the linkId.
    pub issues: Vec<Issue>,
}

/// Populates a response to `questionnaire` for `subject` (the Patient resource);
/// `launch_patient` is the SMART launch patient, used as `%patient` when given (else the
/// subject).
pub fn populate(
    questionnaire: &Value,
    subject: Option<&Value>,
    launch_patient: Option<&Value>,
) -> Populated {
    let _ = (questionnaire, subject, launch_patient);
    Populated {
        response: serde_json::json!({"resourceType": "QuestionnaireResponse", "status": "in-progress"}),
        issues: Vec::new(),
    }
}
