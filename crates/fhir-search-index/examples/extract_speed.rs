//! Measures `extract` per resource: `cargo run --release -p fhir-search-index --example extract_speed`.

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
