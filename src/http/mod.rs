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
mod url_gate;
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
///
/// The middleware every request passes (request ids, tracing, the panic guard, CORS) is one
/// tower stack around the route table rather than `Router::layer`s: axum boxes each route
/// once per layer, and every box is cloned for every request (an allocation each).
pub fn routes(state: AppState) -> Router {
    let allowed_origins = state.config.allowed_origins.clone();
    let stack = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(
            middleware::RequestIds::default(),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(middleware::request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(panic_guard::layer())
        .layer(cors::layer(&allowed_origins))
        .service(route_table(state));
    Router::new().fallback_service(url_gate::UrlGate::new(stack))
}

fn route_table(state: AppState) -> Router {
    use handlers::*;
    // One flat table with the FHIR base in every path: nesting a router under `/fhir` wrapped
    // each of its routes in two more layers (the URI rebuilt without the prefix, the nested
    // path set as an extension), boxed and cloned per request like every route layer.
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
        .with_state(state)
}
