//! The PostgreSQL backend (production): a connection pool, one transaction per commit, and
//! optimistic concurrency through conditional `INSERT … ON CONFLICT DO NOTHING` / `UPDATE …
//! WHERE version_id = $n`, each fused with its history insert and its search index rows into one
//! statement. Under READ COMMITTED a second writer of the same row waits for the
//! first, re-checks the condition and finds it false, so exactly one of two racing writes
//! wins. Many stateless server nodes may share one database; each serves reads by id from a
//! cache of current versions that LISTEN/NOTIFY keeps fresh (postgres_cache.rs).

use super::decode;
use super::postgres_cache::SharedCurrent;
use super::postgres_notify::Notifier;
use super::postgres_statistics::GrowthStatistics;
use super::postgres_write::{apply_write, conflict};
use super::search::{
    nests_subqueries, render_count, render_exists, render_history, render_include, render_page,
    IncludeQuery, SearchQuery,
};
use super::sql::{Bind, Dialect};
use super::{
    CommitBatch, Expected, HistoryQuery, HistoryRow, Store, StoreError, StoreResult,
    StoredAuditLogEntry, StoredOutboxEvent, StoredVersion, VersionWrite,
};
use super::{IncludedRow, SearchRow};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a pooled connection may sit idle before it is pinged when handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    /// Current versions, kept fresh by the listener task (postgres_cache.rs).
    current: Arc<SharedCurrent>,
    listener: tokio::task::JoinHandle<()>,
    /// Sends the change notifications of commits (postgres_notify.rs).
    notifier: Notifier,
    /// The schema this store works in (`current_schema()`), which names its notifications.
    schema: String,
    /// When this node refreshes the planner's statistics (postgres_statistics.rs).
    statistics: GrowthStatistics,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connect a pool to `url`. Every statement of a request is bounded by PostgreSQL's
    /// `statement_timeout`, [`STATEMENT_TIMEOUT`] unless the URL sets its own
    /// (`?options=-c%20statement_timeout%3D60s`): one slow query cannot hold a connection, and
    /// its request gets a 503 with `Retry-After`. Migrations and `ANALYZE` run without it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_cached(url, super::DEFAULT_CACHE_BYTES).await
    }

    /// [`PostgresStore::connect`], keeping up to `cache_bytes` of current versions in memory.
    pub async fn connect_cached(url: &str, cache_bytes: usize) -> StoreResult<Self> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
        if !url.contains("statement_timeout") {
            options = options.options([("statement_timeout", STATEMENT_TIMEOUT)]);
        }
        Self::connect_sized(options, cache_bytes).await
    }

    /// Connect a pool with explicit options (tests use this to pick a schema).
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        Self::connect_sized(options, super::DEFAULT_CACHE_BYTES).await
    }

    async fn connect_sized(options: PgConnectOptions, cache_bytes: usize) -> StoreResult<Self> {
        // Every write's guarantees are argued for READ COMMITTED (a statement's snapshot taken
        // after its locks, a racing writer re-checking the row it waited for): a role or
        // database default of another level must not apply here. Last of the options, so it
        // wins over one in the URL; the space is escaped for PostgreSQL's option parser.
        let options = options.options([("default_transaction_isolation", "read\\ committed")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it releases (a round trip it offers no way to skip)
            // and, by default, every one it hands out: under load a connection is handed out
            // again microseconds after its release ping, so that second ping only doubled the
            // round trips of a request (7.9 % of the server's CPU in a create, with
            // PostgreSQL's share besides). A connection idle longer than
            // `PING_IF_IDLE_FOR` is still pinged, so one PostgreSQL dropped meanwhile (a
            // restart, an outage: tests/tools/outage.rs) is replaced, never handed out. One
            // killed within that second of its release ping (`pg_terminate_backend`, a proxy
            // restarting) is handed out once: its request gets a 503 with Retry-After (an I/O
            // error is `Unavailable`) and the release ping then drops it.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let current = SharedCurrent::new(cache_bytes);
        let listener = tokio::spawn(super::postgres_cache::listen(
            pool.clone(),
            Arc::downgrade(&current),
        ));
        Ok(PostgresStore {
            notifier: Notifier::start(pool.clone()),
            pool,
            current,
            listener,
            schema,
            statistics: GrowthStatistics::new(),
        })
    }
}

/// Drops a batch's resources from this node's cache when it goes out of scope.
struct InvalidateOnDrop<'a> {
    current: &'a SharedCurrent,
    versions: &'a [VersionWrite],
}

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        for w in self.versions {
            self.current
                .committed(&w.resource_type, &w.id, w.version_id);
        }
    }
}

/// A reindex's lock, asked for 200 ms at a time (the waits for rows after it are bounded by
/// the statement timeout), up to [`REINDEX_LOCK_ATTEMPTS`] times (about a minute in all).
const REINDEX_LOCK: [&str; 3] = [
    "SET LOCAL lock_timeout = '200ms'",
    "LOCK TABLE resource_current IN SHARE ROW EXCLUSIVE MODE",
    "SET LOCAL lock_timeout = 0",
];
const REINDEX_LOCK_ATTEMPTS: u32 = 60;

/// The default bound on one statement (see [`PostgresStore::connect`]).
pub const STATEMENT_TIMEOUT: &str = "30s";

impl PostgresStore {
    async fn commit_batch(&self, batch: &CommitBatch) -> StoreResult<()> {
        if batch
            .versions
            .iter()
            .any(|w| matches!(w.expected, Expected::Reindex(_)))
        {
            return self.commit_reindex(batch).await;
        }
        if let ([only], true) = (batch.versions.as_slice(), batch.versions_only()) {
            return match apply_write(&self.pool, only).await? {
                true => Ok(()),
                false => Err(conflict(only)),
            };
        }
        if let Some(alone) = batch
            .versions_only()
            .then(|| super::postgres_alone::alone(&batch.versions))
            .flatten()
        {
            // One statement, no transaction (postgres_alone.rs).
            let mut conn = self.pool.acquire().await?;
            if super::postgres_alone::commit_alone(&mut conn, &alone).await? {
                return Ok(());
            }
        }
        let tx: Transaction<'_, Postgres> = self.pool.begin().await?;
        apply_and_commit(tx, batch).await
    }

    /// Reindexing, serialised with every other write. A write's statement reads the index rows
    /// it replaces in the snapshot it took when it started; under READ COMMITTED an update that
    /// started while a reindex held the resource's row, and waited for it, would then miss the
    /// rows the reindex inserted, and they would outlive the version they describe (a resource
    /// still found under its former patient). A table lock is taken before a statement's
    /// snapshot, so with `resource_current` locked against writers (readers pass) until the
    /// reindex commits, a write that arrives meanwhile starts after it and sees its rows.
    async fn commit_reindex(&self, batch: &CommitBatch) -> StoreResult<()> {
        // While the lock is asked for, writes queue behind the request: it is asked for briefly
        // and again after a pause, so a long transaction or `ANALYZE` holding a conflicting lock
        // stalls writers for a moment at a time, not until it ends.
        for attempt in 1..=REINDEX_LOCK_ATTEMPTS {
            let mut tx: Transaction<'_, Postgres> = self.pool.begin().await?;
            match lock_for_reindex(&mut tx).await {
                Ok(()) => return apply_and_commit(tx, batch).await,
                Err(e) if is_lock_timeout(&e) => {
                    tx.rollback().await.ok();
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt.min(20))))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "reindexing waited {REINDEX_LOCK_ATTEMPTS} times for writes to pause"
        )))
    }

    /// A pooled connection without the statement timeout, for maintenance that may run long
    /// (the caller `RESET`s it before the connection goes back to the pool).
    async fn unbounded_connection(&self) -> StoreResult<sqlx::pool::PoolConnection<Postgres>> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *conn)
            .await?;
        Ok(conn)
    }
}

/// A batch inside an open transaction: the conditional creates' guards; the creates of
/// resources no other write of the batch touches in one statement when there are several
/// (`postgres_creates.rs`), then every other version one statement each (distinct resources,
/// so the order changes no outcome — though when several writes fail, the one reported may
/// differ from batch order, and history `seq` puts those creates first); then the outbox and
/// audit log rows, one statement each.
/// Apply `batch` in `tx` and commit it, or roll it back on the first error.
async fn apply_and_commit(
    mut tx: Transaction<'_, Postgres>,
    batch: &CommitBatch,
) -> StoreResult<()> {
    match apply_batch(&mut tx, batch).await {
        Ok(()) => Ok(tx.commit().await?),
        Err(e) => {
            tx.rollback().await.ok();
            Err(e)
        }
    }
}

/// Takes [`REINDEX_LOCK`] in `tx`.
async fn lock_for_reindex(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    for statement in REINDEX_LOCK {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A lock not granted within `lock_timeout` (SQLSTATE 55P03).
fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}

async fn apply_batch(tx: &mut Transaction<'_, Postgres>, batch: &CommitBatch) -> StoreResult<()> {
    // Conditional creates first: each waits for any other transaction creating under the
    // same criteria (an advisory lock, in one order so two batches cannot deadlock), then
    // searches with a snapshot that sees what those committed (READ COMMITTED).
    let mut guards: Vec<_> = batch.none_matching.iter().collect();
    guards.sort_by_key(|g| g.lock_id());
    if !guards.is_empty() {
        // The count below must see what the lock's previous holder committed: READ COMMITTED
        // whatever the database's default (under REPEATABLE READ the snapshot would predate the
        // wait). A queue of waiters is bounded: after LOCK_WAIT the request gets a 503.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
            .execute(&mut **tx)
            .await?;
    }
    for guard in &guards {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(guard.lock_id())
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                if is_lock_timeout(&e) {
                    StoreError::Unavailable(format!(
                        "waited {LOCK_WAIT} for concurrent conditional creates: {e}"
                    ))
                } else {
                    StoreError::from(e)
                }
            })?;
    }
    for guard in &guards {
        let rendered = render_exists(Dialect::Postgres, &guard.query);
        let matching: bool = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        if matching {
            return Err(StoreError::NowMatches {
                resource_type: guard.query.resource_type.clone(),
            });
        }
    }
    let (creates, rest) = super::postgres_creates::split_creates(&batch.versions);
    if !creates.is_empty() {
        super::postgres_creates::create_all(tx, &creates).await?;
    }
    for write in rest {
        if !apply_write(&mut **tx, write).await? {
            return Err(conflict(write));
        }
    }
    if !batch.outbox.is_empty() {
        let topics: Vec<&str> = batch.outbox.iter().map(|e| e.topic.as_str()).collect();
        let recorded: Vec<i64> = batch.outbox.iter().map(|e| e.recorded_us).collect();
        let payloads: Vec<&[u8]> = batch.outbox.iter().map(|e| e.payload.as_ref()).collect();
        sqlx::query(
            "INSERT INTO outbox (topic, recorded_us, payload) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])",
        )
        .bind(topics)
        .bind(recorded)
        .bind(payloads)
        .execute(&mut **tx)
        .await?;
    }
    if !batch.audit_log.is_empty() {
        let ids: Vec<&str> = batch.audit_log.iter().map(|e| e.id.as_str()).collect();
        let recorded: Vec<i64> = batch.audit_log.iter().map(|e| e.recorded_us).collect();
        let records: Vec<&[u8]> = batch.audit_log.iter().map(|e| e.record.as_ref()).collect();
        sqlx::query(
            "INSERT INTO audit_log (id, recorded_us, record) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])",
        )
        .bind(ids)
        .bind(recorded)
        .bind(records)
        .execute(&mut **tx)
        .await?;
    }
    if !batch.consumed_audit_log.is_empty() {
        let deleted: Vec<i64> =
            sqlx::query_scalar("DELETE FROM audit_log WHERE seq = ANY($1) RETURNING seq")
                .bind(&batch.consumed_audit_log)
                .fetch_all(&mut **tx)
                .await?;
        if let Some(missing) = batch
            .consumed_audit_log
            .iter()
            .find(|seq| !deleted.contains(seq))
        {
            return Err(super::audit_log_taken(*missing));
        }
    }
    Ok(())
}

/// How long a conditional create waits for others with the same criteria (PostgreSQL's
/// `lock_timeout` syntax; a constant, never client input).
const LOCK_WAIT: &str = "10s";

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_all<'q>(mut query: PgQuery<'q>, binds: &'q [Bind]) -> PgQuery<'q> {
    for bind in binds {
        query = match bind {
            Bind::Text(t) => query.bind(t.as_str()),
            Bind::OptText(t) => query.bind(t.as_deref()),
            Bind::Int(i) => query.bind(*i),
            Bind::Float(f) => query.bind(*f),
        };
    }
    query
}

#[async_trait]
impl Store for PostgresStore {
    fn auth(&self) -> std::sync::Arc<dyn super::auth::AuthStore> {
        std::sync::Arc::new(super::auth::PostgresAuthStore(self.pool.clone()))
    }

    async fn migrate(&self) -> StoreResult<()> {
        // A migration of a large database may take longer than a request may.
        let mut conn = self.unbounded_connection().await?;
        let migrated = sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut *conn)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")));
        sqlx::query("RESET statement_timeout")
            .execute(&mut *conn)
            .await?;
        migrated?;
        drop(conn);
        self.statistics.start(&self.pool).await;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// `ANALYZE` the resource and index tables now (after a bulk load: searches right after
    /// one were measured at 0.6–4.5 s without statistics against ~5 ms with them); growth
    /// through the API is covered by postgres_statistics.rs.
    async fn refresh_statistics(&self) -> StoreResult<()> {
        super::postgres_statistics::analyze(&self.pool).await
    }

    async fn current(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredVersion>> {
        let stamp = match self.current.lookup(resource_type, id) {
            Some(Ok(hit)) => return Ok(Some(hit)),
            Some(Err(stamp)) => Some(stamp),
            None => None,
        };
        let found = self.current_for_write(resource_type, id).await?;
        if let (Some(stamp), Some(version)) = (stamp, &found) {
            self.current
                .offer(resource_type, id, stamp, version.clone());
        }
        Ok(found)
    }

    async fn current_for_write(
        &self,
        resource_type: &str,
        id: &str,
    ) -> StoreResult<Option<StoredVersion>> {
        let row = sqlx::query(super::sql::CURRENT)
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode::stored_version).transpose()
    }

    async fn version(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<StoredVersion>> {
        let row = sqlx::query(super::sql::VERSION)
            .bind(resource_type)
            .bind(id)
            .bind(version_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode::stored_version).transpose()
    }

    async fn commit(&self, batch: &CommitBatch) -> StoreResult<()> {
        // Whatever the outcome (a failed COMMIT may still have committed, and a request whose
        // client went away is dropped mid-commit), this node's next read of these resources
        // goes to the database: read-your-writes without waiting for the notification. The
        // guard invalidates when it is dropped, however this future ends.
        let _invalidate = InvalidateOnDrop {
            current: &self.current,
            versions: &batch.versions,
        };
        let committed = self.commit_batch(batch).await;
        if committed.is_ok() {
            let changes = batch
                .versions
                .iter()
                .filter(|w| !matches!(w.expected, Expected::Reindex(_)))
                .map(|w| (w.resource_type.as_str(), w.id.as_str(), w.version_id));
            let payloads = super::postgres_cache::change_payloads(&self.schema, changes);
            self.notifier.notify(payloads).await;
            self.statistics.committed(&self.pool, batch.versions.len());
        }
        committed
    }

    async fn audit_log_range(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditLogEntry>> {
        let rows = sqlx::query(super::sql::AUDIT_LOG_RANGE)
            .bind(after)
            .bind(through)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::audit_log_entry).collect()
    }

    async fn audit_log_last_seq(&self) -> StoreResult<Option<i64>> {
        let last: Option<i64> = sqlx::query_scalar(super::sql::AUDIT_LOG_LAST_SEQ)
            .fetch_one(&self.pool)
            .await?;
        Ok(last)
    }

    async fn outbox_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredOutboxEvent>> {
        let rows = sqlx::query(super::sql::OUTBOX_AFTER)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::outbox_event).collect()
    }

    async fn version_seq(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<i64>> {
        let row = sqlx::query(super::sql::VERSION_SEQ)
            .bind(resource_type)
            .bind(id)
            .bind(version_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<HistoryRow>> {
        let rendered = render_history(Dialect::Postgres, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::history_row).collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchRow>> {
        let sort_values = super::sort_value_count(query);
        let rendered = render_page(Dialect::Postgres, query);
        // Chains and `_has`: planned per execution (unnamed, not cached).
        let nested = nests_subqueries(query);
        let rows = bind_all(
            sqlx::query(&rendered.sql).persistent(!nested),
            &rendered.binds,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| decode::search_row(row, sort_values))
            .collect()
    }

    async fn count(&self, query: &SearchQuery) -> StoreResult<i64> {
        let rendered = render_count(Dialect::Postgres, query);
        let row = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn current_page(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> StoreResult<Vec<IncludedRow>> {
        let (after_type, after_id) = after.unwrap_or_default();
        let rows = sqlx::query(super::sql::CURRENT_PAGE)
            .bind(after_type)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::included_row).collect()
    }

    async fn include(&self, query: &IncludeQuery) -> StoreResult<Vec<IncludedRow>> {
        let rendered = render_include(Dialect::Postgres, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::included_row).collect()
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;
