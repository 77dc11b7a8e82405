//! Serving connections (hyper's HTTP/1 directly, as `axum::serve` sets no timer and so no
//! header timeout): each request gets its peer address (`ConnectInfo`, for the limits by
//! address), the head must arrive within `header_read_timeout_seconds` and within
//! `max_header_bytes` (431 beyond; hyper's default of 100 headers at most), and the body
//! within `body_read_timeout_seconds` of the head ([`DeadlineBody`]) — so slow clients
//! (slowloris) cannot hold connections open indefinitely. At most `max_connections` are open,
//! `max_connections_per_address` from one address and `max_connections_per_ipv6_site` from one
//! IPv6 /48 (`throttle::Connections`): a connection beyond is closed as soon as it is accepted,
//! before any task is spawned for it. A response whose waiting writes move fewer than
//! `response_write_min_bytes` in `response_write_timeout_seconds` (a client that stopped
//! reading, or reads a trickle) ends its connection ([`WriteTimeout`]). On shutdown, listening stops, in-flight
//! requests finish, and idle connections are closed.

use super::write_timeout::WriteTimeout;
use crate::throttle::{ConnectionRefused, Connections};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

/// The connection settings of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: u32,
    pub max_connections_per_address: u32,
    pub max_connections_per_ipv6_site: u32,
    pub response_write_timeout: Duration,
    pub response_write_min_bytes: usize,
}

impl ConnectionLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds.into()),
            body_read_timeout: Duration::from_secs(config.body_read_timeout_seconds.into()),
            max_header_bytes: config.max_header_bytes,
            max_connections: config.max_connections,
            max_connections_per_address: config.max_connections_per_address,
            max_connections_per_ipv6_site: config.max_connections_per_ipv6_site,
            response_write_timeout: Duration::from_secs(
                config.response_write_timeout_seconds.into(),
            ),
            response_write_min_bytes: config.response_write_min_bytes as usize,
        }
    }
}

/// Accept connections on `listener` and serve `app` on each until `shutdown` resolves; then
/// stop accepting and wait for the connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let connections = Connections::new(
        limits.max_connections,
        limits.max_connections_per_address,
        limits.max_connections_per_ipv6_site,
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let open = match connections.open(peer.ip()) {
            Ok(open) => open,
            Err(refused) => {
                refuse_connection(stream, refused, peer);
                continue;
            }
        };
        let app = app.clone();
        let body_timeout = limits.body_read_timeout;
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let io = TokioIo::new(WriteTimeout::new(
            stream,
            limits.response_write_timeout,
            limits.response_write_min_bytes,
        ));
        let connection = builder.serve_connection(io, TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Clients closing, timing out or sending garbage: theirs to know, not an error.
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(open);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A connection over a cap: closed at once (dropping the socket), nothing read or written.
/// Logged at debug level only: a flood of them must not become a flood of log lines.
fn refuse_connection(
    stream: tokio::net::TcpStream,
    refused: ConnectionRefused,
    peer: std::net::SocketAddr,
) {
    tracing::debug!(?refused, %peer, "connection refused: too many open");
    drop(stream);
}

/// A failed accept: a connection reset before it was taken is nothing; running out of file
/// descriptors (or another resource) is waited out rather than spun on.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// A request body that fails with [`BodyTimedOut`] unless it has arrived whole within its time
/// (counted from the request's head; a body never read costs no timer).
pub struct DeadlineBody {
    inner: Incoming,
    started: Instant,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            started: Instant::now(),
            timeout,
            deadline: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let (started, timeout) = (this.started, this.timeout);
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(started + timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
