//! `_sort` (search.html#sort) in the store: sort keys over `_lastUpdated`, `_id` or a
//! parameter's indexed values, and the page query that computes them per matching resource
//! and pages by keyset on them (resources without a value last, ties by id).

use super::{Builder, RenderedQuery, SearchQuery};
use crate::store::sql::{Bind, Dialect};

/// The typed value a sort key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Text,
    Int,
    Float,
}

/// What a sort key sorts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortSource {
    LastUpdated,
    Id,
    /// The lowest (ascending) or highest (descending) value the resource has for a parameter:
    /// `column` ascending, `column_desc` descending, of index `table`.
    Index {
        table: &'static str,
        code: String,
        column: &'static str,
        column_desc: &'static str,
        kind: SortKind,
    },
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub source: SortSource,
    pub descending: bool,
}

impl SortKey {
    fn kind(&self) -> SortKind {
        match &self.source {
            SortSource::LastUpdated => SortKind::Int,
            SortSource::Id => SortKind::Text,
            SortSource::Index { kind, .. } => *kind,
        }
    }
}

/// Resources without a value sort last: ascending they take a value above every real one,
/// descending one below.
fn sort_sentinel(b: &mut Builder, kind: SortKind, descending: bool) -> String {
    match (kind, descending) {
        (SortKind::Int, false) => i64::MAX.to_string(),
        (SortKind::Int, true) => i64::MIN.to_string(),
        (SortKind::Float, false) => "1e308".to_string(),
        (SortKind::Float, true) => "-1e308".to_string(),
        (SortKind::Text, false) => b.text("\u{10FFFF}"),
        (SortKind::Text, true) => "''".to_string(),
    }
}

fn sort_expression(b: &mut Builder, key: &SortKey) -> String {
    match &key.source {
        SortSource::LastUpdated => "c.last_updated_us".to_string(),
        SortSource::Id => "c.id".to_string(),
        SortSource::Index {
            table,
            code,
            column,
            column_desc,
            kind,
        } => {
            let (aggregate, col) = if key.descending {
                ("MAX", column_desc)
            } else {
                ("MIN", column)
            };
            let code = b.text(code);
            let sentinel = sort_sentinel(b, *kind, key.descending);
            let probe_code = b.dialect.probe_code("x", true);
            format!(
                "COALESCE((SELECT {aggregate}(x.{col}) FROM {table} x WHERE x.resource_type = c.resource_type \
                 AND x.id = c.id AND {probe_code} = {code}), {sentinel})"
            )
        }
    }
}

/// `_sort=-date`: the newest `date` first (the PROM scoring's order), for tests.
#[cfg(test)]
pub(crate) fn newest_date_first() -> super::Order {
    super::Order::Keys(vec![SortKey {
        source: SortSource::Index {
            table: "idx_date",
            code: "date".into(),
            column: "low_us",
            column_desc: "high_us",
            kind: SortKind::Int,
        },
        descending: true,
    }])
}

fn sort_bind(kind: SortKind, value: &Option<String>, descending: bool) -> Bind {
    let parsed = value.as_deref();
    match kind {
        SortKind::Int => Bind::Int(
            parsed
                .and_then(|v| v.parse().ok())
                .unwrap_or(if descending { i64::MIN } else { i64::MAX }),
        ),
        SortKind::Float => Bind::Float(
            parsed
                .and_then(|v| v.parse().ok())
                .unwrap_or(if descending { -1e308 } else { 1e308 }),
        ),
        SortKind::Text => Bind::Text(parsed.unwrap_or_default().to_string()),
    }
}

/// The page query under `_sort` keys: the sort values are computed per matching resource,
/// returned as text (`s0`, `s1`, …) for the next page's cursor, and paged by keyset.
pub(super) fn render_sorted_page(
    dialect: Dialect,
    query: &SearchQuery,
    keys: &[SortKey],
) -> RenderedQuery {
    let mut b = Builder::new(dialect);
    // Every candidate's sort value is computed: no order to stop early in.
    b.checks_on_driver_rows = true;
    let expressions: Vec<String> = keys.iter().map(|k| sort_expression(&mut b, k)).collect();
    let inner_keys: Vec<String> = expressions
        .iter()
        .enumerate()
        .map(|(n, e)| format!(", {e} AS k{n}"))
        .collect();
    let outer_keys: Vec<String> = (0..keys.len())
        .map(|n| format!(", CAST(t.k{n} AS TEXT) AS s{n}"))
        .collect();
    let mut sql = format!(
        "SELECT t.id, t.version_id, t.last_updated_us, t.body{} FROM (SELECT c.id, c.version_id, \
         c.last_updated_us, c.body{} FROM resource_current c WHERE {}{}) t",
        outer_keys.concat(),
        inner_keys.concat(),
        b.where_clause(query),
        dialect.sorted_subquery_end()
    );
    if let Some(after) = &query.after {
        // Lexicographic "after": k0 beyond v0, or k0 equal and k1 beyond v1, … then id.
        let mut alternatives = Vec::new();
        for n in 0..=keys.len() {
            let mut parts = Vec::new();
            for (m, key) in keys.iter().enumerate().take(n) {
                let value = after.sort_values.get(m).cloned().flatten();
                let bound = b.bind(sort_bind(key.kind(), &value, key.descending));
                parts.push(format!("t.k{m} = {bound}"));
            }
            if n < keys.len() {
                let key = &keys[n];
                let value = after.sort_values.get(n).cloned().flatten();
                let bound = b.bind(sort_bind(key.kind(), &value, key.descending));
                let op = if key.descending { "<" } else { ">" };
                parts.push(format!("t.k{n} {op} {bound}"));
            } else {
                parts.push(format!("t.id > {}", b.text(&after.id)));
            }
            alternatives.push(format!("({})", parts.join(" AND ")));
        }
        sql.push_str(&format!(" WHERE ({})", alternatives.join(" OR ")));
    }
    let order: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| format!("t.k{n} {}", if k.descending { "DESC" } else { "ASC" }))
        .collect();
    sql.push_str(&format!(" ORDER BY {}, t.id ASC", order.join(", ")));
    let limit = b.bind(Bind::Int(i64::from(query.limit)));
    sql.push_str(&format!(" LIMIT {limit}"));
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}
