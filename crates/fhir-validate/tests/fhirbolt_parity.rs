//! The R4 model walk is at least as strict as fhirbolt's strict parse (issue 16, "parse once"):
//! every document fhirbolt refuses, the walk refuses too, so the walk can be the write path's
//! one structural gate.
//!
//! The documents are the published examples and systematic single mutations of each: every
//! member and array item removed, replaced by each JSON type (and edge numbers), wrapped in an
//! array or unwrapped; at every object an unknown member, primitive extensions (`_name`) of
//! every shape, a second value of a choice, a `resourceType`, extensions without a `url`,
//! contained resources of unknown or no type. A mutation the walk accepts and fhirbolt refuses
//! is a difference; the test fails listing them. (The reverse — the walk refusing what fhirbolt
//! accepts — is the walk's extra strictness: formats, empties, bindings.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use serde_json::{json, Map, Value};

mod common;
use common::{load, FIXTURES};

/// Values every node is replaced by in turn.
fn replacements() -> Vec<Value> {
    vec![
        json!("x"),
        json!(""),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(2147483648_i64),
        json!(-2147483649_i64),
        json!(true),
        Value::Null,
        json!({}),
        json!([]),
        json!([null]),
        json!(["x"]),
        json!([1]),
        json!([{}]),
        json!({"x": 1}),
        json!({"id": "a"}),
        json!({"resourceType": "Patient"}),
    ]
}

/// Members added to every object in turn.
fn additions(object: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut added = vec![
        ("bogus".to_string(), json!(1)),
        ("_bogus".to_string(), json!({})),
        ("resourceType".to_string(), json!("Patient")),
        ("extension".to_string(), json!([{"valueString": "x"}])),
        ("extension".to_string(), json!([{"url": "http://e"}])),
        (
            "extension".to_string(),
            json!([{"url": "http://e", "valueBogus": 1}]),
        ),
        (
            "extension".to_string(),
            json!([{"url": "http://e", "valueString": "x", "valueBoolean": true}]),
        ),
        (
            "modifierExtension".to_string(),
            json!([{"valueString": "x"}]),
        ),
        ("contained".to_string(), json!([{"resourceType": "Bogus"}])),
        ("contained".to_string(), json!([{"id": "c"}])),
        (
            "contained".to_string(),
            json!([{"resourceType": "Patient", "bogus": 1}]),
        ),
        ("id".to_string(), json!(1)),
        ("valueString".to_string(), json!("x")),
        ("valueBoolean".to_string(), json!(true)),
    ];
    for (key, value) in object {
        if key.starts_with('_') || key == "resourceType" {
            continue;
        }
        let underscore = format!("_{key}");
        let items = value.as_array().map(Vec::len);
        added.extend([
            (underscore.clone(), json!({"id": "x"})),
            (underscore.clone(), json!({"bogus": 1})),
            (
                underscore.clone(),
                json!({"extension": [{"url": "http://e"}]}),
            ),
            (underscore.clone(), json!(1)),
            (underscore.clone(), json!("x")),
            (underscore.clone(), json!([])),
            (underscore.clone(), json!([null])),
            (underscore.clone(), json!([{"id": "x"}])),
            (underscore.clone(), json!([{"id": "x"}, {"id": "y"}])),
        ]);
        if let Some(n) = items {
            let mut aligned = vec![Value::Null; n];
            aligned[0] = json!({"id": "x"});
            added.push((underscore.clone(), Value::Array(aligned.clone())));
            aligned.push(json!({"id": "y"}));
            added.push((underscore, Value::Array(aligned)));
        }
        // A second value of a choice: the same prefix with another type's suffix.
        if let Some(split) = key
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_ascii_uppercase())
        {
            let prefix = &key[..split.0];
            for suffix in ["String", "Boolean", "Integer", "DateTime", "Quantity"] {
                let other = format!("{prefix}{suffix}");
                if &other != key {
                    let v = match suffix {
                        "String" => json!("x"),
                        "Boolean" => json!(true),
                        "Integer" => json!(1),
                        "DateTime" => json!("2020"),
                        _ => json!({"value": 1}),
                    };
                    added.push((other, v));
                }
            }
        }
    }
    added
}

/// Every single mutation of `doc`, each with a description.
fn mutations(doc: &Value) -> Vec<(String, Value)> {
    let mut pointers = Vec::new();
    collect_pointers(doc, String::new(), &mut pointers);
    let mut out = Vec::new();
    for pointer in &pointers {
        let node = doc.pointer(pointer).unwrap();
        if !pointer.is_empty() {
            let mut removed = doc.clone();
            remove_at(&mut removed, pointer);
            out.push((format!("remove {pointer}"), removed));
            for r in replacements() {
                let mut m = doc.clone();
                *m.pointer_mut(pointer).unwrap() = r.clone();
                out.push((format!("{pointer} = {r}"), m));
            }
            let mut wrapped = doc.clone();
            *wrapped.pointer_mut(pointer).unwrap() = json!([node.clone()]);
            out.push((format!("wrap {pointer}"), wrapped));
            if let Some(first) = node.as_array().and_then(|a| a.first()) {
                let mut unwrapped = doc.clone();
                *unwrapped.pointer_mut(pointer).unwrap() = first.clone();
                out.push((format!("unwrap {pointer}"), unwrapped));
            }
        }
        if let Some(object) = node.as_object() {
            for (key, value) in additions(object) {
                let mut m = doc.clone();
                m.pointer_mut(pointer)
                    .and_then(Value::as_object_mut)
                    .unwrap()
                    .insert(key.clone(), value.clone());
                out.push((format!("{pointer} + {key}: {value}"), m));
            }
            // An element's or a resource's id with a primitive extension part.
            let mut m = doc.clone();
            let object = m
                .pointer_mut(pointer)
                .and_then(Value::as_object_mut)
                .unwrap();
            object.insert("id".into(), json!("a"));
            object.insert("_id".into(), json!({"extension": [{"url": "http://e"}]}));
            out.push((format!("{pointer} + id and _id"), m));
        }
    }
    out
}

/// Pointers of every node; of an array, only its first item's subtree is walked (the other
/// items have the same shape) — except a Bundle's entries, each holding a resource of its own
/// type — but every item is a node.
fn collect_pointers(node: &Value, pointer: String, out: &mut Vec<String>) {
    match node {
        Value::Object(o) => {
            for (k, v) in o {
                collect_pointers(v, format!("{pointer}/{}", escape(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if i == 0 || v.get("resource").is_some() {
                    collect_pointers(v, format!("{pointer}/{i}"), out);
                } else {
                    out.push(format!("{pointer}/{i}"));
                }
            }
        }
        _ => {}
    }
    out.push(pointer);
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn remove_at(doc: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent).unwrap() {
        Value::Object(o) => {
            o.shift_remove(&last);
        }
        Value::Array(a) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => unreachable!(),
    }
}

fn walk_accepts(doc: &Value) -> bool {
    fhir_validate::validate_resource(doc)
        .iter()
        .all(|i| !i.is_error())
}

#[test]
fn the_walk_refuses_everything_fhirbolt_refuses() {
    let mut tried = 0;
    let mut fhirbolt_refused = 0;
    let mut differences = Vec::new();
    for name in FIXTURES {
        let doc = load(name);
        assert!(walk_accepts(&doc), "{name} is valid");
        for (what, mutated) in mutations(&doc) {
            tried += 1;
            let bytes = serde_json::to_vec(&mutated).unwrap();
            let Err(refusal) = fhir_r4::check_json(&bytes) else {
                continue;
            };
            fhirbolt_refused += 1;
            if walk_accepts(&mutated) {
                differences.push(format!("{name}: {what}: fhirbolt: {refusal}"));
            }
        }
    }
    eprintln!(
        "{tried} mutations, {fhirbolt_refused} refused by fhirbolt, {} accepted by the walk",
        differences.len()
    );
    assert!(
        fhirbolt_refused > 1_000,
        "the mutations exercise fhirbolt's refusals"
    );
    assert!(
        differences.is_empty(),
        "{} documents fhirbolt refuses pass the walk:\n{}",
        differences.len(),
        differences
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The committed fuzz corpus of the `validate_resource` target (fuzz/corpus): every JSON
/// document in it, each checked as a resource of its own `resourceType`.
#[test]
fn the_walk_refuses_every_fuzz_corpus_document_fhirbolt_refuses() {
    let dir = format!(
        "{}/../../fuzz/corpus/validate_resource",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut documents = 0;
    let mut fhirbolt_refused = 0;
    let mut differences = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let known_type = doc
            .get("resourceType")
            .and_then(Value::as_str)
            .is_some_and(fhir_validate::is_resource_type);
        if !known_type {
            continue;
        }
        documents += 1;
        // What the server would store: the parsed document written again.
        let stored = serde_json::to_vec(&doc).unwrap();
        let Err(refusal) = fhir_r4::check_json(&stored) else {
            continue;
        };
        fhirbolt_refused += 1;
        if walk_accepts(&doc) {
            differences.push(format!("{}: fhirbolt: {refusal}", path.display()));
        }
    }
    eprintln!(
        "{documents} corpus documents, {fhirbolt_refused} refused by fhirbolt, {} accepted by the walk",
        differences.len()
    );
    assert!(
        documents > 250,
        "the corpus is there: {documents} documents"
    );
    assert!(
        differences.is_empty(),
        "{} corpus documents fhirbolt refuses pass the walk:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// Warnings never end the walk early: an unknown element after a hundred warnings (strings
/// with surrounding whitespace) is still found.
#[test]
fn a_hundred_warnings_do_not_hide_an_error() {
    let given: Vec<Value> = (0..150).map(|i| json!(format!(" name{i}"))).collect();
    let doc = json!({"resourceType": "Patient", "name": [{"given": given}], "bogus": true});
    let issues = fhir_validate::validate_resource(&doc);
    assert!(
        issues
            .iter()
            .any(|i| i.is_error() && i.expression == "Patient.bogus"),
        "{:?}",
        issues.iter().filter(|i| i.is_error()).collect::<Vec<_>>()
    );
    assert!(fhir_r4::check_json(&serde_json::to_vec(&doc).unwrap()).is_err());
}

/// `ExampleScenario.instance.resourceType` is an element (a code from resource-types), not a
/// resource's type: accepted by both, and checked like any required code.
#[test]
fn an_example_scenario_instance_has_a_resource_type_element() {
    let doc = json!({
        "resourceType": "ExampleScenario",
        "status": "draft",
        "instance": [{"resourceId": "a", "resourceType": "Patient"}]
    });
    let errors: Vec<_> = fhir_validate::validate_resource(&doc)
        .into_iter()
        .filter(|i| i.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(fhir_r4::check_json(&serde_json::to_vec(&doc).unwrap()).is_ok());
    let unknown = json!({
        "resourceType": "ExampleScenario",
        "status": "draft",
        "instance": [{"resourceId": "a", "resourceType": "NoSuchType"}]
    });
    assert!(!walk_accepts(&unknown), "a code outside resource-types");
    let missing = json!({
        "resourceType": "ExampleScenario",
        "status": "draft",
        "instance": [{"resourceId": "a"}]
    });
    assert!(!walk_accepts(&missing), "the element is required");
}
