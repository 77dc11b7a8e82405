//! The embedded SQLite backend (the default): one database file in WAL mode under the data
//! directory, a pool of read connections (sqlx), and a single writer thread
//! (`sqlite_writer.rs`) that applies commits with group commit; a reply is sent only after
//! COMMIT returns (`synchronous = FULL`): acknowledged means durable.
//!
//! Because this process is the database's only writer, current versions are also kept in a
//! bounded in-memory cache (`cache.rs`) that commits update before they are acknowledged; reads
//! are served from it when they can be. One SQLite file is for one server process.

use super::cache::CurrentCache;
use super::decode;
use super::search::{
    render_count, render_history, render_include, render_page, IncludeQuery, SearchQuery,
};
use super::sql::{Bind, Dialect};
use super::sqlite_checkpoints::WalPolicy;
use super::sqlite_statistics::StatisticsPolicy;
use super::sqlite_writer::{self, WriteJob, WriterTurn};
use super::{
    CommitBatch, HistoryQuery, HistoryRow, Store, StoreError, StoreResult, StoredAuditLogEntry,
    StoredOutboxEvent, StoredVersion,
};
use super::{IncludedRow, SearchRow};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    readers: SqlitePool,
    writer: std::sync::mpsc::Sender<WriteJob>,
    /// Taken by the authorization server's writes (`store/auth.rs`) before they write.
    writer_turn: WriterTurn,
    cache: CurrentCache,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and start the writer task.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_cached(path, super::DEFAULT_CACHE_BYTES).await
    }

    /// [`SqliteStore::open`], keeping up to `cache_bytes` of current versions in memory.
    pub async fn open_cached(path: &Path, cache_bytes: usize) -> StoreResult<Self> {
        Self::open_tuned(
            path,
            WalPolicy::DEFAULT,
            StatisticsPolicy::DEFAULT,
            cache_bytes,
        )
        .await
    }

    /// [`SqliteStore::open`] with the write-ahead log kept to `wal`, the planner statistics
    /// refreshed as `statistics` says and `cache_bytes` of current versions (tests use small
    /// bounds).
    pub(super) async fn open_tuned(
        path: &Path,
        wal: WalPolicy,
        statistics: StatisticsPolicy,
        cache_bytes: usize,
    ) -> StoreResult<Self> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-32768");
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let writer_turn = WriterTurn::default();
        let writer = sqlite_writer::start(path, wal, statistics, writer_turn.clone())?;
        Ok(SqliteStore {
            readers,
            writer,
            writer_turn,
            cache: CurrentCache::new(cache_bytes),
        })
    }

    /// The writer thread's turn, for tests that hold it.
    #[cfg(test)]
    pub(super) fn writer_turn(&self) -> WriterTurn {
        self.writer_turn.clone()
    }
}

/// Whether the file has the table `name` (sqlx's and SQLite's own appear on first use).
async fn has_table(pool: &SqlitePool, name: &str) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
    )
    .bind(name)
    .fetch_one(pool)
    .await?)
}

/// Migrations applied to the file so far (none before the first start).
async fn applied_migrations(pool: &SqlitePool) -> StoreResult<i64> {
    if !has_table(pool, "_sqlx_migrations").await? {
        return Ok(0);
    }
    Ok(sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await?)
}

/// Whether the planner has statistics of the resources (`ANALYZE` found rows to describe).
async fn has_resource_statistics(pool: &SqlitePool) -> StoreResult<bool> {
    if !has_table(pool, "sqlite_stat1").await? {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'resource_current')",
    )
    .fetch_one(pool)
    .await?)
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_all<'q>(mut query: SqliteQuery<'q>, binds: &'q [Bind]) -> SqliteQuery<'q> {
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
impl Store for SqliteStore {
    fn auth(&self) -> std::sync::Arc<dyn super::auth::AuthStore> {
        std::sync::Arc::new(super::auth::SqliteAuthStore(
            self.readers.clone(),
            self.writer_turn.clone(),
        ))
    }

    async fn migrate(&self) -> StoreResult<()> {
        let applied_before = applied_migrations(&self.readers).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.readers)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        // Give the query planner statistics when the file has none for its resources yet, or a
        // migration just changed the schema: without them SQLite may walk a whole type in date
        // order instead of using a selective index. Statistics persist in the file and are kept
        // current as it grows (`sqlite_statistics.rs`), so a restart does not gather them again:
        // the SQLite bundled here counts each index's rows exactly even with `analysis_limit`,
        // which read the indexes of a 100k-patient file whole at every start (benches/RESULTS.md,
        // 2026-12-06 (session 4)).
        if applied_migrations(&self.readers).await? == applied_before
            && has_resource_statistics(&self.readers).await?
        {
            return Ok(());
        }
        self.refresh_statistics().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    /// A sampled `ANALYZE` now, for maintenance commands (`coplan reindex`, `coplan seed`):
    /// growth refreshes the statistics as versions are written (`sqlite_statistics.rs`), but a
    /// reindex replaces index rows without writing versions, and a start no longer gathers them
    /// again. Seconds on a large file: never on a request's path. The schema cookie changes with
    /// it, so every connection loads the new statistics. `analysis_limit` is a setting of one
    /// connection, so every statement runs on the same one.
    async fn refresh_statistics(&self) -> StoreResult<()> {
        let mut conn = self.readers.acquire().await?;
        sqlx::query("PRAGMA analysis_limit = 1000")
            .execute(&mut *conn)
            .await?;
        sqlx::query("ANALYZE").execute(&mut *conn).await?;
        for statement in super::sqlite_statistics::RELOAD.split_terminator(';') {
            sqlx::query(statement.trim()).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn current(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredVersion>> {
        if let Some(hit) = self.cache.get(resource_type, id) {
            return Ok(Some(hit));
        }
        let row = sqlx::query(super::sql::CURRENT)
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        let found = row.as_ref().map(decode::stored_version).transpose()?;
        if let Some(version) = &found {
            self.cache.put_if_newer(resource_type, id, version.clone());
        }
        Ok(found)
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
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(decode::stored_version).transpose()
    }

    async fn commit(&self, batch: &CommitBatch) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            batch: batch.clone(),
            reply,
        };
        self.writer
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))??;
        for w in batch
            .versions
            .iter()
            .filter(|w| !matches!(w.expected, super::Expected::Reindex(_)))
        {
            self.cache.put_if_newer(
                &w.resource_type,
                &w.id,
                StoredVersion {
                    version_id: w.version_id,
                    last_updated_us: w.last_updated_us,
                    body: w.body.clone(),
                },
            );
        }
        Ok(())
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
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode::audit_log_entry).collect()
    }

    async fn audit_log_last_seq(&self) -> StoreResult<Option<i64>> {
        let last: Option<i64> = sqlx::query_scalar(super::sql::AUDIT_LOG_LAST_SEQ)
            .fetch_one(&self.readers)
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
            .fetch_all(&self.readers)
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
            .fetch_optional(&self.readers)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<HistoryRow>> {
        let rendered = render_history(Dialect::Sqlite, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode::history_row).collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchRow>> {
        let sort_values = super::sort_value_count(query);
        let rendered = render_page(Dialect::Sqlite, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.readers)
            .await?;
        rows.iter()
            .map(|row| decode::search_row(row, sort_values))
            .collect()
    }

    async fn count(&self, query: &SearchQuery) -> StoreResult<i64> {
        let rendered = render_count(Dialect::Sqlite, query);
        let row = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_one(&self.readers)
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
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode::included_row).collect()
    }

    async fn include(&self, query: &IncludeQuery) -> StoreResult<Vec<IncludedRow>> {
        let rendered = render_include(Dialect::Sqlite, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(decode::included_row).collect()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
