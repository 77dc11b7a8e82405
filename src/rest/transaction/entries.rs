//! A batch or transaction Bundle's entries (http.html#transaction): parsing and checking each
//! `request` (method, url, ifMatch, ifNoneExist — a POST's URL search terms included), the
//! target a url names, reference rewriting for `urn:uuid:` and conditional references, and
//! the response entries.

use super::MAX_BUNDLE_ENTRIES;
use crate::error::{operation_outcome, ErrorKind, FhirError, FhirResult};
use crate::rest::{check_known_type, format_instant, VersionedResource};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Delete,
    Post,
    Put,
    Patch,
    Get,
}

impl Verb {
    /// The step of a transaction that processes it (http.html#trules): deletes, creates,
    /// updates and patches, then reads.
    pub(super) fn step(self) -> u8 {
        match self {
            Verb::Delete => 0,
            Verb::Post => 1,
            Verb::Put | Verb::Patch => 2,
            Verb::Get => 3,
        }
    }
}

#[derive(Clone)]
pub(super) struct Entry {
    pub(super) index: usize,
    pub(super) verb: Verb,
    pub(super) url: String,
    pub(super) full_url: Option<String>,
    pub(super) resource: Option<Value>,
    pub(super) if_none_exist: Option<String>,
    pub(super) if_match: Option<i64>,
}

/// An entry's error, located in the Bundle: diagnostics name the entry, and an expression on
/// the entry's resource (`Patient.gender`) becomes one on the Bundle
/// (`Bundle.entry[1].resource.gender`); one naming a search parameter stays as it is.
pub(super) fn at(index: usize, mut err: FhirError) -> FhirError {
    for issue in &mut err.issues {
        issue.diagnostics = format!("Bundle.entry[{index}]: {}", issue.diagnostics);
        if issue.expression.is_empty() {
            issue.expression.push(format!("Bundle.entry[{index}]"));
        }
        for expression in &mut issue.expression {
            if expression.starts_with("Bundle.entry[") {
                continue;
            }
            let starts_with_type = expression
                .split(['.', '['])
                .next()
                .is_some_and(crate::validate::is_resource_type);
            // Other expressions (a search parameter's name) stay as they are.
            if !starts_with_type {
                continue;
            }
            *expression = match expression.split_once('.') {
                Some((_, path)) => format!("Bundle.entry[{index}].resource.{path}"),
                None => format!("Bundle.entry[{index}].resource"),
            };
        }
    }
    err
}

pub(super) fn parse_entries(bundle: &Value) -> FhirResult<(String, Vec<Entry>)> {
    let bad = |m: String| FhirError::bad_request(m);
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::invalid_at(
            "POST to the base URL takes a Bundle",
            "resourceType",
        ));
    }
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "batch" && kind != "transaction" {
        return Err(FhirError::invalid_at(
            format!("Bundle.type must be batch or transaction, got {kind:?}"),
            "Bundle.type",
        ));
    }
    let raw = match bundle.get("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries.clone(),
        Some(_) => {
            return Err(FhirError::invalid_at(
                "Bundle.entry must be an array",
                "Bundle.entry",
            ))
        }
    };
    if raw.len() > MAX_BUNDLE_ENTRIES {
        return Err(FhirError::new(
            ErrorKind::PayloadTooLarge,
            "too-costly",
            format!("at most {MAX_BUNDLE_ENTRIES} entries per Bundle"),
        ));
    }
    let mut entries = Vec::with_capacity(raw.len());
    for (index, e) in raw.into_iter().enumerate() {
        let request = e
            .get("request")
            .ok_or_else(|| at(index, bad("entry.request is required".into())))?;
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let verb = match method {
            "GET" => Verb::Get,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "DELETE" => Verb::Delete,
            "PATCH" => Verb::Patch,
            "HEAD" => {
                return Err(at(
                    index,
                    FhirError::new(
                        ErrorKind::BadRequest,
                        "not-supported",
                        format!("{method} entries are not supported yet"),
                    ),
                ))
            }
            other => {
                return Err(at(
                    index,
                    bad(format!(
                        "entry.request.method {other:?} is not an HTTP verb"
                    )),
                ))
            }
        };
        let url = request
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        if url.is_empty() {
            return Err(at(index, bad("entry.request.url is required".into())));
        }
        let if_match = match request.get("ifMatch").and_then(Value::as_str) {
            Some(tag) => Some(crate::rest::parse_etag(tag).map_err(|e| at(index, e))?),
            None => None,
        };
        let stated = request.get("ifNoneExist").and_then(Value::as_str);
        // A POST's search terms in its URL are its criteria, as on the REST endpoint.
        let if_none_exist = match (&verb, url.split_once('?')) {
            (Verb::Post, Some((_, query))) => {
                let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                crate::rest::create_criteria(
                    stated,
                    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .map_err(|e| at(index, e))?
            }
            _ => stated.map(str::to_string),
        };
        entries.push(Entry {
            index,
            verb,
            url,
            full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
            resource: e.get("resource").cloned(),
            if_none_exist,
            if_match,
        });
    }
    Ok((kind.to_string(), entries))
}

/// `Type`, `Type/id`, `Type/id/_history/vid`, or `Type?query`.
pub(super) struct Target {
    pub(super) resource_type: String,
    pub(super) id: Option<String>,
    pub(super) version: Option<String>,
    pub(super) query: Option<String>,
}

pub(super) fn target(url: &str) -> FhirResult<Target> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (url, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let t = match parts.as_slice() {
        [rt] => Target {
            resource_type: rt.to_string(),
            id: None,
            version: None,
            query,
        },
        [rt, id] => Target {
            resource_type: rt.to_string(),
            id: Some(id.to_string()),
            version: None,
            query,
        },
        [rt, id, "_history", vid] => Target {
            resource_type: rt.to_string(),
            id: Some(id.to_string()),
            version: Some(vid.to_string()),
            query,
        },
        _ => {
            return Err(FhirError::bad_request(format!(
                "entry.request.url {url:?} is not a resource URL"
            )))
        }
    };
    check_known_type(&t.resource_type)?;
    Ok(t)
}

/// Replace every `reference` that names a Bundle fullUrl with the resolved `Type/id`.
pub(super) fn rewrite_references(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                if key == "reference" {
                    if let Some(resolved) = v.as_str().and_then(|r| map.get(r)) {
                        *v = Value::String(resolved.clone());
                    }
                } else {
                    rewrite_references(v, map);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, map)),
        _ => {}
    }
}

/// Collect conditional references (`Type?criteria`) found in `value`.
pub(super) fn conditional_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj {
                match (key.as_str(), v) {
                    ("reference", Value::String(r)) if r.contains('?') && !r.starts_with('#') => {
                        out.push(r.clone())
                    }
                    _ => conditional_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| conditional_references(v, out)),
        _ => {}
    }
}

pub(super) fn status_line(code: u16) -> &'static str {
    match code {
        200 => "200 OK",
        201 => "201 Created",
        204 => "204 No Content",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        409 => "409 Conflict",
        410 => "410 Gone",
        412 => "412 Precondition Failed",
        413 => "413 Payload Too Large",
        415 => "415 Unsupported Media Type",
        422 => "422 Unprocessable Entity",
        501 => "501 Not Implemented",
        503 => "503 Service Unavailable",
        _ => "500 Internal Server Error",
    }
}

pub(super) fn written(code: u16, r: &VersionedResource) -> Value {
    json!({"response": {
        "status": status_line(code),
        "location": format!("{}/{}/_history/{}", r.resource_type, r.id, r.version_id),
        "etag": format!("W/\"{}\"", r.version_id),
        "lastModified": format_instant(r.last_updated_us),
    }})
}

pub(super) fn error_entry(err: &FhirError) -> Value {
    let code = err.kind.http_status();
    json!({"response": {"status": status_line(code), "outcome": operation_outcome(&err.issues)}})
}
