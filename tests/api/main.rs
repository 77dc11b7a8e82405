//! The FHIR API through the real router, in one test binary (each test binary links the whole
//! server): one module per concern, most stories run on every backend. Run one module with
//! `cargo test --test api search::`.
//!
//! - `access`: SMART scopes and the Patient compartment confine every interaction
//! - `audit`: an AuditEvent for every read, search and write of patient data
//! - `bundle`: batch and transaction Bundles
//! - `concurrency`: racing If-Match writers over real HTTP
//! - `conditional`: conditional create, update and delete
//! - `contracts`: insta snapshots (`snapshots/`) of what clients build against
//! - `coproduction`: the coproduction rule table, row by row, over real HTTP
//! - `crud`: read, vread, create, update, delete and versioning
//! - `fhirpath_patch`: FHIRPath Patch on PATCH and in bundles
//! - `fuzz_regressions`: every input a fuzz target found a bug with, replayed (fuzz/regressions)
//! - `formats`: content negotiation and FHIR XML
//! - `history`: history at every level, `_since`, paging
//! - `prom`: PROMs scored on arrival, goals that move with them, trends and `$lastn`
//! - `provenance`: a Provenance for every write, over real HTTP with real tokens
//! - `search`: search parameters, modifiers, chains, includes, paging
//! - `service`: the CapabilityStatement, health and readiness, routing
//! - `shared_plan`: If-Match on the shared plan; a patient and a clinician app lose nothing
//! - `validation`: bad input is a clear 4xx, never a 500
//! - `write_pipeline`: write hooks on every write path
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "../common/mod.rs"]
mod common;

mod access;
mod audit;
mod bundle;
mod concurrency;
mod conditional;
mod contracts;
mod coproduction;
mod crud;
mod fhirpath_patch;
mod formats;
mod fuzz_regressions;
mod history;
mod profiles;
mod prom;
mod provenance;
mod search;
mod service;
mod shared_plan;
mod validation;
mod write_pipeline;
