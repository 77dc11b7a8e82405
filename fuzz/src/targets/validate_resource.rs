//! Target `validate_resource`: a JSON request body on its way to storage (R4 http.html#create):
//! `validate::parse_json` → `check_resource` (the R4 model walk of crates/fhir-validate, the
//! one structural gate) → search index extraction, with the body's own `resourceType` as the
//! URL's type.
//!
//! Invariants beyond "no panic, no 500": a resource that passes every gate
//! - is accepted by fhirbolt's strict parse too (the walk is at least as strict);
//! - is accepted again as the server stores it (serialised, re-read, re-checked);
//! - has its search index rows extracted without error, the same rows whether plain paths are
//!   read directly (as the server does) or every branch goes through the FHIRPath engine;
//! - can be served as FHIR XML (`json_to_xml`), and that XML reads back (`xml_to_json`).

use super::{assert_fhirbolt_accepts, assert_not_internal};
use coplan::rest::search::params::R4SearchParams;
use coplan::validate::{check_resource, parse_json};
use fhir_search_index::{extract, ExtractOptions};
use serde_json::Value;

pub fn check(data: &[u8]) {
    let Ok(value) = parse_json(data, super::JSON_LIMITS) else {
        return;
    };
    let resource_type = match value.get("resourceType").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => "Patient".to_string(),
    };
    let checked = match check_resource(value, &resource_type) {
        Ok(checked) => checked,
        Err(e) => return assert_not_internal(&e, "check_resource"),
    };
    let stored = serde_json::to_vec(checked.value()).expect("a checked resource serialises");
    assert_fhirbolt_accepts(&stored, "validate_resource");

    let again =
        parse_json(&stored, super::JSON_LIMITS).and_then(|v| check_resource(v, &resource_type));
    match again {
        Ok(c) => assert_eq!(&c, &checked, "re-reading the stored form changed it"),
        Err(e) => panic!("the stored form of an accepted resource is refused: {e:?}"),
    }
    if let Err(e) = R4SearchParams::default().index_rows(checked.value()) {
        panic!("index extraction failed on an accepted resource: {e:?}");
    }
    let direct = extract(checked.value(), &ExtractOptions::default());
    let engine_only = ExtractOptions {
        engine_only: true,
        ..ExtractOptions::default()
    };
    assert_eq!(
        format!("{direct:?}"),
        format!("{:?}", extract(checked.value(), &engine_only)),
        "plain paths read directly give other index rows than the engine"
    );
    let xml = fhir_r4::json_to_xml(&stored)
        .unwrap_or_else(|e| panic!("an accepted resource cannot be written as XML: {e}"));
    if let Err(e) = fhir_r4::xml_to_json(&xml, 64) {
        panic!(
            "the XML of an accepted resource does not read back: {e}\n{}",
            String::from_utf8_lossy(&xml)
        );
    }
}
