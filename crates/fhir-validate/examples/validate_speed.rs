//! Rough speed check: validates uscore-CarePlan-colonoscopy.json 10k times.
//! Run with `cargo run --release -p fhir-validate --example validate_speed`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: a panic is a failed run

use std::time::Instant;

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/uscore-CarePlan-colonoscopy.json"
    );
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("invalid JSON in {path}: {e}");
            std::process::exit(1);
        }
    };
    // Warm-up (also loads the model once).
    let issues = fhir_validate::validate_resource(&value);
    println!("issues: {}", issues.len());
    let iterations = 10_000;
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..iterations {
        total += fhir_validate::validate_resource(std::hint::black_box(&value)).len();
    }
    let elapsed = start.elapsed();
    println!(
        "{:.2} µs per validation ({} iterations, {} issues total)",
        elapsed.as_secs_f64() * 1e6 / f64::from(iterations),
        iterations,
        total
    );
}
