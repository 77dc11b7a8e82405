//! Cross-cutting HTTP concerns: a request id on every request and response (`X-Request-Id`,
//! kept from the client when present, otherwise generated), and request tracing.

use axum::http::{HeaderValue, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Request ids: a random per-process prefix and a counter — unique, cheap, and not guessable
/// across restarts.
#[derive(Clone)]
pub struct RequestIds {
    prefix: String,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds {
            // A per-process prefix that keeps request ids of several nodes apart.
            #[allow(clippy::disallowed_methods)]
            prefix: format!("{:08x}", rand::random::<u32>()),
            next: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
