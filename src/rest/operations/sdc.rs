//! The Structured Data Capture operations on questionnaires (issue "PROMs" §4; SDC 3.0
//! operations; `$validate` of a response is `validate.rs`'s, with its questionnaire's checks):
//!
//! * `QuestionnaireResponse/$extract` and `QuestionnaireResponse/{id}/$extract`:
//!   Observation-based extraction as a transaction Bundle, not stored (the automatic scoring
//!   of a write is the stored counterpart);
//! * `Questionnaire/{id}/$populate` and `Questionnaire/$populate` (with `questionnaire` =
//!   canonical): a response filled from `initial[x]` and `initialExpression` for the
//!   `subject` (by default the token's SMART launch patient), who is `%patient` — answered
//!   as `Parameters` with `response` and, for what could not be filled, `issues`.
//!
//! The work itself is the `fhir-questionnaire` crate's; this file finds the resources, checks
//! the caller may read them, and shapes the answers.

use super::{OperationInput, BODY};
use crate::error::{operation_outcome, ErrorKind, FhirError, FhirResult, Issue};
use crate::policy::Access;
use crate::rest::write::{outcome_issue, refuse_errors};
use crate::rest::FhirService;
use bytes::Bytes;
use serde_json::{json, Value};

fn to_bytes(value: &Value) -> FhirResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(FhirError::internal)
}

impl FhirService {
    /// The response an operation works on: the stored one (instance level, as the caller may
    /// read it) or the one given (`name` parameter or the body).
    async fn response_input(
        &self,
        access: &Access,
        id: Option<&str>,
        input: &OperationInput,
        name: &str,
    ) -> FhirResult<(Value, Option<String>)> {
        match (id, input.resource(name)?) {
            (Some(_), Some(_)) => Err(FhirError::bad_request(format!(
                "give either a stored QuestionnaireResponse (its URL) or a {name} parameter, not both"
            ))),
            (Some(id), None) => {
                let stored = self.read(access, "QuestionnaireResponse", id).await?;
                Ok((crate::rest::stored_json(&stored.body)?, Some(id.to_string())))
            }
            (None, Some(given)) => {
                // A response the caller holds: theirs to check as they would to write it.
                self.permit(
                    access,
                    "QuestionnaireResponse",
                    crate::policy::Permission::Create,
                )?;
                if given.get("resourceType").and_then(Value::as_str)
                    != Some("QuestionnaireResponse")
                {
                    return Err(FhirError::invalid_at(
                        format!("{name} must be a QuestionnaireResponse"),
                        name,
                    ));
                }
                let id = given.get("id").and_then(Value::as_str).map(str::to_string);
                Ok((given.clone(), id))
            }
            (None, None) => Err(FhirError::bad_request(format!(
                "give the QuestionnaireResponse: POST it (as the body or a {name} parameter), \
                 or invoke the operation on a stored one"
            ))),
        }
    }

    /// The Questionnaire `response` answers (`None`: the server does not know it).
    pub(super) async fn questionnaire_answered(
        &self,
        response: &Value,
    ) -> FhirResult<Option<std::sync::Arc<Value>>> {
        match response.get("questionnaire").and_then(Value::as_str) {
            Some(canonical) => self.questionnaire(canonical).await,
            None => Ok(None),
        }
    }

    /// `$extract` of a QuestionnaireResponse: a transaction Bundle, not stored.
    pub(crate) async fn extract_response(
        &self,
        access: &Access,
        id: Option<&str>,
        input: &OperationInput,
    ) -> FhirResult<Bytes> {
        input.only("extract", &["questionnaire-response", BODY])?;
        let (response, response_id) = self
            .response_input(access, id, input, "questionnaire-response")
            .await?;
        let Some(questionnaire) = self.questionnaire_answered(&response).await? else {
            return Err(FhirError::new(
                ErrorKind::Unprocessable,
                "not-found",
                format!(
                    "the questionnaire {} is not known to this server: nothing says what to extract",
                    response["questionnaire"].as_str().unwrap_or("(none given)")
                ),
            ));
        };
        refuse_errors(&fhir_questionnaire::validate(
            Some(&questionnaire),
            &response,
        ))?;
        let response_ref = match &response_id {
            Some(id) => format!("QuestionnaireResponse/{id}"),
            None => String::new(),
        };
        let mut new_id = || self.ids.new_id();
        let bundle =
            fhir_questionnaire::extract(&questionnaire, &response, &response_ref, &mut new_id);
        to_bytes(&bundle)
    }

    /// `$populate` of a Questionnaire for a subject.
    pub(crate) async fn populate_questionnaire(
        &self,
        access: &Access,
        id: Option<&str>,
        input: &OperationInput,
    ) -> FhirResult<Bytes> {
        input.only("populate", &["subject", "questionnaire", "local"])?;
        let questionnaire = match (id, input.value("questionnaire")?) {
            (Some(id), None) => crate::rest::stored_json(&self.read(access, "Questionnaire", id).await?.body)?,
            (None, Some(canonical)) => {
                // Resolved, then read as the caller may read it (a 404 otherwise).
                let found = self.questionnaire(canonical).await?;
                let id = found
                    .as_ref()
                    .and_then(|q| q["id"].as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        FhirError::not_found(format!("no Questionnaire {canonical} is known here"))
                    })?;
                crate::rest::stored_json(&self.read(access, "Questionnaire", &id).await?.body)?
            }
            (Some(_), Some(_)) => {
                return Err(FhirError::bad_request(
                    "give either a stored Questionnaire (its URL) or a questionnaire parameter, not both",
                ))
            }
            (None, None) => {
                return Err(FhirError::bad_request(
                    "give the Questionnaire: invoke $populate on a stored one or pass questionnaire=<canonical>",
                ))
            }
        };
        // The subject, or else the patient of the token's launch context.
        let launch_patient = access.grant().and_then(|g| g.patient.clone());
        let subject_ref = match (input.value("subject")?, &launch_patient) {
            (Some(subject), _) => subject.to_string(),
            (None, Some(patient)) => format!("Patient/{patient}"),
            (None, None) => {
                return Err(FhirError::bad_request(
                    "$populate needs a subject (e.g. subject=Patient/123), or a token with a launch patient",
                ))
            }
        };
        let patient_id = subject_ref
            .strip_prefix("Patient/")
            .filter(|id| !id.contains('/'))
            .ok_or_else(|| {
                FhirError::invalid_at(
                    format!(
                        "subject must be a Patient reference (Patient/123), got {subject_ref:?}"
                    ),
                    "subject",
                )
            })?;
        let subject =
            crate::rest::stored_json(&self.read(access, "Patient", patient_id).await?.body)?;
        // %patient is the subject: the form is about them, whoever's context the app is in.
        let populated = fhir_questionnaire::populate(&questionnaire, Some(&subject), None);
        let mut parameters = vec![json!({"name": "response", "resource": populated.response})];
        if !populated.issues.is_empty() {
            let issues: Vec<Issue> = populated.issues.iter().map(outcome_issue).collect();
            parameters.push(json!({"name": "issues", "resource": operation_outcome(&issues)}));
        }
        to_bytes(&json!({"resourceType": "Parameters", "parameter": parameters}))
    }
}
