//! The one error type of the FHIR boundary. Every failure a client can cause becomes a
//! [`FhirError`]: a kind (which fixes the HTTP status, mapped in `http::response`) and the
//! OperationOutcome issues that say what was wrong and where (R4 operationoutcome.html).

use serde_json::{json, Value};

/// What went wrong, from the client's point of view. The HTTP status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed or the resource is invalid.
    BadRequest,
    /// 401: no valid bearer token (SMART App Launch; RFC 6750 `WWW-Authenticate`).
    Unauthorized,
    /// 403: the token's scopes do not allow the interaction.
    Forbidden,
    /// 404: no such resource type, resource or version (or one the caller may not know of).
    NotFound,
    /// 405: the interaction is not allowed on this path.
    MethodNotAllowed,
    /// 406: none of the accepted formats can be produced.
    NotAcceptable,
    /// 409: the write conflicts with the current state.
    Conflict,
    /// 410: the resource was deleted.
    Gone,
    /// 412: an `If-Match` precondition failed.
    PreconditionFailed,
    /// 408: the request body did not arrive within the configured time.
    RequestTimeout,
    /// 413: the request body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the request body is in a format we do not read.
    UnsupportedMediaType,
    /// 422: well-formed, but breaks a business rule (e.g. a failed JSON Patch `test`).
    Unprocessable,
    /// 429: the client sent too many requests (a rate limit, or too many at once); it may try
    /// again after `retry_after_seconds` (RFC 6585 §4, `Retry-After`).
    TooManyRequests { retry_after_seconds: u64 },
    /// 501: the interaction is part of FHIR but not offered by this server (yet).
    NotImplemented,
    /// 503: the database cannot be reached.
    Unavailable,
    /// 507: the database's storage is full; nothing was written (reads still work).
    InsufficientStorage,
    /// 500: a bug. Details go to the log, never to the client.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code this kind of error is answered with (http.html).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::Conflict => 409,
            ErrorKind::Gone => 410,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Unprocessable => 422,
            ErrorKind::TooManyRequests { .. } => 429,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::InsufficientStorage => 507,
            ErrorKind::Internal => 500,
        }
    }
}

/// OperationOutcome.issue.severity
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_code(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One OperationOutcome.issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// An IssueType code (http://hl7.org/fhir/issue-type), e.g. `invalid`, `not-found`.
    pub code: &'static str,
    pub diagnostics: String,
    /// FHIRPath-style locations (`Patient.birthDate`), possibly empty.
    pub expression: Vec<String>,
}

impl Issue {
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression.push(expression.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity.as_code(),
            "code": self.code,
            "diagnostics": self.diagnostics,
        });
        if !self.expression.is_empty() {
            issue["expression"] = json!(self.expression);
        }
        issue
    }
}

/// A failed FHIR interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirError {
    pub kind: ErrorKind,
    pub issues: Vec<Issue>,
}

impl FhirError {
    pub fn new(kind: ErrorKind, code: &'static str, diagnostics: impl Into<String>) -> Self {
        FhirError {
            kind,
            issues: vec![Issue::error(code, diagnostics)],
        }
    }

    pub fn with_issues(kind: ErrorKind, issues: Vec<Issue>) -> Self {
        FhirError { kind, issues }
    }

    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "invalid", diagnostics)
    }

    pub fn invalid_at(diagnostics: impl Into<String>, expression: impl Into<String>) -> Self {
        FhirError {
            kind: ErrorKind::BadRequest,
            issues: vec![Issue::error("invalid", diagnostics).at(expression)],
        }
    }

    /// 403: the access token does not allow this.
    pub fn forbidden(diagnostics: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", diagnostics)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not-found", diagnostics)
    }

    /// A bug or an unexpected backend failure. The detail is logged here and not shown to the
    /// client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            ErrorKind::Internal,
            "exception",
            "internal server error; the details are in the server log",
        )
    }

    /// The OperationOutcome resource describing this error.
    pub fn to_operation_outcome(&self) -> Value {
        operation_outcome(&self.issues)
    }
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self
            .issues
            .first()
            .map(|i| i.diagnostics.as_str())
            .unwrap_or("");
        write!(f, "{:?}: {}", self.kind, first)
    }
}

impl std::error::Error for FhirError {}

/// A throttled request: 429 with `Retry-After` and the `throttled` issue type.
impl From<crate::throttle::Throttled> for FhirError {
    fn from(throttled: crate::throttle::Throttled) -> Self {
        FhirError::new(
            ErrorKind::TooManyRequests {
                retry_after_seconds: throttled.retry_after_seconds(),
            },
            "throttled",
            throttled.message(),
        )
    }
}

/// An OperationOutcome resource holding `issues`.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>(),
    })
}

pub type FhirResult<T> = Result<T, FhirError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_outcome_names_the_problem_and_where() {
        let err = FhirError::invalid_at("not a date", "Patient.birthDate");
        assert_eq!(
            err.to_operation_outcome(),
            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"not a date","expression":["Patient.birthDate"]}]})
        );
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = FhirError::internal("password=hunter2 connection refused");
        let text = err.to_operation_outcome().to_string();
        assert!(!text.contains("hunter2"));
        assert_eq!(err.kind, ErrorKind::Internal);
    }
}
