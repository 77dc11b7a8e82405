//! The PostgreSQL backend (production): a connection pool, one transaction per commit, and
//! optimistic concurrency through conditional `INSERT … ON CONFLICT DO NOTHING` / `UPDATE …
//! WHERE version_id = $n`, each fused with its history insert into one statement. Under READ COMMITTED a second writer of the same row waits for the
//! first, re-checks the condition and finds it false, so exactly one of two racing writes
//! wins. Many stateless server nodes may share one database.

use super::index::{delete_statements, insert_statements, Statement};
use super::search::{render_count, render_page, SearchQuery};
use super::sql::{Bind, Dialect};
use super::SearchRow;
use super::{
    decode_method, Expected, HistoryQuery, HistoryRow, HistoryScope, Store, StoreError,
    StoreResult, StoredVersion, VersionWrite,
};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect a pool to `url`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(options).await
    }

    /// Connect a pool with explicit options (tests use this to pick a schema).
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PostgresStore { pool })
    }
}

/// Apply one write as a single statement: the conditional change of `resource_current` and the
/// insert into `resource_version` are one data-modifying CTE, so a lone write is one round
/// trip and one (auto-committed) transaction. Returns whether the condition held.
async fn apply_write<'e, E>(executor: E, w: &VersionWrite) -> StoreResult<bool>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let deleted = w.body.is_none();
    let body = w.body.as_deref();
    let query = match w.expected {
        Expected::Absent => sqlx::query(
            "WITH cur AS ( \
                INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1) \
             INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
             SELECT $1, $2, $3, $4, $7, $6 FROM cur",
        ),
        Expected::Version(_) => sqlx::query(
            "WITH cur AS ( \
                UPDATE resource_current SET version_id = $3, last_updated_us = $4, deleted = $5, body = $6 \
                WHERE resource_type = $1 AND id = $2 AND version_id = $8 RETURNING 1) \
             INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
             SELECT $1, $2, $3, $4, $7, $6 FROM cur",
        ),
    };
    let mut query = query
        .bind(&w.resource_type)
        .bind(&w.id)
        .bind(w.version_id)
        .bind(w.last_updated_us)
        .bind(deleted)
        .bind(body)
        .bind(w.method.as_str());
    if let Expected::Version(current) = w.expected {
        query = query.bind(current);
    }
    let affected = query
        .execute(executor)
        .await
        .map_err(|e| conflict_or(e, w))?
        .rows_affected();
    Ok(affected == 1)
}

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

async fn execute(tx: &mut Transaction<'_, Postgres>, statement: &Statement) -> StoreResult<()> {
    bind_all(sqlx::query(&statement.sql), &statement.binds)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replace the index rows of a write that has just been applied in `tx`.
async fn replace_index(tx: &mut Transaction<'_, Postgres>, w: &VersionWrite) -> StoreResult<()> {
    if matches!(w.expected, Expected::Version(_)) {
        for statement in delete_statements(Dialect::Postgres, &w.resource_type, &w.id) {
            execute(tx, &statement).await?;
        }
    }
    for statement in insert_statements(Dialect::Postgres, &w.resource_type, &w.id, &w.index) {
        execute(tx, &statement).await?;
    }
    Ok(())
}

fn conflict(w: &VersionWrite) -> StoreError {
    StoreError::Conflict {
        resource_type: w.resource_type.clone(),
        id: w.id.clone(),
    }
}

fn stored_version(row: &PgRow) -> StoreResult<StoredVersion> {
    let body: Option<Vec<u8>> = row.try_get("body")?;
    Ok(StoredVersion {
        version_id: row.try_get("version_id")?,
        last_updated_us: row.try_get("last_updated_us")?,
        body: body.map(Bytes::from),
    })
}

/// A unique violation means a concurrent writer inserted the same key first.
fn conflict_or(err: sqlx::Error, w: &VersionWrite) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            StoreError::Conflict {
                resource_type: w.resource_type.clone(),
                id: w.id.clone(),
            }
        }
        _ => StoreError::from(err),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn current(&self, resource_type: &str, id: &str) -> StoreResult<Option<StoredVersion>> {
        let row = sqlx::query(
            "SELECT version_id, last_updated_us, body FROM resource_current WHERE resource_type = $1 AND id = $2",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_version).transpose()
    }

    async fn version(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> StoreResult<Option<StoredVersion>> {
        let row = sqlx::query(
            "SELECT version_id, last_updated_us, body FROM resource_version \
             WHERE resource_type = $1 AND id = $2 AND version_id = $3",
        )
        .bind(resource_type)
        .bind(id)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_version).transpose()
    }

    async fn commit(&self, writes: &[VersionWrite]) -> StoreResult<()> {
        if let [only] = writes {
            if only.index.is_empty() && only.expected == Expected::Absent {
                return match apply_write(&self.pool, only).await? {
                    true => Ok(()),
                    false => Err(conflict(only)),
                };
            }
        }
        let mut tx: Transaction<'_, Postgres> = self.pool.begin().await?;
        for write in writes {
            let applied = match apply_write(&mut *tx, write).await {
                Ok(applied) => applied,
                Err(e) => {
                    tx.rollback().await.ok();
                    return Err(e);
                }
            };
            if !applied {
                tx.rollback().await.ok();
                return Err(conflict(write));
            }
            if let Err(e) = replace_index(&mut tx, write).await {
                tx.rollback().await.ok();
                return Err(e);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<HistoryRow>> {
        const COLUMNS: &str = "SELECT seq, resource_type, id, version_id, last_updated_us, method, body FROM resource_version";
        let since = query.since_us.unwrap_or(i64::MIN);
        let before = query.before_seq.unwrap_or(i64::MAX);
        let limit = i64::from(query.limit);
        let rows = match &query.scope {
            HistoryScope::System => {
                sqlx::query(&format!(
                    "{COLUMNS} WHERE last_updated_us >= $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
                ))
                .bind(since)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            HistoryScope::Type(rt) => {
                sqlx::query(&format!(
                    "{COLUMNS} WHERE resource_type = $1 AND last_updated_us >= $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
                ))
                .bind(rt)
                .bind(since)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            HistoryScope::Instance(rt, id) => {
                sqlx::query(&format!(
                    "{COLUMNS} WHERE resource_type = $1 AND id = $2 AND last_updated_us >= $3 AND seq < $4 ORDER BY seq DESC LIMIT $5"
                ))
                .bind(rt)
                .bind(id)
                .bind(since)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let method: String = row.try_get("method")?;
                Ok(HistoryRow {
                    seq: row.try_get("seq")?,
                    resource_type: row.try_get("resource_type")?,
                    id: row.try_get("id")?,
                    method: decode_method(&method)?,
                    version: stored_version(row)?,
                })
            })
            .collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchRow>> {
        let rendered = render_page(Dialect::Postgres, query);
        let rows = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SearchRow {
                    id: row.try_get("id")?,
                    version: stored_version(row)?,
                })
            })
            .collect()
    }

    async fn count(&self, query: &SearchQuery) -> StoreResult<i64> {
        let rendered = render_count(Dialect::Postgres, query);
        let row = bind_all(sqlx::query(&rendered.sql), &rendered.binds)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
