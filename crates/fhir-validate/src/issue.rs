//! Validation issue type: one OperationOutcome.issue (FHIR R4 operationoutcome.html).

/// OperationOutcome.issue.severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    /// The FHIR `issue-severity` code.
    pub fn as_code(&self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// FHIR IssueType code: "structure", "required", "value", "invariant",
    /// "code-invalid", "too-long", "not-supported", "processing".
    pub code: &'static str,
    pub diagnostics: String,
    /// FHIRPath-style location, e.g. `Patient.contact[0].gender`.
    pub expression: String,
}

impl Issue {
    /// Fatal or Error.
    pub fn is_error(&self) -> bool {
        matches!(self.severity, Severity::Fatal | Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(severity: Severity) -> Issue {
        Issue {
            severity,
            code: "value",
            diagnostics: String::new(),
            expression: String::new(),
        }
    }

    #[test]
    fn is_error_for_fatal_and_error_only() {
        assert!(issue(Severity::Fatal).is_error());
        assert!(issue(Severity::Error).is_error());
        assert!(!issue(Severity::Warning).is_error());
        assert!(!issue(Severity::Information).is_error());
        assert_eq!(Severity::Warning.as_code(), "warning");
    }
}
