//! `$validate` (R4 resource-operation-validate.html) on every resource type:
//! `POST /{type}/$validate` and `POST /{type}/{id}/$validate` (or GET on a stored instance),
//! the body a resource or a `Parameters` with `resource`, `mode` and `profile`. It answers 200
//! with an OperationOutcome — errors included, "no issues" as information — and stores
//! nothing.
//!
//! What it checks is what a write by the same caller would meet:
//! A resource posted to be checked needs the scopes to write its type (403 otherwise), as the
//! write would; a stored one is read as the caller may read it (404 otherwise).
//!
//! * `create` (or no mode) and `update`: the R4 model (`validate/`), the profiles the resource
//!   claims, the `profile` asked for and those configured for its type (`profiles.rs`, with
//!   what could not be checked as information), a QuestionnaireResponse against its
//!   Questionnaire, the caller's permission and, for the co-editing apps, the coproduction
//!   rule table (`policy/coproduction`) against the stored version;
//! * `delete`: the stored resource may be deleted by this caller — permission and the rule
//!   table (a care plan is retired, not deleted, by the patient's and clinicians' apps).

use super::{OperationInput, BODY};
use crate::error::{operation_outcome, FhirError, FhirResult, Issue, Severity};
use crate::policy::coproduction::{check, Side};
use crate::policy::{Access, Permission};
use crate::rest::profiles::{self, profile_set};
use crate::rest::write::outcome_issue;
use crate::rest::FhirService;
use bytes::Bytes;
use serde_json::Value;

/// The validation modes (R4 resource-validation-mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    General,
    Create,
    Update,
    Delete,
}

impl Mode {
    fn parse(text: Option<&str>) -> FhirResult<Mode> {
        match text {
            None => Ok(Mode::General),
            Some("create") => Ok(Mode::Create),
            Some("update") => Ok(Mode::Update),
            Some("delete") => Ok(Mode::Delete),
            Some(other) => Err(FhirError::invalid_at(
                format!("mode {other:?} is not a validation mode (create, update or delete)"),
                "mode",
            )),
        }
    }
}

fn issue(severity: Severity, code: &'static str, diagnostics: String, at: Option<&str>) -> Issue {
    Issue {
        severity,
        code,
        diagnostics,
        expression: at.map(|a| vec![a.to_string()]).unwrap_or_default(),
    }
}

impl FhirService {
    /// `$validate` of a `resource_type` (type level) or of `resource_type/id` (instance level).
    pub(crate) async fn validate_operation(
        &self,
        access: &Access,
        resource_type: &str,
        id: Option<&str>,
        input: &OperationInput,
    ) -> FhirResult<Bytes> {
        input.only("validate", &["resource", "mode", "profile", BODY])?;
        let mode = Mode::parse(input.value("mode")?)?;
        let asked_profile = input.value("profile")?.map(str::to_string);
        let given = input.resource("resource")?.cloned();
        let mut issues = Vec::new();

        if mode == Mode::Delete {
            let Some(id) = id else {
                return Err(FhirError::invalid_at(
                    "mode delete checks a stored resource: invoke it on {type}/{id}/$validate",
                    "mode",
                ));
            };
            // Read (and recorded as a read) as the caller may read it.
            let current = self.read(access, resource_type, id).await?;
            let current = crate::rest::stored_json(&current.body)?;
            self.would_be_refused(access, resource_type, Permission::Delete, &mut issues);
            self.breaks_rules(access, resource_type, id, Some(&current), None, &mut issues)
                .await?;
            return finish(issues, "deleting it");
        }

        if mode == Mode::Update && id.is_none() {
            return Err(FhirError::invalid_at(
                "mode update checks a change of a stored resource: invoke it on \
                 {type}/{id}/$validate",
                "mode",
            ));
        }
        let stored = match id {
            Some(id) => Some(crate::rest::stored_json(
                &self.read(access, resource_type, id).await?.body,
            )?),
            None => None,
        };
        let resource = match (given, &stored) {
            // A resource the caller holds: theirs to check as they would to write it (its
            // questionnaire is resolved for them; the scopes must allow writing the type).
            (Some(given), _) => {
                let permission = if mode == Mode::Update {
                    Permission::Update
                } else {
                    Permission::Create
                };
                self.permit(access, resource_type, permission)?;
                given
            }
            (None, Some(stored)) => stored.clone(),
            (None, None) => {
                return Err(FhirError::bad_request(
                    "give the resource to validate: POST it (as the body or a resource \
                     parameter), or invoke $validate on a stored one",
                ))
            }
        };
        if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type) {
            return Err(FhirError::invalid_at(
                format!("the resource to validate must be a {resource_type}"),
                "resource",
            ));
        }
        if mode == Mode::Update {
            match (id, resource.get("id").and_then(Value::as_str)) {
                (Some(id), Some(given)) if given != id => issues.push(issue(
                    Severity::Error,
                    "invariant",
                    format!(
                        "an update of {resource_type}/{id} must carry id {id:?}, not {given:?}"
                    ),
                    Some(&format!("{resource_type}.id")),
                )),
                (_, None) => issues.push(issue(
                    Severity::Error,
                    "required",
                    "an update must carry the resource's id".into(),
                    Some(&format!("{resource_type}.id")),
                )),
                _ => {}
            }
        }

        // The R4 model.
        if let Err(e) = crate::validate::check_resource(resource.clone(), resource_type) {
            issues.extend(e.issues);
        }
        // Profiles: those claimed and configured (unknown claimed ones a warning, as on
        // write), and the one asked for (unknown: an error, resource-operation-validate.html).
        let set = profile_set();
        let mut wanted = profiles::claimed(&resource);
        wanted.extend(
            self.required_profiles
                .get(resource_type)
                .into_iter()
                .flatten()
                .cloned(),
        );
        let mut found = profiles::check(&set, &resource, &wanted, false);
        if let Some(asked) = &asked_profile {
            let one = profiles::check(&set, &resource, std::slice::from_ref(asked), true);
            found.errors.extend(one.errors);
            found.warnings.extend(one.warnings);
            found.information.extend(one.information);
        }
        issues.extend(found.all());
        // A response against its questionnaire.
        if resource_type == "QuestionnaireResponse" {
            let questionnaire = self.questionnaire_answered(&resource).await?;
            issues.extend(
                fhir_questionnaire::validate(questionnaire.as_deref(), &resource)
                    .iter()
                    .map(outcome_issue),
            );
        }
        // The caller, as the write would meet them.
        if mode != Mode::General {
            let (permission, current) = match mode {
                Mode::Update => (Permission::Update, stored.as_ref()),
                _ => (Permission::Create, None),
            };
            self.would_be_refused(access, resource_type, permission, &mut issues);
            let target = id.unwrap_or_default();
            self.breaks_rules(
                access,
                resource_type,
                target,
                current,
                Some(&resource),
                &mut issues,
            )
            .await?;
        }
        finish(issues, "writing it")
    }

    /// Note an error when `access` may not do `permission` on `resource_type` at all.
    fn would_be_refused(
        &self,
        access: &Access,
        resource_type: &str,
        permission: Permission,
        issues: &mut Vec<Issue>,
    ) {
        if let Err(refusal) = self.permit(access, resource_type, permission) {
            for mut i in refusal.issues {
                i.severity = Severity::Error;
                issues.push(i);
            }
        }
    }

    /// Note an error when the coproduction rule table refuses the change (co-editing apps).
    async fn breaks_rules(
        &self,
        access: &Access,
        resource_type: &str,
        id: &str,
        current: Option<&Value>,
        proposed: Option<&Value>,
        issues: &mut Vec<Issue>,
    ) -> FhirResult<()> {
        let editor = Side::of(access);
        if editor == Side::Service || !matches!(resource_type, "CarePlan" | "Goal" | "CareTeam") {
            return Ok(());
        }
        let facts = self
            .coproduction_facts(access, resource_type, id, current, proposed)
            .await?;
        if let Err(refusal) = check(editor, resource_type, current, proposed, facts) {
            issues.push(issue(Severity::Error, "forbidden", refusal.message, None));
        }
        Ok(())
    }
}

/// The OperationOutcome: the issues, or one saying there are none.
fn finish(mut issues: Vec<Issue>, doing: &str) -> FhirResult<Bytes> {
    if !issues.iter().any(|i| {
        matches!(
            i.severity,
            Severity::Fatal | Severity::Error | Severity::Warning
        )
    }) {
        issues.insert(
            0,
            issue(
                Severity::Information,
                "informational",
                format!("no errors were found: {doing} would be accepted"),
                None,
            ),
        );
    }
    serde_json::to_vec(&operation_outcome(&issues))
        .map(Bytes::from)
        .map_err(FhirError::internal)
}
