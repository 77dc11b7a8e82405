//! Test support shared by unit tests and the API tests in `tests/`: fresh, isolated databases
//! for every test on each backend. SQLite gets a new file in a temporary directory; PostgreSQL
//! (when `COPLAN_TEST_POSTGRES_URL` is set) gets a new schema in that database, dropped again
//! by [`TestDatabase::cleanup`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // test support: a panic is a failed test; schema names need no injected randomness

use crate::store::{PostgresStore, SqliteStore, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::str::FromStr;
use std::sync::Arc;

/// The environment variable naming the PostgreSQL database the tests may use.
pub const POSTGRES_ENV: &str = "COPLAN_TEST_POSTGRES_URL";

/// Which backend a test database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database for one test.
pub struct TestDatabase {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { url: String, schema: String },
}

/// The backends to run a storage story on: SQLite always; PostgreSQL when configured. When it is
/// not configured this says so loudly on stderr (CI sets it and fails if it is unreachable).
pub fn backends() -> Vec<Backend> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            eprintln!(
                "\n*** {POSTGRES_ENV} is not set: SKIPPING the PostgreSQL half of this test. \
                 Set it (e.g. postgres://postgres@127.0.0.1:5432/test) to run it. ***\n"
            );
            vec![Backend::Sqlite]
        }
    }
}

impl TestDatabase {
    /// Create and migrate a fresh database on `backend`. Panics (failing the test) when the
    /// backend cannot be reached: a configured PostgreSQL that is down is a test failure.
    pub async fn new(backend: Backend) -> TestDatabase {
        let db = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = SqliteStore::open(&dir.path().join("test.db"))
                    .await
                    .expect("open SQLite");
                TestDatabase {
                    backend,
                    store: Arc::new(store),
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Backend::Postgres => {
                let url = std::env::var(POSTGRES_ENV).expect("COPLAN_TEST_POSTGRES_URL");
                let schema = format!("coplan_test_{:016x}", rand::random::<u64>());
                let mut admin = sqlx::PgConnection::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_ENV}: {e}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test schema");
                admin.close().await.ok();
                let options = PgConnectOptions::from_str(&url)
                    .expect("PostgreSQL URL")
                    .options([("search_path", schema.as_str())]);
                let store = PostgresStore::connect_with(options)
                    .await
                    .expect("connect PostgreSQL");
                TestDatabase {
                    backend,
                    store: Arc::new(store),
                    cleanup: Cleanup::Schema { url, schema },
                }
            }
        };
        db.store.migrate().await.expect("migrations run");
        db
    }

    /// A second store on this same database — another server node's (PostgreSQL: the same
    /// schema; SQLite: the same file, with its own writer).
    pub async fn another_node(&self) -> Arc<dyn Store> {
        match &self.cleanup {
            Cleanup::Dir(dir) => Arc::new(
                SqliteStore::open(&dir.path().join("test.db"))
                    .await
                    .expect("open SQLite again"),
            ),
            Cleanup::Schema { url, schema } => {
                let options = PgConnectOptions::from_str(url)
                    .expect("PostgreSQL URL")
                    .options([("search_path", schema.as_str())]);
                Arc::new(
                    PostgresStore::connect_with(options)
                        .await
                        .expect("connect PostgreSQL again"),
                )
            }
        }
    }

    /// A `COPLAN_DATABASE_URL` for a `coplan` process to use this database (the PostgreSQL
    /// test schema as its search path); `None` on SQLite, whose processes use their data dir.
    pub fn database_url(&self) -> Option<String> {
        let Cleanup::Schema { url, schema } = &self.cleanup else {
            return None;
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        Some(format!(
            "{url}{separator}options=-c%20search_path%3D{schema}"
        ))
    }

    /// PostgreSQL's planner estimate of `table`'s rows (`pg_class.reltuples`: -1 until the
    /// table is first analyzed); `None` on SQLite.
    pub async fn planner_row_estimate(&self, table: &str) -> Option<f32> {
        let Cleanup::Schema { url, schema } = &self.cleanup else {
            return None;
        };
        let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
        let estimate = sqlx::query_scalar(
            "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(schema)
        .bind(table)
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten();
        conn.close().await.ok();
        estimate
    }

    /// Run one SQL statement directly against the database, past the store (to set up what
    /// only an older release or an operator could have left behind); the rows it affected.
    pub async fn execute(&self, sql: &str) -> u64 {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let path = dir.path().join("test.db");
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("open SQLite");
                let done = sqlx::query(sql).execute(&mut conn).await.expect("SQL runs");
                conn.close().await.ok();
                done.rows_affected()
            }
            Cleanup::Schema { url, schema } => {
                let options = PgConnectOptions::from_str(url)
                    .expect("PostgreSQL URL")
                    .options([("search_path", schema.as_str())]);
                let mut conn = sqlx::PgConnection::connect_with(&options)
                    .await
                    .expect("connect PostgreSQL");
                let done = sqlx::query(sql).execute(&mut conn).await.expect("SQL runs");
                conn.close().await.ok();
                done.rows_affected()
            }
        }
    }

    /// Drop what the test created (the PostgreSQL schema; the SQLite directory goes on drop).
    pub async fn cleanup(self) {
        if let Cleanup::Schema { url, schema } = &self.cleanup {
            drop(self.store);
            if let Ok(mut admin) = sqlx::PgConnection::connect(url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut admin)
                    .await;
                admin.close().await.ok();
            }
        }
    }
}

/// Where `value` holds an empty array, object or string (every API test's FHIR JSON body is
/// walked with this: json.html allows none of them).
pub fn first_empty(value: &serde_json::Value, at: &str) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.is_empty() => Some(at.to_string()),
        serde_json::Value::Array(items) if items.is_empty() => Some(at.to_string()),
        serde_json::Value::Object(fields) if fields.is_empty() => Some(at.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_empty(v, &format!("{at}[{i}]"))),
        serde_json::Value::Object(fields) => fields
            .iter()
            .find_map(|(k, v)| first_empty(v, &format!("{at}.{k}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::first_empty;
    use serde_json::json;

    #[test]
    fn finds_the_first_empty_array_object_or_string() {
        let clean = json!({"resourceType": "Bundle", "entry": [{"resource": {"id": "a"}}], "_given": [null, {"id": "x"}]});
        assert_eq!(first_empty(&clean, "$"), None);
        assert_eq!(
            first_empty(&json!({"entry": []}), "$").as_deref(),
            Some("$.entry")
        );
        assert_eq!(
            first_empty(&json!({"a": [{"b": {}}]}), "$").as_deref(),
            Some("$.a[0].b")
        );
        assert_eq!(
            first_empty(&json!({"a": [{"b": ""}]}), "$").as_deref(),
            Some("$.a[0].b")
        );
    }
}
