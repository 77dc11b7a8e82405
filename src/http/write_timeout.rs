//! The response write timeout (issue 17 §3, H1): a connection's IO wrapped so that a client
//! must take at least `min_bytes` of what the server writes per `response_write_timeout_seconds`
//! spent waiting for it, or the waiting write fails with `TimedOut` and hyper ends the
//! connection.
//!
//! A client that sends requests but stops reading the answers fills the socket's buffers, and
//! then every write waits; without this its connection, its task and hyper's buffers would be
//! held forever. A client that reads, but a few bytes a minute, would be held nearly as long if
//! any progress restarted the timer. So the first write that waits opens a window: the time
//! writes spend waiting is added up, and so are the bytes written (waiting or not — a
//! pipelining client that lets one small response through at a time gets no fresh window per
//! response); `min_bytes` written closes the window, and the waiting time running past the
//! timeout first fails the write. Time when no write waits — a keep-alive connection's idle
//! moments, the server working on the next answer — is not counted. A slow link that keeps up
//! with `min_bytes` per timeout of waiting is served, however long the response.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner` with its waiting writes bounded: at least `min_bytes` taken per `timeout` of waiting.
pub struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    min_bytes: usize,
    /// The window the first waiting write opened; `None` once `min_bytes` moved.
    stalled: Option<Stall>,
}

struct Stall {
    /// Bytes written since the window opened.
    moved: usize,
    /// Time spent waiting in earlier waits of the window.
    waited: Duration,
    /// The wait in progress: when it fails (the timeout less `waited`).
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the wait in progress began.
    since: Option<Instant>,
}

impl<S> WriteTimeout<S> {
    pub fn new(inner: S, timeout: Duration, min_bytes: usize) -> Self {
        WriteTimeout {
            inner,
            timeout,
            min_bytes,
            stalled: None,
        }
    }

    /// After the inner write's `poll`: count what moved (ending a wait), or wait.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match &poll {
            Poll::Ready(Ok(moved)) => {
                if let Some(stall) = &mut self.stalled {
                    stall.moved = stall.moved.saturating_add(*moved);
                    if let Some(since) = stall.since.take() {
                        stall.waited += since.elapsed();
                        stall.deadline = None;
                    }
                    if stall.moved >= self.min_bytes {
                        self.stalled = None;
                    }
                }
                poll
            }
            Poll::Ready(Err(_)) => poll,
            Poll::Pending => self.wait(cx),
        }
    }

    /// After a flush's or shutdown's `poll`: bounded like a write while it waits.
    fn after_other(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<()>>,
    ) -> Poll<io::Result<()>> {
        if poll.is_ready() {
            return poll;
        }
        self.wait(cx)
    }

    /// A write waits: open a window if none is open, start the wait's clock if it is not
    /// running, and fail when the window's waiting time has run out.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let stall = self.stalled.get_or_insert(Stall {
            moved: 0,
            waited: Duration::ZERO,
            deadline: None,
            since: None,
        });
        let waited = stall.waited;
        let deadline = stall.deadline.get_or_insert_with(|| {
            let now = Instant::now();
            Box::pin(tokio::time::sleep_until(
                now + timeout.saturating_sub(waited),
            ))
        });
        stall.since.get_or_insert_with(Instant::now);
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took {} of the response's bytes in {timeout:?} of waiting, \
                     fewer than {}",
                    stall.moved, self.min_bytes
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.after_other(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.after_other(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A socket whose peer has made room for `room` more bytes (and never wakes the writer:
    /// the timer must).
    struct Peer {
        room: Arc<AtomicUsize>,
    }

    impl AsyncRead for Peer {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Peer {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let room = self.room.load(Ordering::SeqCst);
            if room == 0 {
                return Poll::Pending;
            }
            let taken = room.min(buf.len());
            self.room.fetch_sub(taken, Ordering::SeqCst);
            Poll::Ready(Ok(taken))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    const ANSWER: &[u8] = b"answer";

    async fn write(io: &mut WriteTimeout<Peer>) -> io::Result<usize> {
        std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, ANSWER)).await
    }

    /// A write that waits for `seconds` and is then given up (the client has taken nothing).
    async fn wait_in_vain(io: &mut WriteTimeout<Peer>, seconds: u64) {
        let waited = tokio::time::timeout(Duration::from_secs(seconds), write(io)).await;
        assert!(waited.is_err(), "still waiting after {seconds} s");
    }

    /// A connection with a 5 s window in which `min_bytes` must move.
    fn peer(room: &Arc<AtomicUsize>, min_bytes: usize) -> WriteTimeout<Peer> {
        let room = room.clone();
        WriteTimeout::new(Peer { room }, Duration::from_secs(5), min_bytes)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_timeout() {
        let room = Arc::new(AtomicUsize::new(ANSWER.len()));
        let mut io = peer(&room, 1);
        assert_eq!(write(&mut io).await.expect("taken at once"), 6);
        let started = Instant::now();
        let err = write(&mut io).await.expect_err("nobody reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn enough_progress_starts_the_window_again() {
        let room = Arc::new(AtomicUsize::new(0));
        let mut io = peer(&room, ANSWER.len());
        wait_in_vain(&mut io, 4).await;
        room.store(ANSWER.len(), Ordering::SeqCst);
        write(&mut io).await.expect("the client made room");
        let started = Instant::now();
        write(&mut io).await.expect_err("stalled again");
        assert_eq!(started.elapsed(), Duration::from_secs(5), "counted afresh");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_does_not_keep_the_connection() {
        // The client takes a byte every 4 s: each write moves, but 64 bytes are due in 5 s.
        let room = Arc::new(AtomicUsize::new(0));
        let mut io = peer(&room, 64);
        let started = Instant::now();
        wait_in_vain(&mut io, 4).await;
        room.store(1, Ordering::SeqCst);
        assert_eq!(write(&mut io).await.expect("one byte"), 1);
        let err = write(&mut io).await.expect_err("the window ran out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(5),
            "the byte did not restart the window"
        );
        assert!(err.to_string().contains("took 1 of"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn time_without_a_waiting_write_does_not_count() {
        // A wait of 4 s moves 6 bytes (short of 64); then the connection idles for a minute
        // (keep-alive) — the next wait still has its last second, not nothing.
        let room = Arc::new(AtomicUsize::new(0));
        let mut io = peer(&room, 64);
        wait_in_vain(&mut io, 4).await;
        room.store(ANSWER.len(), Ordering::SeqCst);
        write(&mut io).await.expect("after waiting");
        tokio::time::sleep(Duration::from_secs(60)).await;
        let started = Instant::now();
        write(&mut io).await.expect_err("stalled again");
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "the window's last second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_taken_at_once_count_but_do_not_reopen_the_window() {
        // A pipelining client that lets a little through now and then: the writes the socket
        // takes without waiting add their bytes, not a fresh window.
        let room = Arc::new(AtomicUsize::new(0));
        let mut io = peer(&room, 64);
        for _ in 0..4 {
            wait_in_vain(&mut io, 1).await;
            room.store(2 * ANSWER.len(), Ordering::SeqCst);
            write(&mut io).await.expect("after waiting");
            write(&mut io).await.expect("at once");
        }
        // 4 s of waiting and 48 bytes: the fifth wait fails after the one second left.
        let started = Instant::now();
        write(&mut io).await.expect_err("the window ran out");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // 64 bytes within the window close it: a later wait has the whole timeout.
        let mut io = peer(&room, 12);
        room.store(0, Ordering::SeqCst);
        wait_in_vain(&mut io, 4).await;
        room.store(2 * ANSWER.len(), Ordering::SeqCst);
        write(&mut io).await.expect("after waiting");
        write(&mut io)
            .await
            .expect("at once: 12 bytes, the window closes");
        let started = Instant::now();
        write(&mut io).await.expect_err("stalled again");
        assert_eq!(started.elapsed(), Duration::from_secs(5), "a new window");
    }
}
