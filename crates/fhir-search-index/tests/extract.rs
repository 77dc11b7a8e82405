//! Extraction against published examples (US Core 8, R4 spec) and a few hand-made ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use fhir_primitives::PartialDateTime;
use fhir_search_index::{
    expression_failures, extract, normalize_string, ExtractError, ExtractOptions, IndexEntry,
    IndexValue, ParamType, Registry,
};
use serde_json::{json, Value};

/// The range of a date/time text in a zone offset (`fhir-primitives`), as a pair.
fn range_of(text: &str, tz_offset_seconds: i32) -> Option<(i64, i64)> {
    let range = text
        .parse::<PartialDateTime>()
        .ok()?
        .range(tz_offset_seconds);
    Some((range.low_us, range.high_us))
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rows(resource: &Value) -> Vec<IndexEntry> {
    extract(resource, &ExtractOptions::default()).unwrap_or_else(|e| panic!("extract failed: {e}"))
}

fn values<'a>(rows: &'a [IndexEntry], code: &str) -> Vec<&'a IndexValue> {
    rows.iter()
        .filter(|r| r.code == code)
        .map(|r| &r.value)
        .collect()
}

fn reference(t: &str, id: &str, url: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: Some(t.into()),
        target_id: Some(id.into()),
        url: url.into(),
    }
}

fn token(system: Option<&str>, code: &str, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(Into::into),
        code: Some(code.into()),
        text: text.map(Into::into),
        of_type: None,
    }
}

fn string(exact: &str) -> IndexValue {
    IndexValue::String {
        normalized: normalize_string(exact),
        exact: exact.into(),
    }
}

fn date(text: &str) -> IndexValue {
    let (low_us, high_us) = range_of(text, 0).unwrap_or_else(|| panic!("bad date {text}"));
    IndexValue::Date { low_us, high_us }
}

const CARE_PLAN_TYPES: [&str; 14] = [
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Organization",
    "CareTeam",
    "CarePlan",
    "Goal",
    "Condition",
    "Observation",
    "Questionnaire",
    "QuestionnaireResponse",
    "Provenance",
    "AuditEvent",
];

fn fixtures() -> Vec<(String, Value)> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| {
            let v = load(&n);
            (n, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_care_plan_type_has_a_fixture_and_evaluates_every_expression() {
    let fixtures = fixtures();
    let failures = expression_failures().unwrap_or_else(|e| panic!("{e}"));
    for t in CARE_PLAN_TYPES {
        assert!(
            fixtures.iter().any(|(_, v)| v["resourceType"] == t),
            "no fixture for {t}"
        );
        let broken: Vec<_> = failures.iter().filter(|f| f.0 == t).collect();
        assert!(broken.is_empty(), "{t}: {broken:?}");
    }
    for (name, resource) in &fixtures {
        let result = extract(resource, &ExtractOptions::default());
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

#[test]
fn every_registry_expression_compiles_for_all_146_types() {
    let registry = Registry::get();
    assert_eq!(registry.resource_types().len(), 146);
    let failures = expression_failures().unwrap_or_else(|e| panic!("{e}"));
    // Composites with `%resource` components are handled in Rust, not compiled, so they are
    // not listed here; every other expression must compile.
    assert!(
        failures.is_empty(),
        "{} expressions do not compile: {failures:#?}",
        failures.len()
    );
}

#[test]
fn every_type_extracts_from_a_minimal_and_a_hostile_resource() {
    for t in Registry::get().resource_types() {
        let minimal =
            json!({"resourceType": t, "id": "x", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}});
        let r = rows(&minimal);
        assert!(values(&r, "_id").contains(&&token(None, "x", None)), "{t}");
        // Wrong shapes everywhere: must not panic, may not error.
        let hostile = json!({
            "resourceType": t, "id": 5, "meta": "x", "subject": [1, {"reference": 3}], "status": {"a": []},
            "code": [[], null], "date": "not a date", "identifier": [{"value": 7, "system": []}],
            "name": [{"family": 1, "given": [null, 2]}], "period": {"start": 9}, "valueQuantity": {"value": "x"},
            "component": [{"code": null, "valueQuantity": []}], "extension": [{"url": 1}], "contained": [1]
        });
        assert!(extract(&hostile, &ExtractOptions::default()).is_ok(), "{t}");
    }
}

#[test]
fn rejects_non_resources() {
    let opts = ExtractOptions::default();
    assert_eq!(extract(&json!([1]), &opts), Err(ExtractError::NotAnObject));
    assert_eq!(
        extract(&json!({"id": "x"}), &opts),
        Err(ExtractError::MissingResourceType)
    );
    assert_eq!(
        extract(&json!({"resourceType": "Nope"}), &opts),
        Err(ExtractError::UnknownResourceType("Nope".into()))
    );
}

#[test]
fn registry_lookup_and_listing() {
    let registry = Registry::get();
    let p = registry
        .lookup("CarePlan", "patient")
        .unwrap_or_else(|| panic!("CarePlan.patient"));
    assert_eq!(p.param_type, ParamType::Reference);
    assert_eq!(p.expression, "CarePlan.subject.where(resolve() is Patient)");
    assert_eq!(p.targets, vec!["Patient".to_string()]);
    let v = registry
        .lookup("Observation", "value-quantity")
        .unwrap_or_else(|| panic!("value-quantity"));
    assert_eq!(
        v.expression,
        "(Observation.value as Quantity) | (Observation.value as SampledData)"
    );
    let c = registry
        .lookup("Observation", "code-value-quantity")
        .unwrap_or_else(|| panic!("composite"));
    assert_eq!(c.param_type, ParamType::Composite);
    assert_eq!(
        c.components
            .iter()
            .map(|c| c.code.as_str())
            .collect::<Vec<_>>(),
        ["code", "value-quantity"]
    );
    for (code, ty) in [
        ("_id", ParamType::Token),
        ("_lastUpdated", ParamType::Date),
        ("_tag", ParamType::Token),
        ("_profile", ParamType::Uri),
        ("_security", ParamType::Token),
        ("_source", ParamType::Uri),
    ] {
        for t in ["Patient", "Binary", "Parameters"] {
            assert_eq!(
                registry.lookup(t, code).map(|p| p.param_type),
                Some(ty),
                "{t} {code}"
            );
        }
    }
    let codes: Vec<&str> = registry
        .params_for("Goal")
        .map(|p| p.code.as_str())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted);
    assert!(
        codes.contains(&"_lastUpdated")
            && codes.contains(&"lifecycle-status")
            && codes.contains(&"description")
    );
    assert_eq!(
        registry
            .lookup("InsurancePlan", "name")
            .map(|p| p.expression.as_str()),
        Some("InsurancePlan.name | InsurancePlan.alias")
    );
    // Every expression-bearing parameter keeps at least one branch for each of its types.
    for t in registry.resource_types() {
        for p in registry.params_for(t) {
            let special = p.param_type == ParamType::Special;
            assert!(
                !p.expression.is_empty() || special,
                "{t}.{} has no expression",
                p.code
            );
        }
    }
    assert!(registry.lookup("Patient", "nonexistent").is_none());
    assert!(registry.lookup("Nope", "_id").is_none());
    assert_eq!(registry.params_for("Nope").count(), 0);
}

#[test]
fn careplan_us_core_searches() {
    let mut plan = load("uscore-CarePlan-colonoscopy.json");
    let r = rows(&plan);
    let patient = reference("Patient", "example", "Patient/example");
    assert_eq!(values(&r, "patient"), [&patient]);
    assert_eq!(values(&r, "subject"), [&patient]);
    assert_eq!(
        values(&r, "category"),
        [&token(
            Some("http://hl7.org/fhir/us/core/CodeSystem/careplan-category"),
            "assess-plan",
            None
        )]
    );
    assert_eq!(values(&r, "status"), [&token(None, "active", None)]);
    assert!(values(&r, "date").is_empty());
    // date is CarePlan.period: an open end stays open.
    plan["period"] = json!({"start": "2026-01"});
    let r = rows(&plan);
    let jan = range_of("2026-01", 0).unwrap_or_default();
    assert_eq!(
        values(&r, "date"),
        [&IndexValue::Date {
            low_us: jan.0,
            high_us: i64::MAX
        }]
    );
    plan["period"] = json!({"start": "2026-01-05", "end": "2026-02-10T12:00:00Z"});
    plan["subject"] = json!({"reference": "Group/g1"});
    let r = rows(&plan);
    let start = range_of("2026-01-05", 0).unwrap_or_default();
    let end = range_of("2026-02-10T12:00:00Z", 0).unwrap_or_default();
    assert_eq!(
        values(&r, "date"),
        [&IndexValue::Date {
            low_us: start.0,
            high_us: end.1
        }]
    );
    // A Group subject is not a patient.
    assert!(values(&r, "patient").is_empty());
    assert_eq!(
        values(&r, "subject"),
        [&reference("Group", "g1", "Group/g1")]
    );
}

#[test]
fn goal_us_core_searches() {
    let r = rows(&load("uscore-Goal-goal-1.json"));
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(
        values(&r, "lifecycle-status"),
        [&token(None, "active", None)]
    );
    assert_eq!(values(&r, "target-date"), [&date("2016-04-05")]);
    // US Core us-core-goal-description (token on Goal.description).
    let goal = load("uscore-Goal-goal-1.json");
    let description = &goal["description"];
    assert_eq!(
        values(&r, "description").len(),
        description["coding"].as_array().map_or(1, Vec::len).max(1)
    );
    assert!(values(&r, "description")
        .iter()
        .all(|v| matches!(v, IndexValue::Token { .. })));
    let r = rows(&load("r4spec-Goal-example.json"));
    assert_eq!(
        values(&r, "lifecycle-status"),
        [&token(None, "on-hold", None)]
    );
    assert_eq!(values(&r, "start-date"), [&date("2015-04-05")]);
    assert_eq!(
        values(&r, "description"),
        [&IndexValue::Token {
            system: None,
            code: None,
            text: Some("Target weight is 160 to 180 lbs.".into()),
            of_type: None
        }]
    );
}

#[test]
fn questionnaire_response_us_core_searches() {
    let mut qr = load("uscore-QuestionnaireResponse-phq-9-example.json");
    let r = rows(&qr);
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(values(&r, "authored"), [&date("2022-11-29T20:50:32.718Z")]);
    assert_eq!(
        values(&r, "questionnaire"),
        [&reference(
            "Questionnaire",
            "phq-9-example",
            "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example"
        )]
    );
    assert_eq!(values(&r, "status"), [&token(None, "completed", None)]);
    assert!(values(&r, "based-on").is_empty());
    qr["basedOn"] = json!([{"reference": "CarePlan/colonoscopy"}, {"reference": "ServiceRequest/sr-1/_history/3"}]);
    let r = rows(&qr);
    assert_eq!(
        values(&r, "based-on"),
        [
            &reference("CarePlan", "colonoscopy", "CarePlan/colonoscopy"),
            &reference("ServiceRequest", "sr-1", "ServiceRequest/sr-1/_history/3")
        ]
    );
    // Absolute references keep the URL and parse type and id.
    let r = rows(&load("r4spec-QuestionnaireResponse-bluebook.json"));
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "1", "http://hl7.org/fhir/Patient/1")]
    );
}

#[test]
fn careteam_us_core_searches() {
    let team = load("uscore-CareTeam-example.json");
    let r = rows(&team);
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(values(&r, "status"), [&token(None, "active", None)]);
    let roles = values(&r, "role");
    let expected: usize = team["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["role"].as_array().into_iter().flatten())
        .map(|cc| cc["coding"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(!roles.is_empty());
    assert!(roles.len() <= expected);
    let first = &team["participant"][0]["role"][0]["coding"][0];
    assert!(roles.contains(&&IndexValue::Token {
        system: first["system"].as_str().map(Into::into),
        code: first["code"].as_str().map(Into::into),
        text: first["display"].as_str().map(Into::into),
        of_type: None,
    }));
    // Local reference to a contained Practitioner is typed by the contained resource.
    let r = rows(&load("r4spec-CareTeam-example.json"));
    assert!(values(&r, "participant").contains(&&IndexValue::Reference {
        target_type: Some("Practitioner".into()),
        target_id: None,
        url: "#pr1".into()
    }));
}

#[test]
fn patient_us_core_searches() {
    let r = rows(&load("uscore-Patient-example.json"));
    assert_eq!(
        values(&r, "identifier"),
        [&IndexValue::Token {
            system: Some("http://example.org/patient/identifiers".into()),
            code: Some("1032702".into()),
            text: Some("Medical Record Number".into()),
            of_type: Some((
                "http://terminology.hl7.org/CodeSystem/v2-0203".into(),
                "MR".into()
            )),
        }]
    );
    assert_eq!(values(&r, "family"), [&string("Shaw"), &string("Baxter")]);
    assert_eq!(values(&r, "given"), [&string("Amy"), &string("V.")]);
    assert_eq!(
        values(&r, "name"),
        [
            &string("Shaw"),
            &string("Amy"),
            &string("V."),
            &string("Baxter"),
            &string("PharmD")
        ]
    );
    assert_eq!(values(&r, "birthdate"), [&date("1987-02-20")]);
    // US Core 8's example Patient carries no `gender` (sex is an extension there).
    assert!(values(&r, "gender").is_empty());
    assert_eq!(
        values(&r, "email"),
        [&token(None, "amy.shaw@example.com", None)]
    );
    assert_eq!(values(&r, "address-city"), [&string("MOUNDS")]);

    let r = rows(&load("r4spec-Patient-example.json"));
    assert_eq!(
        values(&r, "family"),
        [&string("Chalmers"), &string("Windsor")]
    );
    assert_eq!(
        values(&r, "given"),
        [&string("Peter"), &string("James"), &string("Jim")]
    );
    assert_eq!(values(&r, "birthdate"), [&date("1974-12-25")]);
    assert_eq!(values(&r, "gender"), [&token(None, "male", None)]);
    assert_eq!(values(&r, "deceased"), [&token(None, "false", None)]);
    assert_eq!(
        values(&r, "organization"),
        [&reference("Organization", "1", "Organization/1")]
    );
}

#[test]
fn birthdate_follows_configured_zone() {
    let patient = json!({"resourceType": "Patient", "id": "p", "birthDate": "2000-01-01"});
    let r = extract(
        &patient,
        &ExtractOptions {
            tz_offset_seconds: 3600,
            ..ExtractOptions::default()
        },
    )
    .unwrap_or_default();
    let expected = range_of("2000-01-01", 3600).unwrap_or_default();
    assert_eq!(
        values(&r, "birthdate"),
        [&IndexValue::Date {
            low_us: expected.0,
            high_us: expected.1
        }]
    );
    assert_eq!(
        expected.0,
        range_of("1999-12-31T23:00:00Z", 0).unwrap_or_default().0
    );
}

#[test]
fn practitioner_us_core_searches() {
    let r = rows(&load("uscore-Practitioner-practitioner-1.json"));
    assert_eq!(
        values(&r, "identifier"),
        [
            &token(Some("http://hl7.org/fhir/sid/us-npi"), "9941339100", None),
            &token(Some("http://www.acme.org/practitioners"), "25456", None)
        ]
    );
    assert_eq!(
        values(&r, "name"),
        [&string("Bone"), &string("Ronald"), &string("Dr")]
    );
}

#[test]
fn observation_us_core_searches() {
    let r = rows(&load("uscore-Observation-PHQ9-total-score-44261-6.json"));
    assert_eq!(
        values(&r, "code"),
        [&token(
            Some("http://loinc.org"),
            "44261-6",
            Some("Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]")
        )]
    );
    assert_eq!(
        values(&r, "category"),
        [
            &token(
                Some("http://terminology.hl7.org/CodeSystem/observation-category"),
                "survey",
                Some("Survey")
            ),
            &token(
                Some("http://hl7.org/fhir/us/core/CodeSystem/us-core-category"),
                "disability-status",
                Some("Disability Status")
            )
        ]
    );
    assert_eq!(
        values(&r, "subject"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(
        values(&r, "date"),
        [&date("2022-11-29T20:50:32.718000+00:00")]
    );
    assert_eq!(values(&r, "value-string"), [&string("12")]);
    assert!(values(&r, "value-quantity").is_empty());

    let r = rows(&load("handmade-Observation-vitals.json"));
    let mmhg = |v: &str, f: f64| IndexValue::Quantity {
        value: v.into(),
        value_f64: f,
        system: Some("http://unitsofmeasure.org".into()),
        code: Some("mm[Hg]".into()),
        unit: Some("mmHg".into()),
    };
    assert_eq!(values(&r, "value-quantity"), [&mmhg("120.50", 120.5)]);
    assert_eq!(
        values(&r, "component-value-quantity"),
        [&mmhg("107", 107.0), &mmhg("60", 60.0)]
    );
    assert_eq!(values(&r, "date"), [&date("2026-03-01T08:30:00Z")]);
    let bp = token(
        Some("http://loinc.org"),
        "85354-9",
        Some("Blood pressure panel with all children optional"),
    );
    assert_eq!(
        values(&r, "code-value-quantity"),
        [&IndexValue::Composite {
            parts: vec![bp.clone(), mmhg("120.50", 120.5)]
        }]
    );
    let systolic = token(
        Some("http://loinc.org"),
        "8480-6",
        Some("Systolic blood pressure"),
    );
    let diastolic = token(
        Some("http://loinc.org"),
        "8462-4",
        Some("Diastolic blood pressure"),
    );
    assert_eq!(
        values(&r, "component-code-value-quantity"),
        [
            &IndexValue::Composite {
                parts: vec![systolic.clone(), mmhg("107", 107.0)]
            },
            &IndexValue::Composite {
                parts: vec![diastolic.clone(), mmhg("60", 60.0)]
            }
        ]
    );
    assert_eq!(values(&r, "combo-code-value-quantity").len(), 3);
    // Three codings plus the text-only row of `code.text`.
    assert_eq!(values(&r, "combo-code").len(), 4);
}

#[test]
fn provenance_target() {
    let r = rows(&load("uscore-Provenance-from-searchset-bundle.json"));
    assert_eq!(
        values(&r, "target"),
        [&reference(
            "AllergyIntolerance",
            "79613",
            "AllergyIntolerance/79613/_history/1"
        )]
    );
    assert!(values(&r, "patient").is_empty());
    assert_eq!(
        values(&r, "_lastUpdated"),
        [&date("2019-07-09T15:26:23.217+00:00")]
    );
    assert_eq!(
        values(&r, "_profile"),
        [&IndexValue::Uri {
            value: "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance".into()
        }]
    );
}

#[test]
fn common_parameters() {
    let r = rows(&json!({
        "resourceType": "Basic", "id": "b1",
        "meta": {"lastUpdated": "2026-01-02T03:04:05.678Z", "source": "http://src.example/x",
                 "tag": [{"system": "http://t", "code": "a"}], "security": [{"system": "http://s", "code": "R"}],
                 "profile": ["http://p/1"]}
    }));
    assert_eq!(values(&r, "_id"), [&token(None, "b1", None)]);
    assert_eq!(
        values(&r, "_lastUpdated"),
        [&date("2026-01-02T03:04:05.678Z")]
    );
    assert_eq!(values(&r, "_tag"), [&token(Some("http://t"), "a", None)]);
    assert_eq!(
        values(&r, "_security"),
        [&token(Some("http://s"), "R", None)]
    );
    assert_eq!(
        values(&r, "_profile"),
        [&IndexValue::Uri {
            value: "http://p/1".into()
        }]
    );
    assert_eq!(
        values(&r, "_source"),
        [&IndexValue::Uri {
            value: "http://src.example/x".into()
        }]
    );
}

#[test]
fn organization_and_practitioner_role_and_audit_event() {
    let r = rows(&load("handmade-Organization.json"));
    assert_eq!(
        values(&r, "name"),
        [&string("Saint Lüke's Hospital"), &string("St Luke")]
    );
    assert_eq!(
        values(&r, "name")[0],
        &IndexValue::String {
            normalized: "saint luke's hospital".into(),
            exact: "Saint Lüke's Hospital".into()
        }
    );
    assert_eq!(
        values(&r, "partof"),
        [&reference(
            "Organization",
            "parent-org",
            "Organization/parent-org"
        )]
    );
    let r = rows(&load("handmade-PractitionerRole.json"));
    assert_eq!(
        values(&r, "practitioner"),
        [&reference(
            "Practitioner",
            "practitioner-1",
            "Practitioner/practitioner-1"
        )]
    );
    assert_eq!(values(&r, "phone"), [&token(None, "555-0101", None)]);
    let r = rows(&load("handmade-AuditEvent.json"));
    assert_eq!(
        values(&r, "patient"),
        [&reference("Patient", "example", "Patient/example")]
    );
    assert_eq!(values(&r, "date"), [&date("2026-02-03T03:05:06.789Z")]);
}

/// The server calls `extract` from tokio worker threads: the engine's futures are driven
/// by a local `block_on` and need no runtime, and must not conflict with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_tokio_runtime() {
    let patient = load("uscore-Patient-example.json");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = patient.clone();
            tokio::spawn(async move { extract(&p, &ExtractOptions::default()).map(|r| r.len()) })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.await.ok().and_then(Result::ok),
            Some(rows(&patient).len())
        );
    }
}

/// Every branch of every expression of all 146 types is evaluated: the resource has each
/// element the expressions step into (with meaningless content), so no branch is skipped.
#[test]
fn every_expression_of_every_type_evaluates() {
    let registry = Registry::get();
    for t in registry.resource_types() {
        let mut resource = json!({"resourceType": t, "id": "x"});
        for p in registry.params_for(t) {
            for branch in p.expression.split('|') {
                let branch = branch.trim().trim_start_matches('(');
                let rest = branch
                    .strip_prefix(t.as_str())
                    .or_else(|| branch.strip_prefix("Resource"))
                    .and_then(|r| r.strip_prefix('.'));
                if let Some(rest) = rest {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    if !name.is_empty() && name != "id" {
                        resource[name.as_str()] =
                            json!([{"reference": "Patient/1", "value": "v", "start": "2026"}]);
                        resource[format!("{name}Quantity")] = json!({"value": 1});
                        resource[format!("{name}DateTime")] = json!("2026-01-01");
                    }
                }
            }
        }
        let result = extract(&resource, &ExtractOptions::default());
        assert!(result.is_ok(), "{t}: {result:?}");
    }
}
