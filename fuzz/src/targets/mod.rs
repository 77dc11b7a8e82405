//! The bodies of the fuzz targets, one module per target: each takes the fuzzer's bytes, drives
//! one entry point of the server the way a request does, and panics when an invariant breaks.
//! A panic the server code raises, or an error it would answer with a 500, is a finding.
//!
//! Two builds compile these same files: the libFuzzer binaries in `fuzz/fuzz_targets/` (nightly,
//! `cargo fuzz`), and the stable test `tests/api/fuzz_regressions.rs`, which replays every input
//! kept under `fuzz/regressions/<target>/` through them (so `cargo test` guards every crash the
//! fuzzers found without nightly).
//!
//! Stateless targets are a `check(data)` function; the two that need a database or keys
//! (`bearer_token`, `bundle`) are a `Harness` made once per process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a panic is how a target reports a finding; fixed clocks need no injected time

pub mod bearer_token;
pub mod bundle;
pub mod patch;
pub mod search_query;
pub mod smart_scopes;
pub mod validate_resource;
pub mod xml_to_json;

use coplan::error::{ErrorKind, FhirError};

/// The request-body limits of a default configuration (`max_json_depth`, `max_json_values`).
pub const JSON_LIMITS: coplan::validate::JsonLimits = coplan::validate::JsonLimits {
    max_depth: 64,
    max_values: 100_000,
};

/// The FHIR base URL every target's server answers under.
pub const BASE: &str = "https://fuzz.example/fhir";

/// The names of the targets, as directories under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: &[&str] = &[
    "bearer_token",
    "bundle",
    "patch",
    "search_query",
    "smart_scopes",
    "validate_resource",
    "xml_to_json",
];

/// A temporary directory for a target's database: in `/dev/shm` where there is one, since the
/// SQLite store commits with `synchronous = FULL` and an fsync per input would dominate.
pub fn scratch_directory() -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix("coplan-fuzz-");
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a temporary directory")
}

/// The R4 model walk is the write path's one structural gate: whatever it accepts, fhirbolt's
/// strict parse of the stored bytes accepts too (crates/fhir-validate/tests/fhirbolt_parity.rs
/// proves it on the examples and their mutations; the fuzz targets on what they find).
#[track_caller]
pub fn assert_fhirbolt_accepts(stored: &[u8], what: &str) {
    if let Err(e) = fhir_r4::check_json(stored) {
        panic!(
            "{what}: the walk accepted what fhirbolt refuses: {e}\n{}",
            String::from_utf8_lossy(stored)
        );
    }
}

/// An error the server would answer with a 500 is a bug, whatever the input.
#[track_caller]
pub fn assert_not_internal(err: &FhirError, what: &str) {
    assert_ne!(
        err.kind,
        ErrorKind::Internal,
        "{what} answered with a 500: {err:?}"
    );
}
