//! Shared test support: the repository's US Core profiles and terminology, fixtures, and
//! issue comparison (FHIR R4 profiling.html).
#![allow(dead_code)]
// Test support: a failure to read the repository's own files is a broken test setup.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use fhir_profile::ProfileSet;
use fhir_validate::{Issue, Severity};
use serde_json::Value;

pub const CAREPLAN: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan";
pub const CARETEAM: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam";
pub const CONDITION: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns";
pub const GOAL: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal";
pub const SCREENING: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment";
pub const PATIENT: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient";
pub const PRACTITIONER: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";
pub const PROVENANCE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance";
pub const QR: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse";
pub const RELATED: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-relatedperson";

fn repo_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(sub)
}

fn json_files(dir: &Path) -> Vec<Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The US Core StructureDefinitions and CodeSystem, and the shipped terminology.
pub fn us_core_resources() -> Vec<Value> {
    let mut all = json_files(&repo_dir("profiles/us-core"));
    all.extend(json_files(&repo_dir("profiles/terminology")));
    all
}

pub fn us_core() -> ProfileSet {
    ProfileSet::load(us_core_resources()).unwrap()
}

/// US Core plus `extra` resources.
pub fn us_core_with(extra: Vec<Value>) -> ProfileSet {
    let mut all = us_core_resources();
    all.extend(extra);
    ProfileSet::load(all).unwrap()
}

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An issue as (severity, code, expression, diagnostics).
pub type Said = (Severity, &'static str, String, String);

pub fn said(issues: &[Issue]) -> Vec<Said> {
    issues
        .iter()
        .map(|i| {
            (
                i.severity,
                i.code,
                i.expression.clone(),
                i.diagnostics.clone(),
            )
        })
        .collect()
}

pub fn issue(severity: Severity, code: &'static str, expression: &str, diagnostics: &str) -> Said {
    (
        severity,
        code,
        expression.to_string(),
        diagnostics.to_string(),
    )
}

/// Validates and prints the issues (shown when a test fails).
pub fn validate(set: &ProfileSet, resource: &Value, profile: &str) -> Vec<Said> {
    let issues = set.validate(resource, profile).unwrap();
    for i in &issues {
        eprintln!(
            "{:?} {} {} | {}",
            i.severity, i.code, i.expression, i.diagnostics
        );
    }
    said(&issues)
}

/// A test-only constraint StructureDefinition on `type_name` deriving from `base`.
pub fn profile(url: &str, type_name: &str, base: &str, elements: Value) -> Value {
    let kind = if fhir_validate::is_resource_type(type_name) {
        "resource"
    } else {
        "complex-type"
    };
    serde_json::json!({
        "resourceType": "StructureDefinition",
        "url": url,
        "name": "TestProfile",
        "status": "draft",
        "kind": kind,
        "abstract": false,
        "type": type_name,
        "baseDefinition": base,
        "derivation": "constraint",
        "differential": {"element": elements}
    })
}

/// The core R4 definition of `type_name`.
pub fn core(type_name: &str) -> String {
    format!("http://hl7.org/fhir/StructureDefinition/{type_name}")
}
