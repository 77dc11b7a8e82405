//! Typed views of the request headers FHIR gives meaning to: `Prefer` (http.html#return),
//! `If-Match` (http.html#concurrency), `If-None-Match` (http.html#cread).

use crate::error::FhirResult;
use crate::rest::parse_etag;
use axum::http::HeaderMap;

/// What the client wants in the body of a successful write (`Prefer: return=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPreference {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// Parse the `return` preference; unknown preferences are ignored (RFC 7240).
pub fn return_preference(headers: &HeaderMap) -> ReturnPreference {
    for value in headers.get_all("prefer") {
        let Ok(text) = value.to_str() else { continue };
        for pref in text.split([',', ';']) {
            match pref.trim().replace(' ', "").as_str() {
                "return=minimal" => return ReturnPreference::Minimal,
                "return=representation" => return ReturnPreference::Representation,
                "return=OperationOutcome" => return ReturnPreference::OperationOutcome,
                _ => {}
            }
        }
    }
    ReturnPreference::Representation
}

/// `Prefer: handling=strict`: refuse unknown search parameters instead of ignoring them.
pub fn handling_strict(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split([',', ';'])
                .any(|p| p.trim().replace(' ', "") == "handling=strict")
        })
    })
}

/// The version an `If-Match` header pins, if any; a malformed one is a 400.
pub fn if_match(headers: &HeaderMap) -> FhirResult<Option<i64>> {
    match headers.get("if-match") {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            parse_etag(text).map(Some)
        }
    }
}

/// The version an `If-None-Match` header names, if it is a well-formed version ETag.
pub fn if_none_match(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| parse_etag(t).ok())
}

/// A header's value as text, if present and visible ASCII.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn prefer_return() {
        assert_eq!(
            return_preference(&HeaderMap::new()),
            ReturnPreference::Representation
        );
        assert_eq!(
            return_preference(&with("prefer", "return=minimal")),
            ReturnPreference::Minimal
        );
        assert_eq!(
            return_preference(&with("prefer", "handling=strict, return=OperationOutcome")),
            ReturnPreference::OperationOutcome
        );
        assert_eq!(
            return_preference(&with("prefer", "respond-async")),
            ReturnPreference::Representation
        );
    }

    #[test]
    fn if_match_versions() {
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&with("if-match", "W/\"4\"")).unwrap(), Some(4));
        assert!(if_match(&with("if-match", "four")).is_err());
        assert_eq!(if_none_match(&with("if-none-match", "W/\"2\"")), Some(2));
        assert_eq!(if_none_match(&with("if-none-match", "\"2\"")), Some(2));
        assert_eq!(if_none_match(&with("if-none-match", "2")), Some(2));
    }
}
