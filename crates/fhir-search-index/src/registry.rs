//! The R4 search parameter registry (FHIR R4 searchparameter.html and search.html §3.1.1
//! "Search Parameter Types", §3.1.1.2 "Parameters for all resources").
//!
//! Built once from `profiles/search-parameters.json` (compacted from the official R4
//! SearchParameter Bundle by `profiles/generate_search_params.py`). R4 expressions are
//! unions across base types (`CarePlan.subject.where(resolve() is Patient) | Goal.subject`);
//! each [`SearchParam`] here is per resource type and keeps only the union branches that
//! start with that type (or with `Resource.` / `DomainResource.`).

use std::collections::HashMap;
use std::sync::OnceLock;

use fhir_primitives::ParamType;
use serde::Deserialize;

/// The compact registry file, embedded at compile time.
const SEARCH_PARAMETERS_JSON: &str = include_str!("../../../profiles/search-parameters.json");

/// One component of a composite parameter: the code of the referenced parameter and
/// the FHIRPath expression, relative to the composite's element, that yields its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub code: String,
    pub expression: String,
}

/// A search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct SearchParam {
    /// The parameter code used in URLs (`patient`, `_id`, `code-value-quantity`).
    pub code: String,
    /// The resource type this entry is for.
    pub resource_type: String,
    pub param_type: ParamType,
    /// The branches of the R4 expression that apply to `resource_type`, joined by ` | `
    /// (empty for parameters without an expression).
    pub expression: String,
    /// Target resource types of a reference parameter.
    pub targets: Vec<String>,
    /// Components of a composite parameter.
    pub components: Vec<Component>,
    /// R4 `xpathUsage` (`normal`, `nearby`, …).
    pub xpath_usage: Option<String>,
    pub multiple_or: Option<bool>,
    pub multiple_and: Option<bool>,
    /// Allowed modifiers declared by the definition (R4 lists few; servers add the standard ones).
    pub modifiers: Vec<String>,
    /// Allowed comparators declared by the definition.
    pub comparators: Vec<String>,
    /// True for the parameters that apply to all resources (`_id`, `_lastUpdated`, …).
    pub common: bool,
}

/// All search parameters, per resource type.
#[derive(Debug)]
pub struct Registry {
    by_type: HashMap<String, Vec<SearchParam>>,
    common: Vec<SearchParam>,
    resource_types: Vec<String>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "resourceTypes")]
    resource_types: Vec<String>,
    params: Vec<RawParam>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParam {
    code: String,
    base: Vec<String>,
    #[serde(rename = "type")]
    param_type: String,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    xpath_usage: Option<String>,
    #[serde(default)]
    target: Vec<String>,
    #[serde(default)]
    component: Vec<RawComponent>,
    #[serde(default)]
    multiple_or: Option<bool>,
    #[serde(default)]
    multiple_and: Option<bool>,
    #[serde(default)]
    modifier: Vec<String>,
    #[serde(default)]
    comparator: Vec<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    code: String,
    expression: String,
}

/// Splits a FHIRPath expression at top-level `|` operators (outside parentheses and
/// string literals).
pub(crate) fn split_union(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut start = 0;
    for (i, c) in expression.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => depth -= 1,
            '|' if !in_string && depth == 0 => {
                parts.push(expression[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(expression[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Whether a union branch applies to `resource_type`: it starts (after any opening
/// parentheses) with `Type.`, is exactly `Type`, or starts with `Resource.`/`DomainResource.`.
fn branch_applies(branch: &str, resource_type: &str) -> bool {
    let b = branch.trim_start_matches('(');
    let starts_with_type = |t: &str| {
        b.strip_prefix(t).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with('.')
                || rest.starts_with(')')
                || rest.starts_with(' ')
        })
    };
    starts_with_type(resource_type)
        || starts_with_type("Resource")
        || starts_with_type("DomainResource")
}

/// The extension with which Coplan's Provenance names the patients whose records its targets
/// are in (R4's `Provenance.target.where(resolve() is Patient)` finds only changes to a Patient
/// resource itself).
pub const PROVENANCE_PATIENT_EXTENSION: &str =
    "http://coplan.dev/fhir/StructureDefinition/provenance-patient";

/// Branches this server adds to an R4 expression: Provenance `patient` also reads
/// [`PROVENANCE_PATIENT_EXTENSION`], so a Provenance is in the Patient compartments of the
/// records it describes, and whoever may read a patient's plan may read who changed it.
fn server_branch(resource_type: &str, code: &str) -> Option<String> {
    (resource_type == "Provenance" && code == "patient").then(|| {
        format!("Provenance.extension.where(url = '{PROVENANCE_PATIENT_EXTENSION}').valueReference")
    })
}

impl Registry {
    /// The process-wide registry, parsed on first use.
    pub fn get() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(Registry::build)
    }

    fn build() -> Registry {
        // The file is embedded and checked by the tests; a parse failure would be a build defect,
        // so it degrades to an empty registry rather than panicking.
        let raw: RawFile = serde_json::from_str(SEARCH_PARAMETERS_JSON).unwrap_or(RawFile {
            resource_types: Vec::new(),
            params: Vec::new(),
        });
        let mut by_type: HashMap<String, Vec<SearchParam>> = raw
            .resource_types
            .iter()
            .map(|t| (t.clone(), Vec::new()))
            .collect();
        let mut common = Vec::new();
        for p in &raw.params {
            let Some(param_type) = ParamType::from_code(&p.param_type) else {
                continue;
            };
            let make = |resource_type: &str, expression: String, is_common: bool| SearchParam {
                code: p.code.clone(),
                resource_type: resource_type.to_string(),
                param_type,
                expression,
                targets: p.target.clone(),
                components: p
                    .component
                    .iter()
                    .map(|c| Component {
                        code: c.code.clone(),
                        expression: c.expression.clone(),
                    })
                    .collect(),
                xpath_usage: p.xpath_usage.clone(),
                multiple_or: p.multiple_or,
                multiple_and: p.multiple_and,
                modifiers: p.modifier.clone(),
                comparators: p.comparator.clone(),
                common: is_common,
            };
            let is_common = p
                .base
                .iter()
                .any(|b| b == "Resource" || b == "DomainResource");
            if is_common {
                // `_text`, `_content`, `_query` have no expression: they are query-side features.
                if let Some(expr) = p.expression.as_deref().filter(|e| !e.is_empty()) {
                    common.push(make("Resource", expr.to_string(), true));
                }
                continue;
            }
            for base in &p.base {
                let expression = match p.expression.as_deref() {
                    Some(expr) => split_union(expr)
                        .into_iter()
                        // R4 has one relative expression (InsurancePlan `name`: `name | alias`).
                        .map(|b| match b.chars().next() {
                            Some(c) if c.is_ascii_lowercase() => format!("{base}.{b}"),
                            _ => b.to_string(),
                        })
                        .filter(|b| branch_applies(b, base))
                        .chain(server_branch(base, &p.code))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    None => String::new(),
                };
                by_type
                    .entry(base.clone())
                    .or_default()
                    .push(make(base, expression, false));
            }
        }
        for (resource_type, params) in by_type.iter_mut() {
            for c in &common {
                if !params.iter().any(|p| p.code == c.code) {
                    let mut param = c.clone();
                    param.resource_type = resource_type.clone();
                    params.push(param);
                }
            }
            params.sort_by(|a, b| a.code.cmp(&b.code));
        }
        common.sort_by(|a, b| a.code.cmp(&b.code));
        let mut resource_types = raw.resource_types;
        resource_types.sort();
        Registry {
            by_type,
            common,
            resource_types,
        }
    }

    /// The parameter `code` of `resource_type`, including the common ones (`_id`, …).
    pub fn lookup(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        match self.by_type.get(resource_type) {
            Some(params) => params
                .binary_search_by(|p| p.code.as_str().cmp(code))
                .ok()
                .and_then(|i| params.get(i)),
            None => None,
        }
    }

    /// All parameters of `resource_type`, sorted by code, common ones included. Empty for an
    /// unknown resource type.
    pub fn params_for(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.by_type
            .get(resource_type)
            .map(|v| v.iter())
            .unwrap_or_default()
    }

    /// The parameters that apply to every resource type (`_id`, `_lastUpdated`, `_profile`,
    /// `_security`, `_source`, `_tag`), with `resource_type` `"Resource"`.
    pub fn common_params(&self) -> &[SearchParam] {
        &self.common
    }

    /// Whether `resource_type` is one of the 146 concrete R4 resource types.
    pub fn is_resource_type(&self, resource_type: &str) -> bool {
        self.by_type.contains_key(resource_type)
    }

    /// The 146 concrete R4 resource types, sorted.
    pub fn resource_types(&self) -> &[String] {
        &self.resource_types
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_split_respects_parentheses() {
        assert_eq!(
            split_union("(A.value as Quantity) | (A.value as Range) | B.x.where(a='|')"),
            vec![
                "(A.value as Quantity)",
                "(A.value as Range)",
                "B.x.where(a='|')"
            ]
        );
    }

    #[test]
    fn branch_selection() {
        assert!(branch_applies("Observation.code", "Observation"));
        assert!(branch_applies(
            "(Observation.value as Quantity)",
            "Observation"
        ));
        assert!(branch_applies("Observation", "Observation"));
        assert!(!branch_applies("ObservationDefinition.code", "Observation"));
        assert!(branch_applies("Resource.id", "Patient"));
    }
}
