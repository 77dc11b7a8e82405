//! `_include` / `_revinclude` steps (search.html#include) in the store: one statement per step,
//! however many ids (no N+1).

use super::{Builder, RenderedQuery};
use crate::store::sql::{Bind, Dialect};

/// Which way an include follows references (search.html#include, #revinclude).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeDirection {
    /// `_include`: resources that `source_type/ids` reference through `code`.
    Forward,
    /// `_revinclude`: resources of `source_type` whose `code` references `target_type/ids`.
    Reverse,
}

/// One `_include` / `_revinclude` step over a set of resources already in the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeQuery {
    pub direction: IncludeDirection,
    /// The type holding the reference; `None` for `_revinclude=*` (any type).
    pub source_type: Option<String>,
    /// The reference parameter; `None` for `*` (every reference parameter).
    pub code: Option<String>,
    /// The referenced type (forward: an optional filter; reverse: the type of `ids`).
    pub target_type: Option<String>,
    /// Forward: ids of `source_type`; reverse: ids of `target_type`.
    pub ids: Vec<String>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u32>,
}

/// Render an include step: `resource_type, id, version_id, last_updated_us, body` of the
/// current, non-deleted resources it adds (one statement, however many ids — no N+1).
pub fn render_include(dialect: Dialect, include: &IncludeQuery) -> RenderedQuery {
    let mut b = Builder::new(dialect);
    let (join, by_ids_col) = match include.direction {
        IncludeDirection::Forward => (
            "c.resource_type = r.target_type AND c.id = r.target_id",
            "r.id",
        ),
        IncludeDirection::Reverse => (
            "c.resource_type = r.resource_type AND c.id = r.id",
            "r.target_id",
        ),
    };
    let mut sql = format!(
        "SELECT DISTINCT c.resource_type, c.id, c.version_id, c.last_updated_us, c.body \
         FROM idx_reference r JOIN resource_current c ON {join} \
         WHERE c.body IS NOT NULL"
    );
    if let Some(source) = &include.source_type {
        sql.push_str(&format!(" AND r.resource_type = {}", b.text(source)));
    }
    if let Some(code) = &include.code {
        sql.push_str(&format!(" AND r.code = {}", b.text(code)));
    }
    if let Some(target) = &include.target_type {
        sql.push_str(&format!(" AND r.target_type = {}", b.text(target)));
    }
    let ids: Vec<String> = include.ids.iter().map(|id| b.text(id)).collect();
    if ids.is_empty() {
        sql.push_str(" AND 1 = 0");
    } else {
        sql.push_str(&format!(" AND {by_ids_col} IN ({})", ids.join(", ")));
    }
    if let Some(limit) = include.limit {
        let limit = b.bind(Bind::Int(i64::from(limit)));
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}
