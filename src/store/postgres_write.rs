//! One write as one PostgreSQL statement (http.html#update, #create, #delete): the change of
//! the current version, its history row and its search index rows as data-modifying CTEs of
//! fixed SQL, with the index rows as column arrays (`unnest`) so the statement stays a cached
//! prepared statement whatever the number of rows. `postgres_creates.rs` puts several creates,
//! or one of these writes and creates, in one statement.

use super::index::{IndexRow, INDEX_TABLES};
use super::{Expected, StoreError, StoreResult, VersionWrite};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};
use std::sync::OnceLock;

pub(super) type Texts<'a> = Vec<&'a str>;
pub(super) type OptTexts<'a> = Vec<Option<&'a str>>;

/// The index rows of writes as column arrays, one set per table, for `unnest`; the columns
/// borrow the rows' text.
#[derive(Default)]
pub(super) struct IndexColumns<'a> {
    pub(super) string: (Texts<'a>, Texts<'a>, Texts<'a>),
    pub(super) token: (Texts<'a>, OptTexts<'a>, OptTexts<'a>, OptTexts<'a>),
    pub(super) date: (Texts<'a>, Vec<i64>, Vec<i64>),
    pub(super) number: (Texts<'a>, Vec<f64>, OptTexts<'a>, OptTexts<'a>),
    pub(super) reference: (Texts<'a>, OptTexts<'a>, OptTexts<'a>, Texts<'a>),
    pub(super) uri: (Texts<'a>, Texts<'a>),
}

impl<'a> IndexColumns<'a> {
    pub(super) fn of(rows: &'a [IndexRow]) -> Self {
        let mut c = IndexColumns::default();
        for row in rows {
            c.push(row);
        }
        c
    }

    /// Appends one row to its table's columns.
    pub(super) fn push(&mut self, row: &'a IndexRow) {
        match row {
            IndexRow::String { code, norm, exact } => {
                self.string.0.push(code);
                self.string.1.push(norm);
                self.string.2.push(exact);
            }
            IndexRow::Token {
                code,
                system,
                value,
                text_norm,
            } => {
                self.token.0.push(code);
                self.token.1.push(system.as_deref());
                self.token.2.push(value.as_deref());
                self.token.3.push(text_norm.as_deref());
            }
            IndexRow::Date {
                code,
                low_us,
                high_us,
            } => {
                self.date.0.push(code);
                self.date.1.push(*low_us);
                self.date.2.push(*high_us);
            }
            IndexRow::Number {
                code,
                value,
                system,
                unit,
            } => {
                self.number.0.push(code);
                self.number.1.push(*value);
                self.number.2.push(system.as_deref());
                self.number.3.push(unit.as_deref());
            }
            IndexRow::Reference {
                code,
                target_type,
                target_id,
                url,
            } => {
                self.reference.0.push(code);
                self.reference.1.push(target_type.as_deref());
                self.reference.2.push(target_id.as_deref());
                self.reference.3.push(url);
            }
            IndexRow::Uri { code, value } => {
                self.uri.0.push(code);
                self.uri.1.push(value);
            }
        }
    }
}

/// The index part of the write statement: delete the previous rows (for an update) and insert
/// the new ones from column arrays — fixed SQL whatever the number of rows, so it stays a
/// cached prepared statement. Everything is conditional on `cur` (the version guard) holding.
fn index_ctes(replace: bool) -> String {
    let mut sql = String::new();
    if replace {
        for table in INDEX_TABLES {
            sql.push_str(&format!(
                ", del_{table} AS (DELETE FROM {table} WHERE resource_type = $1 AND id = $2 AND EXISTS (SELECT 1 FROM cur))"
            ));
        }
    }
    sql.push_str(
        ", ins_string AS (INSERT INTO idx_string (resource_type, id, code, norm, exact) \
           SELECT $1, $2, u.* FROM unnest($9::text[], $10::text[], $11::text[]) u WHERE EXISTS (SELECT 1 FROM cur)) \
         , ins_token AS (INSERT INTO idx_token (resource_type, id, code, system, value, text_norm) \
           SELECT $1, $2, u.* FROM unnest($12::text[], $13::text[], $14::text[], $15::text[]) u WHERE EXISTS (SELECT 1 FROM cur)) \
         , ins_date AS (INSERT INTO idx_date (resource_type, id, code, low_us, high_us) \
           SELECT $1, $2, u.* FROM unnest($16::text[], $17::int8[], $18::int8[]) u WHERE EXISTS (SELECT 1 FROM cur)) \
         , ins_number AS (INSERT INTO idx_number (resource_type, id, code, value, system, unit) \
           SELECT $1, $2, u.* FROM unnest($19::text[], $20::float8[], $21::text[], $22::text[]) u WHERE EXISTS (SELECT 1 FROM cur)) \
         , ins_reference AS (INSERT INTO idx_reference (resource_type, id, code, target_type, target_id, url) \
           SELECT $1, $2, u.* FROM unnest($23::text[], $24::text[], $25::text[], $26::text[]) u WHERE EXISTS (SELECT 1 FROM cur)) \
         , ins_uri AS (INSERT INTO idx_uri (resource_type, id, code, value) \
           SELECT $1, $2, u.* FROM unnest($27::text[], $28::text[]) u WHERE EXISTS (SELECT 1 FROM cur))",
    );
    sql
}

/// The CTEs of one write's statement (`WITH …` up to, not including, its final `SELECT`):
/// the conditional change of `resource_current` (`cur`), the insert into `resource_version`
/// and the replacement of the search index rows, all conditional on `cur`. Parameters
/// `$1`–`$28`, bound by [`bind_write`].
pub(super) fn write_ctes(expected: &Expected) -> String {
    let guard = match expected {
        Expected::Absent => {
            "INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1"
        }
        Expected::Version(_) => {
            "UPDATE resource_current SET version_id = $3, last_updated_us = $4, deleted = $5, body = $6 \
             WHERE resource_type = $1 AND id = $2 AND version_id = $8 RETURNING 1"
        }
        // $3..$7 are bound but unused: the statement keeps one parameter list for every shape.
        Expected::Reindex(_) => {
            "SELECT 1 FROM resource_current WHERE resource_type = $1 AND id = $2 AND version_id = $8 \
             AND body IS NOT NULL AND $3::int8 IS NOT NULL AND $4::int8 IS NOT NULL AND $5::bool IS NOT NULL \
             AND ($6::bytea IS NULL OR true) AND $7::text IS NOT NULL FOR UPDATE"
        }
    };
    let replace = matches!(expected, Expected::Version(_) | Expected::Reindex(_));
    let history = match expected {
        Expected::Reindex(_) => "",
        _ => ", ver AS (INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
               SELECT $1, $2, $3, $4, $7, $6 FROM cur)",
    };
    format!("WITH cur AS ({guard}){history}{}", index_ctes(replace))
}

/// Binds the parameters of [`write_ctes`] for `w`.
pub(super) fn bind_write<'q>(
    query: Query<'q, Postgres, PgArguments>,
    w: &'q VersionWrite,
) -> Query<'q, Postgres, PgArguments> {
    let current = match w.expected {
        Expected::Version(v) | Expected::Reindex(v) => v,
        Expected::Absent => 0,
    };
    let c = IndexColumns::of(&w.index);
    query
        .bind(&w.resource_type)
        .bind(&w.id)
        .bind(w.version_id)
        .bind(w.last_updated_us)
        .bind(w.body.is_none())
        .bind(w.body.as_deref())
        .bind(w.method.as_str())
        .bind(current)
        .bind(c.string.0)
        .bind(c.string.1)
        .bind(c.string.2)
        .bind(c.token.0)
        .bind(c.token.1)
        .bind(c.token.2)
        .bind(c.token.3)
        .bind(c.date.0)
        .bind(c.date.1)
        .bind(c.date.2)
        .bind(c.number.0)
        .bind(c.number.1)
        .bind(c.number.2)
        .bind(c.number.3)
        .bind(c.reference.0)
        .bind(c.reference.1)
        .bind(c.reference.2)
        .bind(c.reference.3)
        .bind(c.uri.0)
        .bind(c.uri.1)
}

/// The statement of [`apply_write`] for a write expecting `expected`, built once per shape
/// (it was formatted anew for every write).
fn write_statement(expected: &Expected) -> &'static str {
    static SQL: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let shape = match expected {
        Expected::Absent => 0,
        Expected::Version(_) => 1,
        Expected::Reindex(_) => 2,
    };
    SQL[shape].get_or_init(|| format!("{} SELECT count(*) FROM cur", write_ctes(expected)))
}

/// Apply one write as a single statement ([`write_ctes`]), so a lone write is one round trip
/// and one (auto-committed) transaction. Returns whether the version guard held.
pub(super) async fn apply_write<'e, E>(executor: E, w: &VersionWrite) -> StoreResult<bool>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let applied: i64 = bind_write(sqlx::query(write_statement(&w.expected)), w)
        .fetch_one(executor)
        .await
        .map_err(|e| conflict_or(e, w))?
        .try_get(0)?;
    Ok(applied == 1)
}

/// The conflict of `w`: its version guard did not hold, or a create found it there.
pub(super) fn conflict(w: &VersionWrite) -> StoreError {
    StoreError::Conflict {
        resource_type: w.resource_type.clone(),
        id: w.id.clone(),
    }
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
