//! The typed request every FHIR handler takes (an axum extractor): the decoded query string,
//! the negotiated response format (`_format`, then `Accept`; http.html#mime-type), and the
//! headers FHIR gives meaning to — `Prefer` (return and handling, http.html#return and
//! search.html#errors), `If-Match` (http.html#concurrency), `If-None-Match` (http.html#cread).
//! Parsed once here, so handlers never repeat raw query and header plumbing.

use super::headers::{handling_strict, if_match, if_none_match, return_preference};
use super::negotiate::{response_format, Format};
use crate::app::AppState;
use crate::error::FhirResult;
use crate::rest::provenance::SuppliedProvenance;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::convert::Infallible;

pub use super::headers::ReturnPreference;

/// The decoded query string, in order, and its raw text (conditional criteria use the text).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub pairs: Vec<(String, String)>,
    pub raw: String,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or_default().to_string();
        let pairs = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query { pairs, raw }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A FHIR request's query, format and headers.
pub struct FhirRequest {
    pub query: Query,
    /// The response format asked for; an unsupported one is a 406, answered in JSON.
    pub format: FhirResult<Format>,
    /// `Prefer: return=…`: the body of a successful write.
    pub prefer: ReturnPreference,
    /// `Prefer: handling=strict`: unknown search parameters are refused, not reported.
    pub strict: bool,
    /// The version `If-Match` pins; a malformed one is a 400 where a write reads it.
    pub if_match: FhirResult<Option<i64>>,
    /// The version `If-None-Match` names, if well formed.
    pub if_none_match: Option<i64>,
    /// All headers (`Content-Type`, `If-None-Exist`, …).
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for FhirRequest {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(FhirRequest::from_parts(parts.uri.query(), &parts.headers))
    }
}

impl FhirRequest {
    pub fn from_parts(raw_query: Option<&str>, headers: &HeaderMap) -> Self {
        let query = Query::parse(raw_query);
        let format = response_format(
            query.get("_format"),
            super::headers::header_text(headers, "accept"),
        );
        FhirRequest {
            format,
            prefer: return_preference(headers),
            strict: handling_strict(headers),
            if_match: if_match(headers),
            if_none_match: if_none_match(headers),
            headers: headers.clone(),
            query,
        }
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::headers::header_text(&self.headers, name)
    }

    /// What the client adds to the Provenance of its write (`X-Provenance`, R4 http.html); a
    /// malformed one is a 400 where a write reads it.
    pub fn supplied_provenance(&self) -> FhirResult<Option<SuppliedProvenance>> {
        match self.headers.get("x-provenance") {
            None => Ok(None),
            Some(value) => {
                let text = value.to_str().map_err(|_| {
                    crate::error::FhirError::new(
                        crate::error::ErrorKind::BadRequest,
                        "invalid",
                        "X-Provenance must be JSON in visible ASCII",
                    )
                })?;
                SuppliedProvenance::parse(text).map(Some)
            }
        }
    }
}
