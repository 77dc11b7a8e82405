//! Change notifications of concurrent commits, sent together (issue 16: PostgreSQL writes).
//! What a notification says, and who listens, is `postgres_cache.rs`'s.
//!
//! Each commit still returns only once its notifications are sent (another node learns of a
//! write before its writer is answered), but commits that finish while a notification is in
//! flight are sent by the next statement together: under 32 concurrent creates a commit's own
//! NOTIFY (a pooled connection, a round trip and the release's ping) became a share of one.
//! A notifying transaction takes PostgreSQL's database-wide notify lock; fewer of them also
//! queue less behind each other. Hand-written: a channel and a task; no crate batches
//! statements for sqlx.

use super::postgres_cache::{CHANNEL, MAX_AGE};
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};

/// Every payload of the commits waiting, in one statement and one transaction that does not
/// wait for its commit record to be flushed (see `postgres_cache::NOTIFY`).
const NOTIFY_ALL: &str = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, p) \
     FROM unnest($2::text[]) AS p";
/// Commits whose notifications one statement sends at most.
const MAX_COMMITS: usize = 256;
/// Commits waiting for the sender at most; more wait to be queued.
const QUEUE: usize = 1_024;

/// One commit's notifications and who waits for them to be sent.
struct Request {
    payloads: Vec<String>,
    sent: oneshot::Sender<()>,
}

/// The sender of a store's change notifications (a task of its own, ended with the store).
pub struct Notifier {
    requests: mpsc::Sender<Request>,
    pool: PgPool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifier {
    pub fn start(pool: PgPool) -> Notifier {
        let (requests, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(send_batches(pool.clone(), receiver));
        Notifier {
            requests,
            pool,
            task,
        }
    }

    /// Tells every node of a commit (after it); returns once the notifications are sent, or
    /// failed to be, or after `MAX_AGE` at most. A failure is logged, not returned: the write is committed, and the entries
    /// it would have invalidated elsewhere expire within `postgres_cache::MAX_AGE`.
    pub async fn notify(&self, payloads: Vec<String>) {
        if payloads.is_empty() {
            return;
        }
        let (sent, wait) = oneshot::channel();
        match self.requests.send(Request { payloads, sent }).await {
            Ok(()) => {
                // A NOTIFY held up (a pool waiting on a struggling database) holds up no answer
                // longer than another node may serve a stale entry anyway.
                let _ = tokio::time::timeout(MAX_AGE, wait).await;
            }
            // The task is gone (the runtime shuts down): send them here.
            Err(mpsc::error::SendError(request)) => send(&self.pool, &request.payloads).await,
        }
    }
}

async fn send_batches(pool: PgPool, mut receiver: mpsc::Receiver<Request>) {
    let mut requests = Vec::with_capacity(MAX_COMMITS);
    while receiver.recv_many(&mut requests, MAX_COMMITS).await > 0 {
        let payloads: Vec<String> = requests
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.payloads))
            .collect();
        send(&pool, &payloads).await;
        for request in requests.drain(..) {
            let _ = request.sent.send(());
        }
    }
}

async fn send(pool: &PgPool, payloads: &[String]) {
    let sent = sqlx::query(NOTIFY_ALL)
        .bind(CHANNEL)
        .bind(payloads)
        .execute(pool)
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "other nodes could not be told of commits; their cached copies expire");
    }
}
