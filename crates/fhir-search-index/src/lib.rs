//! FHIR R4 search support shared by the write and query sides (FHIR R4 search.html and
//! searchparameter.html):
//!
//! * [`Registry`]: every R4 SearchParameter, per resource type, plus the common
//!   parameters (`_id`, `_lastUpdated`, `_profile`, `_security`, `_source`, `_tag`);
//! * [`extract`]: typed index rows for one resource, evaluated with the
//!   `octofhir-fhirpath` engine over the registry expressions;
//! * [`normalize_string`]: the string folding both sides use. Dates are read, and their
//!   ranges computed, by `fhir-primitives` (`PartialDateTime::range`), the same on both sides;
//!   parameter types are `fhir_primitives::ParamType`.
//!
//! ## FHIRPath engine
//!
//! Expressions run on the shared engine of `fhir-fhirpath` (octofhir-fhirpath, no schema).
//! Casts on choice elements and `where(resolve() is T)` are rewritten before compiling (see
//! the `compiled` module). Every expression is compiled once, on first use. Branches that are
//! element paths (or filter on a field) are read from the JSON directly (the `direct` module);
//! a resource is converted into the
//! engine's model (once per [`extract`] call) only when a present branch needs the engine
//! (tests/extract_fast_path.rs shows both ways give the same rows). The engine is async but does
//! no I/O: [`extract`] drives it with a local `block_on`, so it can be called from any thread,
//! including tokio workers.
//!
//! ## Not covered
//!
//! * `special` parameters (`near`); `_text`, `_content`, `_query` have no expression and
//!   are not in the registry (query-side features);
//! * `Reference.identifier` (for `:identifier`);
//! * Range and SampledData values of quantity parameters (`context-quantity`,
//!   `value-quantity` on SampledData);
//! * composite components with `%resource` paths (MolecularSequence `chromosome-*`);
//! * decimals keep the text serde_json gives back (`1.50` is indexed as `1.5`).
//!
//! Beyond R4 core, two US Core parameters are in the registry: Goal `description`
//! (token) and CareTeam `role` (token).

mod compiled;
mod direct;
mod extract;
mod normalize;
mod registry;

pub use extract::{extract, parse_reference, ExtractError, ExtractOptions, IndexEntry, IndexValue};
pub use fhir_primitives::ParamType;
pub use normalize::normalize_string;
pub use registry::{Component, Registry, SearchParam, PROVENANCE_PATIENT_EXTENSION};

/// Every (resource type, parameter code) whose registry expression does not compile,
/// with the reason; `Err` if the FHIRPath engine itself cannot start. For tests and
/// start-up diagnostics.
pub fn expression_failures() -> Result<Vec<(String, String, String)>, String> {
    compiled::Compiled::get().map(|c| c.failures())
}
