//! Cross-cutting HTTP concerns: a request id on every request and response (`X-Request-Id`,
//! kept from the client when present, otherwise generated), and the span each request is
//! traced in.

use axum::http::{HeaderValue, Request};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Request ids: a random prefix per router and a number unique in the process — unique,
/// cheap, and not guessable across restarts. Each thread takes its numbers in blocks of
/// [`BLOCK`] from one counter, so requests on the two cores do not write the same counter
/// each time. The router's middleware is cloned for every request, so this is two words.
#[derive(Clone, Copy)]
pub struct RequestIds {
    prefix: u32,
}

/// How many numbers a thread takes from the process's counter at once.
const BLOCK: u64 = 1024;

/// The next block's first number.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's next number and the end of its block.
    static NUMBERS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A number no other call in this process gets.
fn next_number() -> u64 {
    NUMBERS.with(|numbers| {
        let (mut next, mut end) = numbers.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        numbers.set((next + 1, end));
        next
    })
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds {
            // A prefix that keeps request ids of several nodes apart.
            #[allow(clippy::disallowed_methods)]
            prefix: rand::random::<u32>(),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&format!("{:08x}-{:x}", self.prefix, next_number()))
            .ok()
            .map(RequestId::new)
    }
}

/// The span a request is traced in: its method, path and request id, so that anything logged
/// while it is served names the request.
pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
}

#[cfg(test)]
mod tests {
    use super::{next_number, RequestIds};
    use std::collections::HashSet;
    use tower_http::request_id::MakeRequestId;

    #[test]
    fn request_ids_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..3000).map(|_| next_number()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for n in thread.join().unwrap() {
                assert!(seen.insert(n), "{n} given twice");
            }
        }
        assert_eq!(seen.len(), 12_000);
    }

    #[test]
    fn a_request_id_is_the_prefix_and_a_number() {
        let mut ids = RequestIds { prefix: 0xab };
        let request = axum::http::Request::new(());
        let id = ids.make_request_id(&request).unwrap();
        let text = id.header_value().to_str().unwrap();
        let (prefix, number) = text.split_once('-').unwrap();
        assert_eq!(prefix, "000000ab");
        assert!(u64::from_str_radix(number, 16).unwrap() >= 1);
    }
}
