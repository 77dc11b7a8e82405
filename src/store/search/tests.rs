//! Tests of the search statement rendering: values bound never spliced, placeholders in
//! order, and which clauses drive and which stay per-row checks.

use super::*;

/// Under a driving clause the less selective clauses stay per-row checks on PostgreSQL
/// (`OFFSET 0` keeps its planner from driving by them, `|| ''` keeps the probe on the
/// owner's rows); clauses ranked as the driver, statements planned per execution and
/// queries with no driver are left to the planner.
#[test]
fn clauses_that_do_not_drive_stay_per_row_checks() {
    let token = |code: &str, value: &str| Clause {
        any_of: vec![Condition::Token {
            code: code.into(),
            system: SystemMatch::Any,
            value: Some(value.into()),
        }],
        negated: false,
    };
    let reference = |code: &str, target_id: Option<&str>| Clause {
        any_of: vec![Condition::Reference {
            code: code.into(),
            target_type: target_id.map(|_| "Patient".into()),
            target_id: target_id.map(Into::into),
            url: target_id
                .is_none()
                .then(|| "http://example.org/Questionnaire/phq-9".into()),
        }],
        negated: false,
    };
    let query = |clauses: Vec<Clause>| SearchQuery {
        resource_type: "Observation".into(),
        clauses,
        order: Order::LastUpdatedDesc,
        after: None,
        limit: 10,
    };
    let pg = |clauses: Vec<Clause>| render_page(Dialect::Postgres, &query(clauses)).sql;
    let driven = vec![reference("subject", Some("p")), token("code", "44261-6")];
    let sql = pg(driven.clone());
    assert!(
        sql.contains("c.id IN (SELECT x.id FROM idx_reference x"),
        "{sql}"
    );
    assert!(
        sql.contains("x.id = c.id AND (x.code || '') = $6 AND x.value = $7 OFFSET 0)"),
        "{sql}"
    );
    assert_eq!(sql.matches("OFFSET 0").count(), 1, "{sql}");
    // Where every candidate is read (a count, a `_sort`), the code is checked on the patient's
    // reference rows (`d`) before a resource is read.
    let count = render_count(Dialect::Postgres, &query(driven.clone())).sql;
    assert!(
        count.contains(
            "c.id IN (SELECT d.id FROM (SELECT x.id, x.resource_type FROM idx_reference x \
             WHERE x.resource_type = $2 AND x.code = $3 AND x.target_id = $4 AND x.target_type = $5) d \
             WHERE (EXISTS (SELECT 1 FROM idx_token x WHERE x.resource_type = d.resource_type \
             AND x.id = d.id AND (x.code || '') = $6 AND x.value = $7 OFFSET 0)))"
        ),
        "{count}"
    );
    let by_date = crate::store::search::newest_date_first();
    let sorted = |clauses: Vec<Clause>| {
        render_page(
            Dialect::Postgres,
            &SearchQuery {
                order: by_date.clone(),
                ..query(clauses)
            },
        )
        .sql
    };
    let sql = sorted(driven.clone());
    assert!(
        sql.contains(
            ") d WHERE (EXISTS (SELECT 1 FROM idx_token x WHERE x.resource_type = d.resource_type"
        ),
        "{sql}"
    );
    // The probe's fence, and the sorted subquery's (its sort values computed once).
    assert_eq!(sql.matches("OFFSET 0").count(), 2, "{sql}");
    assert!(sql.contains(" OFFSET 0) t ORDER BY"), "{sql}");
    let sqlite = render_page(Dialect::Sqlite, &query(driven)).sql;
    assert!(!sqlite.contains("OFFSET"), "{sqlite}");
    assert!(sqlite.contains("+x.code = ?"), "{sqlite}");
    // Two tokens: the first drives, the second (as selective by rank) is the planner's.
    let sql = pg(vec![token("status", "final"), token("code", "44261-6")]);
    assert!(!sql.contains("OFFSET") && !sql.contains("||"), "{sql}");
    // A reference by canonical alone ranks with the tokens.
    let sql = pg(vec![reference("questionnaire", None), token("code", "x")]);
    assert!(!sql.contains("OFFSET"), "{sql}");
    let sql = pg(vec![token("code", "x"), reference("subject", Some("p"))]);
    assert_eq!(sql.matches("OFFSET 0").count(), 1, "{sql}");
    let sql = sorted(vec![token("code", "x"), reference("subject", Some("p"))]);
    assert!(sql.contains("x.id = d.id AND (x.code || '') = $7"), "{sql}");
    // Two patients drive: the code is checked on each candidate resource, as before.
    let either = Clause {
        any_of: [
            reference("subject", Some("p")),
            reference("subject", Some("q")),
        ]
        .into_iter()
        .flat_map(|c| c.any_of)
        .collect(),
        negated: false,
    };
    let sql = sorted(vec![either, token("code", "x")]);
    assert!(!sql.contains("d.id"), "{sql}");
    assert!(sql.contains("x.id = c.id AND (x.code || '') = "), "{sql}");
    // A check that is not an index probe stays on the resource row; one that is moves, negated
    // or not.
    let recent = Clause {
        any_of: vec![Condition::LastUpdated(Range {
            op: RangeOp::Ge,
            low: 5,
            high: 5,
        })],
        negated: false,
    };
    let not_final = Clause {
        negated: true,
        ..token("status", "final")
    };
    let sql = sorted(vec![reference("subject", Some("p")), recent, not_final]);
    assert!(sql.contains(" AND (c.last_updated_us >= "), "{sql}");
    assert!(
        sql.contains(") d WHERE NOT (EXISTS (SELECT 1 FROM idx_token x WHERE x.resource_type = d.resource_type"),
        "{sql}"
    );
    // A chain: planned per execution, so nothing is fenced.
    let chain = Clause {
        any_of: vec![Condition::Chain {
            code: "subject".into(),
            target_type: "Patient".into(),
            inner: Box::new(token("gender", "female").any_of.remove(0)),
        }],
        negated: false,
    };
    let sql = pg(vec![chain, token("code", "x")]);
    assert!(!sql.contains("OFFSET"), "{sql}");
    // `:not` alone: nothing drives, so nothing is fenced.
    let sql = pg(vec![Clause {
        negated: true,
        ..token("code", "x")
    }]);
    assert!(sql.contains("NOT (EXISTS"), "{sql}");
    assert!(!sql.contains("OFFSET") && !sql.contains("||"), "{sql}");
}

#[test]
fn values_are_always_bound_never_spliced() {
    let query = SearchQuery {
        resource_type: "CarePlan".into(),
        clauses: vec![
            Clause {
                any_of: vec![Condition::Reference {
                    code: "patient".into(),
                    target_type: Some("Patient".into()),
                    target_id: Some("1' OR '1'='1".into()),
                    url: None,
                }],
                negated: false,
            },
            Clause {
                any_of: vec![
                    Condition::Token {
                        code: "status".into(),
                        system: SystemMatch::Any,
                        value: Some("active".into()),
                    },
                    Condition::Token {
                        code: "status".into(),
                        system: SystemMatch::Absent,
                        value: Some("draft".into()),
                    },
                ],
                negated: false,
            },
        ],
        order: Order::LastUpdatedDesc,
        after: Some(Cursor {
            last_updated_us: 5,
            id: "x".into(),
            sort_values: Vec::new(),
        }),
        limit: 10,
    };
    let rendered = render_page(Dialect::Postgres, &query);
    assert!(!rendered.sql.contains("1' OR"), "{}", rendered.sql);
    assert!(rendered.sql.contains("x.system IS NULL"));
    assert!(
        rendered.sql.contains(
            "x.resource_type = $2 AND x.code = $3 AND x.target_id = $4 AND x.target_type = $5"
        ),
        "{}",
        rendered.sql
    );
    assert!(
        rendered
            .sql
            .ends_with("ORDER BY c.last_updated_us DESC, c.id DESC LIMIT $13"),
        "{}",
        rendered.sql
    );
    assert_eq!(rendered.binds.len(), 13);
    // Placeholders appear in bind order, which SQLite's positional `?` requires.
    let numbers: Vec<usize> = rendered
        .sql
        .split('$')
        .skip(1)
        .map(|t| {
            t.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, (1..=13).collect::<Vec<_>>());
    let lite = render_page(Dialect::Sqlite, &query);
    assert!(!lite.sql.contains('$'));
    assert_eq!(lite.binds, rendered.binds);
}

#[test]
fn like_patterns_escape_wildcards() {
    assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
}
