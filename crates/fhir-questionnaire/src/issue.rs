//! The problems [`crate::validate`] and [`crate::populate`] report: one [`Issue`] each, shaped
//! like an R4 OperationOutcome.issue (operationoutcome.html: severity, code from the
//! issue-type value set, expression as a FHIRPath to the element).

/// How bad an issue is (OperationOutcome.issue.severity; this crate uses two levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The resource breaks a rule: reject it.
    Error,
    /// Worth telling the client; the resource is acceptable.
    Warning,
}

impl Severity {
    /// The OperationOutcome.issue.severity code (`error`, `warning`).
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a QuestionnaireResponse (or while populating one).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    /// OperationOutcome issue-type code: `required`, `value`, `structure`, `invalid`,
    /// `not-supported`, `business-rule`, `too-costly`.
    pub code: &'static str,
    /// The linkId of the item concerned, when there is one.
    pub link_id: Option<String>,
    /// FHIRPath to the element, with 0-based indices into the response (or into the
    /// Questionnaire for population issues), e.g. `QuestionnaireResponse.item[2].answer[0]`.
    pub expression: String,
    /// A plain-language message naming the linkId.
    pub message: String,
}

impl Issue {
    pub(crate) fn error(
        code: &'static str,
        link_id: Option<&str>,
        expression: impl Into<String>,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            link_id: link_id.map(str::to_string),
            expression: expression.into(),
            message: message.into(),
        }
    }

    pub(crate) fn warning(
        code: &'static str,
        link_id: Option<&str>,
        expression: impl Into<String>,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, link_id, expression, message)
        }
    }
}
