//! Building HTTP responses: the one place where a [`FhirError`] becomes a status code and an
//! OperationOutcome, and where stored resource bytes become a response with `ETag`,
//! `Last-Modified` and `Location` (http.html#versioning). XML is converted here, at the edge.

use super::negotiate::Format;
use crate::error::{operation_outcome, ErrorKind, FhirError, Issue, Severity};
use crate::rest::VersionedResource;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use std::time::{Duration, UNIX_EPOCH};

/// The HTTP status for each kind of error (the mapping itself lives on `ErrorKind`).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error as an OperationOutcome response, in `format` when it can be (else JSON).
pub fn error_response(err: &FhirError, format: Format) -> Response {
    let body = serde_json::to_vec(&err.to_operation_outcome()).unwrap_or_default();
    let mut response = body_response(status_of(err.kind), format, Bytes::from(body));
    if err.kind == crate::error::ErrorKind::Forbidden {
        // RFC 6750 §3.1: the token is valid but its scope does not allow the request.
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(
                "Bearer realm=\"coplan\", error=\"insufficient_scope\"",
            ),
        );
    }
    match err.kind {
        ErrorKind::Unavailable => {
            // RFC 9110 §10.2.3: a client may try again after this many seconds (the database
            // is away, or conditional creates with the same criteria queued too long).
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        ErrorKind::TooManyRequests {
            retry_after_seconds,
        } => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        ErrorKind::RequestTimeout => {
            // The body never arrived whole: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

/// What a 503 tells clients to wait before trying again.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// An OperationOutcome with one informational issue, for `Prefer: return=OperationOutcome`.
pub fn information_outcome(status: StatusCode, format: Format, diagnostics: String) -> Response {
    outcome_with(status, format, diagnostics, Vec::new())
}

/// [`information_outcome`] followed by the warnings the write was accepted with.
pub fn outcome_with(
    status: StatusCode,
    format: Format,
    diagnostics: String,
    warnings: Vec<Issue>,
) -> Response {
    let mut issues = vec![Issue {
        severity: Severity::Information,
        code: "informational",
        diagnostics,
        expression: Vec::new(),
    }];
    issues.extend(warnings);
    let body = serde_json::to_vec(&operation_outcome(&issues)).unwrap_or_default();
    body_response(status, format, Bytes::from(body))
}

/// A response carrying FHIR JSON `json`, converted to XML when `format` asks for it.
pub fn body_response(status: StatusCode, format: Format, json: Bytes) -> Response {
    let (status, format, bytes) = match format {
        Format::Json => (status, Format::Json, json),
        Format::Xml => match fhir_r4::json_to_xml(&json) {
            Ok(xml) => (status, Format::Xml, Bytes::from(xml)),
            Err(e) => {
                tracing::error!(error = %e, "stored JSON could not be converted to XML");
                let err = FhirError::new(
                    ErrorKind::Internal,
                    "exception",
                    "the resource could not be rendered as XML",
                );
                let body = serde_json::to_vec(&err.to_operation_outcome()).unwrap_or_default();
                (status_of(err.kind), Format::Json, Bytes::from(body))
            }
        },
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// A response with no body.
pub fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// `W/"n"`
pub fn etag(version_id: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{version_id}\""))
        .unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// Add `ETag` and `Last-Modified` for a resource version.
pub fn add_version_headers(response: &mut Response, resource: &VersionedResource) {
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag(resource.version_id));
    let modified = UNIX_EPOCH + Duration::from_micros(resource.last_updated_us.max(0) as u64);
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
}

/// Add `Location: {base}/{type}/{id}/_history/{vid}`.
pub fn add_location(response: &mut Response, base_url: &str, resource: &VersionedResource) {
    let location = format!(
        "{base_url}/{}/{}/_history/{}",
        resource.resource_type, resource.id, resource.version_id
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_503_that_says_when_to_try_again() {
        let err = FhirError::new(ErrorKind::Unavailable, "transient", "try again later");
        let response = error_response(&err, Format::Json);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).unwrap(),
            RETRY_AFTER_SECONDS
        );
        // Other errors say nothing of retrying.
        let conflict = FhirError::new(ErrorKind::Conflict, "conflict", "changed meanwhile");
        let response = error_response(&conflict, Format::Json);
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn a_full_disk_is_a_507_from_the_store_error() {
        let err = FhirError::from(crate::store::StoreError::Full("SQLITE_FULL".into()));
        let response = error_response(&err, Format::Json);
        assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        let outcome = err.to_operation_outcome();
        assert_eq!(outcome["issue"][0]["code"], "no-store");
        assert!(
            !outcome.to_string().contains("SQLITE_FULL"),
            "the store's detail stays in the log"
        );
    }
}
