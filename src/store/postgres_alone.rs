//! PostgreSQL commits written by one statement with no transaction around it (issue 16:
//! writes). PostgreSQL runs a statement atomically, so a commit whose writes fit one statement
//! needs no BEGIN and COMMIT — a round trip each, 8 % of a create's server CPU, and more of
//! PostgreSQL's. Two shapes fit, and they are what clients mostly send:
//!
//! - creates only (a create with its Provenance, a transaction of POSTs): the creates' CTEs of
//!   `postgres_creates.rs`, inserting without `ON CONFLICT`;
//! - one update or delete and creates (an update with its Provenance): the write's CTEs of
//!   `postgres_write.rs`, then the creates', every insert of which is conditional on the
//!   write's version guard (`cur`) — a stale `If-Match` writes nothing.
//!
//! A resource that exists already fails the statement (a unique violation: nothing is written),
//! and the commit is made again in a transaction (`postgres.rs`), which names the resource.
//! Everything else (conditional creates, the audit log, several updates) takes the transaction.

use super::postgres_creates::{bind_creates, creates_ctes};
use super::postgres_write::{bind_write, conflict, write_ctes};
use super::{Expected, StoreResult, VersionWrite};
use sqlx::{PgConnection, Row};
use std::collections::HashSet;
use std::sync::OnceLock;

/// A commit one statement can write.
#[derive(Debug, PartialEq)]
pub(super) enum Alone<'a> {
    Creates(Vec<&'a VersionWrite>),
    WriteWithCreates(&'a VersionWrite, Vec<&'a VersionWrite>),
}

/// The shape of `writes` if one statement can write them: distinct resources, creates of a
/// resource with a body (at least two, or one beside the other write) and at most one other
/// write, which expects a version (an update or a delete).
pub(super) fn alone(writes: &[VersionWrite]) -> Option<Alone<'_>> {
    let mut seen = HashSet::new();
    let mut creates = Vec::with_capacity(writes.len());
    let mut other = None;
    for w in writes {
        if !seen.insert((w.resource_type.as_str(), w.id.as_str())) {
            return None;
        }
        match w.expected {
            Expected::Absent if w.body.is_some() => creates.push(w),
            Expected::Version(_) if other.is_none() => other = Some(w),
            _ => return None,
        }
    }
    match other {
        None if creates.len() > 1 => Some(Alone::Creates(creates)),
        Some(write) if !creates.is_empty() => Some(Alone::WriteWithCreates(write, creates)),
        _ => None,
    }
}

/// Creates only, without `ON CONFLICT`: `cur` counts them.
fn creates_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH {} SELECT count(*) FROM cur",
            creates_ctes(1, "", "", "")
        )
    })
}

/// A write expecting a version (`$1`–`$28`), then creates (`$29` on) if its guard held.
fn write_with_creates_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "{}, {} SELECT (SELECT count(*) FROM cur), (SELECT count(*) FROM c_cur)",
            write_ctes(&Expected::Version(0)),
            creates_ctes(29, "c_", "", "EXISTS (SELECT 1 FROM cur)")
        )
    })
}

/// Writes `commit` with one statement: `Ok(true)` when it is written, `Ok(false)` when nothing
/// is because a resource it creates exists already (make it again in a transaction), a
/// conflict naming the other write when that write's version guard did not hold (nothing is
/// written).
pub(super) async fn commit_alone(conn: &mut PgConnection, commit: &Alone<'_>) -> StoreResult<bool> {
    let (query, creates, other) = match commit {
        Alone::Creates(creates) => (
            bind_creates(sqlx::query(creates_statement()), creates),
            creates,
            None,
        ),
        Alone::WriteWithCreates(write, creates) => (
            bind_creates(
                bind_write(sqlx::query(write_with_creates_statement()), write),
                creates,
            ),
            creates,
            Some(*write),
        ),
    };
    let row = match query.fetch_one(&mut *conn).await {
        Ok(row) => row,
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            return Ok(false)
        }
        Err(e) => return Err(e.into()),
    };
    let (written, created): (i64, i64) = match other {
        None => (1, row.try_get(0)?),
        Some(_) => (row.try_get(0)?, row.try_get(1)?),
    };
    match (other, written, usize::try_from(created)) {
        (Some(write), 0, Ok(0)) => Err(conflict(write)),
        (_, 1, Ok(n)) if n == creates.len() => Ok(true),
        _ => Err(super::StoreError::Internal(format!(
            "a statement that writes all or nothing wrote {written} and created {created} of {}",
            creates.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::postgres_creates::tests::write;
    use super::*;

    #[test]
    fn what_one_statement_writes() {
        let plan = write("plan", Expected::Absent);
        let provenance = write("prov", Expected::Absent);
        let update = write("plan", Expected::Version(2));
        let mut delete = write("goal", Expected::Version(4));
        delete.body = None;
        let two = [plan.clone(), provenance.clone()];
        assert_eq!(alone(&two), Some(Alone::Creates(vec![&two[0], &two[1]])));
        let updated = [update.clone(), provenance.clone()];
        assert_eq!(
            alone(&updated),
            Some(Alone::WriteWithCreates(&updated[0], vec![&updated[1]]))
        );
        let deleted = [delete.clone(), provenance.clone()];
        assert!(matches!(alone(&deleted), Some(Alone::WriteWithCreates(..))));
        // One create alone is `apply_write`'s; two updates, a reindex, a resource twice, a
        // create without a body take the transaction.
        for not_alone in [
            vec![plan.clone()],
            vec![update.clone()],
            vec![update.clone(), delete.clone(), provenance.clone()],
            vec![write("plan", Expected::Reindex(1)), provenance.clone()],
            vec![plan.clone(), plan.clone()],
            vec![update.clone(), plan.clone()],
            vec![
                {
                    let mut tombstone = plan.clone();
                    tombstone.body = None;
                    tombstone
                },
                provenance.clone(),
            ],
        ] {
            assert_eq!(alone(&not_alone), None, "{not_alone:?}");
        }
    }
}
