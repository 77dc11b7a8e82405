//! Unit tests for the walker: every structural, value, binding and
//! narrative check, positive and negative.

use super::*;
use serde_json::json;

fn run(v: Value) -> Vec<Issue> {
    validate(&v)
}

/// (severity, code, expression) of every issue.
fn found(v: Value) -> Vec<(Severity, &'static str, String)> {
    run(v)
        .into_iter()
        .map(|i| (i.severity, i.code, i.expression))
        .collect()
}

fn assert_clean(v: Value) {
    let issues = run(v);
    assert!(issues.is_empty(), "{issues:#?}");
}

/// Exactly one issue, an error with this code at this expression, whose
/// diagnostics contain `needle`.
fn assert_one_error(v: Value, code: &str, expr: &str, needle: &str) {
    let issues = run(v);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let i = &issues[0];
    assert!(i.is_error(), "{i:?}");
    assert_eq!((i.code, i.expression.as_str()), (code, expr), "{i:?}");
    assert!(
        i.diagnostics.contains(needle),
        "{:?} lacks {needle}",
        i.diagnostics
    );
}

fn patient(extra: Value) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": "p1"});
    if let (Some(o), Value::Object(e)) = (p.as_object_mut(), extra) {
        o.extend(e);
    }
    p
}

#[test]
fn root_must_be_a_known_resource() {
    assert_one_error(json!([1]), "structure", "", "JSON object");
    assert_one_error(json!({"id": "x"}), "structure", "", "Missing resourceType");
    assert_one_error(
        json!({"resourceType": 3}),
        "structure",
        "",
        "must be a string",
    );
    assert_one_error(
        json!({"resourceType": "Banana"}),
        "structure",
        "",
        "Unknown resource type",
    );
    assert_one_error(
        json!({"resourceType": "DomainResource"}),
        "structure",
        "",
        "Unknown resource type",
    );
    assert_one_error(
        json!({"resourceType": "HumanName"}),
        "structure",
        "",
        "Unknown resource type",
    );
    assert_eq!(run(json!("Patient"))[0].severity, Severity::Fatal);
    assert_clean(json!({"resourceType": "Patient"}));
}

#[test]
fn valid_patient_is_clean() {
    assert_clean(patient(json!({
        "meta": {"lastUpdated": "2024-01-02T03:04:05.678Z", "profile": ["http://x/StructureDefinition/p"]},
        "active": true,
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "deceasedBoolean": false,
        "multipleBirthInteger": 2,
        "contact": [{"gender": "female", "name": {"text": "Bénédicte"}}],
        "extension": [{"url": "http://x/e", "valueDecimal": 1.5e3}],
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Peter</div>"}
    })));
}

#[test]
fn unknown_elements_with_hints() {
    assert_one_error(
        patient(json!({"birthdate": "2000"})),
        "structure",
        "Patient.birthdate",
        "did you mean 'birthDate'",
    );
    assert_one_error(
        patient(json!({"deceased": true})),
        "structure",
        "Patient.deceased",
        "type suffix",
    );
    assert_one_error(
        patient(json!({"deceasedString": "x"})),
        "structure",
        "Patient.deceasedString",
        "allowed: deceasedBoolean, deceasedDateTime",
    );
    assert_one_error(
        patient(json!({"gendr": "male"})),
        "structure",
        "Patient.gendr",
        "did you mean 'gender'",
    );
    assert_one_error(
        patient(json!({"favouriteColour": "red"})),
        "structure",
        "Patient.favouriteColour",
        "use an extension",
    );
    assert_one_error(
        patient(json!({"name": [{"family": "x", "resourceType": "HumanName"}]})),
        "structure",
        "Patient.name[0].resourceType",
        "only allowed at the root",
    );
    assert_one_error(
        patient(json!({"_name": [{"id": "x"}]})),
        "structure",
        "Patient._name",
        "only used for primitive",
    );
}

#[test]
fn wrong_json_types() {
    assert_one_error(
        patient(json!({"active": "true"})),
        "structure",
        "Patient.active",
        "must be a JSON boolean",
    );
    assert_one_error(
        patient(json!({"birthDate": 19741225})),
        "structure",
        "Patient.birthDate",
        "must be a JSON string",
    );
    assert_one_error(
        patient(json!({"multipleBirthInteger": "2"})),
        "structure",
        "Patient.multipleBirthInteger",
        "must be a JSON number",
    );
    assert_one_error(
        patient(json!({"text": "hello"})),
        "structure",
        "Patient.text",
        "Expected an object (Narrative)",
    );
    assert_one_error(
        patient(json!({"name": ["Peter"]})),
        "structure",
        "Patient.name[0]",
        "Expected an object",
    );
    assert_one_error(
        patient(json!({"name": [{"given": [true]}]})),
        "structure",
        "Patient.name[0].given[0]",
        "JSON string",
    );
}

#[test]
fn cardinality_array_vs_scalar() {
    assert_one_error(
        patient(json!({"name": {"family": "x"}})),
        "structure",
        "Patient.name",
        "must be an array",
    );
    assert_one_error(
        patient(json!({"maritalStatus": [{"text": "x"}]})),
        "structure",
        "Patient.maritalStatus",
        "maximum cardinality of 1",
    );
    assert_one_error(
        patient(json!({"gender": ["male"]})),
        "structure",
        "Patient.gender",
        "maximum cardinality of 1",
    );
    assert_one_error(
        patient(json!({"name": [{"given": "Peter"}]})),
        "structure",
        "Patient.name[0].given",
        "must be an array",
    );
    assert_one_error(
        patient(json!({"contained": {"resourceType": "Patient"}})),
        "structure",
        "Patient.contained",
        "must be an array",
    );
}

#[test]
fn missing_required_elements() {
    let issues = found(json!({"resourceType": "CarePlan"}));
    assert_eq!(
        issues,
        vec![
            (Severity::Error, "required", "CarePlan.status".to_string()),
            (Severity::Error, "required", "CarePlan.intent".to_string()),
            (Severity::Error, "required", "CarePlan.subject".to_string()),
        ]
    );
    assert_clean(
        json!({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": {"reference": "Patient/1"}}),
    );
    // a primitive with only its extension part satisfies the cardinality
    assert_clean(
        json!({"resourceType": "CarePlan", "_status": {"extension": [{"url": "http://x", "valueCode": "unknown"}]},
        "intent": "plan", "subject": {"reference": "Patient/1"}}),
    );
    assert_one_error(
        patient(json!({"extension": [{"valueString": "x"}]})),
        "required",
        "Patient.extension[0].url",
        "'url'",
    );
    // required choice group
    let q = json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "string",
        "enableWhen": [{"question": "0", "operator": "exists"}]}]});
    assert_one_error(
        q,
        "required",
        "Questionnaire.item[0].enableWhen[0].answer[x]",
        "answer[x]",
    );
}

#[test]
fn only_one_choice_variant() {
    assert_one_error(
        patient(json!({"deceasedBoolean": true, "deceasedDateTime": "2020"})),
        "structure",
        "Patient.deceasedDateTime",
        "both 'deceasedBoolean' and 'deceasedDateTime'",
    );
    assert_one_error(
        patient(
            json!({"_deceasedBoolean": {"extension": [{"url": "http://x", "valueCode": "masked"}]}, "deceasedDateTime": "2020"}),
        ),
        "structure",
        "Patient.deceasedDateTime",
        "Only one variant",
    );
    assert_clean(patient(
        json!({"deceasedBoolean": true, "_deceasedBoolean": {"id": "a", "extension": [{"url": "http://x", "valueBoolean": true}]}}),
    ));
    assert_one_error(
        patient(
            json!({"extension": [{"url": "http://x", "valueString": "a", "valueBoolean": true}]}),
        ),
        "structure",
        "Patient.extension[0].valueBoolean",
        "value[x]",
    );
}

#[test]
fn empties_and_nulls() {
    assert_one_error(
        patient(json!({"birthDate": ""})),
        "value",
        "Patient.birthDate",
        "Empty string",
    );
    assert_one_error(
        patient(json!({"name": []})),
        "value",
        "Patient.name",
        "Empty array",
    );
    assert_one_error(
        patient(json!({"maritalStatus": {}})),
        "value",
        "Patient.maritalStatus",
        "Empty object",
    );
    assert_one_error(
        patient(json!({"gender": null})),
        "value",
        "Patient.gender",
        "null",
    );
    assert_one_error(
        patient(json!({"maritalStatus": null})),
        "value",
        "Patient.maritalStatus",
        "null",
    );
    assert_one_error(
        patient(json!({"name": [null]})),
        "value",
        "Patient.name[0]",
        "null",
    );
    assert_one_error(
        patient(json!({"name": [{"given": []}]})),
        "value",
        "Patient.name[0].given",
        "Empty array",
    );
    assert_one_error(
        patient(json!({"name": [{"given": [""]}]})),
        "value",
        "Patient.name[0].given[0]",
        "Empty string",
    );
    assert_one_error(
        patient(json!({"_gender": {}})),
        "value",
        "Patient.gender",
        "Empty object",
    );
    assert_one_error(
        patient(json!({"maritalStatus": {"id": "x"}})),
        "invariant",
        "Patient.maritalStatus",
        "ele-1",
    );
}

#[test]
fn whitespace_rules() {
    let issues = run(patient(json!({"name": [{"family": " Chalmers "}]})));
    assert_eq!(issues.len(), 1);
    assert_eq!(
        (issues[0].severity, issues[0].expression.as_str()),
        (Severity::Warning, "Patient.name[0].family")
    );
    assert!(!issues[0].is_error());
    assert_clean(patient(
        json!({"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "photo": [{"title": "x"}], "communication": [{"language": {"text": "fr"}}]}),
    ));
    assert_one_error(
        patient(json!({"gender": "male "})),
        "value",
        "Patient.gender",
        "whitespace",
    );
    assert_one_error(
        json!({"resourceType": "Patient", "id": " p1"}),
        "value",
        "Patient.id",
        "not a valid id",
    );
    assert_one_error(
        patient(json!({"implicitRules": "http://x y"})),
        "value",
        "Patient.implicitRules",
        "not a valid uri",
    );
    // markdown keeps meaningful leading whitespace: no warning
    assert_clean(
        json!({"resourceType": "Questionnaire", "status": "draft", "description": "  * item"}),
    );
    // element ids are strings, resource ids are ids
    assert_clean(patient(json!({"name": [{"id": "a_b c", "family": "x"}]})));
    assert_one_error(
        json!({"resourceType": "Patient", "id": "a_b"}),
        "value",
        "Patient.id",
        "valid id",
    );
    assert_one_error(
        patient(json!({"name": [{"family": "x\u{1}"}]})),
        "value",
        "Patient.name[0].family",
        "control characters",
    );
}

#[test]
fn primitive_formats() {
    let obs = |extra: Value| {
        let mut o =
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
        if let (Some(m), Value::Object(e)) = (o.as_object_mut(), extra) {
            m.extend(e);
        }
        o
    };
    assert_clean(obs(
        json!({"valueInteger": -5, "issued": "2020-01-01T00:00:00Z", "effectiveDateTime": "2020-02"}),
    ));
    assert_clean(obs(
        json!({"valueQuantity": {"value": 1.5e-3, "comparator": "<"}}),
    ));
    assert_clean(obs(
        json!({"valueTime": "10:00:00", "effectiveInstant": "2020-01-01T00:00:00+01:00"}),
    ));
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    assert_one_error(
        obs(json!({"valueInteger": parse("1.0")})),
        "value",
        "Observation.valueInteger",
        "not a valid integer",
    );
    assert_one_error(
        obs(json!({"valueInteger": 2147483648u64})),
        "value",
        "Observation.valueInteger",
        "integer",
    );
    assert_one_error(
        obs(json!({"valueInteger": parse("1e3")})),
        "value",
        "Observation.valueInteger",
        "integer",
    );
    assert_one_error(
        patient(json!({"extension": [{"url": "http://x", "valueDecimal": "1.5"}]})),
        "structure",
        "Patient.extension[0].valueDecimal",
        "JSON number",
    );
    assert_one_error(
        obs(json!({"issued": "2020-01-01"})),
        "value",
        "Observation.issued",
        "not a valid instant",
    );
    assert_one_error(
        obs(json!({"effectiveDateTime": "2020-01-01T10:00:00"})),
        "value",
        "Observation.effectiveDateTime",
        "dateTime",
    );
    assert_one_error(
        obs(json!({"effectiveDateTime": "2020-01-01T24:00:00Z"})),
        "value",
        "Observation.effectiveDateTime",
        "dateTime",
    );
    assert_one_error(
        obs(json!({"valueTime": "25:00:00"})),
        "value",
        "Observation.valueTime",
        "not a valid time",
    );
    assert_one_error(
        patient(json!({"birthDate": "2023-02-29"})),
        "value",
        "Patient.birthDate",
        "not a valid date",
    );
    assert_one_error(
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "string", "maxLength": 1.5}]}),
        "value",
        "Questionnaire.item[0].maxLength",
        "integer",
    );
    assert_one_error(
        json!({"resourceType": "Bundle", "type": "searchset", "total": -1}),
        "value",
        "Bundle.total",
        "unsignedInt",
    );
    assert_one_error(
        patient(json!({"photo": [{"data": "not base64!"}]})),
        "value",
        "Patient.photo[0].data",
        "base64Binary",
    );
    assert_one_error(
        patient(json!({"photo": [{"size": 0, "creation": "2020", "url": "http://x/a b"}]})),
        "value",
        "Patient.photo[0].url",
        "url",
    );
    assert_one_error(
        patient(
            json!({"identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:x"}], "extension": [{"url": "http://x", "valueUuid": "urn:uuid:ABC"}]}),
        ),
        "value",
        "Patient.extension[0].valueUuid",
        "uuid",
    );
    assert_one_error(
        patient(json!({"extension": [{"url": "http://x", "valueOid": "1.2.3"}]})),
        "value",
        "Patient.extension[0].valueOid",
        "oid",
    );
    assert_one_error(
        patient(json!({"extension": [{"url": "http://x", "valuePositiveInt": 0}]})),
        "value",
        "Patient.extension[0].valuePositiveInt",
        "positiveInt",
    );
    assert_clean(patient(
        json!({"extension": [{"url": "http://x", "valueOid": "urn:oid:1.2.3"}, {"url": "http://y", "valueMarkdown": "*x*"}]}),
    ));
}

#[test]
fn required_bindings() {
    assert_one_error(
        patient(json!({"gender": "banana"})),
        "code-invalid",
        "Patient.gender",
        "administrative-gender; allowed: female, male, other, unknown",
    );
    assert_one_error(
        patient(json!({"contact": [{"gender": "Male"}]})),
        "code-invalid",
        "Patient.contact[0].gender",
        "'Male'",
    );
    let cp = json!({"resourceType": "CarePlan", "status": "ongoing", "intent": "wish", "subject": {"reference": "Patient/1"}});
    let codes: Vec<_> = run(cp)
        .into_iter()
        .map(|i| (i.code, i.expression))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("code-invalid", "CarePlan.status".into()),
            ("code-invalid", "CarePlan.intent".into())
        ]
    );
    assert_one_error(
        json!({"resourceType": "Goal", "lifecycleStatus": "done", "description": {"text": "x"}, "subject": {"reference": "Patient/1"}}),
        "code-invalid",
        "Goal.lifecycleStatus",
        "goal-status",
    );
    assert_one_error(
        json!({"resourceType": "QuestionnaireResponse", "status": "finished"}),
        "code-invalid",
        "QuestionnaireResponse.status",
        "questionnaire-answers-status",
    );
    assert_one_error(
        json!({"resourceType": "Observation", "status": "done", "code": {"text": "x"}}),
        "code-invalid",
        "Observation.status",
        "observation-status",
    );
    assert_clean(json!({"resourceType": "QuestionnaireResponse", "status": "completed"}));
    // no binding on Coding.code: anything well-formed is accepted
    assert_clean(patient(
        json!({"maritalStatus": {"coding": [{"system": "http://x", "code": "anything-goes"}]}}),
    ));
}

#[test]
fn primitive_extension_parallel_arrays() {
    let ext = json!({"extension": [{"url": "http://x", "valueString": "y"}]});
    assert_clean(patient(
        json!({"name": [{"given": ["a", null], "_given": [null, ext.clone()]}]}),
    ));
    assert_clean(patient(json!({"name": [{"_given": [ext.clone()]}]})));
    assert_clean(patient(json!({"_birthDate": ext.clone()})));
    assert_clean(patient(
        json!({"birthDate": "1970", "_birthDate": {"id": "bd"}}),
    ));
    assert_one_error(
        patient(json!({"name": [{"given": ["a", null]}]})),
        "value",
        "Patient.name[0].given[1]",
        "must be paired",
    );
    assert_one_error(
        patient(json!({"name": [{"given": ["a", null], "_given": [null, null]}]})),
        "value",
        "Patient.name[0].given[1]",
        "must be paired",
    );
    assert_one_error(
        patient(json!({"name": [{"_given": [null]}]})),
        "value",
        "Patient.name[0].given[0]",
        "must be paired",
    );
    assert_one_error(
        patient(json!({"name": [{"given": ["a", "b"], "_given": [null]}]})),
        "structure",
        "Patient.name[0].given",
        "same length",
    );
    assert_one_error(
        patient(json!({"name": [{"given": ["a"], "_given": ext.clone()}]})),
        "structure",
        "Patient.name[0].given",
        "'_given' must be an array",
    );
    assert_one_error(
        patient(json!({"_birthDate": [ext.clone()]})),
        "structure",
        "Patient.birthDate",
        "must not be an array",
    );
    assert_one_error(
        patient(json!({"_birthDate": "x"})),
        "structure",
        "Patient.birthDate",
        "must be an object",
    );
    assert_one_error(
        patient(json!({"_birthDate": null})),
        "value",
        "Patient.birthDate",
        "null",
    );
    assert_one_error(
        patient(json!({"_birthDate": {"extension": [{"url": "http://x", "valueDate": "soon"}]}})),
        "value",
        "Patient.birthDate.extension[0].valueDate",
        "date",
    );
    assert_one_error(
        patient(json!({"_birthDate": {"foo": 1}})),
        "structure",
        "Patient.birthDate.foo",
        "Unknown element 'foo' in Element",
    );
    let w = run(patient(json!({"name": [{"given": ["a", " b"]}]})));
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].severity, w[0].expression.as_str()),
        (Severity::Warning, "Patient.name[0].given[1]")
    );
}

#[test]
fn contained_and_nested_resources() {
    let cp = json!({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": {"reference": "#p"},
        "contained": [{"resourceType": "Patient", "id": "p", "gender": "banana"}]});
    assert_one_error(cp, "code-invalid", "CarePlan.contained[0].gender", "banana");
    assert_one_error(
        patient(json!({"contained": [{"id": "x"}]})),
        "structure",
        "Patient.contained[0]",
        "Missing resourceType",
    );
    assert_one_error(
        patient(json!({"contained": [{"resourceType": "Nope"}]})),
        "structure",
        "Patient.contained[0]",
        "Unknown resource type",
    );
    assert_one_error(
        patient(json!({"contained": ["x"]})),
        "structure",
        "Patient.contained[0]",
        "Expected a resource",
    );
    assert_one_error(
        patient(
            json!({"contained": [{"resourceType": "Patient", "contained": [{"resourceType": "Patient"}]}]}),
        ),
        "invariant",
        "Patient.contained[0]",
        "dom-2",
    );
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "resource": {"resourceType": "Patient", "birthDate": "not-a-date"}}]});
    assert_one_error(
        bundle,
        "value",
        "Bundle.entry[0].resource.birthDate",
        "date",
    );
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "p", "part": [{"name": "q",
        "resource": {"resourceType": "Observation", "status": "final"}}]}]});
    assert_one_error(
        params,
        "required",
        "Parameters.parameter[0].part[0].resource.code",
        "'code'",
    );
}

#[test]
fn extensions_recursion_and_ext_1() {
    assert_clean(patient(
        json!({"extension": [{"url": "http://x", "extension": [
        {"url": "a", "valueReference": {"reference": "Patient/1", "extension": [{"url": "http://y", "valueCode": "z"}]}},
        {"url": "b", "valueCodeableConcept": {"text": "t"}}]}]}),
    ));
    assert_one_error(
        patient(
            json!({"extension": [{"url": "http://x", "valueString": "a", "extension": [{"url": "b", "valueString": "c"}]}]}),
        ),
        "invariant",
        "Patient.extension[0]",
        "ext-1",
    );
    assert_one_error(
        patient(json!({"modifierExtension": [{"url": "http://x", "valueFoo": 1}]})),
        "structure",
        "Patient.modifierExtension[0].valueFoo",
        "not an allowed type for value[x]",
    );
}

#[test]
fn narrative_div() {
    let div = |d: &str| patient(json!({"text": {"status": "generated", "div": d}}));
    assert_one_error(
        div("<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script>x</div>"),
        "invariant",
        "Patient.text.div",
        "<script>",
    );
    assert_one_error(
        div("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"x()\">x</p></div>"),
        "invariant",
        "Patient.text.div",
        "onclick",
    );
    assert_one_error(div(""), "value", "Patient.text.div", "Empty string");
    assert_one_error(
        div("<div xmlns=\"http://www.w3.org/1999/xhtml\"> </div>"),
        "invariant",
        "Patient.text.div",
        "txt-2",
    );
    assert_one_error(
        patient(json!({"text": {"status": "generated"}})),
        "required",
        "Patient.text.div",
        "'div'",
    );
    assert_one_error(
        patient(
            json!({"text": {"status": "made-up", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}),
        ),
        "code-invalid",
        "Patient.text.status",
        "narrative-status",
    );
    assert_one_error(
        patient(
            json!({"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>", "_div": {"id": "d"}}}),
        ),
        "structure",
        "Patient.text._div",
        "only used for primitive",
    );
    assert_one_error(
        patient(json!({"text": {"status": "generated", "div": 5}})),
        "structure",
        "Patient.text.div",
        "JSON string",
    );
}

#[test]
fn depth_limit_stops_hostile_nesting() {
    // 500 nested extensions: one issue at the depth limit, no stack overflow
    let mut e = json!({"url": "http://x", "valueString": "leaf"});
    for _ in 0..500 {
        e = json!({"url": "http://x", "extension": [e]});
    }
    let issues = run(patient(json!({"extension": [e]})));
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].code, "structure");
    assert!(issues[0].diagnostics.contains("nested deeper than 64"));
    // a modest nesting is fine
    let mut e = json!({"url": "http://x", "valueString": "leaf"});
    for _ in 0..10 {
        e = json!({"url": "http://x", "extension": [e]});
    }
    assert_clean(patient(json!({"extension": [e]})));
    // questionnaire items recursing through a content reference
    let mut item = json!({"linkId": "x", "type": "display"});
    for _ in 0..200 {
        item = json!({"linkId": "g", "type": "group", "item": [item]});
    }
    let issues = run(json!({"resourceType": "Questionnaire", "status": "draft", "item": [item]}));
    assert_eq!(issues.len(), 1, "{issues:#?}");
}

#[test]
fn issues_are_capped_and_in_document_order() {
    let mut p = serde_json::Map::new();
    p.insert("resourceType".into(), json!("Patient"));
    for i in 0..300 {
        p.insert(format!("bogus{i}"), json!(1));
    }
    let issues = run(Value::Object(p));
    assert_eq!(issues.len(), crate::MAX_ISSUES);
    assert_eq!(issues[0].expression, "Patient.bogus0");
    assert_eq!(issues[1].expression, "Patient.bogus1");
    let last = issues.last().map(|i| (i.severity, i.code));
    assert_eq!(last, Some((Severity::Information, "processing")));

    let order: Vec<String> = run(patient(
        json!({"gender": "x", "birthDate": "y", "active": 1}),
    ))
    .into_iter()
    .map(|i| i.expression)
    .collect();
    assert_eq!(
        order,
        vec!["Patient.gender", "Patient.birthDate", "Patient.active"]
    );
}

#[test]
fn hostile_values_do_not_panic() {
    let long = "é".repeat(600_000);
    assert_one_error(
        patient(json!({"name": [{"family": long}]})),
        "too-long",
        "Patient.name[0].family",
        "1 MB",
    );
    for v in [
        json!(null),
        json!(1),
        json!({"resourceType": "Patient", "name": [[[]]]}),
        json!({"resourceType": "Patient", "id": "€€€"}),
    ] {
        let _ = run(v);
    }
    assert_eq!(shorten(&"ü".repeat(100)).chars().count(), QUOTE_MAX + 1);
    assert_eq!(edit_distance("gendr", "gender"), 1);
    // a huge unknown key is reported shortened, without quadratic hinting
    let key = "k".repeat(1_000_000);
    let issues = run(patient(json!({ key: 1 })));
    assert_eq!(issues.len(), 1);
    assert!(issues[0].expression.len() < 200 && issues[0].diagnostics.len() < 300);
}
