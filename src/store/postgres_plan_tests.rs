//! The plans PostgreSQL gives the search statements (the generic plan of a prepared search, as
//! sqlx runs it from the sixth execution on): a patient's search is driven by the patient, and a
//! sorted one checks the code before it reads a resource, and the patient-and-code rows drive a
//! search of both.

use super::*;

fn literal(bind: &Bind) -> String {
    match bind {
        Bind::Text(t) | Bind::OptText(Some(t)) => format!("'{}'", t.replace('\'', "''")),
        Bind::OptText(None) => "NULL".to_string(),
        Bind::Int(i) => i.to_string(),
        Bind::Float(f) => format!("{f:e}"),
    }
}

/// The arguments of `rendered` as SQL literals, for patient `patient` instead of p0 (as a
/// reference's id, or as the patient of a patient-and-code value).
fn args_for(rendered: &crate::store::search::RenderedQuery, patient: &str) -> String {
    let args: Vec<String> = rendered
        .binds
        .iter()
        .map(literal)
        .map(|a| {
            if a == "'p0'" {
                format!("'{patient}'")
            } else {
                a.replace("'p0|", &format!("'{patient}|"))
            }
        })
        .collect();
    args.join(", ")
}

/// `EXPLAIN (ANALYZE)` of prepared statement `name` with `args`, as one text.
async fn analyzed(conn: &mut sqlx::PgConnection, name: &str, args: &str) -> String {
    let lines: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE {name}({args})"
    ))
    .fetch_all(conn)
    .await
    .unwrap();
    lines.join("\n")
}

/// The plan never reads a resource row (every `resource_current` node is "never executed").
fn assert_reads_no_resource(plan: &str) {
    assert!(
        plan.lines()
            .filter(|l| l.contains("on resource_current"))
            .all(|l| l.contains("never executed")),
        "{plan}"
    );
}

/// A first page of p0's scores in the plan tests' data: those are the multiples of 1,200 (all
/// of them multiples of 3).
fn assert_p0_scores(rows: &[String]) {
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|id| id[1..].parse::<u32>().unwrap() % 1200 == 0),
        "{rows:?}"
    );
}

/// A search by patient and a common code keeps the patient driving it in the generic plan of
/// the prepared statement (what sqlx runs from the sixth execution on), however the planner
/// estimates the code: the code is checked per candidate, never read for the whole database.
#[tokio::test]
async fn the_generic_plan_of_a_patient_search_is_driven_by_the_patient() {
    use crate::store::search::{render_page, Clause, Condition, Order, SearchQuery, SystemMatch};
    if test_url().is_none() {
        return;
    }
    let (db, store) = migrated_store().await;
    // 60,000 Observations of 1,200 patients (a patient's share of a type and the size of the
    // resource rows as in a real database: on a table of a few pages a sequential scan is
    // cheaper than any lookup, and plans for one would prove nothing); 20,000 of them carry the
    // PHQ-9 total's code and each of the others its own, so the planner estimates the code as
    // rarer than the patient, and one code value as rarer than one resource's rows (the per-row
    // check must still read the resource's rows, not every resource with the code).
    for statement in [
        "INSERT INTO resource_current (resource_type, id, version_id, last_updated_us, deleted, body) \
         SELECT 'Observation', 'o' || g, 1, g, false, convert_to(repeat('x', 300), 'UTF8') \
         FROM generate_series(1, 60000) g",
        "INSERT INTO idx_reference (resource_type, id, code, target_type, target_id, url) \
         SELECT 'Observation', 'o' || g, 'subject', 'Patient', 'p' || (g % 1200), 'Patient/p' || (g % 1200) \
         FROM generate_series(1, 60000) g",
        "INSERT INTO idx_token (resource_type, id, code, system, value) \
         SELECT 'Observation', 'o' || g, 'code', 'http://loinc.org', \
         CASE WHEN g % 3 = 0 THEN '44261-6' ELSE 'c' || g END FROM generate_series(1, 60000) g",
        // Each with a status and a category too: more rows per resource than per code value.
        "INSERT INTO idx_token (resource_type, id, code, system, value) \
         SELECT 'Observation', 'o' || g, c, NULL, v FROM generate_series(1, 60000) g, \
         (VALUES ('status', 'final'), ('category', 'survey'), ('category', 'x')) t(c, v)",
        "ANALYZE resource_current, idx_reference, idx_token",
    ] {
        sqlx::query(statement).execute(&store.pool).await.unwrap();
    }
    let query = SearchQuery {
        resource_type: "Observation".into(),
        clauses: vec![
            Clause {
                any_of: vec![Condition::Reference {
                    code: "subject".into(),
                    target_type: Some("Patient".into()),
                    target_id: Some("p0".into()),
                    url: None,
                }],
                negated: false,
            },
            Clause {
                any_of: vec![Condition::Token {
                    code: "code".into(),
                    system: SystemMatch::Is("http://loinc.org".into()),
                    value: Some("44261-6".into()),
                }],
                negated: false,
            },
        ],
        order: Order::LastUpdatedDesc,
        after: None,
        limit: 20,
    };
    let rendered = render_page(Dialect::Postgres, &query);
    let mut conn = store.pool.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("PREPARE scores AS {}", rendered.sql))
        .execute(&mut *conn)
        .await
        .unwrap();
    let args: Vec<String> = rendered.binds.iter().map(literal).collect();
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN EXECUTE scores({})", args.join(", ")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let plan = plan.join("\n");
    // The patient's references drive; the code is a check per candidate (a subplan) on that
    // resource's own token rows — never a scan of the code's rows, for the query or per row.
    assert!(plan.contains("SubPlan"), "{plan}");
    assert!(
        plan.contains("Index Scan using idx_token_owner on idx_token"),
        "{plan}"
    );
    assert!(!plan.contains("idx_token_lookup"), "{plan}");
    assert!(!plan.contains("Seq Scan on idx_token"), "{plan}");
    // And it finds the patient's scores.
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXECUTE scores({})", args.join(", ")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_p0_scores(&rows);
    // Sorted by date (as PROM scoring searches): every candidate is read, so the code is
    // checked on the patient's reference rows first — for a patient with 50 Observations and
    // none of the code, not one resource row is read.
    let by_date = SearchQuery {
        order: crate::store::search::newest_date_first(),
        clauses: query.clauses.iter().rev().cloned().collect(),
        ..query
    };
    let rendered = render_page(Dialect::Postgres, &by_date);
    sqlx::raw_sql(&format!("PREPARE scores_by_date AS {}", rendered.sql))
        .execute(&mut *conn)
        .await
        .unwrap();
    let args = |patient: &str| args_for(&rendered, patient);
    let plan = analyzed(&mut conn, "scores_by_date", &args("p4")).await;
    // The patient's 50 reference rows, each checked for the code.
    assert!(plan.contains("Rows Removed by Filter: 50"), "{plan}");
    assert!(plan.contains("loops=50)"), "{plan}");
    assert!(plan.contains("on resource_current"), "{plan}");
    assert_reads_no_resource(&plan);
    // And it still finds the patient's scores, each one's sort value computed once: one probe
    // of the date rows in the plan, not one for the order and another for the output.
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXECUTE scores_by_date({})", args("p0")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_p0_scores(&rows);
    let plan_p0 = analyzed(&mut conn, "scores_by_date", &args("p0")).await;
    let date_probes: Vec<&str> = plan_p0
        .lines()
        .filter(|l| l.contains(" on idx_date"))
        .collect();
    assert_eq!(date_probes.len(), 1, "{plan_p0}");
    assert!(date_probes[0].contains("loops=50)"), "{date_probes:?}");
    // The search as the server sends it: patient and code as one clause over the
    // patient-and-code rows (rest/search/patient_code.rs), which drive from their lookup index
    // — for a patient with none of the code, no resource and no other row is read.
    sqlx::raw_sql(
        "INSERT INTO idx_token (resource_type, id, code, system, value) \
         SELECT 'Observation', 'o' || g, 'patient+code', 'http://loinc.org', \
         'p' || (g % 1200) || '|' || CASE WHEN g % 3 = 0 THEN '44261-6' ELSE 'c' || g END \
         FROM generate_series(1, 60000) g; ANALYZE idx_token",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let paired = SearchQuery {
        clauses: vec![Clause {
            any_of: vec![Condition::Token {
                code: crate::store::index::PATIENT_AND_CODE.into(),
                system: SystemMatch::Is("http://loinc.org".into()),
                value: Some("p0|44261-6".into()),
            }],
            negated: false,
        }],
        ..by_date
    };
    let rendered = render_page(Dialect::Postgres, &paired);
    sqlx::raw_sql(&format!("PREPARE paired AS {}", rendered.sql))
        .execute(&mut *conn)
        .await
        .unwrap();
    let args = |patient: &str| args_for(&rendered, patient);
    let plan = analyzed(&mut conn, "paired", &args("p4")).await;
    assert!(
        plan.contains("Index Scan using idx_token_lookup on idx_token")
            || plan.contains("Index Only Scan using idx_token_lookup on idx_token"),
        "{plan}"
    );
    // (The test's `idx_date` is empty, so its probe may be a sequential scan of nothing.)
    assert!(!plan.contains("Seq Scan on idx_token"), "{plan}");
    assert!(!plan.contains("Seq Scan on resource_current"), "{plan}");
    assert!(!plan.contains("idx_reference"), "{plan}");
    assert_reads_no_resource(&plan);
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXECUTE paired({})", args("p0")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_p0_scores(&rows);
    sqlx::raw_sql(
        "DEALLOCATE scores; DEALLOCATE scores_by_date; DEALLOCATE paired; RESET plan_cache_mode",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    drop(store);
    db.cleanup().await;
}
