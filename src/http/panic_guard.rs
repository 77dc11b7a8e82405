//! The last line of defence at the HTTP boundary: a panic anywhere below it becomes a logged
//! 500 OperationOutcome instead of a connection closed with no answer. A panic is always a bug
//! (data a client controls is never `unwrap`ped); this only keeps it from reaching the client.

use crate::error::{ErrorKind, FhirError};
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;

/// What a panic carries (its payload).
type Panic = Box<dyn Any + Send + 'static>;

/// The layer that answers a panicking request with [`panic_response`].
pub fn layer() -> CatchPanicLayer<fn(Panic) -> Response<Body>> {
    CatchPanicLayer::custom(panic_response as fn(Panic) -> Response<Body>)
}

/// Log the panic loudly (its message, which is the server's own text) and answer 500 with a
/// generic OperationOutcome that tells the client nothing about the internals.
pub fn panic_response(panic: Panic) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(
        panic = message,
        "BUG: a request handler panicked; answered 500"
    );
    let err = FhirError::new(
        ErrorKind::Internal,
        "exception",
        "the server failed while handling this request; the failure is logged",
    );
    let body = serde_json::to_vec(&err.to_operation_outcome()).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_an_operation_outcome() {
        let router = axum::Router::new()
            .route(
                "/boom",
                get(|| async {
                    let nothing: Option<u8> = None;
                    nothing
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| panic!("a bug"))
                }),
            )
            .layer(layer());
        let request = axum::http::Request::get("/boom")
            .body(Body::empty())
            .expect("request");
        let response = router
            .oneshot(request)
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/fhir+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let outcome: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "exception");
        assert!(
            !body.windows(5).any(|w| w == b"a bug"),
            "the panic text stays in the log"
        );
    }
}
