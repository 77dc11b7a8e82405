//! The creates of a PostgreSQL commit (http.html#transaction: a Bundle of POSTs, the common
//! case; a PHQ-9 with its derived Observations and Provenance) written with one statement: the
//! new versions, their history rows and all their search index rows go in as column arrays
//! through `unnest`, so a transaction of ten creates is three round trips (BEGIN, the
//! statement, COMMIT) instead of twelve, and a commit that also updates (a PHQ-9 moving its
//! goal) writes its creates in one statement and each update in its own. The statement's SQL is
//! the same whatever the number of writes, so it stays a cached prepared statement.
//!
//! A commit of creates only, or of one other write and creates, needs no transaction at all:
//! `postgres_alone.rs` sends these CTEs by themselves.

use super::postgres_write::{IndexColumns, Texts, INDEX_COLUMNS};
use super::{Expected, StoreError, StoreResult, VersionWrite};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// The owner (type and id) of every index row, per index table, beside the rows' columns.
#[derive(Default)]
struct OwnedColumns<'a> {
    columns: IndexColumns<'a>,
    /// Per table in [`super::index::INDEX_TABLES`] order: the owners' types and ids.
    owners: [(Texts<'a>, Texts<'a>); 6],
}

impl<'a> OwnedColumns<'a> {
    fn of(writes: &[&'a VersionWrite]) -> Self {
        let mut c = OwnedColumns::default();
        for w in writes.iter().copied() {
            for row in &w.index {
                let (types, ids) = &mut c.owners[row.table()];
                types.push(&w.resource_type);
                ids.push(&w.id);
                c.columns.push(row);
            }
        }
        c
    }
}

/// The creates' CTEs, without the `WITH`: the rows of `input` (the new versions) go into
/// `cur` (current versions, returning the types and ids inserted), `ver` (history rows of
/// those) and the six index tables. Parameters `$first` on, 38 of them, bound by
/// [`bind_creates`]; CTE names start with `prefix`; `on_conflict` is what the insert into
/// `cur` does with a resource that exists; `gate`, unless empty, is a condition every insert
/// also needs (another write's version guard).
pub(super) fn creates_ctes(first: usize, prefix: &str, on_conflict: &str, gate: &str) -> String {
    let mut n = first;
    let mut params = |types: &[&str]| {
        let list: Vec<String> = types
            .iter()
            .map(|t| {
                n += 1;
                format!("${}::{t}[]", n - 1)
            })
            .collect();
        list.join(", ")
    };
    let input = params(&["text", "text", "int8", "int8", "bytea", "text"]);
    let gated = if gate.is_empty() {
        String::new()
    } else {
        format!(" WHERE {gate}")
    };
    // The index rows: per table the owners' types and ids, then its columns.
    let mut index = String::new();
    for (table, columns) in INDEX_COLUMNS {
        let types: Vec<&str> = ["text", "text"]
            .into_iter()
            .chain(columns.iter().map(|(_, kind, _)| *kind))
            .collect();
        let names: Vec<&str> = columns.iter().map(|(name, _, _)| *name).collect();
        index.push_str(&format!(
            " , {prefix}ins_{} AS (INSERT INTO {table} (resource_type, id, {}) SELECT * FROM unnest({}){gated})",
            table.trim_start_matches("idx_"),
            names.join(", "),
            params(&types)
        ));
    }
    format!(
        "{prefix}input AS (SELECT * FROM unnest({input}) \
           AS u(resource_type, id, version_id, last_updated_us, body, method)) \
         , {prefix}cur AS (INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
           SELECT resource_type, id, version_id, last_updated_us, false, body FROM {prefix}input{gated} \
           {on_conflict} RETURNING resource_type, id) \
         , {prefix}ver AS (INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
           SELECT i.resource_type, i.id, i.version_id, i.last_updated_us, i.method, i.body \
           FROM {prefix}input i JOIN {prefix}cur c ON c.resource_type = i.resource_type AND c.id = i.id){index}"
    )
}

/// The creates of a commit inside its transaction: a resource that exists already is skipped
/// (not in `cur`), and [`create_all`] answers a conflict naming it (the caller rolls back).
fn statement_in_transaction() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH {} SELECT resource_type, id FROM cur",
            creates_ctes(1, "", "ON CONFLICT DO NOTHING", "")
        )
    })
}

/// The writes of a commit that go through [`create_all`] — creates of a resource no other
/// write of the commit touches — when there are several of them, and the rest (each its own
/// statement, after the creates: distinct resources, so the order changes no outcome).
pub(super) fn split_creates(writes: &[VersionWrite]) -> (Vec<&VersionWrite>, Vec<&VersionWrite>) {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for w in writes {
        *seen
            .entry((w.resource_type.as_str(), w.id.as_str()))
            .or_default() += 1;
    }
    let (creates, rest): (Vec<&VersionWrite>, Vec<&VersionWrite>) = writes.iter().partition(|w| {
        matches!(w.expected, Expected::Absent)
            && w.body.is_some()
            && seen[&(w.resource_type.as_str(), w.id.as_str())] == 1
    });
    if creates.len() > 1 {
        (creates, rest)
    } else {
        (Vec::new(), writes.iter().collect())
    }
}

/// Inserts every write (all creates, see [`split_creates`]) inside the caller's transaction.
/// A resource that already exists is a conflict: the caller rolls the transaction back.
pub(super) async fn create_all(
    conn: &mut PgConnection,
    writes: &[&VersionWrite],
) -> StoreResult<()> {
    let created = bind_creates(sqlx::query(statement_in_transaction()), writes)
        .fetch_all(&mut *conn)
        .await?;
    if created.len() == writes.len() {
        return Ok(());
    }
    let mut inserted = HashSet::new();
    for row in &created {
        inserted.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
    }
    let lost = writes
        .iter()
        .find(|w| !inserted.contains(&(w.resource_type.clone(), w.id.clone())))
        .unwrap_or(&writes[0]);
    let lost: &VersionWrite = lost;
    Err(StoreError::Conflict {
        resource_type: lost.resource_type.clone(),
        id: lost.id.clone(),
    })
}

/// Binds the parameters of [`creates_ctes`] for `writes`.
pub(super) fn bind_creates<'q>(
    query: Query<'q, Postgres, PgArguments>,
    writes: &[&'q VersionWrite],
) -> Query<'q, Postgres, PgArguments> {
    let types: Vec<&str> = writes.iter().map(|w| w.resource_type.as_str()).collect();
    let ids: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
    let versions: Vec<i64> = writes.iter().map(|w| w.version_id).collect();
    let updated: Vec<i64> = writes.iter().map(|w| w.last_updated_us).collect();
    let bodies: Vec<&[u8]> = writes
        .iter()
        .map(|w| w.body.as_deref().unwrap_or_default())
        .collect();
    let methods: Vec<&str> = writes.iter().map(|w| w.method.as_str()).collect();
    let OwnedColumns { columns: c, owners } = OwnedColumns::of(writes);
    let [o_string, o_token, o_date, o_number, o_reference, o_uri] = owners;
    query
        .bind(types)
        .bind(ids)
        .bind(versions)
        .bind(updated)
        .bind(bodies)
        .bind(methods)
        .bind(o_string.0)
        .bind(o_string.1)
        .bind(c.string.0)
        .bind(c.string.1)
        .bind(c.string.2)
        .bind(o_token.0)
        .bind(o_token.1)
        .bind(c.token.0)
        .bind(c.token.1)
        .bind(c.token.2)
        .bind(c.token.3)
        .bind(o_date.0)
        .bind(o_date.1)
        .bind(c.date.0)
        .bind(c.date.1)
        .bind(c.date.2)
        .bind(o_number.0)
        .bind(o_number.1)
        .bind(c.number.0)
        .bind(c.number.1)
        .bind(c.number.2)
        .bind(c.number.3)
        .bind(o_reference.0)
        .bind(o_reference.1)
        .bind(c.reference.0)
        .bind(c.reference.1)
        .bind(c.reference.2)
        .bind(c.reference.3)
        .bind(o_uri.0)
        .bind(o_uri.1)
        .bind(c.uri.0)
        .bind(c.uri.1)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::WriteMethod;

    /// A write of an Observation with an empty body (`postgres_alone.rs`'s tests use it too).
    pub(in crate::store) fn write(id: &str, expected: Expected) -> VersionWrite {
        VersionWrite {
            resource_type: "Observation".into(),
            id: id.into(),
            expected,
            version_id: 1,
            last_updated_us: 1,
            method: WriteMethod::Create,
            body: Some(bytes::Bytes::from_static(b"{}")),
            index: Vec::new(),
        }
    }

    fn ids(writes: &[&VersionWrite]) -> Vec<String> {
        writes.iter().map(|w| w.id.clone()).collect()
    }

    #[test]
    fn creates_of_untouched_resources_go_together_and_the_rest_one_by_one() {
        let phq9 = [
            write("qr", Expected::Absent),
            write("goal", Expected::Version(3)),
            write("score", Expected::Absent),
            write("item", Expected::Absent),
        ];
        let (creates, rest) = split_creates(&phq9);
        assert_eq!(ids(&creates), ["qr", "score", "item"]);
        assert_eq!(ids(&rest), ["goal"]);
        // One create is no batch; a resource written twice is never batched.
        let one = [
            write("qr", Expected::Absent),
            write("goal", Expected::Version(3)),
        ];
        let (creates, rest) = split_creates(&one);
        assert!(creates.is_empty());
        assert_eq!(ids(&rest), ["qr", "goal"]);
        let twice = [
            write("a", Expected::Absent),
            write("a", Expected::Absent),
            write("b", Expected::Absent),
        ];
        let (creates, rest) = split_creates(&twice);
        assert!(creates.is_empty());
        assert_eq!(ids(&rest), ["a", "a", "b"]);
        let mut tombstone = write("c", Expected::Absent);
        tombstone.body = None;
        let with_tombstone = [
            write("a", Expected::Absent),
            write("b", Expected::Absent),
            tombstone,
        ];
        let (creates, rest) = split_creates(&with_tombstone);
        assert_eq!(
            (ids(&creates), ids(&rest)),
            (vec!["a".into(), "b".into()], vec!["c".into()])
        );
    }
}
