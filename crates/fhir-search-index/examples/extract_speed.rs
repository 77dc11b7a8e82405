//! Measures `extract` per resource, with plain paths read directly (what the server does) and
//! with every branch through the FHIRPath engine (`engine_only`, the reference):
//! `cargo run --release -p fhir-search-index --example extract_speed`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: a panic is a failed run

use std::time::Instant;

use serde_json::Value;

use fhir_search_index::{extract, ExtractOptions};

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    // First call builds the registry and compiles every expression.
    let started = Instant::now();
    let warm = serde_json::json!({"resourceType": "Basic", "id": "warm-up"});
    if let Err(e) = extract(&warm, &ExtractOptions::default()) {
        eprintln!("warm-up failed: {e}");
        return;
    }
    println!(
        "start-up (registry + compile all expressions): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // A resource with only an id (engine context set-up, almost no evaluation).
    let minimal = serde_json::json!({"resourceType": "Patient", "id": "p1"});
    report("minimal Patient {id}", &minimal);
    // The Observation of the load benchmark's transaction10 scenario.
    let observation = serde_json::json!({
        "resourceType": "Observation", "id": "01a2255f-dfb9-7e60-997d-dafe24f240c7", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/01a22556-b68e-7e1e-bc64-99457764dd24"},
        "effectiveDateTime": "2026-05-05T10:00:00Z",
        "valueQuantity": {"value": 8, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
    });
    report("transaction10 Observation", &observation);
    for name in [
        "uscore-CarePlan-colonoscopy.json",
        "uscore-Patient-example.json",
        "handmade-Observation-vitals.json",
    ] {
        let path = format!("{dir}/{name}");
        match std::fs::read_to_string(&path).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(resource)) => report(name, &resource),
            other => eprintln!("{path}: {other:?}"),
        }
    }
}

/// Prints the mean time of one `extract` of `resource`, both ways.
fn report(name: &str, resource: &Value) {
    let mut line = format!("{name}:");
    for (way, engine_only) in [("direct paths", false), ("engine only", true)] {
        let options = ExtractOptions {
            engine_only,
            ..ExtractOptions::default()
        };
        let mut rows = 0;
        for _ in 0..200 {
            rows = extract(resource, &options).map(|r| r.len()).unwrap_or(0);
        }
        let iterations = 3000;
        let started = Instant::now();
        for _ in 0..iterations {
            rows = extract(resource, &options).map(|r| r.len()).unwrap_or(0);
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        line.push_str(&format!(" {way} {us:.1} µs,"));
        if engine_only {
            line.push_str(&format!(" {rows} index rows"));
        }
    }
    println!("{line}");
}
