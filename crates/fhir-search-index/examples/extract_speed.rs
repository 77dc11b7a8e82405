//! Measures `extract` per resource: `cargo run --release -p fhir-search-index --example extract_speed`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: a panic is a failed run

use std::time::Instant;

use fhir_search_index::{extract, ExtractOptions};

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let options = ExtractOptions::default();
    // First call builds the registry and compiles every expression.
    let started = Instant::now();
    let warm = serde_json::json!({"resourceType": "Basic", "id": "warm-up"});
    if let Err(e) = extract(&warm, &options) {
        eprintln!("warm-up failed: {e}");
        return;
    }
    println!(
        "start-up (registry + compile all expressions): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // Baseline: a resource with only an id (engine context set-up, almost no evaluation).
    let minimal = serde_json::json!({"resourceType": "Patient", "id": "p1"});
    let started = Instant::now();
    for _ in 0..2000 {
        let _ = extract(&minimal, &options);
    }
    println!(
        "minimal Patient {{id}}: {:.1} µs per extract",
        started.elapsed().as_secs_f64() * 1e6 / 2000.0
    );
    // The Observation of the load benchmark's transaction10 scenario.
    let observation = serde_json::json!({
        "resourceType": "Observation", "id": "01a2255f-dfb9-7e60-997d-dafe24f240c7", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/01a22556-b68e-7e1e-bc64-99457764dd24"},
        "effectiveDateTime": "2026-05-05T10:00:00Z",
        "valueQuantity": {"value": 8, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
    });
    let iterations = 5000;
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..iterations {
        rows = extract(&observation, &options)
            .map(|r| r.len())
            .unwrap_or(0);
    }
    println!(
        "transaction10 Observation: {:.1} µs per extract ({rows} index rows)",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
    );
    for name in [
        "uscore-CarePlan-colonoscopy.json",
        "uscore-Patient-example.json",
        "handmade-Observation-vitals.json",
    ] {
        let path = format!("{dir}/{name}");
        let resource: serde_json::Value =
            match std::fs::read_to_string(&path).map(|t| serde_json::from_str(&t)) {
                Ok(Ok(v)) => v,
                other => {
                    eprintln!("{path}: {other:?}");
                    continue;
                }
            };
        let mut rows = 0;
        for _ in 0..200 {
            rows = extract(&resource, &options).map(|r| r.len()).unwrap_or(0);
        }
        let iterations = 2000;
        let started = Instant::now();
        for _ in 0..iterations {
            rows = extract(&resource, &options).map(|r| r.len()).unwrap_or(0);
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("{name}: {us:.1} µs per extract ({rows} index rows)");
    }
}
