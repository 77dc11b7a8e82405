//! The creates of a PostgreSQL commit (http.html#transaction: a Bundle of POSTs, the common
//! case; a PHQ-9 with its derived Observations and Provenance) written with one statement: the
//! new versions, their history rows and all their search index rows go in as column arrays
//! through `unnest`, so a transaction of ten creates is three round trips (BEGIN, the
//! statement, COMMIT) instead of twelve, and a commit that also updates (a PHQ-9 moving its
//! goal) writes its creates in one statement and each update in its own. The statement's SQL is
//! the same whatever the number of writes, so it stays a cached prepared statement.
//!
//! A commit of creates only (a create with its Provenance, a transaction of POSTs) needs no
//! transaction at all: [`create_all_alone`] sends the statement by itself, which PostgreSQL
//! runs atomically, in one round trip instead of three (BEGIN and COMMIT were 8 % of a create's
//! server CPU). Alone, the statement inserts without `ON CONFLICT`: a resource that exists
//! already fails the whole statement (nothing is written) rather than being skipped, and the
//! commit is then made again in a transaction, which names the resource that lost.

use super::postgres_write::{IndexColumns, Texts};
use super::{Expected, StoreError, StoreResult, VersionWrite};
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

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

/// The creates' statement, with what its insert of current versions does on a conflict.
macro_rules! statement {
    ($on_conflict:literal) => {
        concat!(
            "WITH input AS (\
       SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::bytea[], $6::text[]) \
       AS u(resource_type, id, version_id, last_updated_us, body, method)) \
     , cur AS (INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
       SELECT resource_type, id, version_id, last_updated_us, false, body FROM input ",
            $on_conflict,
            " RETURNING resource_type, id) \
     , ver AS (INSERT INTO resource_version (resource_type, id, version_id, last_updated_us, method, body) \
       SELECT i.resource_type, i.id, i.version_id, i.last_updated_us, i.method, i.body \
       FROM input i JOIN cur ON cur.resource_type = i.resource_type AND cur.id = i.id) \
     , ins_string AS (INSERT INTO idx_string (resource_type, id, code, norm, exact) \
       SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[])) \
     , ins_token AS (INSERT INTO idx_token (resource_type, id, code, system, value, text_norm) \
       SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[])) \
     , ins_date AS (INSERT INTO idx_date (resource_type, id, code, low_us, high_us) \
       SELECT * FROM unnest($18::text[], $19::text[], $20::text[], $21::int8[], $22::int8[])) \
     , ins_number AS (INSERT INTO idx_number (resource_type, id, code, value, system, unit) \
       SELECT * FROM unnest($23::text[], $24::text[], $25::text[], $26::float8[], $27::text[], $28::text[])) \
     , ins_reference AS (INSERT INTO idx_reference (resource_type, id, code, target_type, target_id, url) \
       SELECT * FROM unnest($29::text[], $30::text[], $31::text[], $32::text[], $33::text[], $34::text[])) \
     , ins_uri AS (INSERT INTO idx_uri (resource_type, id, code, value) \
       SELECT * FROM unnest($35::text[], $36::text[], $37::text[], $38::text[])) \
     SELECT resource_type, id FROM cur"
        )
    };
}

/// The statement in a transaction: a resource that exists already is skipped (not in `cur`),
/// and [`create_all`] answers a conflict naming it (the caller rolls back).
const STATEMENT: &str = statement!("ON CONFLICT DO NOTHING");
/// The statement alone (see the module documentation): a resource that exists already fails it.
const STATEMENT_ALONE: &str = statement!("");

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
    let created = run(conn, STATEMENT, writes).await?;
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

/// Inserts every write (all creates, see [`split_creates`]) with the statement alone, outside
/// any transaction: all of them or, when any of them exists already, none (`Ok(false)`: make
/// the commit again in a transaction to learn which).
pub(super) async fn create_all_alone(
    conn: &mut PgConnection,
    writes: &[&VersionWrite],
) -> StoreResult<bool> {
    match run(conn, STATEMENT_ALONE, writes).await {
        Ok(created) if created.len() == writes.len() => Ok(true),
        Ok(_) => Err(StoreError::Internal(
            "a statement that inserts all or nothing inserted some".into(),
        )),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs `statement` (one of the two above) for `writes`: the rows of `cur`.
async fn run(
    conn: &mut PgConnection,
    statement: &'static str,
    writes: &[&VersionWrite],
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
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
    sqlx::query(statement)
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
        .fetch_all(&mut *conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteMethod;

    fn write(id: &str, expected: Expected) -> VersionWrite {
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
