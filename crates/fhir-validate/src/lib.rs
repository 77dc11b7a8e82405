//! FHIR R4 resource validation against the R4 base model (FHIR R4 §2.1.28
//! "Validating Resources"): unknown elements, JSON types, cardinality,
//! choice types, primitive formats (datatypes.html, checked by
//! `fhir-primitives`, the one reading of each primitive in the workspace),
//! required code bindings and narrative XHTML rules (narrative.html). Produces
//! OperationOutcome-ready issues with FHIRPath-style locations.

mod elements;
mod issue;
mod model;
mod summary;
mod walker;
mod xhtml;

pub use elements::{core_value_set_contains, ComplexType, ElementDef, ElementType};
pub use issue::{Issue, IssueList, Severity};
pub use summary::summarise;

/// Validate a resource (must be a JSON object with a known `resourceType`).
/// Returns all issues found (errors and warnings), in document order, capped
/// at [`MAX_ISSUES`] issues.
pub fn validate_resource(resource: &serde_json::Value) -> Vec<Issue> {
    walker::validate(resource)
}

/// Maximum number of issues returned by [`validate_resource`] (the last one
/// says that validation stopped early).
pub const MAX_ISSUES: usize = 100;

/// Maximum JSON nesting depth that is validated; deeper content is refused
/// with an issue instead of being walked.
pub const MAX_DEPTH: usize = 64;

/// Is `name` an R4 resource type known to the model (not the abstract
/// Resource/DomainResource)?
pub fn is_resource_type(name: &str) -> bool {
    model::model().is_concrete_resource(name)
}

/// All concrete R4 resource type names, sorted.
pub fn resource_types() -> &'static [&'static str] {
    &model::model().resource_names
}

/// The top-level elements of `resource_type` with a minimum cardinality of 1 (a required
/// `[x]` choice by its group name, e.g. `value`), for `_summary=text` (search.html#summary).
pub fn mandatory_elements(resource_type: &str) -> Vec<&'static str> {
    let model = model::model();
    let Some(index) = model.concrete_resource(resource_type) else {
        return Vec::new();
    };
    let def = &model.types[index];
    let mut names: Vec<&'static str> = def
        .required
        .iter()
        .map(|&i| def.elements[i].name.as_str())
        .collect();
    names.extend(
        def.choices
            .iter()
            .filter(|c| c.required)
            .map(|c| c.name.as_str()),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_top_level_elements() {
        let mut plan = mandatory_elements("CarePlan");
        plan.sort_unstable();
        assert_eq!(plan, ["intent", "status", "subject"]);
        assert!(mandatory_elements("Patient").is_empty());
        assert!(mandatory_elements("NotAType").is_empty());
    }

    #[test]
    fn resource_type_queries() {
        assert!(
            is_resource_type("Patient")
                && is_resource_type("CarePlan")
                && is_resource_type("Bundle")
        );
        assert!(!is_resource_type("Resource") && !is_resource_type("DomainResource"));
        assert!(
            !is_resource_type("HumanName") && !is_resource_type("string") && !is_resource_type("")
        );
        let all = resource_types();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.contains(&"QuestionnaireResponse") && !all.contains(&"Resource"));
        assert!(all.iter().all(|t| is_resource_type(t)));
    }
}
