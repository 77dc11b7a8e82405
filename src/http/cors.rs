//! CORS (Fetch standard; SMART App Launch 2.2 expects browser apps to call the FHIR API and
//! the token endpoint): discovery documents and `/metadata` may be read from any origin; the
//! FHIR API (and the token endpoint) only from the origins the configuration registers. No
//! cookies cross origins: API calls carry bearer tokens.
//!
//! A request without `Origin` is not a CORS request (Fetch §3.2): it skips the CORS layer,
//! whose per-request work (a header map, the `Vary` and `Access-Control-Expose-Headers` values
//! built and merged into the response) was 2.5 % of a read by id's server time, and its
//! response gets only the `Vary` the layer would have set, so a shared cache never hands it
//! to a browser's cross-origin request. `OPTIONS` goes through the layer with or without
//! `Origin`, which answers it as a preflight (200, the allowed methods and headers), as before.

use axum::http::{header, request::Parts, HeaderName, HeaderValue, Method, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

/// Paths any origin may read.
fn is_public(path: &str) -> bool {
    path.ends_with("/.well-known/smart-configuration")
        || path.ends_with("/.well-known/openid-configuration")
        || path.ends_with("/metadata")
        || path.ends_with("/jwks")
}

/// The CORS layer: public paths for any origin, everything else for `allowed_origins`
/// (exact `scheme://host[:port]` matches); requests without `Origin` pass by it.
pub fn layer(allowed_origins: &[String]) -> OnlyWithOrigin {
    let cors = cors(allowed_origins);
    // tower-http checks its rules (no credentials with wildcards) when it wraps a service, and
    // panics on a bad combination. Wrapping happens per request here, so check once, now: a
    // bad configuration stops the server at start-up rather than answering 500 later.
    let _checked: Cors<()> = cors.layer(());
    OnlyWithOrigin(cors)
}

/// What the CORS layer sets `Vary` to (tower-http's default list), for the responses that
/// pass by it.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

fn cors(allowed_origins: &[String]) -> CorsLayer {
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

/// [`CorsLayer`] for requests with an `Origin` header; the inner service itself for the rest.
#[derive(Clone)]
pub struct OnlyWithOrigin(CorsLayer);

impl<S> Layer<S> for OnlyWithOrigin {
    type Service = CorsIfOrigin<S>;

    fn layer(&self, inner: S) -> CorsIfOrigin<S> {
        CorsIfOrigin {
            cors: Arc::new(self.0.clone()),
            inner,
        }
    }
}

/// The service [`OnlyWithOrigin`] makes. The router clones it for every request, so the CORS
/// configuration is shared (a reference count, where a `Cors` service cloned its lists); the
/// CORS service, with its own copy of the configuration, is made only for a request with
/// `Origin` or an `OPTIONS`.
#[derive(Clone)]
pub struct CorsIfOrigin<S> {
    cors: Arc<CorsLayer>,
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsIfOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorsIfOriginFuture<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.method() == Method::OPTIONS || request.headers().contains_key(header::ORIGIN) {
            // The CORS service wraps the service made ready above (a clone of a ready router
            // route is ready: axum's routes always are), and takes the ready one's place.
            let ready = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, ready);
            CorsIfOriginFuture::Cors {
                future: self.cors.layer(inner).call(request),
            }
        } else {
            CorsIfOriginFuture::Plain {
                future: self.inner.call(request),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of the CORS layer, or the inner service's with `Vary` added.
    #[project = Projected]
    pub enum CorsIfOriginFuture<C, P> {
        Cors { #[pin] future: C },
        Plain { #[pin] future: P },
    }
}

impl<C, P, B, E> Future for CorsIfOriginFuture<C, P>
where
    C: Future<Output = Result<Response<B>, E>>,
    P: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Cors { future } => future.poll(cx),
            Projected::Plain { future } => future.poll(cx).map_ok(|mut response| {
                response.headers_mut().append(header::VARY, VARY);
                response
            }),
        }
    }
}
