//! The HTTP layer (axum only): the route table, thin handlers, content negotiation, header
//! parsing, response building and middleware. FHIR semantics live in `rest`.

mod bearer;
mod cors;
mod extract;
mod handlers;
pub mod headers;
mod middleware;
pub mod negotiate;
mod panic_guard;
pub mod response;
pub mod server;
mod smart;
mod throttle;
mod write_timeout;

pub use bearer::bearer_token;

use crate::app::AppState;
use axum::routing::get;
use axum::Router;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The route table: FHIR under `/fhir`, health probes at the root. A trailing slash names the
/// same endpoint (`POST /fhir/` is the batch/transaction endpoint, `/fhir/metadata/` the
/// CapabilityStatement, `/fhir/Patient/` the type), as clients such as fhirpy send it.
pub fn routes(state: AppState) -> Router {
    let table = route_table(state);
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(refuse_undecodable_url))
            .map_request(without_trailing_slash)
            .service(table),
    )
}

/// A URL whose percent-encoding is malformed (`%` not followed by two hex digits, RFC 3986
/// §2.1) or does not decode to UTF-8 (`/fhir/Patient/%FF`, `?name=%C3`) names nothing: a 400
/// OperationOutcome here, rather than each extractor's plain-text rejection or a lossy decoding
/// that searches for U+FFFD.
async fn refuse_undecodable_url(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = request.uri();
    let problem = if !decodes(uri.path()) {
        Some("the request path")
    } else if !uri.query().is_none_or(decodes) {
        Some("the query string")
    } else {
        None
    };
    if let Some(part) = problem {
        let err = crate::error::FhirError::bad_request(format!(
            "{part} is not valid percent-encoded UTF-8 (or holds a NUL character)"
        ));
        return response::error_response(&err, negotiate::Format::Json);
    }
    next.run(request).await
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
fn without_trailing_slash(mut request: axum::extract::Request) -> axum::extract::Request {
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

fn route_table(state: AppState) -> Router {
    use handlers::*;
    // Everything but discovery needs a valid access token (see `auth`).
    let protected = Router::new()
        .route("/", axum::routing::post(bundle))
        .route("/_history", get(history_system))
        .route(
            "/{type}",
            get(search)
                .post(create)
                .put(conditional_update)
                .delete(conditional_delete),
        )
        .route("/{type}/_search", axum::routing::post(search_post))
        .route("/{type}/_history", get(history_type))
        .route(
            "/{type}/{id}",
            get(read)
                .put(update)
                .patch(patch)
                .delete(delete)
                .post(type_operation_post),
        )
        .route("/{type}/{id}/_history", get(history_instance))
        .route(
            "/{type}/{id}/{compartment_type}",
            get(compartment_search).post(instance_operation_post),
        )
        .route("/{type}/{id}/_history/{vid}", get(vread))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bearer::authenticate,
        ));
    let fhir = Router::new()
        .route(
            "/metadata",
            get(metadata).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::anonymous,
            )),
        )
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(smart::routes(&state))
        .nest("/fhir", fhir)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors::layer(&state.config.allowed_origins))
        .with_state(state)
        .layer(panic_guard::layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(middleware::RequestIds::default()))
}

#[cfg(test)]
mod tests {
    use super::decodes;

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
}
