//! What every request passes before routing (RFC 3986 §2.1 percent-encoding; the FHIR base's
//! trailing slash): a URL whose percent-encoding is malformed (`%` not followed by two hex
//! digits) or does not decode to UTF-8 (`/fhir/Patient/%FF`, `?name=%C3`) names nothing, and
//! gets a 400 OperationOutcome rather than each extractor's plain-text rejection or a lossy
//! decoding that searches for U+FFFD; any other has its trailing slash removed and is routed.
//!
//! A plain tower service with its own future, not a `from_fn` middleware and a `map_request`:
//! those cost every request two boxed futures.

use super::{negotiate, response};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::Service;

/// The gate in front of `S` (the middleware stack around the route table).
#[derive(Clone)]
pub struct UrlGate<S>(S);

impl<S> UrlGate<S> {
    pub fn new(inner: S) -> Self {
        UrlGate(inner)
    }
}

impl<S> Service<Request> for UrlGate<S>
where
    S: Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Gated<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let uri = request.uri();
        let problem = if !decodes(uri.path()) {
            Some("the request path")
        } else if !uri.query().is_none_or(decodes) {
            Some("the query string")
        } else {
            None
        };
        match problem {
            Some(part) => {
                let err = crate::error::FhirError::bad_request(format!(
                    "{part} is not valid percent-encoded UTF-8 (or holds a NUL character)"
                ));
                Gated::Refused {
                    response: Some(response::error_response(&err, negotiate::Format::Json)),
                }
            }
            None => Gated::Routed {
                future: self.0.call(without_trailing_slash(request)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`UrlGate`]: its refusal, or the routed request's.
    #[project = GatedProjection]
    pub enum Gated<F> {
        Refused { response: Option<Response> },
        Routed { #[pin] future: F },
    }
}

impl<F, R> Future for Gated<F>
where
    F: Future<Output = Result<R, Infallible>>,
    R: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GatedProjection::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it answered: a caller's bug, and nothing to answer.
                None => Poll::Pending,
            },
            GatedProjection::Routed { future } => future
                .poll(cx)
                .map(|answered| answered.map(IntoResponse::into_response)),
        }
    }
}

/// Whether every `%` of `text` starts a two-hex-digit escape and the decoded bytes are UTF-8
/// without NUL (no FHIR id or string holds one, and PostgreSQL text cannot).
fn decodes(text: &str) -> bool {
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(at, &b)| {
        b != b'%'
            || bytes
                .get(at + 1..at + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    well_formed
        && percent_encoding::percent_decode(bytes)
            .decode_utf8()
            .is_ok_and(|decoded| !decoded.contains('\0'))
}

/// `path/` becomes `path` before routing (the root `/` stays); the query is kept.
fn without_trailing_slash(mut request: Request) -> Request {
    let uri = request.uri();
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rewritten = match uri.query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_string(),
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(path_and_query) = rewritten.parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::{decodes, without_trailing_slash};
    use axum::extract::Request;

    #[test]
    fn urls_must_be_percent_encoded_utf8() {
        assert!(decodes("/fhir/Patient/p-1"));
        assert!(decodes("name=J%C3%BCrgen&_count=10"));
        assert!(decodes("name=%25"), "an encoded percent sign");
        assert!(!decodes("/fhir/Patient/%FF"));
        assert!(!decodes("name=%C3"), "a truncated sequence");
        assert!(!decodes("name=%zz"));
        assert!(!decodes("name=%4"));
        assert!(!decodes("name=100%"));
        assert!(!decodes("/fhir/Patient/%00"));
        assert!(!decodes("name=a%00b"));
    }

    #[test]
    fn a_trailing_slash_names_the_same_endpoint() {
        let path = |uri: &str| {
            let request = Request::builder().uri(uri).body(axum::body::Body::empty());
            without_trailing_slash(request.unwrap()).uri().to_string()
        };
        assert_eq!(path("/fhir/"), "/fhir");
        assert_eq!(path("/fhir/Patient/?name=x/"), "/fhir/Patient?name=x/");
        assert_eq!(path("/fhir//"), "/fhir");
        assert_eq!(path("/"), "/");
        assert_eq!(path("/fhir/metadata"), "/fhir/metadata");
    }
}
