//! FHIR R4 search support shared by the write and query sides (FHIR R4 search.html and
//! searchparameter.html):
//!
//! * [`Registry`]: every R4 SearchParameter, per resource type, plus the common
//!   parameters (`_id`, `_lastUpdated`, `_profile`, `_security`, `_source`, `_tag`);
//! * [`extract`]: typed index rows for one resource, evaluated with the
//!   `octofhir-fhirpath` engine over the registry expressions;
//! * [`normalize_string`] and [`date_range`]: the value normalisation both sides use.
//!
//! Not covered: `special` parameters (`near`; `_text`, `_content`, `_query` have no
//! expression and are not in the registry), `Reference.identifier`, Range and SampledData
//! values of quantity parameters, composite components with `%resource` (MolecularSequence).

mod date;
mod extract;
mod fhirpath;
mod normalize;
mod registry;

pub use date::date_range;
pub use extract::{extract, ExtractError, ExtractOptions, IndexEntry, IndexValue};
pub use normalize::normalize_string;
pub use registry::{Component, ParamType, Registry, SearchParam};

/// Every (resource type, parameter code) whose registry expression does not compile,
/// with the reason; `Err` if the FHIRPath engine itself cannot start. For tests and
/// start-up diagnostics.
pub fn expression_failures() -> Result<Vec<(String, String, String)>, String> {
    fhirpath::Compiled::get().map(|c| c.failures())
}
