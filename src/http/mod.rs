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
use tower::Service;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The route table: FHIR under `/fhir`, health probes at the root. A trailing slash names the
/// same endpoint (`POST /fhir/` is the batch/transaction endpoint, `/fhir/metadata/` the
/// CapabilityStatement, `/fhir/Patient/` the type), as clients such as fhirpy send it.
pub fn routes(state: AppState) -> Router {
    Router::new().fallback_service(UrlGate(route_table(state)))
}

/// What every request passes before routing, as a plain service (a `from_fn` middleware and a
/// `map_request` here cost each request two boxed futures): a URL whose percent-encoding is
/// malformed (`%` not followed by two hex digits, RFC 3986 §2.1) or does not decode to UTF-8
/// (`/fhir/Patient/%FF`, `?name=%C3`) names nothing, and gets a 400 OperationOutcome rather
/// than each extractor's plain-text rejection or a lossy decoding that searches for U+FFFD;
/// any other has its trailing slash removed ([`without_trailing_slash`]) and is routed.
#[derive(Clone)]
struct UrlGate(Router);

impl tower::Service<axum::extract::Request> for UrlGate {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Gated<<Router as tower::Service<axum::extract::Request>>::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<axum::extract::Request>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
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
                future: Service::call(&mut self.0, without_trailing_slash(request)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`UrlGate`]: its refusal, or the routed request's.
    #[project = GatedProjection]
    enum Gated<F> {
        Refused { response: Option<axum::response::Response> },
        Routed { #[pin] future: F },
    }
}

impl<F> std::future::Future for Gated<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, std::convert::Infallible>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        match self.project() {
            GatedProjection::Refused { response } => match response.take() {
                Some(response) => std::task::Poll::Ready(Ok(response)),
                // Polled again after it answered: a caller's bug, and nothing to answer.
                None => std::task::Poll::Pending,
            },
            GatedProjection::Routed { future } => future.poll(cx),
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
    // One flat table with the FHIR base in every path: a router nested under `/fhir` cost each
    // request a second route lookup and a rebuilt URI with its prefix stripped.
    // Everything but discovery needs a valid access token (see `auth`).
    let protected = Router::new()
        .route("/fhir", axum::routing::post(bundle))
        .route("/fhir/_history", get(history_system))
        .route(
            "/fhir/{type}",
            get(search)
                .post(create)
                .put(conditional_update)
                .delete(conditional_delete),
        )
        .route("/fhir/{type}/_search", axum::routing::post(search_post))
        .route("/fhir/{type}/_history", get(history_type))
        .route(
            "/fhir/{type}/{id}",
            get(read)
                .put(update)
                .patch(patch)
                .delete(delete)
                .post(type_operation_post),
        )
        .route("/fhir/{type}/{id}/_history", get(history_instance))
        .route(
            "/fhir/{type}/{id}/{compartment_type}",
            get(compartment_search).post(instance_operation_post),
        )
        .route("/fhir/{type}/{id}/_history/{vid}", get(vread))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bearer::authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/fhir/metadata",
            get(metadata).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                throttle::anonymous,
            )),
        )
        .merge(protected)
        .merge(smart::routes(&state))
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
