//! Plain path branches are read from the JSON directly (`extract::follow_path`) instead of by
//! the FHIRPath engine: this shows the index rows are the engine's, row for row, on every
//! resource of the examples and the fuzz corpora (each resource found anywhere in a document:
//! Bundle entries, contained resources) and on systematic single mutations of the examples
//! (every leaf replaced by values of other JSON types, every element removed, given a
//! `_element` sibling or a choice-style sibling `elementCode`), in UTC and in another zone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use fhir_search_index::{extract, ExtractOptions};
use serde_json::{json, Map, Value};

/// The rows (or the error) of both ways, as comparable text, in UTC and in a server zone an
/// hour east (dates and times without a zone are read in it).
fn both(resource: &Value) -> (String, String) {
    let show = |engine_only: bool| {
        [0, 3600]
            .map(|tz_offset_seconds| {
                match extract(
                    resource,
                    &ExtractOptions {
                        tz_offset_seconds,
                        engine_only,
                    },
                ) {
                    Ok(rows) => format!("{rows:?}"),
                    Err(e) => format!("error: {e}"),
                }
            })
            .join("\n")
    };
    (show(false), show(true))
}

/// Every object with a string `resourceType`, anywhere in `doc`.
fn resources_in(doc: &Value, out: &mut Vec<Value>) {
    match doc {
        Value::Object(o) => {
            if o.get("resourceType").is_some_and(Value::is_string) {
                out.push(doc.clone());
            }
            o.values().for_each(|v| resources_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| resources_in(v, out)),
        _ => {}
    }
}

/// The JSON documents of `dir` (files that do not parse as JSON are skipped: the fuzz
/// corpora hold arbitrary bytes too).
fn documents(dir: &Path) -> Vec<Value> {
    let mut docs = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return docs;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if let Ok(Ok(doc)) = std::fs::read(&path).map(|b| serde_json::from_slice::<Value>(&b)) {
            docs.push(doc);
        }
    }
    docs
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_corpus_resource_gets_the_engines_rows() {
    let dirs = [
        "tests/fixtures",
        "../fhir-validate/tests/fixtures",
        "../../fuzz/corpus/validate_resource",
        "../../fuzz/corpus/bundle",
    ];
    let mut seen = BTreeSet::new();
    let mut compared = 0;
    let mut with_rows = 0;
    for dir in dirs {
        let docs = documents(&crate_dir().join(dir));
        assert!(!docs.is_empty(), "no JSON documents in {dir}");
        for doc in docs {
            let mut resources = Vec::new();
            resources_in(&doc, &mut resources);
            for resource in resources {
                if !seen.insert(resource.to_string()) {
                    continue;
                }
                let (direct, engine) = both(&resource);
                assert_eq!(direct, engine, "{dir}: {resource}");
                compared += 1;
                if direct.len() > 2 && !direct.starts_with("error") {
                    with_rows += 1;
                }
            }
        }
    }
    println!("{compared} distinct resources compared, {with_rows} with index rows");
    assert!(
        compared > 300 && with_rows > 200,
        "{compared} / {with_rows}"
    );
}

/// Values a leaf is replaced with: every JSON type, numbers of both kinds, a date, objects a
/// choice element could hold.
fn replacements() -> Vec<Value> {
    vec![
        json!(1),
        json!(2.50),
        json!(-0.0),
        json!(true),
        Value::Null,
        json!("2020-01-01T10:00:00+01:00"),
        json!(""),
        json!("2020-01-01T10:00:00"),
        json!("2020-01"),
        json!({}),
        json!([]),
        json!([1, "a"]),
        json!({"value": 1.5, "unit": "mg"}),
        json!({"reference": "Patient/x"}),
        json!({"coding": [{"system": "s", "code": "c"}]}),
    ]
}

/// Every single mutation of `doc` at and below `pointer`.
fn mutate(doc: &Value, node: &Value, pointer: &str, out: &mut Vec<Value>) {
    let set = |value: Value| {
        let mut copy = doc.clone();
        *copy.pointer_mut(pointer).unwrap() = value;
        copy
    };
    match node {
        Value::Object(o) => {
            for (key, child) in o {
                let child_pointer =
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                mutate(doc, child, &child_pointer, out);
                if key == "resourceType" {
                    continue;
                }
                let mut without: Map<String, Value> = o.clone();
                without.remove(key);
                out.push(set(Value::Object(without)));
                if !key.starts_with('_') {
                    // The element again as a choice-style key of another type.
                    let mut choice = o.clone();
                    choice.insert(format!("{key}Code"), json!("phone"));
                    out.push(set(Value::Object(choice)));
                    let mut extended = o.clone();
                    extended.insert(
                        format!("_{key}"),
                        json!({"extension": [{"url": "http://example.org/x", "valueString": "x"}]}),
                    );
                    out.push(set(Value::Object(extended)));
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                mutate(doc, child, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {
            for value in replacements() {
                out.push(set(value));
            }
        }
    }
}

#[test]
fn every_mutation_of_the_examples_gets_the_engines_rows() {
    let mut compared = 0;
    let mut differing = Vec::new();
    for doc in documents(&crate_dir().join("tests/fixtures")) {
        let mut mutations = Vec::new();
        mutate(&doc, &doc, "", &mut mutations);
        for mutated in mutations {
            let (direct, engine) = both(&mutated);
            compared += 1;
            if direct != engine {
                differing.push(format!("{mutated}\n  direct: {direct}\n  engine: {engine}"));
            }
        }
    }
    println!("{compared} mutations compared");
    assert!(compared > 5_000, "{compared}");
    assert!(
        differing.is_empty(),
        "{} of {compared} differ; first:\n{}",
        differing.len(),
        differing
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
