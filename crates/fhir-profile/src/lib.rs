//! Validation of FHIR R4 resources against profiles: StructureDefinitions (differentials),
//! with the ValueSets and CodeSystems they bind to (FHIR R4 profiling.html,
//! elementdefinition.html, validation.html §"Profiles", terminologies.html).
//!
//! A pure library: the caller passes in the conformance resources once
//! ([`ProfileSet::load`]), then validates resources against any loaded profile
//! ([`ProfileSet::validate`]). Base R4 validation (structure, primitive formats, the base
//! model's required bindings) is `fhir_validate::validate_resource`'s job and is not repeated
//! here; the issues are the same `fhir_validate::Issue`s, with FHIRPath locations.
//!
//! At load every differential is resolved against the R4 model into a tree of elements
//! (`tree`), invariants are compiled once (`invariant`), and `baseDefinition` chains are
//! linked (`set`). Validation walks those trees over the resource (`walk`), with the
//! per-constraint checks in `binding`, `reference`, `slicing`, `extensions` and `values`, and
//! answers terminology questions from what is loaded (`terminology`), never by guessing: what
//! cannot be checked is said as an `information` issue.

mod binding;
mod element;
mod extensions;
mod inherit;
mod invariant;
mod loc;
mod profile;
mod reference;
mod set;
mod slicing;
mod terminology;
mod tree;
mod values;
mod walk;

#[cfg(test)]
mod tests;

pub use profile::ProfileInfo;
pub use set::{LoadError, ProfileSet, UnknownProfile};

/// A `ProfileSet` is shared between request handlers.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<ProfileSet>();
};
