//! PostgreSQL nodes' cache of current versions (issue 16: reads by id near SQLite's): a read by
//! id is served from memory, kept fresh across nodes by LISTEN/NOTIFY. After each commit the
//! writing node notifies `coplan_current` with a line `schema/Type/id/version` per version
//! written (`postgres_notify.rs`, in a statement of its own: notifying inside the writing
//! transaction would serialise every commit in the database on PostgreSQL's notify lock —
//! measured: a care-plan workload fell from ~300 to ~15 requests a second); every node
//! listening drops what a notification makes stale (`cache.rs`'s stamps keep a read that raced
//! an invalidation from caching what it read). A node's own commits invalidate its cache
//! synchronously (read-your-writes on one node).
//!
//! The staleness window — how long a node may serve a version older than one committed on
//! another node — is the notification's delivery, normally well under a millisecond. It is
//! bounded twice. A heartbeat: every [`HEARTBEAT`] the listener notifies itself; if its
//! heartbeat has not come back within [`STALE_AFTER`] (a stuck or silently dead connection, a
//! lagging node), the cache is emptied and switched off until it returns; a lost listener
//! connection does the same at once. And an age: an entry is served for [`MAX_AGE`] at most,
//! which bounds what a notification that never came (its writer died between commit and
//! notify) can leave stale.
//!
//! Hand-written because this is glue between sqlx's `PgListener` and our cache; no crate does
//! this invalidation protocol.

use super::cache::CurrentCache;
use super::StoredVersion;
use sqlx::postgres::{PgListener, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The notification channel of migration 0009.
pub const CHANNEL: &str = "coplan_current";
/// How often the listener checks that notifications still reach it.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A heartbeat this late switches the cache off until one returns.
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// No cached version is served longer than this after it was read from the database.
pub const MAX_AGE: Duration = Duration::from_secs(3);
/// One notification in a transaction of its own that does not wait for its commit record to
/// be flushed: a notifying transaction is given a transaction id, so its commit would otherwise
/// wait for an fsync while holding PostgreSQL's database-wide notify lock, serialising every
/// node's notifications behind each other's fsyncs. Nothing is lost by not flushing: a
/// notification is transient, and the cache entries it invalidates expire anyway.
pub(super) const NOTIFY: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)";
/// PostgreSQL refuses notification payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// The cache and whether it may be used (only while notifications are known to arrive).
pub struct SharedCurrent {
    cache: CurrentCache,
    enabled: AtomicBool,
}

impl SharedCurrent {
    /// A cache holding up to `cache_bytes` of bodies.
    pub fn new(cache_bytes: usize) -> Arc<SharedCurrent> {
        Arc::new(SharedCurrent {
            cache: CurrentCache::new(cache_bytes),
            enabled: AtomicBool::new(false),
        })
    }

    /// The cached current version, or the stamp to offer a database read with; `None` when the
    /// cache is off (read the database, offer nothing).
    pub fn lookup(&self, resource_type: &str, id: &str) -> Option<Result<StoredVersion, u64>> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let stamp = self.cache.stamp(resource_type, id);
        Some(
            match self.cache.get_younger_than(resource_type, id, MAX_AGE) {
                Some(hit) => Ok(hit),
                None => Err(stamp),
            },
        )
    }

    /// What a read stamped `stamp` found in the database.
    pub fn offer(&self, resource_type: &str, id: &str, stamp: u64, version: StoredVersion) {
        if self.enabled.load(Ordering::Acquire) {
            self.cache
                .put_if_unchanged(resource_type, id, stamp, version);
        }
    }

    /// `version_id` of the resource is committed (here or, by notification, elsewhere).
    pub fn committed(&self, resource_type: &str, id: &str, version_id: i64) {
        self.cache.invalidate_below(resource_type, id, version_id);
    }

    fn switch_off(&self) {
        self.enabled.store(false, Ordering::Release);
        self.cache.clear();
    }

    fn switch_on(&self) {
        if !self.enabled.load(Ordering::Acquire) {
            // Empty again: entries cached before the switch-off may have missed notifications.
            self.cache.clear();
            self.enabled.store(true, Ordering::Release);
        }
    }

    #[cfg(test)]
    pub fn is_on(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }
}

/// One line of a change notification, of this schema: `(type, id, version)`.
fn parse_change<'a>(line: &'a str, schema: &str) -> Option<(&'a str, &'a str, i64)> {
    let mut parts = line.rsplitn(4, '/');
    let version = parts.next()?.parse().ok()?;
    let id = parts.next()?;
    let resource_type = parts.next()?;
    (parts.next()? == schema).then_some((resource_type, id, version))
}

/// The payloads announcing `changes` (`(type, id, version)`) of `schema`: lines, as few
/// payloads as fit PostgreSQL's limit.
pub fn change_payloads<'a>(
    schema: &str,
    changes: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
) -> Vec<String> {
    let mut payloads = vec![String::new()];
    for (resource_type, id, version) in changes {
        let line = format!("{schema}/{resource_type}/{id}/{version}");
        let last = payloads.len() - 1;
        if !payloads[last].is_empty() && payloads[last].len() + 1 + line.len() > MAX_PAYLOAD {
            payloads.push(String::new());
        }
        let current = payloads.len() - 1;
        if !payloads[current].is_empty() {
            payloads[current].push('\n');
        }
        payloads[current].push_str(&line);
    }
    payloads.retain(|p| !p.is_empty());
    payloads
}

/// Keep `shared` fresh for as long as it exists: listen, apply notifications, beat.
pub async fn listen(pool: PgPool, shared: Weak<SharedCurrent>) {
    loop {
        match shared.upgrade() {
            Some(s) => s.switch_off(),
            None => return,
        }
        if let Err(e) = listen_once(&pool, &shared).await {
            tracing::warn!(error = %e, "the PostgreSQL cache listener stopped; reads go to the database");
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// One listening connection, until it fails or the cache is gone.
async fn listen_once(pool: &PgPool, shared: &Weak<SharedCurrent>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let (backend, schema): (i32, String) =
        sqlx::query_as("SELECT pg_backend_pid(), current_schema()")
            .fetch_one(&mut listener)
            .await?;
    let heartbeat_prefix = format!("heartbeat {backend} ");
    let (mut sent, mut returned) = (0u64, 0u64);
    let mut last_return = Instant::now();
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            received = listener.try_recv() => {
                let Some(notification) = received? else {
                    return Ok(()); // connection lost: notifications may be missing
                };
                let Some(shared) = shared.upgrade() else { return Ok(()) };
                let payload = notification.payload();
                if let Some(n) = payload.strip_prefix(&heartbeat_prefix) {
                    // Only heartbeats this listener sent count (anyone may NOTIFY the channel).
                    returned = returned.max(n.parse().unwrap_or(0).min(sent));
                    last_return = Instant::now();
                    if returned == sent {
                        shared.switch_on();
                    }
                } else {
                    for (resource_type, id, version) in payload.lines().filter_map(|l| parse_change(l, &schema)) {
                        shared.committed(resource_type, id, version);
                    }
                }
            }
            _ = tick.tick() => {
                let Some(shared) = shared.upgrade() else { return Ok(()) };
                if sent > returned && last_return.elapsed() > STALE_AFTER {
                    shared.switch_off();
                }
                sent += 1;
                let beat = sqlx::query(NOTIFY)
                    .bind(CHANNEL)
                    .bind(format!("{heartbeat_prefix}{sent}"))
                    .execute(pool)
                    .await;
                if beat.is_err() {
                    shared.switch_off();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_of_other_schemas_and_heartbeats_are_not_changes() {
        assert_eq!(
            parse_change("tenant_a/Patient/p-1/3", "tenant_a"),
            Some(("Patient", "p-1", 3))
        );
        assert_eq!(parse_change("tenant_b/Patient/p-1/3", "tenant_a"), None);
        assert_eq!(parse_change("heartbeat 42 7", "tenant_a"), None);
        assert_eq!(parse_change("tenant_a/Patient/p-1/x", "tenant_a"), None);
    }

    #[test]
    fn changes_are_announced_in_lines_within_the_payload_limit() {
        let ids: Vec<String> = (0..1000).map(|n| format!("id-{n:04}")).collect();
        let payloads = change_payloads("s", ids.iter().map(|id| ("Observation", id.as_str(), 1)));
        assert!(payloads.len() > 1, "1,000 changes do not fit one payload");
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let lines: Vec<_> = payloads
            .iter()
            .flat_map(|p| p.lines())
            .map(|l| parse_change(l, "s"))
            .collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], Some(("Observation", "id-0999", 1)));
        assert!(change_payloads("s", std::iter::empty()).is_empty());
    }

    #[test]
    fn the_cache_serves_only_while_switched_on_and_starts_empty_each_time() {
        let shared = SharedCurrent::new(super::super::DEFAULT_CACHE_BYTES);
        let v1 = StoredVersion {
            version_id: 1,
            last_updated_us: 0,
            body: Some(bytes::Bytes::from_static(b"{}")),
        };
        assert!(
            shared.lookup("Patient", "a").is_none(),
            "off until listening"
        );
        shared.switch_on();
        let Some(Err(stamp)) = shared.lookup("Patient", "a") else {
            panic!("a miss with a stamp")
        };
        shared.offer("Patient", "a", stamp, v1.clone());
        assert_eq!(shared.lookup("Patient", "a"), Some(Ok(v1.clone())));
        shared.committed("Patient", "a", 2);
        assert!(matches!(shared.lookup("Patient", "a"), Some(Err(_))));
        shared.offer("Patient", "a", stamp, v1.clone());
        assert!(
            matches!(shared.lookup("Patient", "a"), Some(Err(_))),
            "a read stamped before the commit is not cached"
        );
        let Some(Err(stamp)) = shared.lookup("Patient", "a") else {
            panic!("a miss")
        };
        shared.switch_off();
        assert!(!shared.is_on());
        shared.offer("Patient", "a", stamp, v1);
        shared.switch_on();
        assert!(matches!(shared.lookup("Patient", "a"), Some(Err(_))));
    }
}
