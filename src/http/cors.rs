//! CORS (Fetch standard; SMART App Launch 2.2 expects browser apps to call the FHIR API and
//! the token endpoint): discovery documents and `/metadata` may be read from any origin; the
//! FHIR API (and the token endpoint) only from the origins the configuration registers. No
//! cookies cross origins: API calls carry bearer tokens.

use axum::http::{header, request::Parts, HeaderName, HeaderValue, Method};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Paths any origin may read.
fn is_public(path: &str) -> bool {
    path.ends_with("/.well-known/smart-configuration")
        || path.ends_with("/.well-known/openid-configuration")
        || path.ends_with("/metadata")
        || path.ends_with("/jwks")
}

/// The CORS layer: public paths for any origin, everything else for `allowed_origins`
/// (exact `scheme://host[:port]` matches).
pub fn layer(allowed_origins: &[String]) -> CorsLayer {
    let allowed: Arc<Vec<String>> = Arc::new(
        allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect(),
    );
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, parts: &Parts| {
                if is_public(parts.uri.path()) {
                    return true;
                }
                origin
                    .to_str()
                    .map(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
                    .unwrap_or(false)
            },
        ))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            HeaderName::from_static("if-none-exist"),
            HeaderName::from_static("prefer"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::LAST_MODIFIED,
            header::CONTENT_LOCATION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
