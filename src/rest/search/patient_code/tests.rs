//! The patient-and-code rows and the rewrite: the types are the registry's, the migrations list
//! them, the rows are what the rule says, and a rewritten search finds exactly what the clauses
//! it replaces find, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::rest::search::params::R4SearchParams;
use crate::store::search::{Order, SearchQuery, SystemMatch};
use crate::store::{Expected, VersionWrite, WriteMethod};
use crate::testing::{backends, TestDatabase};
use fhir_search_index::Registry;
use serde_json::{json, Value};

const BASE: &str = "http://coplan.test/fhir";

#[test]
fn the_types_are_those_the_registry_defines() {
    let registry = Registry::get();
    let expression = |t: &str, code: &str| {
        registry
            .lookup(t, code)
            .map(|p| p.expression.trim().to_string())
    };
    let from_registry: Vec<&str> = crate::validate::resource_types()
        .iter()
        .copied()
        .filter(|t| {
            expression(t, "patient") == Some(format!("{t}.subject.where(resolve() is Patient)"))
                && expression(t, "subject") == Some(format!("{t}.subject"))
                && registry
                    .lookup(t, "code")
                    .is_some_and(|p| p.param_type == fhir_search_query::ParamType::Token)
        })
        .collect();
    let mut listed = TYPES.to_vec();
    listed.sort_unstable();
    assert_eq!(from_registry, listed);
}

#[test]
fn the_migrations_fill_in_the_same_types() {
    for sql in [
        include_str!("../../../../migrations/sqlite/0009_patient_and_code.sql"),
        include_str!("../../../../migrations/postgres/0012_patient_and_code.sql"),
    ] {
        let list = sql.split("IN (").nth(1).unwrap().split(')').next().unwrap();
        let mut types: Vec<&str> = list
            .split(',')
            .map(|t| t.trim().trim_matches('\''))
            .collect();
        types.sort_unstable();
        let mut listed = TYPES.to_vec();
        listed.sort_unstable();
        assert_eq!(types, listed);
        assert!(sql.contains(&format!("'{PATIENT_AND_CODE}'")));
    }
}

fn token(code: &str, system: Option<&str>, value: Option<&str>) -> IndexRow {
    IndexRow::Token {
        code: code.into(),
        system: system.map(Into::into),
        value: value.map(Into::into),
        text_norm: None,
    }
}

fn reference(code: &str, target_type: &str, id: &str) -> IndexRow {
    IndexRow::Reference {
        code: code.into(),
        target_type: Some(target_type.into()),
        target_id: Some(id.into()),
        url: format!("{target_type}/{id}"),
    }
}

/// The rows `push_rows` adds to `rows` for `resource_type`.
fn added(resource_type: &str, rows: Vec<IndexRow>) -> Vec<IndexRow> {
    let before = rows.len();
    let mut rows = rows;
    push_rows(resource_type, &mut rows);
    rows.split_off(before)
}

#[test]
fn a_row_per_distinct_patient_and_coding() {
    let rows = vec![
        reference("patient", "Patient", "p1"),
        reference("subject", "Patient", "p1"),
        token("code", Some("http://loinc.org"), Some("44261-6")),
        token("code", Some("http://loinc.org"), Some("44261-6")),
        token("code", None, Some("x1")),
        // Text alone, and another parameter's token: no rows.
        token("code", Some("http://loinc.org"), None),
        token("status", None, Some("final")),
    ];
    assert_eq!(
        added("Observation", rows.clone()),
        [
            token(PATIENT_AND_CODE, None, Some("p1|x1")),
            token(
                PATIENT_AND_CODE,
                Some("http://loinc.org"),
                Some("p1|44261-6")
            ),
        ]
    );
    // Not a listed type; no patient; a patient row that is not a Patient by a valid id.
    assert_eq!(added("AllergyIntolerance", rows.clone()), []);
    assert_eq!(added("Observation", rows[2..].to_vec()), []);
    let mut odd = rows[2..].to_vec();
    odd.push(reference("patient", "Group", "g1"));
    odd.push(reference("patient", "Patient", "a|b"));
    assert_eq!(added("Observation", odd), []);
}

#[test]
fn extraction_adds_the_rows() {
    let observation = json!({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/p1"}
    });
    let rows = R4SearchParams::default().index_rows(&observation).unwrap();
    let derived: Vec<&IndexRow> = rows
        .iter()
        .filter(|r| matches!(r, IndexRow::Token { code, .. } if code == PATIENT_AND_CODE))
        .collect();
    assert_eq!(
        derived,
        [&token(
            PATIENT_AND_CODE,
            Some("http://loinc.org"),
            Some("p1|44261-6")
        )]
    );
    // A Group subject is no patient.
    let mut group = observation.clone();
    group["subject"] = json!({"reference": "Group/p1"});
    let rows = R4SearchParams::default().index_rows(&group).unwrap();
    assert!(!rows
        .iter()
        .any(|r| matches!(r, IndexRow::Token { code, .. } if code == PATIENT_AND_CODE)));
}

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn compiled(resource_type: &str, query: &str) -> Vec<Clause> {
    let params = R4SearchParams::default();
    super::super::compile_search(&params, BASE, resource_type, &pairs(query), true)
        .unwrap()
        .1
}

fn translated(resource_type: &str, query: &str) -> Vec<Clause> {
    let params = R4SearchParams::default();
    super::super::translate_search(&params, BASE, resource_type, &pairs(query), true)
        .unwrap()
        .1
}

#[test]
fn the_rewrite_replaces_the_patient_and_one_code_clause() {
    let one = |system: SystemMatch, value: &str| Condition::Token {
        code: PATIENT_AND_CODE.into(),
        system,
        value: Some(value.into()),
    };
    assert_eq!(
        compiled(
            "Observation",
            "status=final&subject=Patient/p1&code=http://loinc.org|44261-6"
        ),
        [
            Clause {
                any_of: vec![one(
                    SystemMatch::Is("http://loinc.org".into()),
                    "p1|44261-6"
                )],
                negated: false,
            },
            translated("Observation", "status=final").remove(0),
        ]
    );
    assert_eq!(
        compiled("Observation", "patient=Patient/p1&code=|x1")[0].any_of,
        [one(SystemMatch::Absent, "p1|x1")]
    );
    // The second code clause stays a check.
    let clauses = compiled("Observation", "patient=p1&code=a&code=b");
    assert_eq!(clauses.len(), 2);
    assert_eq!(clauses[0].any_of, [one(SystemMatch::Any, "p1|a")]);
    assert_eq!(clauses[1], translated("Observation", "code=b").remove(0));
}

#[test]
fn what_the_rewrite_leaves_alone() {
    for (resource_type, query) in [
        ("AllergyIntolerance", "patient=p1&code=a"),
        ("Observation", "patient=p1"),
        ("Observation", "code=a"),
        ("Observation", "patient=p1,p2&code=a"),
        ("Observation", "patient=p1&code=a,b"),
        ("Observation", "patient=p1&code:not=a"),
        ("Observation", "patient=p1&code=http://loinc.org|"),
        ("Observation", "patient=p1&code:text=a"),
        ("Observation", "patient=Group/p1&code=a"),
        ("Observation", "subject=p1&code=a"),
        ("Observation", "subject=Group/p1&code=a"),
        (
            "Observation",
            "patient=http://elsewhere.test/fhir/Patient/p1&code=a",
        ),
        ("Observation", "patient:identifier=urn:s|1&code=a"),
        ("Observation", "patient.name=x&code=a"),
    ] {
        assert_eq!(
            compiled(resource_type, query),
            translated(resource_type, query),
            "{resource_type}?{query}"
        );
    }
}

/// An Observation of `subject` with `codings` (none: a code of text alone).
fn observation(id: &str, subject: &str, codings: Value) -> Value {
    let mut code = json!({"text": "a score"});
    if codings.as_array().is_some_and(|c| !c.is_empty()) {
        code["coding"] = codings;
    }
    json!({
        "resourceType": "Observation", "id": id, "status": "final", "code": code,
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-01-02T10:00:00Z"
    })
}

fn loinc(code: &str) -> Value {
    json!({"system": "http://loinc.org", "code": code})
}

/// The resources the searches below run over.
fn resources() -> Vec<Value> {
    vec![
        observation(
            "o1",
            "Patient/p1",
            json!([loinc("44261-6"), {"system": "http://snomed.info/sct", "code": "123"}]),
        ),
        observation("o2", "Patient/p1", json!([loinc("1234-5")])),
        observation("o3", "Patient/p2", json!([loinc("44261-6")])),
        observation("o4", "Group/p1", json!([loinc("44261-6")])),
        observation("o5", "Patient/p1", json!([{"code": "x1"}])),
        observation("o6", "Patient/p1", json!([])),
        observation(
            "o7",
            "http://elsewhere.test/fhir/Patient/p1",
            json!([loinc("44261-6")]),
        ),
        observation(
            "o8",
            &format!("{BASE}/Patient/p1"),
            json!([loinc("44261-6")]),
        ),
        observation("o9", "Patient/p-1.x", json!([loinc("44261-6")])),
        json!({
            "resourceType": "Condition", "id": "c1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "subject": {"reference": "Patient/p1"}
        }),
        json!({
            "resourceType": "AllergyIntolerance", "id": "a1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "227493005"}]},
            "patient": {"reference": "Patient/p1"}
        }),
    ]
}

/// Searches, whether the rewrite applies, and the ids they find.
const SEARCHES: [(&str, &str, bool, &[&str]); 15] = [
    (
        "Observation",
        "patient=p1&code=44261-6",
        true,
        &["o1", "o7", "o8"],
    ),
    (
        "Observation",
        "patient=Patient/p1&code=http://loinc.org|44261-6",
        true,
        &["o1", "o7", "o8"],
    ),
    (
        "Observation",
        "subject=Patient/p1&code=44261-6,1234-5",
        false,
        &["o1", "o2", "o7", "o8"],
    ),
    (
        "Observation",
        "subject:Patient=p1&code=44261-6",
        true,
        &["o1", "o7", "o8"],
    ),
    ("Observation", "patient=p1&code=|x1", true, &["o5"]),
    (
        "Observation",
        "patient=p1&code=http://snomed.info/sct|123",
        true,
        &["o1"],
    ),
    (
        "Observation",
        "patient=p1&code=44261-6&code=123",
        true,
        &["o1"],
    ),
    (
        "Observation",
        "patient=p2&code=44261-6&date=ge2026",
        true,
        &["o3"],
    ),
    ("Observation", "patient=p-1.x&code=44261-6", true, &["o9"]),
    (
        "Observation",
        "patient=http://coplan.test/fhir/Patient/p1&code=44261-6",
        true,
        &["o1", "o7", "o8"],
    ),
    (
        "Observation",
        "patient=p1&code:not=44261-6",
        false,
        &["o2", "o5", "o6"],
    ),
    (
        "Observation",
        "subject=Group/p1&code=44261-6",
        false,
        &["o4"],
    ),
    (
        "Observation",
        "subject=p1&code=44261-6",
        false,
        &["o1", "o4", "o7", "o8"],
    ),
    ("Condition", "patient=p1&code=44054006", true, &["c1"]),
    (
        "AllergyIntolerance",
        "patient=p1&code=227493005",
        false,
        &["a1"],
    ),
];

/// Store [`resources`] with their index rows; how many patient-and-code rows they have.
async fn store_resources(db: &TestDatabase) -> usize {
    let params = R4SearchParams::default();
    let mut derived = 0;
    for resource in resources() {
        let index = params.index_rows(&resource).unwrap();
        derived += index
            .iter()
            .filter(|r| matches!(r, IndexRow::Token { code, .. } if code == PATIENT_AND_CODE))
            .count();
        let write = VersionWrite {
            resource_type: resource["resourceType"].as_str().unwrap().into(),
            id: resource["id"].as_str().unwrap().into(),
            expected: Expected::Absent,
            version_id: 1,
            last_updated_us: 1_000,
            method: WriteMethod::Create,
            body: Some(serde_json::to_vec(&resource).unwrap().into()),
            index,
        };
        db.store.commit_versions(&[write]).await.unwrap();
    }
    derived
}

/// Each of [`SEARCHES`] finds its ids, rewritten or not.
async fn check_searches(db: &TestDatabase) {
    let backend = db.backend;
    for (resource_type, query, rewritten, expected) in SEARCHES {
        let run = |clauses: Vec<Clause>| {
            let store = &db.store;
            let query = SearchQuery {
                resource_type: resource_type.into(),
                clauses,
                order: Order::IdAsc,
                after: None,
                limit: 100,
            };
            async move {
                let rows = store.search(&query).await.unwrap();
                let count = store.count(&query).await.unwrap();
                assert_eq!(count as usize, rows.len());
                rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        let (new, old) = (
            compiled(resource_type, query),
            translated(resource_type, query),
        );
        assert_eq!(new != old, rewritten, "{backend:?} {resource_type}?{query}");
        let found = run(new).await;
        assert_eq!(found, expected, "{backend:?} {resource_type}?{query}");
        assert_eq!(run(old).await, found, "{backend:?} {resource_type}?{query}");
    }
}

#[tokio::test]
async fn a_rewritten_search_finds_what_its_clauses_find_on_every_backend() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        store_resources(&db).await;
        check_searches(&db).await;
        db.cleanup().await;
    }
}

/// A database written before the rows existed gets them from the migration: as many as the
/// server writes, numbered apart from the resources' other token rows on SQLite, and the
/// searches find the same resources.
#[tokio::test]
async fn the_migration_fills_in_the_rows_of_resources_stored_before() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let derived = store_resources(&db).await;
        assert_eq!(derived, 9, "{backend:?}");
        let removed = db
            .execute(&format!(
                "DELETE FROM idx_token WHERE code = '{PATIENT_AND_CODE}'"
            ))
            .await;
        assert_eq!(removed as usize, derived, "{backend:?}");
        let migration = match backend {
            crate::testing::Backend::Sqlite => {
                include_str!("../../../../migrations/sqlite/0009_patient_and_code.sql")
            }
            crate::testing::Backend::Postgres => {
                include_str!("../../../../migrations/postgres/0012_patient_and_code.sql")
            }
        };
        assert_eq!(db.execute(migration).await as usize, derived, "{backend:?}");
        check_searches(&db).await;
        // An update over the migrated rows writes its difference: o1 loses its SNOMED coding.
        let mut o1 = resources().remove(0);
        o1["code"]["coding"] = json!([loinc("44261-6")]);
        let update = VersionWrite {
            resource_type: "Observation".into(),
            id: "o1".into(),
            expected: Expected::Version(1),
            version_id: 2,
            last_updated_us: 2_000,
            method: WriteMethod::Update,
            body: Some(serde_json::to_vec(&o1).unwrap().into()),
            index: R4SearchParams::default().index_rows(&o1).unwrap(),
        };
        db.store.commit_versions(&[update]).await.unwrap();
        for (query, expected) in [
            ("patient=p1&code=http://snomed.info/sct|123", vec![]),
            (
                "patient=p1&code=http://loinc.org|44261-6",
                vec!["o1", "o7", "o8"],
            ),
        ] {
            let search = SearchQuery {
                resource_type: "Observation".into(),
                clauses: compiled("Observation", query),
                order: Order::IdAsc,
                after: None,
                limit: 100,
            };
            let found: Vec<String> = db
                .store
                .search(&search)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(found, expected, "{backend:?} {query}");
        }
        db.cleanup().await;
    }
}
