//! Table-driven tests: the examples of fhirpatch.html, the cases of the FHIR test suite's
//! `r4/patch/fhir-patch-tests.xml` (in JSON), and each refusal.

use serde_json::{json, Value};

use crate::{FhirPathPatch, PatchErrorKind};

/// One `operation` parameter: its type, path and further parts (`("name", json!({…}))`).
fn op(kind: &str, path: &str, parts: &[(&str, Value)]) -> Value {
    let mut all = vec![
        json!({"name":"type","valueCode":kind}),
        json!({"name":"path","valueString":path}),
    ];
    for (name, content) in parts {
        let mut part = json!({ "name": name });
        if let (Some(p), Some(c)) = (part.as_object_mut(), content.as_object()) {
            p.extend(c.clone());
        }
        all.push(part);
    }
    json!({"name":"operation","part":all})
}

fn patch(ops: Vec<Value>) -> Value {
    if ops.is_empty() {
        return json!({"resourceType":"Parameters"});
    }
    json!({"resourceType":"Parameters","parameter":ops})
}

fn patient(body: Value) -> Value {
    let mut p = json!({"resourceType":"Patient"});
    if let (Some(p), Some(b)) = (p.as_object_mut(), body.as_object()) {
        p.extend(b.clone());
    }
    p
}

fn run(input: &Value, parameters: &Value) -> Result<Value, crate::PatchError> {
    FhirPathPatch::parse(parameters)?.apply(input.clone())
}

fn identifiers(values: &[&str]) -> Value {
    json!({"identifier": values.iter().map(|v| json!({"system":"http://example.org","value":v})).collect::<Vec<_>>()})
}

fn move_op(source: u64, destination: u64) -> Value {
    op(
        "move",
        "Patient.identifier",
        &[
            ("source", json!({"valueInteger": source})),
            ("destination", json!({"valueInteger": destination})),
        ],
    )
}

#[test]
fn spec_examples_and_test_suite_cases() {
    let value = |v: Value| ("value", v);
    let name = |n: &str| ("name", json!({"valueString": n}));
    let index = |i: u64| ("index", json!({"valueInteger": i}));
    let contact = json!({"contact":[{"name":{"text":"a name"},"gender":"male"}]});
    let cases: Vec<(&str, Value, Vec<Value>, Value)> = vec![
        (
            "No Difference",
            patient(json!({"birthDate":"1920-01-01"})),
            vec![],
            patient(json!({"birthDate":"1920-01-01"})),
        ),
        (
            "Replace Primitive",
            patient(json!({"birthDate":"1920-01-01"})),
            vec![op(
                "replace",
                "Patient.birthDate",
                &[value(json!({"valueDate":"1930-01-01"}))],
            )],
            patient(json!({"birthDate":"1930-01-01"})),
        ),
        (
            "Delete Primitive",
            patient(json!({"birthDate":"1920-01-01"})),
            vec![op("delete", "Patient.birthDate", &[])],
            patient(json!({})),
        ),
        (
            // The first example of fhirpatch.html.
            "Add Primitive",
            patient(json!({})),
            vec![op(
                "add",
                "Patient",
                &[name("birthDate"), value(json!({"valueDate":"1930-01-01"}))],
            )],
            patient(json!({"birthDate":"1930-01-01"})),
        ),
        (
            "Replace Nested Primitive #1",
            patient(contact.clone()),
            vec![op(
                "replace",
                "Patient.contact[0].gender",
                &[value(json!({"valueCode":"female"}))],
            )],
            patient(json!({"contact":[{"name":{"text":"a name"},"gender":"female"}]})),
        ),
        (
            "Replace Nested Primitive #2",
            patient(contact.clone()),
            vec![op(
                "replace",
                "Patient.contact[0].name.text",
                &[value(json!({"valueString":"the name"}))],
            )],
            patient(json!({"contact":[{"name":{"text":"the name"},"gender":"male"}]})),
        ),
        (
            "Delete Nested Primitive #1",
            patient(contact.clone()),
            vec![op("delete", "Patient.contact[0].gender", &[])],
            patient(json!({"contact":[{"name":{"text":"a name"}}]})),
        ),
        (
            "Delete Nested Primitive #2",
            patient(contact.clone()),
            vec![op("delete", "Patient.contact[0].name.text", &[])],
            patient(json!({"contact":[{"gender":"male"}]})),
        ),
        (
            "Add Nested Primitive",
            patient(json!({"contact":[{"name":{"text":"a name"}}]})),
            vec![op(
                "add",
                "Patient.contact[0]",
                &[name("gender"), value(json!({"valueCode":"male"}))],
            )],
            patient(contact.clone()),
        ),
        (
            "Add Complex",
            patient(json!({})),
            vec![op(
                "add",
                "Patient",
                &[
                    name("maritalStatus"),
                    value(json!({"valueCodeableConcept":{"text":"married"}})),
                ],
            )],
            patient(json!({"maritalStatus":{"text":"married"}})),
        ),
        (
            "Replace Complex",
            patient(json!({"maritalStatus":{"id":"1","text":"married"}})),
            vec![op(
                "replace",
                "Patient.maritalStatus",
                &[value(
                    json!({"valueCodeableConcept":{"id":"2","text":"not married"}}),
                )],
            )],
            patient(json!({"maritalStatus":{"id":"2","text":"not married"}})),
        ),
        (
            "Delete Complex",
            patient(json!({"maritalStatus":{"text":"married"}})),
            vec![op("delete", "Patient.maritalStatus", &[])],
            patient(json!({})),
        ),
        (
            // The second example of fhirpatch.html (anonymous types).
            "Add Anonymous Type",
            patient(json!({})),
            vec![op(
                "add",
                "Patient",
                &[
                    name("contact"),
                    value(json!({"part":[{"name":"name","valueHumanName":{"text":"a name"}}]})),
                ],
            )],
            patient(json!({"contact":[{"name":{"text":"a name"}}]})),
        ),
        (
            "Delete Anonymous Type",
            patient(json!({"contact":[{"name":{"text":"a name"}}]})),
            vec![op("delete", "Patient.contact[0]", &[])],
            patient(json!({})),
        ),
        (
            "List unchanged, contents changed",
            patient(
                json!({"identifier":[{"id":"a","system":"http://example.org","value":"value 1"},{"id":"b","system":"http://example.org","value":"value 2"}]}),
            ),
            vec![
                op(
                    "replace",
                    "Patient.identifier[0].value",
                    &[value(json!({"valueString":"value 2"}))],
                ),
                op(
                    "replace",
                    "Patient.identifier[1].value",
                    &[value(json!({"valueString":"value 1"}))],
                ),
            ],
            patient(
                json!({"identifier":[{"id":"a","system":"http://example.org","value":"value 2"},{"id":"b","system":"http://example.org","value":"value 1"}]}),
            ),
        ),
        (
            "Add to list",
            patient(identifiers(&["value 1", "value 2"])),
            vec![op(
                "add",
                "Patient",
                &[
                    name("identifier"),
                    value(
                        json!({"valueIdentifier":{"system":"http://example.org","value":"value 3"}}),
                    ),
                ],
            )],
            patient(identifiers(&["value 1", "value 2", "value 3"])),
        ),
        (
            "Insert in list #1",
            patient(identifiers(&["value 1", "value 2"])),
            vec![op(
                "insert",
                "Patient.identifier",
                &[
                    index(1),
                    value(
                        json!({"valueIdentifier":{"system":"http://example.org","value":"value 3"}}),
                    ),
                ],
            )],
            patient(identifiers(&["value 1", "value 3", "value 2"])),
        ),
        (
            "Insert in list #2",
            patient(identifiers(&["value 1", "value 2"])),
            vec![op(
                "insert",
                "Patient.identifier",
                &[
                    index(0),
                    value(
                        json!({"valueIdentifier":{"system":"http://example.org","value":"value 3"}}),
                    ),
                ],
            )],
            patient(identifiers(&["value 3", "value 1", "value 2"])),
        ),
        (
            "Insert at the end of a list",
            patient(identifiers(&["value 1", "value 2"])),
            vec![op(
                "insert",
                "Patient.identifier",
                &[
                    index(2),
                    value(
                        json!({"valueIdentifier":{"system":"http://example.org","value":"value 3"}}),
                    ),
                ],
            )],
            patient(identifiers(&["value 1", "value 2", "value 3"])),
        ),
        (
            "Delete from List #1",
            patient(identifiers(&["value 1", "value 2", "value 3"])),
            vec![op("delete", "Patient.identifier[0]", &[])],
            patient(identifiers(&["value 2", "value 3"])),
        ),
        (
            "Delete from List #2",
            patient(identifiers(&["value 1", "value 2", "value 3"])),
            vec![op("delete", "Patient.identifier[1]", &[])],
            patient(identifiers(&["value 1", "value 3"])),
        ),
        (
            "Delete from List #3",
            patient(identifiers(&["value 1", "value 2", "value 3"])),
            vec![op("delete", "Patient.identifier[2]", &[])],
            patient(identifiers(&["value 1", "value 2"])),
        ),
        (
            "Reorder List #1",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(3, 1)],
            patient(identifiers(&["value 1", "value 4", "value 2", "value 3"])),
        ),
        (
            "Reorder List #2",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(3, 0)],
            patient(identifiers(&["value 4", "value 1", "value 2", "value 3"])),
        ),
        (
            "Reorder List #3",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(3, 2)],
            patient(identifiers(&["value 1", "value 2", "value 4", "value 3"])),
        ),
        (
            "Reorder List #4",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(0, 3)],
            patient(identifiers(&["value 2", "value 3", "value 4", "value 1"])),
        ),
        (
            "Reorder List #5",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(1, 0), move_op(2, 1)],
            patient(identifiers(&["value 2", "value 3", "value 1", "value 4"])),
        ),
        (
            "Reorder List #6",
            patient(identifiers(&["value 1", "value 2", "value 3", "value 4"])),
            vec![move_op(3, 0), move_op(3, 1), move_op(3, 2)],
            patient(identifiers(&["value 4", "value 3", "value 2", "value 1"])),
        ),
        (
            "Operation on missing element #2",
            patient(json!({})),
            vec![op(
                "add",
                "Patient",
                &[
                    name("identifier"),
                    value(
                        json!({"valueIdentifier":{"system":"http://example.org","value":"value 3"}}),
                    ),
                ],
            )],
            patient(identifiers(&["value 3"])),
        ),
        (
            "Full Resource (the part that is not narrative)",
            patient(
                json!({"id":"example","name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}]}),
            ),
            vec![op(
                "replace",
                "Patient.name[0].family",
                &[value(json!({"valueString":"Chalmers1"}))],
            )],
            patient(
                json!({"id":"example","name":[{"use":"official","family":"Chalmers1","given":["Peter","James"]},{"use":"usual","given":["Jim"]}]}),
            ),
        ),
    ];
    for (case, input, ops, expected) in cases {
        let result = run(&input, &patch(ops));
        assert_eq!(result.as_ref().ok(), Some(&expected), "{case}: {result:?}");
    }
}

#[test]
fn beyond_the_test_suite() {
    let value = |v: Value| ("value", v);
    let name = |n: &str| ("name", json!({"valueString": n}));
    let goal = json!({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"Walk"},"subject":{"reference":"Patient/p"},
        "note":[{"text":"first"},{"text":"second","time":"2026-01-01"}]});
    let with_notes = |notes: Value| {
        let mut g = goal.clone();
        g["note"] = notes;
        g
    };
    let cases: Vec<(&str, Value, Vec<Value>, Value)> = vec![
        (
            "a goal's note changes, nothing else",
            goal.clone(),
            vec![op(
                "replace",
                "Goal.note[1].text",
                &[value(json!({"valueMarkdown":"changed"}))],
            )],
            with_notes(json!([{"text":"first"},{"text":"changed","time":"2026-01-01"}])),
        ),
        (
            "a note chosen by its content",
            goal.clone(),
            vec![op(
                "replace",
                "Goal.note.where(text = 'first').text",
                &[value(json!({"valueString":"1st"}))],
            )],
            with_notes(json!([{"text":"1st"},{"text":"second","time":"2026-01-01"}])),
        ),
        (
            "a note added with parts",
            goal.clone(),
            vec![op(
                "add",
                "Goal",
                &[
                    name("note"),
                    value(json!({"valueAnnotation":{"text":"third"}})),
                ],
            )],
            with_notes(
                json!([{"text":"first"},{"text":"second","time":"2026-01-01"},{"text":"third"}]),
            ),
        ),
        (
            "a choice by its group name, and replaced by another type",
            patient(json!({})),
            vec![
                op(
                    "add",
                    "Patient",
                    &[name("deceased"), value(json!({"valueBoolean":false}))],
                ),
                op(
                    "replace",
                    "Patient.deceased",
                    &[value(json!({"valueDateTime":"2026-01-01"}))],
                ),
            ],
            patient(json!({"deceasedDateTime":"2026-01-01"})),
        ),
        (
            "a primitive keeps its extensions with it when moved and goes with them when deleted",
            patient(json!({"name":[{"given":["a","b","c"],"_given":[null,{"id":"b"},null]}]})),
            vec![
                op(
                    "move",
                    "Patient.name[0].given",
                    &[
                        ("source", json!({"valueInteger":1})),
                        ("destination", json!({"valueInteger":0})),
                    ],
                ),
                op("delete", "Patient.name[0].given[2]", &[]),
            ],
            patient(json!({"name":[{"given":["b","a"],"_given":[{"id":"b"},null]}]})),
        ),
        (
            "an extension added to a primitive goes to its _name sibling",
            patient(json!({"birthDate":"2000-01-01"})),
            vec![op(
                "add",
                "Patient.birthDate",
                &[
                    name("extension"),
                    value(json!({"part":[
                {"name":"url","valueUri":"http://hl7.org/fhir/StructureDefinition/patient-birthTime"},
                {"name":"value","valueDateTime":"2000-01-01T10:00:00Z"}]})),
                ],
            )],
            patient(
                json!({"birthDate":"2000-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"2000-01-01T10:00:00Z"}]}}),
            ),
        ),
        (
            "an id given to one item of a repeating primitive",
            patient(json!({"name":[{"given":["a","b"]}]})),
            vec![op(
                "add",
                "Patient.name[0].given[1]",
                &[name("id"), value(json!({"valueString":"second"}))],
            )],
            patient(json!({"name":[{"given":["a","b"],"_given":[null,{"id":"second"}]}]})),
        ),
        (
            "the README's example",
            json!({"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/p"},"description":"Agreed with Dr Adams on 3 March"}),
            vec![
                op(
                    "replace",
                    "CarePlan.description",
                    &[value(json!({"valueString":"Agreed on 3 March"}))],
                ),
                op(
                    "add",
                    "CarePlan",
                    &[
                        name("note"),
                        value(json!({"valueAnnotation":{"text":"Knee is better"}})),
                    ],
                ),
            ],
            json!({"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/p"},"description":"Agreed on 3 March","note":[{"text":"Knee is better"}]}),
        ),
        (
            "an extension of a primitive deleted, and its emptied _name with it",
            patient(
                json!({"birthDate":"2000-01-01","_birthDate":{"extension":[{"url":"u","valueString":"s"}]}}),
            ),
            vec![op("delete", "Patient.birthDate.extension", &[])],
            patient(json!({"birthDate":"2000-01-01"})),
        ),
        (
            "delete of nothing does nothing",
            patient(json!({"active":true})),
            vec![
                op("delete", "Patient.birthDate", &[]),
                op("delete", "Patient.name.where(family = 'x')", &[]),
            ],
            patient(json!({"active":true})),
        ),
        (
            "a primitive with its _name sibling replaced by a value carrying one",
            patient(json!({"birthDate":"2000-01-01","_birthDate":{"id":"old"}})),
            vec![op(
                "replace",
                "Patient.birthDate",
                &[value(
                    json!({"valueDate":"2001-01-01","_valueDate":{"id":"new"}}),
                )],
            )],
            patient(json!({"birthDate":"2001-01-01","_birthDate":{"id":"new"}})),
        ),
        (
            "a contained resource patched in place",
            patient(
                json!({"contained":[{"resourceType":"Practitioner","id":"dr"}],"generalPractitioner":[{"reference":"#dr"}]}),
            ),
            vec![op(
                "add",
                "Patient.contained.where(id = 'dr')",
                &[name("active"), value(json!({"valueBoolean":true}))],
            )],
            patient(
                json!({"contained":[{"resourceType":"Practitioner","id":"dr","active":true}],"generalPractitioner":[{"reference":"#dr"}]}),
            ),
        ),
        (
            "a cast on a choice element is spelled as its JSON name",
            json!({"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":1}}),
            vec![op(
                "replace",
                "(Observation.value as Quantity).value",
                &[value(json!({"valueDecimal":2.5}))],
            )],
            json!({"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":2.5}}),
        ),
    ];
    for (case, input, ops, expected) in cases {
        let result = run(&input, &patch(ops));
        assert_eq!(result.as_ref().ok(), Some(&expected), "{case}: {result:?}");
    }
}

#[test]
fn operations_that_cannot_be_applied_are_refused_naming_the_operation() {
    let value = |v: Value| ("value", v);
    let name = |n: &str| ("name", json!({"valueString": n}));
    let index = |i: u64| ("index", json!({"valueInteger": i}));
    let ident = json!({"valueIdentifier":{"value":"x"}});
    let two = patient(identifiers(&["value 1", "value 2"]));
    let cases: Vec<(&str, Value, Vec<Value>, &str)> = vec![
        (
            "Operation on missing element",
            patient(json!({"identifier":[{"use":"official","value":"123"}]})),
            vec![op("add", "Patient.identifier.where(use = 'official').period", &[name("end"), value(json!({"valueDate":"2021-12-01"}))])],
            "Parameters.parameter[0] (add Patient.identifier.where(use = 'official').period): no element matches the path",
        ),
        ("replace of nothing", patient(json!({})), vec![op("replace", "Patient.birthDate", &[value(json!({"valueDate":"2000"}))])], "no element matches the path"),
        ("replace of two", two.clone(), vec![op("replace", "Patient.identifier.value", &[value(json!({"valueString":"v"}))])], "the path matches 2 elements (Patient.identifier[0].value, Patient.identifier[1].value)"),
        ("delete of two", two.clone(), vec![op("delete", "Patient.identifier", &[])], "the path matches 2 elements"),
        ("add of an existing single element", patient(json!({"birthDate":"2000"})), vec![op("add", "Patient", &[name("birthDate"), value(json!({"valueDate":"2001"}))])], "Patient already has birthDate and it does not repeat; use replace"),
        ("add of a second choice variant", patient(json!({"deceasedBoolean":true})), vec![op("add", "Patient", &[name("deceased"), value(json!({"valueDateTime":"2001"}))])], "already has deceasedBoolean"),
        ("add of an unknown element", patient(json!({})), vec![op("add", "Patient", &[name("banana"), value(json!({"valueString":"x"}))])], "Patient has no element \"banana\""),
        ("a value of the wrong type", patient(json!({})), vec![op("add", "Patient", &[name("maritalStatus"), value(json!({"valueCoding":{"code":"M"}}))])], "maritalStatus holds a CodeableConcept, the value given is a Coding"),
        ("insert beyond the end", two.clone(), vec![op("insert", "Patient.identifier", &[index(3), value(ident.clone())])], "index 3 is beyond the end of the list (it has 2 item(s))"),
        ("insert into part of a list", two.clone(), vec![op("insert", "Patient.identifier.where(value = 'value 2')", &[index(0), value(ident.clone())])], "the path must select a whole list"),
        ("insert into no list", patient(json!({})), vec![op("insert", "Patient.identifier", &[index(0), value(ident.clone())])], "no element matches the path"),
        ("insert into a single element", patient(json!({"birthDate":"2000"})), vec![op("insert", "Patient.birthDate", &[index(0), value(json!({"valueDate":"2001"}))])], "Patient.birthDate is not a list"),
        ("move from beyond the end", two.clone(), vec![move_op(2, 0)], "source 2 is not an index of the list (it has 2 item(s))"),
        ("move to beyond the end", two.clone(), vec![move_op(0, 2)], "destination 2 is not an index of the list"),
        ("the resource itself", two.clone(), vec![op("delete", "Patient", &[])], "the resource itself cannot be deleted"),
        ("a primitive chosen by a function", patient(json!({"name":[{"given":["a","b"]}]})), vec![op("delete", "Patient.name.given.first()", &[])], "cannot be told apart"),
        (
            "the second operation fails after the first applied",
            two.clone(),
            vec![op("delete", "Patient.identifier[0]", &[]), op("delete", "Patient.identifier[0].value.where(false)", &[]), op("replace", "Patient.identifier[1]", &[value(ident.clone())])],
            "Parameters.parameter[2] (replace Patient.identifier[1]): no element matches the path",
        ),
    ];
    for (case, input, ops, expected) in cases {
        let err = run(&input, &patch(ops)).expect_err(case);
        assert_eq!(err.kind(), PatchErrorKind::Unprocessable, "{case}: {err}");
        assert!(err.message().contains(expected), "{case}: {err}");
    }
}

#[test]
fn documents_that_are_not_a_patch_are_refused() {
    let good = || op("delete", "Patient.birthDate", &[]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "not Parameters",
            json!({"resourceType":"Patient"}),
            "a FHIRPath Patch is a Parameters resource",
        ),
        (
            "a JSON Patch",
            json!([{"op":"remove","path":"/birthDate"}]),
            "a FHIRPath Patch is a Parameters resource",
        ),
        (
            "another parameter",
            json!({"resourceType":"Parameters","parameter":[good(), {"name":"x","valueString":"y"}]}),
            "Parameters.parameter[1]: a FHIRPath Patch has only parameters named \"operation\"",
        ),
        (
            "no type",
            patch(vec![
                json!({"name":"operation","part":[{"name":"path","valueString":"Patient"}]}),
            ]),
            "no type part",
        ),
        (
            "unknown type",
            patch(vec![op("upsert", "Patient", &[])]),
            "unknown operation type \"upsert\"",
        ),
        (
            "type as a string",
            patch(vec![
                json!({"name":"operation","part":[{"name":"type","valueString":"delete"},{"name":"path","valueString":"Patient.active"}]}),
            ]),
            "the \"type\" part needs a non-empty valueCode",
        ),
        (
            "missing part",
            patch(vec![op("replace", "Patient.active", &[])]),
            "replace needs a \"value\" part",
        ),
        (
            "extra part",
            patch(vec![op(
                "delete",
                "Patient.active",
                &[("index", json!({"valueInteger":0}))],
            )]),
            "delete takes no \"index\" part",
        ),
        (
            "repeated part",
            patch(vec![op(
                "delete",
                "Patient.active",
                &[("path", json!({"valueString":"Patient.id"}))],
            )]),
            "the part \"path\" is given more than once",
        ),
        (
            "unknown part",
            patch(vec![op(
                "delete",
                "Patient.active",
                &[("banana", json!({"valueString":"x"}))],
            )]),
            "unknown part \"banana\"",
        ),
        (
            "negative index",
            patch(vec![op(
                "insert",
                "Patient.name",
                &[
                    ("index", json!({"valueInteger":-1})),
                    ("value", json!({"valueHumanName":{"text":"a"}})),
                ],
            )]),
            "needs a valueInteger of 0 or more",
        ),
        (
            "path not FHIRPath",
            patch(vec![op("delete", "Patient.name.where(", &[])]),
            "the path is not valid FHIRPath",
        ),
        (
            "resolve()",
            patch(vec![op(
                "delete",
                "Patient.generalPractitioner.resolve().active",
                &[],
            )]),
            "resolve() is not supported",
        ),
        (
            "a path that doubles a collection at each step",
            patch(vec![op(
                "delete",
                &format!(
                    "Patient.identifier{}",
                    ".select($this.combine($this))".repeat(30)
                ),
                &[],
            )]),
            "the path is refused: the path calls select()",
        ),
        (
            "a path reaching the whole resource from a criterion",
            patch(vec![op(
                "delete",
                "Patient.identifier.where(%resource.identifier.where(value = '1').exists())",
                &[],
            )]),
            "the path is refused: the path holds '%'",
        ),
        (
            "a path over 1,000 characters",
            patch(vec![op(
                "delete",
                &format!("Patient{}", ".identifier".repeat(100)),
                &[],
            )]),
            "the path is refused: the path is 1107 characters long; at most 1000",
        ),
        (
            "a cast whose rewrite would name a refused function",
            patch(vec![op(
                "delete",
                "Patient.name.given.replace.as(matches)('a','aa')",
                &[],
            )]),
            "the path is refused: the path calls replaceMatches()",
        ),
        (
            "value without content",
            patch(vec![op(
                "replace",
                "Patient.active",
                &[("value", json!({}))],
            )]),
            "a value part needs a value[x]",
        ),
    ];
    for (case, doc, expected) in cases {
        let err = FhirPathPatch::parse(&doc).expect_err(case);
        assert_eq!(err.kind(), PatchErrorKind::Invalid, "{case}: {err}");
        assert!(err.message().contains(expected), "{case}: {err}");
    }
    let err =
        FhirPathPatch::parse(&patch(vec![good(), op("move", "Patient.name", &[])])).unwrap_err();
    assert_eq!(
        (err.parameter(), err.expression()),
        (Some(1), "Parameters.parameter[1]".to_string())
    );
}
