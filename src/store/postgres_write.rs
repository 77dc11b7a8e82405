//! One write as one PostgreSQL statement (http.html#update, #create, #delete): the change of
//! the current version, its history row and its search index rows as data-modifying CTEs of
//! fixed SQL, with the index rows as column arrays (`unnest`) so the statement stays a cached
//! prepared statement whatever the number of rows. `postgres_creates.rs` puts several creates,
//! or one of these writes and creates, in one statement.

use super::index::IndexRow;
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

/// An index table's column: its name, its array type in the statement, whether it may be NULL.
pub(super) type IndexColumn = (&'static str, &'static str, bool);

/// Each index table's columns after `(resource_type, id)`, with their array type and whether
/// they may be NULL, in the order of the statement's parameters (`$9`–`$28`, [`bind_write`];
/// the creates' statement binds them in this order too, `postgres_creates.rs`).
pub(super) const INDEX_COLUMNS: [(&str, &[IndexColumn]); 6] = [
    (
        "idx_string",
        &[
            ("code", "text", false),
            ("norm", "text", false),
            ("exact", "text", false),
        ],
    ),
    (
        "idx_token",
        &[
            ("code", "text", false),
            ("system", "text", true),
            ("value", "text", true),
            ("text_norm", "text", true),
        ],
    ),
    (
        "idx_date",
        &[
            ("code", "text", false),
            ("low_us", "int8", false),
            ("high_us", "int8", false),
        ],
    ),
    (
        "idx_number",
        &[
            ("code", "text", false),
            ("value", "float8", false),
            ("system", "text", true),
            ("unit", "text", true),
        ],
    ),
    (
        "idx_reference",
        &[
            ("code", "text", false),
            ("target_type", "text", true),
            ("target_id", "text", true),
            ("url", "text", false),
        ],
    ),
    (
        "idx_uri",
        &[("code", "text", false), ("value", "text", false)],
    ),
];

/// The index part of the write statement: the new rows inserted from column arrays — fixed SQL
/// whatever the number of rows, so it stays a cached prepared statement — and, for an update
/// (`replace`), only the difference: the resource's rows that the new version no longer has
/// are deleted, and only the new version's rows it did not have are inserted. An edit touches
/// a few of a resource's rows; rewriting all of them cost every update a delete and an insert
/// per row in the table and each of its indexes (~1,100 buffers a CarePlan update in the
/// careplan soak). Every CTE of a statement reads one snapshot, so both compare against the
/// rows as they were (a reindex, which changes rows without a version, locks writers out until
/// it commits: `PostgresStore::commit_reindex`). Rows are compared as a set (a row the stored
/// and the new version both have is kept however many times either has it), unlike SQLite's
/// multiset (`index_diff.rs`): searches only ask whether a row exists, or its lowest or
/// highest value. Everything is conditional on `cur` (the version guard) holding.
fn index_ctes(replace: bool) -> String {
    let mut sql = String::new();
    let mut param = 9;
    for (table, columns) in INDEX_COLUMNS {
        let names: Vec<&str> = columns.iter().map(|(name, _, _)| *name).collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(n, (_, kind, _))| format!("${}::{kind}[]", param + n))
            .collect();
        param += columns.len();
        let rows = format!("unnest({}) u({})", arrays.join(", "), names.join(", "));
        // Equalities only, so the planner can hash on every column: `IS NOT DISTINCT FROM`
        // cannot be hashed, and a CodeSystem's thousands of token rows under one code, matched
        // on the code alone, made an update compare every pair (5.5 s at 8,000 rows).
        let same = columns
            .iter()
            .map(|(name, _, nullable)| {
                if *nullable {
                    format!(
                        " AND coalesce(t.{name}, '') = coalesce(u.{name}, '') AND (t.{name} IS NULL) = (u.{name} IS NULL)"
                    )
                } else {
                    format!(" AND t.{name} = u.{name}")
                }
            })
            .collect::<String>();
        let short = table.trim_start_matches("idx_");
        let mut new_rows = String::from("EXISTS (SELECT 1 FROM cur)");
        if replace {
            sql.push_str(&format!(
                ", del_{short} AS (DELETE FROM {table} t WHERE t.resource_type = $1 AND t.id = $2 \
                 AND EXISTS (SELECT 1 FROM cur) AND NOT EXISTS (SELECT 1 FROM {rows} WHERE true{same}))"
            ));
            new_rows.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.resource_type = $1 AND t.id = $2{same})"
            ));
        }
        sql.push_str(&format!(
            ", ins_{short} AS (INSERT INTO {table} (resource_type, id, {}) SELECT $1, $2, u.* FROM {rows} WHERE {new_rows})",
            names.join(", ")
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_columns_are_the_index_tables_with_their_parameters_in_order() {
        let tables: Vec<&str> = INDEX_COLUMNS.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, crate::store::index::INDEX_TABLES);
        let columns: usize = INDEX_COLUMNS.iter().map(|(_, c)| c.len()).sum();
        // `$9`–`$28`, as `bind_write` binds them.
        assert_eq!(8 + columns, 28);
        let update = index_ctes(true);
        assert!(update.contains("unnest($27::text[], $28::text[]) u(code, value)"));
        assert!(update.contains(
            "coalesce(t.system, '') = coalesce(u.system, '') AND (t.system IS NULL) = (u.system IS NULL)"
        ));
        assert!(!update.contains("DISTINCT"));
        assert!(!index_ctes(false).contains("DELETE"));
    }
}
