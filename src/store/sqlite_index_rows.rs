//! A resource's search index rows on SQLite (search.html; the tables keyed by their owner,
//! migration 0005): inserted with the `ord` that numbers them within their table, read back,
//! and replaced by an update with only what changed (`index_diff.rs`).

use super::index::{IndexRow, INDEX_TABLES};
use super::index_diff::{diff, StoredRow};
use super::VersionWrite;
use rusqlite::{params, Connection, Row};

/// Inserts one index row of resource `rt`/`id` as its table's row number `ord`.
pub(super) fn insert_index_row(
    conn: &Connection,
    rt: &str,
    id: &str,
    ord: i64,
    row: &IndexRow,
) -> rusqlite::Result<usize> {
    match row {
        IndexRow::String { code, norm, exact } => conn
            .prepare_cached("INSERT INTO idx_string (resource_type, id, ord, code, norm, exact) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![rt, id, ord, code, norm, exact]),
        IndexRow::Token { code, system, value, text_norm } => conn
            .prepare_cached("INSERT INTO idx_token (resource_type, id, ord, code, system, value, text_norm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![rt, id, ord, code, system, value, text_norm]),
        IndexRow::Date { code, low_us, high_us } => conn
            .prepare_cached("INSERT INTO idx_date (resource_type, id, ord, code, low_us, high_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![rt, id, ord, code, low_us, high_us]),
        IndexRow::Number { code, value, system, unit } => conn
            .prepare_cached("INSERT INTO idx_number (resource_type, id, ord, code, value, system, unit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![rt, id, ord, code, value, system, unit]),
        IndexRow::Reference { code, target_type, target_id, url } => conn
            .prepare_cached("INSERT INTO idx_reference (resource_type, id, ord, code, target_type, target_id, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![rt, id, ord, code, target_type, target_id, url]),
        IndexRow::Uri { code, value } => conn
            .prepare_cached("INSERT INTO idx_uri (resource_type, id, ord, code, value) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![rt, id, ord, code, value]),
    }
}

/// The statement reading a resource's rows of table `INDEX_TABLES[table]`, and the row one of
/// its results is.
fn select_rows(table: usize) -> (&'static str, fn(&Row) -> rusqlite::Result<IndexRow>) {
    match table {
        0 => (
            "SELECT ord, code, norm, exact FROM idx_string WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::String {
                    code: r.get(1)?,
                    norm: r.get(2)?,
                    exact: r.get(3)?,
                })
            },
        ),
        1 => (
            "SELECT ord, code, system, value, text_norm FROM idx_token WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::Token {
                    code: r.get(1)?,
                    system: r.get(2)?,
                    value: r.get(3)?,
                    text_norm: r.get(4)?,
                })
            },
        ),
        2 => (
            "SELECT ord, code, low_us, high_us FROM idx_date WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::Date {
                    code: r.get(1)?,
                    low_us: r.get(2)?,
                    high_us: r.get(3)?,
                })
            },
        ),
        3 => (
            "SELECT ord, code, value, system, unit FROM idx_number WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::Number {
                    code: r.get(1)?,
                    value: r.get(2)?,
                    system: r.get(3)?,
                    unit: r.get(4)?,
                })
            },
        ),
        4 => (
            "SELECT ord, code, target_type, target_id, url FROM idx_reference WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::Reference {
                    code: r.get(1)?,
                    target_type: r.get(2)?,
                    target_id: r.get(3)?,
                    url: r.get(4)?,
                })
            },
        ),
        _ => (
            "SELECT ord, code, value FROM idx_uri WHERE resource_type = ?1 AND id = ?2",
            |r| {
                Ok(IndexRow::Uri {
                    code: r.get(1)?,
                    value: r.get(2)?,
                })
            },
        ),
    }
}

/// Every index row stored for resource `rt`/`id`, with its `ord`.
pub(super) fn stored_index_rows(
    conn: &Connection,
    rt: &str,
    id: &str,
) -> rusqlite::Result<Vec<StoredRow>> {
    let mut stored = Vec::new();
    for table in 0..INDEX_TABLES.len() {
        let (sql, read) = select_rows(table);
        let mut statement = conn.prepare_cached(sql)?;
        let rows = statement.query_map(params![rt, id], |r| {
            Ok(StoredRow {
                ord: r.get(0)?,
                row: read(r)?,
            })
        })?;
        for row in rows {
            stored.push(row?);
        }
    }
    Ok(stored)
}

/// Makes the stored index rows of `w`'s resource its new version's, writing only the rows that
/// differ (a deletion, which has none, removes them all in one statement per table).
pub(super) fn replace_index_rows(conn: &Connection, w: &VersionWrite) -> rusqlite::Result<()> {
    let (rt, id) = (w.resource_type.as_str(), w.id.as_str());
    if w.index.is_empty() {
        for table in INDEX_TABLES {
            conn.prepare_cached(&format!(
                "DELETE FROM {table} WHERE resource_type = ?1 AND id = ?2"
            ))?
            .execute(params![rt, id])?;
        }
        return Ok(());
    }
    let stored = stored_index_rows(conn, rt, id)?;
    let changes = diff(&stored, &w.index);
    for (table, ord) in &changes.removed {
        conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE resource_type = ?1 AND id = ?2 AND ord = ?3",
            INDEX_TABLES[*table]
        ))?
        .execute(params![rt, id, ord])?;
    }
    for (ord, row) in changes.added {
        insert_index_row(conn, rt, id, ord, row)?;
    }
    Ok(())
}
