//! Content negotiation (http.html#mime-type): `_format` overrides `Accept`; JSON is the
//! default; FHIR XML is offered too (converted at the edge, storage stays JSON). An `Accept`
//! that allows neither is 406; a request body in another type is 415.

use crate::error::{ErrorKind, FhirError, FhirResult};

/// A FHIR wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }
}

fn format_of_media_type(media: &str) -> Option<Format> {
    match media {
        "application/fhir+json" | "application/json" | "json" | "application/json+fhir" => {
            Some(Format::Json)
        }
        "application/fhir+xml"
        | "application/xml"
        | "text/xml"
        | "xml"
        | "application/xml+fhir" => Some(Format::Xml),
        _ => None,
    }
}

/// The format of the response, from `_format` (if given) or `Accept`.
pub fn response_format(format_param: Option<&str>, accept: Option<&str>) -> FhirResult<Format> {
    if let Some(param) = format_param {
        let media = param
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        return format_of_media_type(&media).ok_or_else(|| {
            FhirError::new(
                ErrorKind::NotAcceptable,
                "not-supported",
                format!("_format {param:?} is not supported; use json or xml"),
            )
        });
    }
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Format::Json);
    };
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = 1.0f32;
        for param in parts {
            if let Some(q) = param.trim().strip_prefix("q=") {
                quality = q.trim().parse().unwrap_or(0.0);
            }
        }
        if quality <= 0.0 {
            continue;
        }
        let format = match media.as_str() {
            "*/*" | "application/*" => Some(Format::Json),
            "text/*" => Some(Format::Xml),
            other => format_of_media_type(other),
        };
        if let Some(format) = format {
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, format));
            }
        }
    }
    best.map(|(_, f)| f).ok_or_else(|| {
        FhirError::new(
            ErrorKind::NotAcceptable,
            "not-supported",
            format!("cannot answer in any of the accepted types ({accept}); this server speaks application/fhir+json and application/fhir+xml"),
        )
    })
}

/// The format of a request body, from `Content-Type`.
pub fn request_format(content_type: Option<&str>) -> FhirResult<Format> {
    let Some(content_type) = content_type else {
        return Err(FhirError::new(
            ErrorKind::UnsupportedMediaType,
            "not-supported",
            "the request has a body but no Content-Type; use application/fhir+json",
        ));
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    format_of_media_type(&media)
        .filter(|_| media.contains('/'))
        .ok_or_else(|| {
            FhirError::new(
                ErrorKind::UnsupportedMediaType,
                "not-supported",
                format!("Content-Type {content_type:?} is not supported; use application/fhir+json or application/fhir+xml"),
            )
        })
}

/// Is `content_type` a JSON Patch document (RFC 6902)?
pub fn is_json_patch(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json-patch+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_param_overrides_accept() {
        assert_eq!(
            response_format(Some("xml"), Some("application/fhir+json")).unwrap(),
            Format::Xml
        );
        assert_eq!(
            response_format(Some("application/fhir+json"), Some("text/xml")).unwrap(),
            Format::Json
        );
        assert_eq!(
            response_format(Some("html"), None).unwrap_err().kind,
            ErrorKind::NotAcceptable
        );
    }

    #[test]
    fn accept_picks_the_best_supported_type() {
        assert_eq!(response_format(None, None).unwrap(), Format::Json);
        assert_eq!(response_format(None, Some("*/*")).unwrap(), Format::Json);
        assert_eq!(
            response_format(None, Some("application/fhir+xml")).unwrap(),
            Format::Xml
        );
        assert_eq!(
            response_format(None, Some("text/html,application/xhtml+xml,*/*;q=0.8")).unwrap(),
            Format::Json
        );
        assert_eq!(
            response_format(
                None,
                Some("application/fhir+json;q=0.5, application/fhir+xml")
            )
            .unwrap(),
            Format::Xml
        );
        assert_eq!(
            response_format(None, Some("application/fhir+json;q=0"))
                .unwrap_err()
                .kind,
            ErrorKind::NotAcceptable
        );
        assert_eq!(
            response_format(None, Some("text/html")).unwrap_err().kind,
            ErrorKind::NotAcceptable
        );
    }

    #[test]
    fn request_bodies_must_be_fhir_json_or_xml() {
        assert_eq!(
            request_format(Some("application/fhir+json; charset=utf-8")).unwrap(),
            Format::Json
        );
        assert_eq!(
            request_format(Some("application/json")).unwrap(),
            Format::Json
        );
        assert_eq!(
            request_format(Some("application/fhir+xml")).unwrap(),
            Format::Xml
        );
        for bad in [Some("text/plain"), Some("json"), None] {
            assert_eq!(
                request_format(bad).unwrap_err().kind,
                ErrorKind::UnsupportedMediaType
            );
        }
        assert!(is_json_patch(Some("application/json-patch+json")));
        assert!(!is_json_patch(Some("application/json")));
    }
}
