//! Storage: the [`Store`] trait and one module per backend (SQLite, PostgreSQL).
//!
//! Resources are kept as the exact JSON bytes that are served (with `id` and `meta` already
//! inside), so read and vread never re-parse. Two tables: the current version of every resource
//! (`resource_current`) and every version ever written (`resource_version`, with a global
//! sequence number used for history ordering and paging). Writes are optimistic: each
//! [`VersionWrite`] states which version it expects to replace, and [`Store::commit`] applies a
//! [`CommitBatch`] atomically in one database transaction or reports a
//! [`StoreError::Conflict`]. A batch carries every resource version of one write (the request's
//! own, and those the write pipeline's hooks add: Provenance, extracted Observations) with
//! their search index rows, and the outbox events announcing them.
//!
//! Backend differences live in `sqlite.rs` and `postgres.rs` only.

mod analyze_schedule;
pub mod auth;
mod cache;
mod decode;
pub mod index;
mod index_diff;
mod postgres;
mod postgres_alone;
mod postgres_cache;
mod postgres_creates;
mod postgres_notify;
mod postgres_statistics;
mod postgres_write;
pub mod search;
pub mod sql;
mod sqlite;
mod sqlite_checkpoints;
mod sqlite_index_rows;
mod sqlite_statistics;
#[cfg(test)]
mod sqlite_tests;
mod sqlite_writer;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// One stored version of a resource (current or historical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub version_id: i64,
    /// `meta.lastUpdated`, as microseconds since the Unix epoch.
    pub last_updated_us: i64,
    /// The JSON bytes served; `None` for a deletion tombstone.
    pub body: Option<Bytes>,
}

/// How a version came to be; recorded for history bundles (`Bundle.entry.request.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    Create,
    Update,
    Patch,
    Delete,
}

impl WriteMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMethod::Create => "POST",
            WriteMethod::Update => "PUT",
            WriteMethod::Patch => "PATCH",
            WriteMethod::Delete => "DELETE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "POST" => Some(WriteMethod::Create),
            "PUT" => Some(WriteMethod::Update),
            "PATCH" => Some(WriteMethod::Patch),
            "DELETE" => Some(WriteMethod::Delete),
            _ => None,
        }
    }
}

/// What the writer believes the current state is. The write applies only if it still is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No resource with this type and id exists (not even a deleted one).
    Absent,
    /// The current version (live or deleted) is exactly this one.
    Version(i64),
    /// Reindexing: replace only the search index rows, and only while the current live version
    /// is still this one; no new version is written.
    Reindex(i64),
}

/// One new version to store.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionWrite {
    pub resource_type: String,
    pub id: String,
    pub expected: Expected,
    pub version_id: i64,
    pub last_updated_us: i64,
    pub method: WriteMethod,
    /// `None` writes a deletion tombstone.
    pub body: Option<Bytes>,
    /// The search index rows of this version; they replace the resource's previous rows
    /// (a tombstone's are always empty).
    pub index: Vec<index::IndexRow>,
}

/// An event announcing a committed change (the transactional outbox): stored in the same
/// database transaction as the change, so no event is lost and none announces a rolled-back
/// write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// What the event is about (e.g. `subscription-notification`); readers filter on it.
    pub topic: String,
    /// When it was recorded (microseconds since the Unix epoch).
    pub recorded_us: i64,
    /// The event's content (JSON bytes).
    pub payload: Bytes,
}

/// One outbox event as stored, with its place in the outbox's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutboxEvent {
    pub seq: i64,
    pub event: OutboxEvent,
}

/// A chunk of interactions in the audit log: a compact row written in batches off the request
/// path (one insert per chunk, where an AuditEvent resource with its search index is about
/// twenty rows), made into AuditEvent resources later by `rest/audit/log.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogEntry {
    /// The ids of the AuditEvents made from it derive from it.
    pub id: String,
    /// When its first interaction happened (microseconds since the Unix epoch).
    pub recorded_us: i64,
    /// The interactions, encoded by `rest/audit/log.rs`.
    pub record: Bytes,
}

/// One audit log entry as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditLogEntry {
    pub seq: i64,
    pub entry: AuditLogEntry,
}

/// Everything one write commits, atomically: all of it or none of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitBatch {
    /// Resource versions in commit order: the request's own writes first, then the resources
    /// hooks add (Provenance, extracted Observations, …).
    pub versions: Vec<VersionWrite>,
    /// Outbox events for the change.
    pub outbox: Vec<OutboxEvent>,
    /// Audit log entries to append.
    pub audit_log: Vec<AuditLogEntry>,
    /// Audit log entries (by `seq`) this batch consumes: deleted with the batch's commit, and
    /// the whole batch fails with [`StoreError::Conflict`] when any of them is gone already (a
    /// concurrent consumer took it), so each entry is consumed exactly once.
    pub consumed_audit_log: Vec<i64>,
    /// Conditional creates (http.html#ccreate: `If-None-Exist`, a transaction's
    /// `ifNoneExist`, a conditional update that creates): the batch commits only if nothing
    /// matches these searches inside its own transaction, else it fails with
    /// [`StoreError::NowMatches`] — so racing conditional creates make one resource, whichever
    /// process or node serves them.
    pub none_matching: Vec<NoneMatching>,
}

/// A search that must match nothing when a batch commits (see
/// [`CommitBatch::none_matching`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NoneMatching {
    /// The criteria in a canonical form (`rest/keyed_lock.rs`'s `criteria_key`): conditional
    /// creates with the same key wait for each other on PostgreSQL (an advisory lock on its
    /// hash, held until the transaction ends).
    pub key: String,
    /// The search, as the caller may run it.
    pub query: search::SearchQuery,
}

impl NoneMatching {
    /// The advisory lock number of `key`: FNV-1a, 64 bits — the same on every node and
    /// release (std's hasher is neither).
    pub(crate) fn lock_id(&self) -> i64 {
        let hash = self.key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

impl CommitBatch {
    /// A batch of resource versions only.
    pub fn of(versions: Vec<VersionWrite>) -> Self {
        CommitBatch {
            versions,
            ..CommitBatch::default()
        }
    }

    /// Whether the batch holds nothing but resource versions.
    pub(crate) fn versions_only(&self) -> bool {
        self.outbox.is_empty()
            && self.audit_log.is_empty()
            && self.consumed_audit_log.is_empty()
            && self.none_matching.is_empty()
    }
}

/// Which history to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions with `lastUpdated >= since` (microseconds).
    pub since_us: Option<i64>,
    /// Keyset cursor: only versions with a sequence number below this one.
    pub before_seq: Option<i64>,
    pub limit: u32,
    /// `Some`: only versions of resources of these types, each within its reach now (a
    /// confined caller's history); `None`: every version.
    pub within: Option<Vec<search::TypeReach>>,
}

/// One entry of a history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub method: WriteMethod,
    pub version: StoredVersion,
}

/// One search match: the resource's id and current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRow {
    pub id: String,
    pub version: StoredVersion,
    /// Under `_sort` keys: the row's sort values as text, for the next page's cursor.
    pub sort_values: Vec<Option<String>>,
}

/// How many sort values a page query returns per row.
pub(crate) fn sort_value_count(query: &search::SearchQuery) -> usize {
    match &query.order {
        search::Order::Keys(keys) => keys.len(),
        _ => 0,
    }
}

/// A resource added by an include step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludedRow {
    pub resource_type: String,
    pub id: String,
    pub version: StoredVersion,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The current state is not what the write expected (a concurrent writer won).
    #[error("conflicting write to {resource_type}/{id}")]
    Conflict { resource_type: String, id: String },
    /// A search of [`CommitBatch::none_matching`] matched when the batch came to commit (a
    /// concurrent conditional create won); nothing was written.
    #[error("a {resource_type} matching the conditional criteria exists now")]
    NowMatches { resource_type: String },
    /// The database cannot be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`): the
    /// write was rolled back whole; reads still work.
    #[error("database storage full: {0}")]
    Full(String),
    /// Anything else: a bug or corrupt data.
    #[error("database error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            // PostgreSQL cancelled a statement that ran past `statement_timeout`.
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some("57014") => {
                StoreError::Unavailable(format!("a statement ran too long: {err}"))
            }
            // PostgreSQL's disk_full; SQLite's SQLITE_FULL (13), plain or extended.
            sqlx::Error::Database(ref db)
                if matches!(db.code().as_deref(), Some("53100") | Some("13")) =>
            {
                StoreError::Full(err.to_string())
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A batch consumed audit log entry `seq`, which a concurrent consumer had taken already.
pub(crate) fn audit_log_taken(seq: i64) -> StoreError {
    StoreError::Conflict {
        resource_type: "AuditEvent".into(),
        id: format!("audit log entry {seq}"),
    }
}

/// The storage contract every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Bring the schema up to date (idempotent).
    async fn migrate(&self) -> StoreResult<()>;
    /// Is the database reachable?
    async fn ping(&self) -> StoreResult<()>;
    /// The current version of a resource, including a deletion tombstone.
    async fn current(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredVersion>>;
    /// [`Store::current`] as the database holds it now, for a write to build on and check
    /// `If-Match` against: a backend whose reads may lag other nodes' commits (PostgreSQL's
    /// cache, postgres_cache.rs) reads past its cache here, so a lagging cache never turns a
    /// right `If-Match` into a 412.
    async fn current_for_write(
        &self,
        resource_type: &str,
        id: &str,
    ) -> StoreResult<Option<StoredVersion>> {
        self.current(resource_type, id).await
    }
    /// One specific version.
    async fn version(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<StoredVersion>>;
    /// Apply the whole batch atomically (one transaction), or none of it.
    async fn commit(&self, batch: &CommitBatch) -> StoreResult<()>;
    /// Commit resource versions alone (reindexing, tests): a batch without outbox events.
    async fn commit_versions(&self, versions: &[VersionWrite]) -> StoreResult<()> {
        self.commit(&CommitBatch::of(versions.to_vec())).await
    }
    /// Outbox events after `after_seq`, oldest first, at most `limit`.
    /// The audit log entries not consumed yet with `after < seq <= through`, oldest first, at
    /// most `limit`.
    async fn audit_log_range(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditLogEntry>>;
    /// The newest audit log entry's `seq`, if the log holds any.
    async fn audit_log_last_seq(&self) -> StoreResult<Option<i64>>;
    async fn outbox_after(&self, after_seq: i64, limit: u32)
        -> StoreResult<Vec<StoredOutboxEvent>>;
    /// A page of history, newest first.
    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<HistoryRow>>;
    /// The history sequence number of one version (a history page cursor names a version).
    async fn version_seq(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<i64>>;
    /// Live current resources after `after` (by type, then id), for reindexing.
    async fn current_page(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> StoreResult<Vec<IncludedRow>>;
    /// A page of search matches, in the query's order.
    async fn search(&self, query: &search::SearchQuery) -> StoreResult<Vec<SearchRow>>;
    /// How many resources match (ignoring order, cursor and limit).
    async fn count(&self, query: &search::SearchQuery) -> StoreResult<i64>;
    /// The resources one `_include` / `_revinclude` step adds.
    async fn include(&self, query: &search::IncludeQuery) -> StoreResult<Vec<IncludedRow>>;
    /// Refresh the planner's statistics after a bulk load (seed, reindex), so searches are
    /// planned for the data actually there rather than for empty tables.
    async fn refresh_statistics(&self) -> StoreResult<()>;
    /// The name of the backend, for logs and `/readyz`.
    fn backend_name(&self) -> &'static str;
    /// The authorization server's storage in the same database.
    fn auth(&self) -> Arc<dyn auth::AuthStore>;
}

/// Bytes of current versions a node keeps in memory unless configured (`current_cache_mib`).
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Open the store a database URL names: `sqlite://PATH` (created if missing) or `postgres://…`,
/// keeping up to `cache_bytes` of current versions in memory.
pub async fn open(database_url: &str, cache_bytes: usize) -> StoreResult<Arc<dyn Store>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect_cached(database_url, cache_bytes).await?,
        ))
    } else if let Some(path) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(
            SqliteStore::open_cached(std::path::Path::new(path), cache_bytes).await?,
        ))
    } else {
        Err(StoreError::Internal(format!(
            "unsupported database URL scheme in {}",
            crate::config::redact_url(database_url)
        )))
    }
}

fn decode_method(text: &str) -> StoreResult<WriteMethod> {
    WriteMethod::parse(text)
        .ok_or_else(|| StoreError::Internal(format!("unknown write method {text:?} in history")))
}

#[cfg(test)]
mod tests;
