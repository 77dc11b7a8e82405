//! Parse-level tests against a small in-test registry: every value type,
//! prefix, modifier, escapes, chains, `_has`, result parameters, strict vs
//! lenient unknowns, malformed values, the US Core searches, self-link
//! round trips, and a no-panic sweep over odd inputs.

use crate::*;
use fhir_primitives::DateTimePrecision;

struct TestLookup;

const TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Observation",
    "CarePlan",
    "CareTeam",
    "Goal",
    "QuestionnaireResponse",
    "Questionnaire",
    "Group",
    "Device",
    "Location",
    "RelatedPerson",
    "Provenance",
    "AuditEvent",
    "RiskAssessment",
    "ValueSet",
    "Encounter",
];

fn reference(targets: &[&str]) -> ParamInfo {
    ParamInfo {
        param_type: ParamType::Reference,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        components: Vec::new(),
    }
}

impl ParamLookup for TestLookup {
    fn lookup(&self, rt: &str, code: &str) -> Option<ParamInfo> {
        use ParamType::*;
        let t = |p| Some(ParamInfo::of(p));
        match code {
            "_id" | "_tag" | "_security" => return t(Token),
            "_lastUpdated" => return t(Date),
            "_profile" | "_source" => return t(Uri),
            _ => {}
        }
        match (rt, code) {
            ("Patient", "identifier" | "gender") => t(Token),
            ("Patient", "name" | "family" | "given") => t(String),
            ("Patient", "birthdate") => t(Date),
            ("Patient", "organization") => Some(reference(&["Organization"])),
            ("Patient", "general-practitioner") => Some(reference(&[
                "Practitioner",
                "Organization",
                "PractitionerRole",
            ])),
            ("Patient", "link") => Some(reference(&["Patient", "RelatedPerson"])),
            ("Practitioner", "identifier") => t(Token),
            ("Practitioner", "name") => t(String),
            ("Organization", "name") => t(String),
            ("Organization", "partof") => Some(reference(&["Organization"])),
            ("Observation", "code" | "status" | "category") => t(Token),
            ("Observation", "date") => t(Date),
            ("Observation", "value-quantity") => t(Quantity),
            ("Observation", "value-string") => t(String),
            ("Observation", "patient") => Some(reference(&["Patient"])),
            ("Observation", "subject") => {
                Some(reference(&["Patient", "Group", "Device", "Location"]))
            }
            ("Observation", "focus") => Some(reference(&[])),
            ("Observation", "code-value-quantity") => Some(ParamInfo {
                param_type: Composite,
                targets: vec![],
                components: vec![("code".into(), Token), ("value-quantity".into(), Quantity)],
            }),
            ("Observation", "code-value-date") => Some(ParamInfo {
                param_type: Composite,
                targets: vec![],
                components: vec![("code".into(), Token), ("value-date".into(), Date)],
            }),
            ("CarePlan", "category" | "status") => t(Token),
            ("CarePlan", "date") => t(Date),
            ("CarePlan", "patient") => Some(reference(&["Patient"])),
            ("CarePlan", "subject") => Some(reference(&["Patient", "Group"])),
            ("CarePlan", "goal") => Some(reference(&["Goal"])),
            ("CarePlan", "care-team") => Some(reference(&["CareTeam"])),
            ("Goal", "lifecycle-status" | "description") => t(Token),
            ("Goal", "target-date") => t(Date),
            ("Goal", "patient") => Some(reference(&["Patient"])),
            ("QuestionnaireResponse", "status") => t(Token),
            ("QuestionnaireResponse", "authored") => t(Date),
            ("QuestionnaireResponse", "patient") => Some(reference(&["Patient"])),
            ("QuestionnaireResponse", "questionnaire") => Some(reference(&["Questionnaire"])),
            ("CareTeam", "status" | "role") => t(Token),
            ("CareTeam", "patient") => Some(reference(&["Patient"])),
            ("CareTeam", "participant") => Some(reference(&[
                "Practitioner",
                "PractitionerRole",
                "Patient",
                "Organization",
                "CareTeam",
                "RelatedPerson",
            ])),
            ("Provenance", "target") => Some(reference(&[])),
            ("AuditEvent", "entity") => Some(reference(&[])),
            ("AuditEvent", "agent-name") => t(String),
            ("RiskAssessment", "probability") => t(Number),
            ("ValueSet", "url") => t(Uri),
            ("Location", "near") => t(Special),
            _ => None,
        }
    }

    fn is_resource_type(&self, name: &str) -> bool {
        TYPES.contains(&name)
    }
}

/// Split `a=b&c=d` without percent-decoding (test inputs contain no `%`/`+`).
fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

fn ok(rt: &str, q: &str) -> SearchRequest {
    match parse(pairs(q), rt, &TestLookup, false) {
        Ok(r) => {
            round_trip(&r);
            r
        }
        Err(e) => panic!("{rt}?{q}: unexpected errors {e:?}"),
    }
}

fn errs(rt: &str, q: &str) -> Vec<SearchError> {
    match parse(pairs(q), rt, &TestLookup, false) {
        Ok(r) => panic!("{rt}?{q}: expected an error, got {r:?}"),
        Err(e) => e,
    }
}

/// The self link parses back to the same filters and result parameters.
fn round_trip(r: &SearchRequest) {
    let link = self_link_params(r);
    let again = parse(link.clone(), &r.resource_type, &TestLookup, true)
        .unwrap_or_else(|e| panic!("self link {link:?} does not parse: {e:?}"));
    let mut expected = r.clone();
    expected.unknown.clear();
    assert_eq!(again, expected, "self link {link:?}");
}

fn single(r: &SearchRequest) -> (&ParamRef, &[Value]) {
    assert_eq!(r.filters.len(), 1, "{r:?}");
    (&r.filters[0].param, &r.filters[0].values)
}

fn direct(code: &str, t: ParamType, m: Option<Modifier>) -> ParamRef {
    ParamRef::Direct {
        code: code.into(),
        param_type: t,
        modifier: m,
    }
}

fn tok(system: TokenSystem, code: Option<&str>) -> Value {
    Value::Token(TokenValue {
        system,
        code: code.map(str::to_string),
    })
}

fn sys(s: &str) -> TokenSystem {
    TokenSystem::Is(s.to_string())
}

// ---------------------------------------------------------------- string

#[test]
fn string_values_and_modifiers() {
    let cases: &[(&str, Option<Modifier>, &[&str])] = &[
        ("name=peter", None, &["peter"]),
        ("name:exact=Peter", Some(Modifier::Exact), &["Peter"]),
        ("name:contains=et", Some(Modifier::Contains), &["et"]),
        ("name=a,b", None, &["a", "b"]),
        ("name=a\\,b", None, &["a,b"]),
        ("name=a\\|b\\$c\\\\d", None, &["a|b$c\\d"]),
        ("name=a|b$c", None, &["a|b$c"]),
        ("name=Müller", None, &["Müller"]),
    ];
    for (q, m, want) in cases {
        let r = ok("Patient", q);
        let (p, v) = single(&r);
        assert_eq!(p, &direct("name", ParamType::String, m.clone()), "{q}");
        let want: Vec<Value> = want.iter().map(|s| Value::String(s.to_string())).collect();
        assert_eq!(v, want.as_slice(), "{q}");
    }
}

#[test]
fn string_bad_modifiers() {
    for q in [
        "name:text=x",
        "name:not=x",
        "name:below=x",
        "name:=x",
        "name:Patient=x",
    ] {
        let e = errs("Patient", q);
        assert_eq!(e.len(), 1, "{q}");
        assert!(e[0].param.starts_with("name:"), "{q}: {e:?}");
    }
}

// ---------------------------------------------------------------- token

#[test]
fn token_forms() {
    let cases: &[(&str, Value)] = &[
        ("gender=male", tok(TokenSystem::Any, Some("male"))),
        (
            "identifier=http://hospital.smarthealthit.org|1032702",
            tok(sys("http://hospital.smarthealthit.org"), Some("1032702")),
        ),
        (
            "identifier=|1032702",
            tok(TokenSystem::NoSystem, Some("1032702")),
        ),
        ("identifier=urn:oid:1.2.3|", tok(sys("urn:oid:1.2.3"), None)),
        ("identifier=a\\|b|c", tok(sys("a|b"), Some("c"))),
        ("identifier=s|c\\,d", tok(sys("s"), Some("c,d"))),
        ("_tag=http://t|x", tok(sys("http://t"), Some("x"))),
    ];
    for (q, want) in cases {
        let r = ok("Patient", q);
        assert_eq!(single(&r).1, std::slice::from_ref(want), "{q}");
    }
}

#[test]
fn token_modifiers() {
    let r = ok("Patient", "gender:not=male");
    assert_eq!(
        single(&r),
        (
            &direct("gender", ParamType::Token, Some(Modifier::Not)),
            &[tok(TokenSystem::Any, Some("male"))][..]
        )
    );
    let r = ok("Observation", "code:text=blood pressure");
    assert_eq!(single(&r).1, &[Value::String("blood pressure".into())]);
    let r = ok(
        "Patient",
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
    );
    assert_eq!(
        single(&r).1,
        &[Value::OfType {
            system: "http://terminology.hl7.org/CodeSystem/v2-0203".into(),
            code: "MR".into(),
            value: "446053".into(),
        }]
    );
    let r = ok("Patient", "gender:missing=true");
    assert_eq!(single(&r).1, &[Value::Missing(true)]);
}

#[test]
fn token_errors() {
    let cases = [
        "identifier=|",
        "identifier=a|b|c",
        "identifier=a,,b",
        "identifier:of-type=a|b",
        "identifier:of-type=a||c",
        "identifier:of-type=a|b|c|d",
        "code:in=http://vs",
        "code:not-in=http://vs",
        "code:above=http://s|c",
        "code:below=http://s|c",
        "code:exact=x",
        "code:foo=x",
        "code:missing=maybe",
        "code:missing=TRUE",
    ];
    for q in cases {
        let rt = if q.starts_with("identifier") {
            "Patient"
        } else {
            "Observation"
        };
        let e = errs(rt, q);
        let (name, value) = q.split_once('=').unwrap();
        assert!(e.iter().all(|e| e.param == name), "{q}: {e:?}");
        // value errors quote the value; modifier errors name the modifier
        assert!(
            e.iter()
                .all(|e| e.message.contains(value) || name.contains(':')),
            "{q}: {e:?}"
        );
    }
}

#[test]
fn unsupported_modifier_is_an_error_even_lenient_and_names_it() {
    let e = errs("Observation", "code:in=http://vs");
    assert_eq!(e[0].param, "code:in");
    assert!(e[0].message.contains(":in"), "{e:?}");
}

// ---------------------------------------------------------------- date

#[test]
fn date_prefixes_and_precisions() {
    let cases: &[(&str, Prefix, &str, DateTimePrecision, bool)] = &[
        (
            "birthdate=1974-12-25",
            Prefix::Eq,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=eq1974",
            Prefix::Eq,
            "1974",
            DateTimePrecision::Year,
            false,
        ),
        (
            "birthdate=ne1974-12",
            Prefix::Ne,
            "1974-12",
            DateTimePrecision::Month,
            false,
        ),
        (
            "birthdate=gt1974-12-25",
            Prefix::Gt,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=lt1974-12-25",
            Prefix::Lt,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=ge1974-12-25",
            Prefix::Ge,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=le1974-12-25",
            Prefix::Le,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=sa1974-12-25",
            Prefix::Sa,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=eb1974-12-25",
            Prefix::Eb,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "birthdate=ap1974-12-25",
            Prefix::Ap,
            "1974-12-25",
            DateTimePrecision::Day,
            false,
        ),
        (
            "_lastUpdated=gt2026-01-01T10:00:00Z",
            Prefix::Gt,
            "2026-01-01T10:00:00Z",
            DateTimePrecision::Second,
            true,
        ),
        (
            "_lastUpdated=le2026-01-01T10:00:00.250+01:00",
            Prefix::Le,
            "2026-01-01T10:00:00.250+01:00",
            DateTimePrecision::Fraction(3),
            true,
        ),
        (
            "_lastUpdated=2026-01-01T10:00",
            Prefix::Eq,
            "2026-01-01T10:00",
            DateTimePrecision::Minute,
            false,
        ),
    ];
    for (q, prefix, raw, precision, zone) in cases {
        let r = ok("Patient", q);
        let [Value::Date(d)] = single(&r).1 else {
            panic!("{q}: {r:?}")
        };
        assert_eq!(
            (
                d.prefix,
                d.raw.as_str(),
                d.date.precision(),
                d.date.offset().is_some()
            ),
            (*prefix, *raw, *precision, *zone),
            "{q}"
        );
    }
    let r = ok("Patient", "birthdate=ge1970,lt1960");
    assert_eq!(single(&r).1.len(), 2);
    let r = ok("Patient", "birthdate:missing=false");
    assert_eq!(single(&r).1, &[Value::Missing(false)]);
}

#[test]
fn date_errors() {
    for q in [
        "birthdate=2026-13-01",
        "birthdate=zz2026",
        "birthdate=2026-02-30",
        "birthdate=26",
        "birthdate=2026-01-01T25:00",
        "birthdate=today",
        "birthdate=2026-01-01,nope",
        "birthdate:exact=2026",
        "birthdate:missing=maybe",
    ] {
        let e = errs("Patient", q);
        let (name, value) = q.split_once('=').unwrap();
        assert_eq!(e.len(), 1, "{q}: {e:?}");
        assert_eq!(e[0].param, name, "{q}");
        if !name.contains(":exact") {
            let bad = value.rsplit(',').next().unwrap();
            assert!(e[0].message.contains(bad), "{q}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------- number

#[test]
fn numbers_keep_text_and_precision() {
    let cases: &[(&str, Prefix, &str, u32, i32)] = &[
        ("probability=100", Prefix::Eq, "100", 3, 0),
        ("probability=100.00", Prefix::Eq, "100.00", 5, -2),
        ("probability=gt0.8", Prefix::Gt, "0.8", 1, -1),
        ("probability=lt1e-1", Prefix::Lt, "1e-1", 1, -1),
        ("probability=ap-2.50", Prefix::Ap, "-2.50", 3, -2),
    ];
    for (q, prefix, raw, sig, scale) in cases {
        let r = ok("RiskAssessment", q);
        let [Value::Number(n)] = single(&r).1 else {
            panic!("{q}")
        };
        assert_eq!(
            (n.prefix, n.raw.as_str(), n.significant_digits, n.scale),
            (*prefix, *raw, *sig, *scale),
            "{q}"
        );
    }
    for q in [
        "probability=1.2.3",
        "probability=zz5",
        "probability=five",
        "probability=1,x",
        "probability:missing=1",
        "probability:above=1",
    ] {
        let e = errs("RiskAssessment", q);
        assert_eq!(e.len(), 1, "{q}");
    }
}

// ---------------------------------------------------------------- quantity

#[test]
fn quantities() {
    let r = ok(
        "Observation",
        "value-quantity=le5.4|http://unitsofmeasure.org|mg,5.4||mg,ap5.40",
    );
    let v = single(&r).1;
    let Value::Quantity(q0) = &v[0] else { panic!() };
    assert_eq!(q0.number.prefix, Prefix::Le);
    assert_eq!(q0.system.as_deref(), Some("http://unitsofmeasure.org"));
    assert_eq!(q0.code.as_deref(), Some("mg"));
    let Value::Quantity(q1) = &v[1] else { panic!() };
    assert_eq!(
        (q1.system.as_deref(), q1.code.as_deref()),
        (None, Some("mg"))
    );
    let Value::Quantity(q2) = &v[2] else { panic!() };
    assert_eq!(
        (q2.number.prefix, q2.number.scale, &q2.code),
        (Prefix::Ap, -2, &None)
    );
    for q in [
        "value-quantity=mg",
        "value-quantity=5|mg",
        "value-quantity=5|http://u|",
        "value-quantity=zz5||mg",
        "value-quantity=1.2.3||mg",
        "value-quantity:missing=yes",
    ] {
        assert_eq!(errs("Observation", q).len(), 1, "{q}");
    }
    let r = ok("Observation", "value-quantity:missing=true");
    assert_eq!(single(&r).1, &[Value::Missing(true)]);
}

// ---------------------------------------------------------------- reference

#[test]
fn references() {
    let id = |s: &str| Value::Reference(ReferenceValue::Id(s.into()));
    let typed = |t: &str, i: &str| {
        Value::Reference(ReferenceValue::Typed {
            resource_type: t.into(),
            id: i.into(),
            version: None,
        })
    };
    let cases: &[(&str, &str, Value)] = &[
        ("CarePlan", "patient=123", id("123")),
        ("CarePlan", "patient=Patient/123", typed("Patient", "123")),
        (
            "CarePlan",
            "patient=Patient/123/_history/2",
            Value::Reference(ReferenceValue::Typed {
                resource_type: "Patient".into(),
                id: "123".into(),
                version: Some("2".into()),
            }),
        ),
        (
            "CarePlan",
            "patient=http://example.org/fhir/Patient/123",
            Value::Reference(ReferenceValue::Url {
                url: "http://example.org/fhir/Patient/123".into(),
                resource_type: Some("Patient".into()),
                id: Some("123".into()),
            }),
        ),
        (
            "CarePlan",
            "patient=http://example.org/fhir/Patient/123/_history/4",
            Value::Reference(ReferenceValue::Url {
                url: "http://example.org/fhir/Patient/123/_history/4".into(),
                resource_type: Some("Patient".into()),
                id: Some("123".into()),
            }),
        ),
        (
            "CarePlan",
            "patient=urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            Value::Reference(ReferenceValue::Url {
                url: "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0".into(),
                resource_type: None,
                id: None,
            }),
        ),
        ("Observation", "subject:Patient=123", id("123")),
        (
            "Observation",
            "subject:Patient=Patient/123",
            typed("Patient", "123"),
        ),
        (
            "Patient",
            "general-practitioner:identifier=http://hl7.org/fhir/sid/us-npi|9941339108",
            tok(sys("http://hl7.org/fhir/sid/us-npi"), Some("9941339108")),
        ),
        ("CarePlan", "patient:missing=true", Value::Missing(true)),
    ];
    for (rt, q, want) in cases {
        let r = ok(rt, q);
        assert_eq!(single(&r).1, std::slice::from_ref(want), "{q}");
    }
    let r = ok("Observation", "subject:Patient=123");
    assert_eq!(
        single(&r).0,
        &direct(
            "subject",
            ParamType::Reference,
            Some(Modifier::Type("Patient".into()))
        )
    );
}

#[test]
fn reference_errors() {
    for (rt, q) in [
        ("CarePlan", "patient=Nope/123"),
        ("CarePlan", "patient=Patient/"),
        ("CarePlan", "patient=Patient/1/2"),
        ("CarePlan", "patient=bad id"),
        ("CarePlan", "patient=a_b"),
        ("Observation", "subject:Patient=Group/1"),
        ("Observation", "subject:Organization=1"),
        ("Observation", "subject:above=Patient/1"),
        ("Observation", "subject:below=Patient/1"),
        ("Observation", "subject:text=x"),
        ("CarePlan", "patient:missing=no"),
    ] {
        let e = errs(rt, q);
        let (name, _) = q.split_once('=').unwrap();
        assert!(e.iter().all(|e| e.param == name), "{q}: {e:?}");
    }
}

// ---------------------------------------------------------------- uri

#[test]
fn uris() {
    let cases: &[(&str, Option<Modifier>)] = &[
        ("url=http://acme.org/fhir/ValueSet/123", None),
        ("url:below=http://acme.org/fhir/", Some(Modifier::Below)),
        (
            "url:above=http://acme.org/fhir/ValueSet/123/_history/5",
            Some(Modifier::Above),
        ),
    ];
    for (q, m) in cases {
        let r = ok("ValueSet", q);
        let (p, v) = single(&r);
        assert_eq!(p, &direct("url", ParamType::Uri, m.clone()), "{q}");
        let (_, val) = q.split_once('=').unwrap();
        assert_eq!(v, &[Value::Uri(val.into())], "{q}");
    }
    let r = ok(
        "Patient",
        "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient",
    );
    assert!(matches!(single(&r).1, [Value::Uri(_)]));
    assert_eq!(errs("ValueSet", "url:exact=x").len(), 1);
    assert_eq!(errs("ValueSet", "url:missing=x").len(), 1);
}

// ---------------------------------------------------------------- composite

#[test]
fn composites() {
    let r = ok(
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$gt140||mm[Hg],8462-4$lt90",
    );
    let v = single(&r).1;
    let Value::Composite(c0) = &v[0] else {
        panic!()
    };
    assert_eq!(c0[0], tok(sys("http://loinc.org"), Some("8480-6")));
    let Value::Quantity(q) = &c0[1] else { panic!() };
    assert_eq!(
        (q.number.prefix, q.code.as_deref()),
        (Prefix::Gt, Some("mm[Hg]"))
    );
    let Value::Composite(c1) = &v[1] else {
        panic!()
    };
    assert_eq!(c1[0], tok(TokenSystem::Any, Some("8462-4")));
    let r = ok("Observation", "code-value-date=a\\$b$ge2026-01");
    let [Value::Composite(c)] = single(&r).1 else {
        panic!()
    };
    assert_eq!(c[0], tok(TokenSystem::Any, Some("a$b")));
    assert!(matches!(&c[1], Value::Date(d) if d.prefix == Prefix::Ge));
    let r = ok("Observation", "code-value-quantity:missing=true");
    assert_eq!(single(&r).1, &[Value::Missing(true)]);
    for q in [
        "code-value-quantity=8480-6",
        "code-value-quantity=8480-6$1$2",
        "code-value-quantity=$1",
        "code-value-quantity=8480-6$zz1",
        "code-value-date=x$2026-13",
        "code-value-quantity:exact=a$1",
    ] {
        assert_eq!(errs("Observation", q).len(), 1, "{q}");
    }
}

// ---------------------------------------------------------------- chains

#[test]
fn chains() {
    let r = ok("Observation", "subject:Patient.name=peter");
    assert_eq!(
        single(&r),
        (
            &ParamRef::Chain {
                code: "subject".into(),
                target_type: "Patient".into(),
                then: Box::new(direct("name", ParamType::String, None)),
            },
            &[Value::String("peter".into())][..]
        )
    );
    // single target: no :Type needed, the type is resolved
    let r = ok("Observation", "patient.name=peter");
    let ParamRef::Chain { target_type, .. } = single(&r).0 else {
        panic!()
    };
    assert_eq!(target_type, "Patient");
    // two levels
    let r = ok("Observation", "patient.organization.name=x");
    assert_eq!(
        single(&r).0,
        &ParamRef::Chain {
            code: "patient".into(),
            target_type: "Patient".into(),
            then: Box::new(ParamRef::Chain {
                code: "organization".into(),
                target_type: "Organization".into(),
                then: Box::new(direct("name", ParamType::String, None)),
            }),
        }
    );
    let r = ok("Observation", "subject:Patient.organization.name:exact=x");
    assert_eq!(
        single(&r).0.leaf(),
        &direct("name", ParamType::String, Some(Modifier::Exact))
    );
    // chained value parsed by the leaf type
    let r = ok("Observation", "patient.birthdate=ge1970");
    assert!(matches!(single(&r).1, [Value::Date(_)]));
    assert_eq!(errs("Observation", "patient.birthdate=1970-13").len(), 1);
    let r = ok("Observation", "focus:Patient.identifier=s|v");
    assert!(matches!(single(&r).1, [Value::Token(_)]));
}

#[test]
fn chain_errors() {
    for q in [
        // ambiguous: subject may be Patient, Group, Device, Location
        "subject.name=peter",
        "subject.organization.name=x",
        // any-type reference needs :Type
        "focus.name=x",
        "code.name=x",
        "subject:Nope.name=x",
        "subject:Organization.name=x",
        "patient.=x",
        "patient.name:foo=x",
    ] {
        let e = errs("Observation", q);
        assert_eq!(e.len(), 1, "{q}: {e:?}");
        assert_eq!(e[0].param, q.split_once('=').unwrap().0);
    }
    let e = errs("Observation", "subject.name=peter");
    assert!(e[0].message.contains("ambiguous"), "{e:?}");
    // deep nesting is bounded
    let deep = format!("patient.{}name=x", "link:Patient.".repeat(12));
    assert_eq!(errs("Observation", &deep).len(), 1);
}

#[test]
fn the_registry_sets_how_deep_chains_nest() {
    struct Shallow;
    impl ParamLookup for Shallow {
        fn lookup(&self, rt: &str, code: &str) -> Option<ParamInfo> {
            TestLookup.lookup(rt, code)
        }
        fn is_resource_type(&self, name: &str) -> bool {
            TestLookup.is_resource_type(name)
        }
        fn max_chain_depth(&self) -> usize {
            1
        }
    }
    let one = "patient.name=x";
    let two = "patient.link:Patient.name=x";
    assert!(parse(pairs(one), "Observation", &Shallow, false).is_ok());
    let e = parse(pairs(two), "Observation", &Shallow, false).unwrap_err();
    assert!(e[0].message.contains("at most 1 levels"), "{e:?}");
    assert!(parse(pairs(two), "Observation", &TestLookup, false).is_ok());
}

#[test]
fn chain_to_unknown_parameter_is_unknown() {
    let r = ok("Observation", "patient.nope=x&unknown.x=y");
    assert!(r.filters.is_empty());
    assert_eq!(r.unknown.len(), 2);
    assert!(r.unknown.iter().all(|u| u.reason == IgnoredReason::Unknown));
}

// ---------------------------------------------------------------- _has

#[test]
fn has() {
    let r = ok("Patient", "_has:Observation:patient:code=1234-5");
    assert_eq!(
        single(&r),
        (
            &ParamRef::Has {
                target_type: "Observation".into(),
                reference_param: "patient".into(),
                then: Box::new(direct("code", ParamType::Token, None)),
            },
            &[tok(TokenSystem::Any, Some("1234-5"))][..]
        )
    );
    let r = ok(
        "Patient",
        "_has:Observation:patient:_has:AuditEvent:entity:agent-name=MyUserId",
    );
    let ParamRef::Has { then, .. } = single(&r).0 else {
        panic!()
    };
    assert!(matches!(
        then.as_ref(),
        ParamRef::Has { target_type, reference_param, .. }
            if target_type == "AuditEvent" && reference_param == "entity"
    ));
    let r = ok("Patient", "_has:Observation:subject:code:text=bp");
    assert_eq!(
        single(&r).0.leaf(),
        &direct("code", ParamType::Token, Some(Modifier::Text))
    );
    let r = ok("Patient", "_has:Observation:patient:value-quantity=gt5");
    assert!(matches!(single(&r).1, [Value::Quantity(_)]));
    let r = ok("Patient", "_has:Observation:patient:nope=1");
    assert_eq!(r.unknown[0].reason, IgnoredReason::Unknown);
    for q in [
        "_has=x",
        "_has:Observation=x",
        "_has:Observation:patient=x",
        "_has:Nope:patient:code=x",
        "_has:Observation:code:code=x",
        "_has:CarePlan:goal:status=x",
        "_has:Observation:patient:=x",
        "_has:Observation:patient:date=2026-13",
    ] {
        assert_eq!(errs("Patient", q).len(), 1, "{q}");
    }
}

// ---------------------------------------------------------------- result params

#[test]
fn count() {
    assert_eq!(ok("Patient", "_count=10").count, Some(10));
    assert_eq!(ok("Patient", "_count=0").count, Some(0));
    assert_eq!(ok("Patient", "_count=99999999999999").count, Some(u32::MAX));
    for q in [
        "_count=-1",
        "_count=ten",
        "_count=1.0",
        "_count=+5",
        "_count= 5",
        "_count=5&_count=6",
        "_count:x=5",
    ] {
        let e = errs("Patient", q);
        assert_eq!(e.len(), 1, "{q}");
        assert!(e[0].param.starts_with("_count"), "{q}");
    }
    let e = errs("Patient", "_count=-1");
    assert!(e[0].message.contains("-1"));
}

#[test]
fn sort() {
    let r = ok("Patient", "_sort=family,-birthdate,_id&_sort=-_lastUpdated");
    let keys: Vec<(&str, bool, ParamType)> = r
        .sort
        .iter()
        .map(|k| (k.code.as_str(), k.descending, k.param_type))
        .collect();
    assert_eq!(
        keys,
        [
            ("family", false, ParamType::String),
            ("birthdate", true, ParamType::Date),
            ("_id", false, ParamType::Token),
            ("_lastUpdated", true, ParamType::Date),
        ]
    );
    for q in [
        "_sort=nonexistent",
        "_sort=family,",
        "_sort=-",
        "_sort=name:exact",
        "_sort=family,,given",
        "_sort:desc=family",
    ] {
        assert_eq!(errs("Patient", q).len(), 1, "{q}");
    }
    assert_eq!(errs("Observation", "_sort=code-value-quantity").len(), 1);
    assert_eq!(errs("Location", "_sort=near").len(), 1);
    let e = errs("Patient", "_sort=nonexistent");
    assert_eq!(e[0].param, "_sort");
    assert!(e[0].message.contains("nonexistent"));
}

#[test]
fn include_and_revinclude() {
    let r = ok(
        "CarePlan",
        "_include=CarePlan:patient&_include=CarePlan:subject:Patient&_include:iterate=CarePlan:goal&_include:recurse=Goal:patient&_include=*&_include=CarePlan:*&_revinclude=Provenance:target&_revinclude:iterate=Observation:patient",
    );
    let inc = |s: Option<&str>, p: Option<&str>, t: Option<&str>, it: bool| Include {
        source_type: s.map(Into::into),
        param: p.map(Into::into),
        target_type: t.map(Into::into),
        iterate: it,
    };
    assert_eq!(
        r.include,
        [
            inc(Some("CarePlan"), Some("patient"), None, false),
            inc(Some("CarePlan"), Some("subject"), Some("Patient"), false),
            inc(Some("CarePlan"), Some("goal"), None, true),
            inc(Some("Goal"), Some("patient"), None, true),
            inc(None, None, None, false),
            inc(Some("CarePlan"), None, None, false),
        ]
    );
    assert_eq!(
        r.revinclude,
        [
            inc(Some("Provenance"), Some("target"), None, false),
            inc(Some("Observation"), Some("patient"), None, true),
        ]
    );
    for q in [
        "_include=Nope:x",
        "_include=CarePlan:nope",
        "_include=CarePlan:status",
        "_include=CarePlan",
        "_include=CarePlan:subject:Nope",
        "_include=CarePlan:subject:Device",
        "_include=CarePlan:*:Patient",
        "_include=Goal:patient",
        "_include=CarePlan:patient,CarePlan:goal",
        "_include:foo=CarePlan:patient",
        "_include=a:b:c:d",
        "_revinclude=Observation:code",
        "_revinclude=Goal:patient",
    ] {
        let e = errs("CarePlan", q);
        assert_eq!(e.len(), 1, "{q}");
        assert!(e[0].param.starts_with("_include") || e[0].param.starts_with("_revinclude"));
    }
}

#[test]
fn summary_elements_total_contained_page() {
    for (v, s) in [
        ("true", Summary::True),
        ("text", Summary::Text),
        ("data", Summary::Data),
        ("count", Summary::Count),
        ("false", Summary::False),
    ] {
        assert_eq!(ok("Patient", &format!("_summary={v}")).summary, Some(s));
    }
    for (v, t) in [
        ("none", TotalMode::None),
        ("estimate", TotalMode::Estimate),
        ("accurate", TotalMode::Accurate),
    ] {
        assert_eq!(ok("Patient", &format!("_total={v}")).total, Some(t));
    }
    let r = ok("Patient", "_elements=identifier,name,Patient.birthDate");
    assert_eq!(
        r.elements.as_deref(),
        Some(
            &[
                "identifier".to_string(),
                "name".into(),
                "Patient.birthDate".into()
            ][..]
        )
    );
    let r = ok(
        "Patient",
        "_contained=both&_containedType=contained&_page=abc.def-123",
    );
    assert_eq!(r.contained, Some(ContainedMode::Both));
    assert_eq!(r.contained_type, Some(ContainedType::Contained));
    assert_eq!(r.cursor.as_deref(), Some("abc.def-123"));
    for q in [
        "_summary=yes",
        "_summary=TRUE",
        "_total=all",
        "_elements=a,,b",
        "_elements=1abc",
        "_elements=a b",
        "_contained=maybe",
        "_containedType=x",
        "_page=a&_page=b",
        "_summary=true&_summary=false",
        "_summary:x=true",
    ] {
        assert_eq!(errs("Patient", q).len(), 1, "{q}");
    }
}

#[test]
fn format_and_pretty_are_dropped() {
    let r = ok("Patient", "_format=json&_pretty=true&name=x");
    assert!(r.unknown.is_empty());
    assert_eq!(
        self_link_params(&r),
        [("name".to_string(), "x".to_string())]
    );
}

// ---------------------------------------------------------------- unknowns

#[test]
fn lenient_unknowns_are_reported() {
    let r = ok(
        "Patient",
        "foo=bar&name=x&_text=hello&_filter=name eq x&name=&_content=a&nope:exact=1",
    );
    assert_eq!(r.filters.len(), 1);
    let got: Vec<(&str, &str, IgnoredReason)> = r
        .unknown
        .iter()
        .map(|u| (u.name.as_str(), u.value.as_str(), u.reason))
        .collect();
    assert_eq!(
        got,
        [
            ("foo", "bar", IgnoredReason::Unknown),
            ("_text", "hello", IgnoredReason::Unsupported),
            ("_filter", "name eq x", IgnoredReason::Unsupported),
            ("name", "", IgnoredReason::EmptyValue),
            ("_content", "a", IgnoredReason::Unsupported),
            ("nope:exact", "1", IgnoredReason::Unknown),
        ]
    );
    let r = ok("Location", "near=42.25|-83.69|10|km");
    assert_eq!(r.unknown[0].reason, IgnoredReason::Unsupported);
    // an unknown parameter with an empty value is just ignored
    let r = ok("Patient", "foo=&_count=");
    assert!(r
        .unknown
        .iter()
        .all(|u| u.reason == IgnoredReason::EmptyValue));
    assert_eq!(r.count, None);
}

#[test]
fn strict_unknowns_are_errors() {
    let q = pairs("foo=bar&name=x&near=1&name=&_text=t");
    let e = parse(q.clone(), "Patient", &TestLookup, true).unwrap_err();
    let names: Vec<&str> = e.iter().map(|e| e.param.as_str()).collect();
    assert_eq!(names, ["foo", "near", "_text"]);
    assert!(e[0].message.contains("bar"));
    // empty values stay ignored in strict mode
    let r = parse(pairs("name=&gender=male"), "Patient", &TestLookup, true).unwrap();
    assert_eq!(r.filters.len(), 1);
    assert_eq!(r.unknown[0].reason, IgnoredReason::EmptyValue);
}

#[test]
fn all_errors_are_collected() {
    let e = errs(
        "Patient",
        "birthdate=2026-13-01&_count=-1&_sort=nonexistent&_include=Nope:x&gender:missing=maybe&name=ok",
    );
    let names: Vec<&str> = e.iter().map(|e| e.param.as_str()).collect();
    assert_eq!(
        names,
        ["birthdate", "_count", "_sort", "_include", "gender:missing"]
    );
    let e = errs("RiskAssessment", "probability=1.2.3,zz5");
    assert_eq!(e.len(), 2);
}

#[test]
fn unknown_resource_type_is_an_error() {
    let e = parse(pairs("name=x"), "Nope", &TestLookup, false).unwrap_err();
    assert_eq!(e.len(), 1);
}

#[test]
fn repeated_parameters_are_anded() {
    let r = ok("Patient", "birthdate=ge1970&birthdate=lt1980&name=a,b");
    assert_eq!(r.filters.len(), 3);
    assert_eq!(r.filters[2].values.len(), 2);
}

// ---------------------------------------------------------------- US Core

#[test]
fn us_core_careplan() {
    let r = ok(
        "CarePlan",
        "patient=123&category=http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan&status=active&date=ge2026-01-01",
    );
    assert_eq!(r.filters.len(), 4);
    assert_eq!(
        r.filters[0].values,
        [Value::Reference(ReferenceValue::Id("123".into()))]
    );
    assert_eq!(
        r.filters[1].values,
        [tok(
            sys("http://hl7.org/fhir/us/core/CodeSystem/careplan-category"),
            Some("assess-plan")
        )]
    );
    assert_eq!(r.filters[2].values, [tok(TokenSystem::Any, Some("active"))]);
    let [Value::Date(d)] = r.filters[3].values.as_slice() else {
        panic!()
    };
    assert_eq!((d.prefix, d.raw.as_str()), (Prefix::Ge, "2026-01-01"));
    assert!(r.unknown.is_empty());
}

#[test]
fn us_core_goal() {
    let r = ok(
        "Goal",
        "patient=Patient/123&lifecycle-status=active&target-date=gt2026-03-01&description=http://snomed.info/sct|281004",
    );
    assert_eq!(r.filters.len(), 4);
    assert!(matches!(
        &r.filters[0].values[..],
        [Value::Reference(ReferenceValue::Typed { resource_type, id, .. })] if resource_type == "Patient" && id == "123"
    ));
    assert!(matches!(&r.filters[2].values[..], [Value::Date(d)] if d.prefix == Prefix::Gt));
    assert_eq!(
        r.filters[3].values,
        [tok(sys("http://snomed.info/sct"), Some("281004"))]
    );
}

#[test]
fn us_core_questionnaire_response() {
    let r = ok("QuestionnaireResponse", "_id=a,b");
    assert_eq!(
        single(&r),
        (
            &direct("_id", ParamType::Token, None),
            &[
                tok(TokenSystem::Any, Some("a")),
                tok(TokenSystem::Any, Some("b"))
            ][..]
        )
    );
    let r = ok(
        "QuestionnaireResponse",
        "patient=123&authored=ge2026-01&questionnaire=http://loinc.org/q/44249-1&status=completed",
    );
    assert_eq!(r.filters.len(), 4);
    assert!(
        matches!(&r.filters[1].values[..], [Value::Date(d)] if d.date.precision() == DateTimePrecision::Month)
    );
    assert_eq!(
        r.filters[2].values,
        [Value::Reference(ReferenceValue::Url {
            url: "http://loinc.org/q/44249-1".into(),
            resource_type: None,
            id: None
        })]
    );
}

#[test]
fn us_core_careteam() {
    let r = ok("CareTeam", "patient=123&status=active");
    assert_eq!(r.filters.len(), 2);
    let r = ok(
        "CareTeam",
        "patient=123&role=http://snomed.info/sct|223366009",
    );
    assert_eq!(
        r.filters[1].values,
        [tok(sys("http://snomed.info/sct"), Some("223366009"))]
    );
}

#[test]
fn us_core_patient_and_practitioner() {
    let r = ok(
        "Patient",
        "identifier=http://hospital.smarthealthit.org|1032702",
    );
    assert_eq!(
        single(&r).1,
        &[tok(
            sys("http://hospital.smarthealthit.org"),
            Some("1032702")
        )]
    );
    let r = ok("Patient", "name=peter");
    assert_eq!(single(&r).1, &[Value::String("peter".into())]);
    let r = ok("Patient", "birthdate=1974-12-25&name=chalmers");
    assert_eq!(r.filters.len(), 2);
    let r = ok("Patient", "family=chalmers&gender=male");
    assert_eq!(r.filters.len(), 2);
    let r = ok(
        "Practitioner",
        "identifier=http://hl7.org/fhir/sid/us-npi|9941339108",
    );
    assert_eq!(
        single(&r).1,
        &[tok(
            sys("http://hl7.org/fhir/sid/us-npi"),
            Some("9941339108")
        )]
    );
    let r = ok("Practitioner", "name=Henry");
    assert_eq!(single(&r).1, &[Value::String("Henry".into())]);
}

// ---------------------------------------------------------------- self link

#[test]
fn self_link_is_canonical_and_applied_only() {
    let r = ok(
        "Observation",
        "_count=5&foo=1&patient=Patient/1&code=s|a\\,b,x&date=eq2026&_sort=-date&_include=Observation:patient&_summary=data&name=&_page=cur",
    );
    assert_eq!(
        self_link_params(&r),
        [
            ("patient".to_string(), "Patient/1".to_string()),
            ("code".into(), "s|a\\,b,x".into()),
            ("date".into(), "2026".into()),
            ("_sort".into(), "-date".into()),
            ("_count".into(), "5".into()),
            ("_include".into(), "Observation:patient".into()),
            ("_summary".into(), "data".into()),
            ("_page".into(), "cur".into()),
        ]
    );
}

// ---------------------------------------------------------------- robustness

/// A tiny deterministic generator (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }

    fn build(&mut self, parts: &[&str], max: usize) -> String {
        let n = self.next(max + 1);
        (0..n).map(|_| parts[self.next(parts.len())]).collect()
    }
}

/// Mostly well-formed names (direct, chain, `_has`), sometimes noise.
fn structured_name(rng: &mut Lcg, noise: &[&str]) -> String {
    let codes = [
        "name",
        "code",
        "birthdate",
        "value-quantity",
        "code-value-quantity",
        "identifier",
        "_id",
        "_lastUpdated",
        "gender",
        "status",
        "date",
        "url",
        "near",
        "nope",
    ];
    let refs = [
        "patient",
        "subject",
        "link",
        "organization",
        "focus",
        "goal",
        "entity",
    ];
    let types = [
        "Patient",
        "Observation",
        "Organization",
        "Group",
        "AuditEvent",
        "Nope",
    ];
    let mods = [
        "",
        "",
        "",
        ":exact",
        ":missing",
        ":text",
        ":not",
        ":of-type",
        ":Patient",
        ":identifier",
        ":below",
        ":in",
    ];
    let kind = rng.next(5);
    if kind == 4 {
        return rng.build(noise, 6);
    }
    let mut pick = |xs: &[&str]| xs[rng.next(xs.len())].to_string();
    match kind {
        0 => format!("{}{}", pick(&codes), pick(&mods)),
        1 => format!(
            "{}{}.{}{}",
            pick(&refs),
            pick(&mods),
            pick(&codes),
            pick(&mods)
        ),
        2 => format!(
            "_has:{}:{}:{}{}",
            pick(&types),
            pick(&refs),
            pick(&codes),
            pick(&mods)
        ),
        _ => format!(
            "{}:{}.{}.{}",
            pick(&refs),
            pick(&types),
            pick(&refs),
            pick(&codes)
        ),
    }
}

#[test]
fn never_panics_and_applied_requests_round_trip() {
    let names = [
        "name",
        "subject",
        "patient",
        "_has",
        "Observation",
        "Patient",
        ":",
        ".",
        "exact",
        "missing",
        "_include",
        "_revinclude",
        "iterate",
        "_sort",
        "_count",
        "identifier",
        "code-value-quantity",
        "code",
        "value-quantity",
        "birthdate",
        "link",
        "text",
        "of-type",
        "_elements",
        "_summary",
        "_page",
        "é",
        "\\",
        "*",
        "_id",
        "url",
        "below",
        "near",
    ];
    let values = [
        "",
        ",",
        "|",
        "$",
        "\\",
        "ge",
        "2026",
        "-",
        "1.5",
        "e",
        "Patient/1",
        "http://x/Patient/2",
        "true",
        ":",
        "*",
        "ü",
        "T10:00",
        "Z",
        "+01:00",
        "-01",
        "Observation",
        "patient",
        "a",
        "/",
        "_history",
        "0",
        ".",
        "9999999999",
        "count",
    ];
    let good = [
        "peter",
        "ge2026-01",
        "2026-01-01T10:00:00Z",
        "http://s|c",
        "|c",
        "s|",
        "5.4||mg",
        "gt5.4|http://u|mg",
        "Patient/1",
        "123",
        "true",
        "false",
        "c$5",
        "s|c$lt90",
        "a\\,b",
        "s|c|v",
        "http://x/Patient/1",
        "x\\$y$2026",
        "Patient/1/_history/2",
    ];
    let mut rng = Lcg(42);
    let (mut applied, mut chains, mut has) = (0, 0, 0);
    for i in 0..30_000 {
        let n = 1 + rng.next(2);
        let q: Vec<(String, String)> = (0..n)
            .map(|_| {
                let name = structured_name(&mut rng, &names);
                let value = if rng.next(4) == 0 {
                    rng.build(&values, 6)
                } else {
                    let k = 1 + rng.next(2);
                    let items: Vec<&str> = (0..k).map(|_| good[rng.next(good.len())]).collect();
                    items.join(",")
                };
                (name, value)
            })
            .collect();
        let rt = ["Patient", "Observation", "CarePlan"][i % 3];
        let strict = i % 2 == 0;
        let res = parse(q.clone(), rt, &TestLookup, strict);
        if let Ok(r) = res {
            applied += usize::from(!r.filters.is_empty());
            for f in &r.filters {
                match &f.param {
                    ParamRef::Chain { .. } => chains += 1,
                    ParamRef::Has { .. } => has += 1,
                    ParamRef::Direct { .. } => {}
                }
            }
            let link = self_link_params(&r);
            let again = parse(link.clone(), rt, &TestLookup, true);
            let mut expected = r.clone();
            expected.unknown.clear();
            assert_eq!(again, Ok(expected), "{q:?} -> {link:?}");
        }
    }
    eprintln!("applied {applied}, chains {chains}, _has {has}");
    assert!(
        applied > 300 && chains > 20 && has > 10,
        "generator too weak: {applied} {chains} {has}"
    );
}

#[test]
fn canonical_reference_with_version_and_missing_on_chain() {
    let r = ok(
        "QuestionnaireResponse",
        "questionnaire=http://x.org/fhir/Questionnaire/q1|2.0",
    );
    assert_eq!(
        single(&r).1,
        &[Value::Reference(ReferenceValue::Url {
            url: "http://x.org/fhir/Questionnaire/q1|2.0".into(),
            resource_type: Some("Questionnaire".into()),
            id: Some("q1".into()),
        })]
    );
    let r = ok("Observation", "patient.birthdate:missing=true");
    assert_eq!(single(&r).1, &[Value::Missing(true)]);
    assert_eq!(
        self_link_params(&r),
        [(
            "patient:Patient.birthdate:missing".to_string(),
            "true".to_string()
        )]
    );
}

#[test]
fn error_display_names_parameter_and_value() {
    let e = errs("Patient", "birthdate=2026-13-01");
    assert_eq!(
        e[0].to_string(),
        "parameter 'birthdate': '2026-13-01' is not a valid FHIR date/dateTime"
    );
}

#[test]
fn nul_characters_are_errors_not_values() {
    for query in [("name", "a\0b"), ("na\0me", "x"), ("identifier", "\0")] {
        let e = parse([query], "Patient", &TestLookup, false).unwrap_err();
        assert!(e[0].message.contains("NUL"), "{e:?}");
        assert!(
            !e[0].param.contains('\0'),
            "the name is shown escaped: {e:?}"
        );
    }
}
