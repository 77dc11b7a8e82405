//! The history page query (http.html#history), written once for both dialects: versions newest
//! first by their sequence number, optionally confined to the resources a caller may reach now
//! — judged on the current version through the same clauses a search of that type gets, so the
//! page is filtered before it is cut (a confined caller never pages through rows it cannot see).

use super::{Builder, Clause, RenderedQuery, SearchQuery};
use crate::store::sql::{Bind, Dialect};
use crate::store::{HistoryQuery, HistoryScope};

/// Which resources of one type a confined history keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeReach {
    /// Every resource of the type.
    All(String),
    /// Resources of the type whose current, live version matches the clauses.
    Matching(String, Vec<Clause>),
}

/// Render the page query: `seq, resource_type, id, version_id, last_updated_us, method, body`.
pub fn render_history(dialect: Dialect, query: &HistoryQuery) -> RenderedQuery {
    let mut b = Builder::new(dialect);
    let since = b.bind(Bind::Int(query.since_us.unwrap_or(i64::MIN)));
    let before = b.bind(Bind::Int(query.before_seq.unwrap_or(i64::MAX)));
    let mut sql = format!(
        "SELECT v.seq, v.resource_type, v.id, v.version_id, v.last_updated_us, v.method, v.body \
         FROM resource_version v WHERE v.last_updated_us >= {since} AND v.seq < {before}"
    );
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(rt) => sql.push_str(&format!(" AND v.resource_type = {}", b.text(rt))),
        HistoryScope::Instance(rt, id) => {
            let rt = b.text(rt);
            let id = b.text(id);
            sql.push_str(&format!(" AND v.resource_type = {rt} AND v.id = {id}"));
        }
    }
    if let Some(within) = &query.within {
        sql.push_str(&format!(" AND {}", reach(&mut b, within)));
    }
    let limit = b.bind(Bind::Int(i64::from(query.limit)));
    sql.push_str(&format!(" ORDER BY v.seq DESC LIMIT {limit}"));
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}

fn reach(b: &mut Builder, within: &[TypeReach]) -> String {
    let mut parts = Vec::new();
    let open: Vec<&String> = within
        .iter()
        .filter_map(|t| match t {
            TypeReach::All(rt) => Some(rt),
            TypeReach::Matching(..) => None,
        })
        .collect();
    if !open.is_empty() {
        let types: Vec<String> = open.iter().map(|rt| b.text(rt)).collect();
        parts.push(format!("v.resource_type IN ({})", types.join(", ")));
    }
    for t in within {
        let TypeReach::Matching(rt, clauses) = t else {
            continue;
        };
        let type_bind = b.text(rt);
        let current = SearchQuery {
            resource_type: rt.clone(),
            clauses: clauses.clone(),
            order: super::Order::IdAsc,
            after: None,
            limit: 0,
        };
        let matching = b.where_clause(&current);
        parts.push(format!(
            "(v.resource_type = {type_bind} AND v.id IN (SELECT c.id FROM resource_current c WHERE {matching}))"
        ));
    }
    if parts.is_empty() {
        "1 = 0".to_string()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::search::Condition;

    fn numbers(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .map(|t| {
                t.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn confined_history_is_filtered_in_the_query_with_bound_values() {
        let query = HistoryQuery {
            scope: HistoryScope::System,
            since_us: None,
            before_seq: Some(9),
            limit: 3,
            within: Some(vec![
                TypeReach::All("Practitioner".into()),
                TypeReach::Matching(
                    "Goal".into(),
                    vec![Clause {
                        any_of: vec![Condition::Reference {
                            code: "patient".into(),
                            target_type: Some("Patient".into()),
                            target_id: Some("p1' OR 1=1".into()),
                            url: None,
                        }],
                        negated: false,
                    }],
                ),
            ]),
        };
        let pg = render_history(Dialect::Postgres, &query);
        assert!(!pg.sql.contains("p1'"), "{}", pg.sql);
        assert!(pg.sql.contains("v.resource_type IN ($3)"), "{}", pg.sql);
        assert!(
            pg.sql.contains("(v.resource_type = $4 AND v.id IN (SELECT c.id FROM resource_current c WHERE c.resource_type = $5 AND c.body IS NOT NULL AND"),
            "{}",
            pg.sql
        );
        let n = numbers(&pg.sql);
        assert_eq!(n, (1..=pg.binds.len()).collect::<Vec<_>>(), "{}", pg.sql);
        assert!(pg
            .sql
            .ends_with(&format!("ORDER BY v.seq DESC LIMIT ${}", pg.binds.len())));
        let lite = render_history(Dialect::Sqlite, &query);
        assert!(!lite.sql.contains('$'));
        assert_eq!(lite.binds, pg.binds);
    }

    #[test]
    fn nothing_in_reach_matches_nothing() {
        let query = HistoryQuery {
            scope: HistoryScope::Type("Goal".into()),
            since_us: Some(5),
            before_seq: None,
            limit: 10,
            within: Some(Vec::new()),
        };
        let rendered = render_history(Dialect::Postgres, &query);
        assert!(
            rendered.sql.contains("AND 1 = 0 ORDER BY"),
            "{}",
            rendered.sql
        );
        let open = HistoryQuery {
            within: None,
            ..query
        };
        let rendered = render_history(Dialect::Postgres, &open);
        assert!(!rendered.sql.contains("1 = 0"), "{}", rendered.sql);
        assert_eq!(rendered.binds[0], Bind::Int(5));
    }
}
