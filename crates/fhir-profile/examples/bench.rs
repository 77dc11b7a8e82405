//! Profile validation speed (FHIR R4 validation.html §"Profiles"): validates a ~4 KB US Core
//! CarePlan against us-core-careplan N times and prints microseconds per resource; then a US
//! Core screening Observation, whose invariants run through the FHIRPath engine.
//!
//! `cargo run --release -p fhir-profile --example bench [N]` (N defaults to 20000).

use std::path::Path;
use std::time::Instant;

use fhir_profile::ProfileSet;
use serde_json::{json, Value};

fn load_dir(dir: &Path, out: &mut Vec<Value>) -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        out.push(serde_json::from_str(&std::fs::read_to_string(p)?)?);
    }
    Ok(())
}

/// A CarePlan of about 4 KB conforming to US Core.
fn care_plan() -> Value {
    let activity = |i: usize| {
        json!({
            "outcomeReference": [{"reference": format!("Observation/outcome-{i}")}],
            "progress": [{"time": "2026-02-01", "text": "Walking three times a week, as agreed at the last review."}],
            "detail": {
                "kind": "ServiceRequest",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "229065009", "display": "Exercise therapy"}], "text": "Exercise programme"},
                "status": "in-progress",
                "scheduledPeriod": {"start": "2026-01-15", "end": "2026-07-15"},
                "performer": [{"reference": "Practitioner/practitioner-1", "display": "Dr Ronald Bone"}],
                "description": "Thirty minutes of brisk walking, building up over six weeks."
            }
        })
    };
    json!({
        "resourceType": "CarePlan",
        "id": "bench-plan",
        "meta": {"versionId": "3", "lastUpdated": "2026-02-01T10:00:00Z",
                 "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Shared care plan for Amy Shaw: activity, diet and mood goals agreed with the care team.</p></div>"},
        "identifier": [{"system": "http://example.org/careplans", "value": "cp-0001"}],
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}],
        "title": "Amy's shared care plan",
        "description": "Plan agreed between Amy and her care team to manage blood pressure and mood.",
        "subject": {"reference": "Patient/example", "display": "Amy Shaw"},
        "period": {"start": "2026-01-15"},
        "created": "2026-01-15",
        "author": {"reference": "Practitioner/practitioner-1", "display": "Dr Ronald Bone"},
        "contributor": [{"reference": "Patient/example"}, {"reference": "Practitioner/practitioner-1"}, {"reference": "CareTeam/example"}],
        "careTeam": [{"reference": "CareTeam/example"}],
        "addresses": [{"reference": "Condition/hypertension"}, {"reference": "Condition/low-mood"}],
        "goal": [{"reference": "Goal/goal-1"}, {"reference": "Goal/goal-2"}, {"reference": "Goal/goal-3"}],
        "activity": [activity(1), activity(2), activity(3), activity(4), activity(5)],
        "note": [{"authorReference": {"reference": "Patient/example"}, "time": "2026-01-20T09:30:00Z",
                  "text": "I would rather walk with my niece in the mornings than go to the gym."}]
    })
}

fn time(
    set: &ProfileSet,
    resource: &Value,
    profile: &str,
    n: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let issues = set.validate(resource, profile)?;
    assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
    let start = Instant::now();
    let mut count = 0;
    for _ in 0..n {
        count += set.validate(resource, profile)?.len();
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    std::hint::black_box(count);
    Ok(per)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    let mut resources = Vec::new();
    load_dir(&root.join("us-core"), &mut resources)?;
    load_dir(&root.join("terminology"), &mut resources)?;
    let start = Instant::now();
    let set = ProfileSet::load(resources)?;
    println!(
        "load: {:.1} ms (US Core profiles and terminology)",
        start.elapsed().as_secs_f64() * 1e3
    );

    let plan = care_plan();
    let bytes = serde_json::to_vec(&plan)?.len();
    let per = time(
        &set,
        &plan,
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan",
        n,
    )?;
    println!(
        "CarePlan ({bytes} bytes) against us-core-careplan: {per:.2} µs per resource ({n} runs)"
    );

    let obs_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/uscore-Observation-PHQ9-total-score-44261-6.json");
    let obs: Value = serde_json::from_str(&std::fs::read_to_string(obs_path)?)?;
    let runs = (n / 10).max(1);
    let per = time(
        &set,
        &obs,
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment",
        runs,
    )?;
    println!("Observation ({} bytes) against us-core-observation-screening-assessment (3 invariants): {per:.2} µs per resource ({runs} runs)",
        serde_json::to_vec(&obs)?.len());
    Ok(())
}
