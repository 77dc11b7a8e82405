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
///
/// Validation stops only once the list holds an error, so a document is never accepted
/// unchecked: a list full of warnings (whitespace around strings, say) takes no more warnings
/// but keeps the walk going, and an error found later takes the last warning's place.
#[derive(Debug, Default)]
pub struct IssueList {
    issues: Vec<Issue>,
    stopped: bool,
    has_error: bool,
    warnings_left_out: usize,
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
        let issue = Issue {
            severity,
            code,
            diagnostics,
            expression,
        };
        if self.issues.len() + 1 < crate::MAX_ISSUES {
            self.has_error |= issue.is_error();
            self.issues.push(issue);
            return;
        }
        if !issue.is_error() && !self.has_error {
            // No error yet: the rest of the document must still be checked.
            self.warnings_left_out += 1;
            return;
        }
        let expression = issue.expression.clone();
        if !self.has_error {
            // The list holds only warnings: the error takes the last one's place.
            self.issues.pop();
            self.warnings_left_out += 1;
            self.has_error = true;
            self.issues.push(issue);
        }
        let note = format!(
            "Too many issues: validation stopped after {}",
            self.issues.len()
        );
        self.issues.push(processing(note, expression));
        self.stopped = true;
    }

    /// Whether the list is full and holds an error: validation may stop walking.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The issues, in the order they were added (with a last one counting the warnings left
    /// out, if any were and validation did not stop).
    pub fn into_vec(mut self) -> Vec<Issue> {
        if self.warnings_left_out > 0 && !self.stopped {
            let note = format!("{} more warnings are not listed", self.warnings_left_out);
            self.issues.push(processing(note, String::new()));
        }
        self.issues
    }
}

/// A note about the list itself (it stopped, or left warnings out).
fn processing(diagnostics: String, expression: String) -> Issue {
    Issue {
        severity: Severity::Information,
        code: "processing",
        diagnostics,
        expression,
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

    /// A list full of warnings keeps the walk going, and takes an error found later.
    #[test]
    fn warnings_never_stop_the_walk_before_an_error() {
        let mut list = IssueList::default();
        for i in 0..crate::MAX_ISSUES + 5 {
            list.push(
                Severity::Warning,
                "value",
                format!("warning {i}"),
                String::new(),
            );
            assert!(!list.stopped(), "stopped after {i} warnings");
        }
        list.push(Severity::Error, "structure", "late".into(), String::new());
        assert!(list.stopped());
        let issues = list.into_vec();
        assert_eq!(issues.len(), crate::MAX_ISSUES);
        assert_eq!(issues[crate::MAX_ISSUES - 2].diagnostics, "late");
        assert!(issues[crate::MAX_ISSUES - 2].is_error());
        assert_eq!(issues[crate::MAX_ISSUES - 1].code, "processing");

        let mut only_warnings = IssueList::default();
        for i in 0..crate::MAX_ISSUES + 5 {
            only_warnings.push(Severity::Warning, "value", format!("{i}"), String::new());
        }
        let issues = only_warnings.into_vec();
        assert_eq!(issues.len(), crate::MAX_ISSUES);
        assert_eq!(
            issues[crate::MAX_ISSUES - 1].diagnostics,
            "6 more warnings are not listed"
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
