//! Throttling at the HTTP boundary: who a request is from (the TCP peer that `http/server.rs`
//! records, or the caller the bearer token names) and the 429 the FHIR API answers when a
//! limit of `crate::throttle` refuses it. The authorization server's routes answer theirs in
//! `http/smart.rs`, as OAuth errors or pages.

use super::negotiate::Format;
use super::response::error_response;
use crate::app::AppState;
use crate::error::FhirError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// The peer address of the connection `request` came on; `None` when the router is driven
/// in-process (tests), where nothing is limited by address.
pub fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// A 429 OperationOutcome with `Retry-After`.
pub fn too_many(throttled: crate::throttle::Throttled) -> Response {
    error_response(&FhirError::from(throttled), Format::Json)
}

/// The anonymous limit on a public FHIR endpoint (`/metadata`).
pub async fn anonymous(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.throttle.anonymous(peer(&request)) {
        Ok(()) => next.run(request).await,
        Err(throttled) => too_many(throttled),
    }
}
