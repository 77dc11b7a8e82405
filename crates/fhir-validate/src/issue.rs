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

/// Issues collected up to [`crate::MAX_ISSUES`], the last one saying that validation stopped
/// there: the one collector of every validator in the workspace (the R4 model walk here, the
/// profile walk in `fhir-profile`).
#[derive(Debug, Default)]
pub struct IssueList {
    issues: Vec<Issue>,
    stopped: bool,
}

impl IssueList {
    /// Add an issue, unless the list is full (then one last issue says validation stopped).
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        diagnostics: String,
        expression: String,
    ) {
        if self.stopped {
            return;
        }
        if self.issues.len() + 1 >= crate::MAX_ISSUES {
            self.issues.push(Issue {
                severity: Severity::Information,
                code: "processing",
                diagnostics: format!(
                    "Too many issues: validation stopped after {}",
                    crate::MAX_ISSUES - 1
                ),
                expression,
            });
            self.stopped = true;
            return;
        }
        self.issues.push(Issue {
            severity,
            code,
            diagnostics,
            expression,
        });
    }

    /// Whether the list is full: validation may stop walking.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The issues, in the order they were added.
    pub fn into_vec(self) -> Vec<Issue> {
        self.issues
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
    fn a_full_list_says_it_stopped_and_takes_no_more() {
        let mut list = IssueList::default();
        for i in 0..crate::MAX_ISSUES + 5 {
            list.push(
                Severity::Error,
                "value",
                format!("issue {i}"),
                String::new(),
            );
        }
        assert!(list.stopped());
        let issues = list.into_vec();
        assert_eq!(issues.len(), crate::MAX_ISSUES);
        assert_eq!(issues[crate::MAX_ISSUES - 1].code, "processing");
        assert_eq!(
            issues[crate::MAX_ISSUES - 2].diagnostics,
            format!("issue {}", crate::MAX_ISSUES - 2)
        );
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
