//! Validation on write (R4 http.html "create"/"update", validation.html): turns request bytes
//! into a checked resource or a 400 OperationOutcome saying what is wrong and where.
//!
//! Two gates, in order:
//! 1. JSON well-formedness: nesting within `max_json_depth` and values within
//!    `max_json_values` (counted before parsing, so deep or huge documents are refused, never
//!    recursed into or built), serde_json's parse, no repeated keys, a JSON object with a
//!    `resourceType` matching the URL;
//! 2. `fhir-validate`: the R4 model walked element by element — unknown elements, cardinality,
//!    required elements, primitive formats, empty values, required code bindings, narrative
//!    XHTML safety — each issue with a FHIRPath `expression`.
//!
//! fhirbolt's strict parse of the R4 `Resource` enum (`fhir-r4`) was a third gate, parsing every
//! written resource a second time (~160 µs for a 4 KB CarePlan). The walk refuses everything it
//! refuses — shown on the published examples and ~26,000 single mutations of them, and on the
//! fuzz corpus (crates/fhir-validate/tests/fhirbolt_parity.rs), and asserted by the
//! `validate_resource` and `patch` fuzz targets — so fhirbolt now only converts XML at the edge.

mod duplicate_keys;
pub use duplicate_keys::{parse_strict, StrictJsonError};
mod shape;

use crate::error::{ErrorKind, FhirError, FhirResult, Issue, Severity};
use serde_json::{Map, Value};

/// A resource that passed every gate: its JSON object (key order preserved).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedResource(Value);

impl CheckedResource {
    /// The resource's elements, in document order.
    pub fn fields(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.0
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The resource as a JSON value (always an object).
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// Wrap a JSON object that has passed the checks (tests and trusted callers only).
    pub fn from_object(map: Map<String, Value>) -> Self {
        CheckedResource(Value::Object(map))
    }
}

/// How deep and how big a request body may be (`max_json_depth`, `max_json_values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    pub max_depth: usize,
    pub max_values: usize,
}

impl JsonLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        JsonLimits {
            max_depth: config.max_json_depth as usize,
            max_values: config.max_json_values as usize,
        }
    }
}

/// Parse request bytes as JSON; a syntax error is a 400 naming the line and column.
pub fn parse_json(body: &[u8], limits: JsonLimits) -> FhirResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(FhirError::new(
            ErrorKind::BadRequest,
            "required",
            "the request body is empty; a FHIR resource was expected",
        ));
    }
    match shape::check(body, limits.max_depth, limits.max_values) {
        Ok(()) => {}
        Err(shape::Excess::Depth) => {
            return Err(FhirError::new(
                ErrorKind::BadRequest,
                "too-costly",
                format!(
                    "the request body nests objects and arrays deeper than {} levels",
                    limits.max_depth
                ),
            ))
        }
        Err(shape::Excess::Values) => {
            return Err(FhirError::new(
                ErrorKind::BadRequest,
                "too-costly",
                format!(
                    "the request body holds more than {} values (object members and array items)",
                    limits.max_values
                ),
            ))
        }
    }
    duplicate_keys::parse_strict(body).map_err(|e| match e {
        duplicate_keys::StrictJsonError::Syntax(e) => FhirError::new(
            ErrorKind::BadRequest,
            "structure",
            format!("the request body is not valid JSON: {e}"),
        ),
        duplicate_keys::StrictJsonError::RepeatedKey(e) => FhirError::new(
            ErrorKind::BadRequest,
            "structure",
            format!("the request body is not valid FHIR JSON: {e}"),
        ),
    })
}

/// Check a parsed resource of `expected_type` through the model walk, the one structural gate.
pub fn check_resource(value: Value, expected_type: &str) -> FhirResult<CheckedResource> {
    let Value::Object(map) = value else {
        return Err(FhirError::new(
            ErrorKind::BadRequest,
            "structure",
            "the request body must be a JSON object (a FHIR resource)",
        ));
    };
    match map.get("resourceType") {
        Some(Value::String(rt)) if rt == expected_type => {}
        Some(Value::String(rt)) => {
            return Err(FhirError::invalid_at(
                format!("resourceType {rt:?} does not match the {expected_type} endpoint"),
                "resourceType",
            ))
        }
        _ => {
            return Err(FhirError::invalid_at(
                "the resource has no resourceType string",
                "resourceType",
            ))
        }
    }
    let value = Value::Object(map);
    let issues: Vec<Issue> = fhir_validate::validate_resource(&value)
        .into_iter()
        .filter(fhir_validate::Issue::is_error)
        .map(convert_issue)
        .collect();
    if !issues.is_empty() {
        return Err(FhirError::with_issues(ErrorKind::BadRequest, issues));
    }
    match value {
        Value::Object(_) => Ok(CheckedResource(value)),
        _ => Err(FhirError::internal(
            "checked resource is no longer an object",
        )),
    }
}

pub(crate) fn convert_issue(issue: fhir_validate::Issue) -> Issue {
    let severity = match issue.severity {
        fhir_validate::Severity::Fatal => Severity::Fatal,
        fhir_validate::Severity::Error => Severity::Error,
        fhir_validate::Severity::Warning => Severity::Warning,
        fhir_validate::Severity::Information => Severity::Information,
    };
    Issue {
        severity,
        code: issue.code,
        diagnostics: issue.diagnostics,
        expression: if issue.expression.is_empty() {
            Vec::new()
        } else {
            vec![issue.expression]
        },
    }
}

/// Is `name` a concrete R4 resource type?
pub fn is_resource_type(name: &str) -> bool {
    fhir_validate::is_resource_type(name)
}

/// Every concrete R4 resource type, sorted.
pub fn resource_types() -> &'static [&'static str] {
    fhir_validate::resource_types()
}

/// Is `id` a valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`)?
pub fn is_valid_id(id: &str) -> bool {
    fhir_primitives::formats::is_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, ty: &str) -> FhirResult<CheckedResource> {
        let checked = check_resource(
            parse_json(
                text.as_bytes(),
                JsonLimits {
                    max_depth: 64,
                    max_values: 100_000,
                },
            )?,
            ty,
        )?;
        Ok(checked)
    }

    #[test]
    fn accepts_a_valid_resource() {
        let ok = check(r#"{"resourceType":"Patient","active":true}"#, "Patient").expect("valid");
        assert_eq!(ok.fields().get("active"), Some(&Value::Bool(true)));
    }

    #[test]
    fn rejects_malformed_json_with_its_position() {
        let err = check("{\"resourceType\":", "Patient").unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(err.issues[0].diagnostics.contains("line 1"), "{err:?}");
        let empty = check("  ", "Patient").unwrap_err();
        assert_eq!(empty.issues[0].code, "required");
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing() {
        let deep = "[".repeat(100_000);
        let err = check(&deep, "Patient").unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
    }

    #[test]
    fn rejects_type_mismatch_and_non_objects() {
        let err = check(r#"{"resourceType":"Goal"}"#, "Patient").unwrap_err();
        assert_eq!(err.issues[0].expression, vec!["resourceType".to_string()]);
        assert!(check("[1,2]", "Patient").is_err());
        assert!(check(r#"{"active":true}"#, "Patient").is_err());
    }

    #[test]
    fn rejects_unknown_elements() {
        let err = check(r#"{"resourceType":"Patient","colour":"blue"}"#, "Patient").unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
    }
}
