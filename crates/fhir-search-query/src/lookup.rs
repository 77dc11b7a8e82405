//! The caller-owned search parameter registry, as seen by the parser
//! (FHIR R4 search.html §3.1.1.4 "Search Parameter Types" and
//! SearchParameter.type / .target / .component).
//!
//! This crate does not know which parameters exist; it asks a
//! [`ParamLookup`] supplied by the caller. Parameter types are
//! [`fhir_primitives::ParamType`], the one enum the index side uses too.

use fhir_primitives::ParamType;

/// What the registry knows about one search parameter of one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub param_type: ParamType,
    /// Reference parameters: the resource types the reference may point to
    /// (SearchParameter.target). Empty means "any type": chaining through such
    /// a parameter then needs an explicit `:Type` modifier.
    pub targets: Vec<String>,
    /// Composite parameters: the component parameter codes and their types,
    /// in order (the `$`-separated parts of a value).
    pub components: Vec<(String, ParamType)>,
}

impl ParamInfo {
    /// A parameter of `param_type` with no targets and no components.
    pub fn of(param_type: ParamType) -> Self {
        ParamInfo {
            param_type,
            targets: Vec::new(),
            components: Vec::new(),
        }
    }
}

/// The caller's search parameter registry.
///
/// `lookup` is expected to return the common parameters (`_id` token,
/// `_lastUpdated` date, `_tag`/`_security` token, `_profile`/`_source` uri)
/// for every resource type.
pub trait ParamLookup {
    fn lookup(&self, resource_type: &str, code: &str) -> Option<ParamInfo>;
    fn is_resource_type(&self, name: &str) -> bool;
    /// How many levels chains and `_has` may nest (at most [`MAX_CHAIN_DEPTH`]).
    fn max_chain_depth(&self) -> usize {
        MAX_CHAIN_DEPTH
    }
}

/// The deepest chain or `_has` nesting the parser follows, whatever the registry allows.
pub const MAX_CHAIN_DEPTH: usize = 8;
