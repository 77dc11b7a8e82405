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
mod smart;

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
            .map_request(without_trailing_slash)
            .service(table),
    )
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
        .route("/metadata", get(metadata))
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(smart::routes())
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
