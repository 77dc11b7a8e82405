//! The registry's expressions compiled for the shared FHIRPath engine (`fhir-fhirpath`; FHIR R4
//! searchparameter.html `SearchParameter.expression`, FHIRPath N1).
//!
//! The engine runs without a FHIR schema (see `fhir-fhirpath`), so each union branch is
//! rewritten for the resource type before compiling:
//!
//! * choice casts (`(X.value as T)`, `X.value.as(T)`, `X.value.ofType(T)`) → `X.valueT`
//!   ([`fhir_fhirpath::rewrite_choice_casts`]);
//! * `X.where(resolve() is T)` → `X`, and the extractor keeps only references whose
//!   target type is `T` (the engine cannot resolve references);
//! * a leading `Resource.` / `DomainResource.` → the concrete resource type.
//!
//! Every (resource type, code) expression is compiled once, on first use of [`Compiled::get`].
//!
//! Branches of the shapes `direct` reads from the JSON (element paths, `where(field='x')`
//! filters) also keep that form ([`Branch::direct`]): the extractor uses the engine only for
//! what they cannot say.

use std::collections::HashMap;
use std::sync::OnceLock;

use fhir_fhirpath::{rewrite_choice_casts, Engine, Expression, Node, Prepared};
use serde_json::Value;

use crate::direct::Direct;
use crate::registry::{split_union, Registry};

/// One compiled union branch.
pub(crate) struct Branch {
    /// The rewritten expression, compiled.
    pub expression: Expression,
    /// `Some(T)` when the branch ended in `.where(resolve() is T)`.
    pub resolve_is: Option<String>,
    /// The first element the path steps into (`name` in `Patient.name.family`), when the
    /// branch is a plain path whose result is empty if that element is absent. Lets the
    /// extractor skip evaluating branches for elements the resource does not have.
    pub first_element: Option<String>,
    /// The branch in the form the extractor reads without the engine, if it has one.
    pub direct: Option<Direct>,
}

/// The first element of a plain path branch (see [`Branch::first_element`]).
fn first_element(source: &str, resource_type: &str) -> Option<String> {
    // Branches that compute booleans or combine values give results even for absent elements.
    if [
        "exists(", "empty(", "not(", " and ", " or ", "iif(", "%", "$",
    ]
    .iter()
    .any(|m| source.contains(m))
    {
        return None;
    }
    let rest = source
        .trim_start_matches('(')
        .strip_prefix(resource_type)?
        .strip_prefix('.')?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Compiled branches of one parameter, or why they could not be compiled.
pub(crate) type CompiledParam = Result<Vec<Branch>, String>;

/// Per component of a composite parameter, its union branches as element paths relative to
/// the composite's element (casts rewritten); `None` for a branch that needs more than a path
/// (`%resource`, functions): such composites are not indexed.
pub(crate) type ComponentPaths = Vec<Vec<Option<String>>>;

/// The engine and every compiled registry expression, by resource type then code (looked up
/// by `&str`, no allocation per lookup).
pub(crate) struct Compiled {
    engine: &'static Engine,
    plans: HashMap<String, HashMap<String, CompiledParam>>,
    components: HashMap<String, HashMap<String, ComponentPaths>>,
}

/// The element paths of each component of `param` (see [`ComponentPaths`]).
fn component_paths(param: &crate::registry::SearchParam) -> ComponentPaths {
    param
        .components
        .iter()
        .map(|component| {
            split_union(&component.expression)
                .into_iter()
                .map(|branch| {
                    // No `%resource`, and no function other than a cast.
                    let plain =
                        !branch.contains('%') && (!branch.contains('(') || branch.contains(".as("));
                    plain.then(|| rewrite_choice_casts(branch))
                })
                .collect()
        })
        .collect()
}

/// Rewrites one union branch for `resource_type`: returns the engine expression and the
/// `resolve() is T` target filter, if any.
pub(crate) fn rewrite_branch(
    branch: &str,
    resource_type: &str,
) -> Result<(String, Option<String>), String> {
    let mut expr = branch.trim().to_string();
    let opening = expr.len() - expr.trim_start_matches('(').len();
    for prefix in ["Resource.", "DomainResource."] {
        if expr[opening..].starts_with(prefix) {
            expr = format!(
                "{}{}.{}",
                &expr[..opening],
                resource_type,
                &expr[opening + prefix.len()..]
            );
            break;
        }
    }
    let mut resolve_is = None;
    const RESOLVE: &str = ".where(resolve() is ";
    if let Some(at) = expr.find(RESOLVE) {
        let tail = &expr[at + RESOLVE.len()..];
        let target = tail
            .strip_suffix(')')
            .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric()));
        match target {
            Some(t) if !t.is_empty() => {
                resolve_is = Some(t.to_string());
                expr.truncate(at);
            }
            _ => return Err(format!("unsupported resolve() pattern in `{branch}`")),
        }
    }
    if expr.contains("resolve()") {
        return Err(format!("unsupported resolve() pattern in `{branch}`"));
    }
    let expr = rewrite_choice_casts(&expr);
    if expr.contains(" as ") || expr.contains(".as(") || expr.contains("ofType(") {
        return Err(format!("unsupported type cast in `{branch}`"));
    }
    Ok((expr, resolve_is))
}

impl Compiled {
    /// The process-wide engine with all registry expressions compiled.
    pub(crate) fn get() -> Result<&'static Compiled, String> {
        static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
        COMPILED
            .get_or_init(Compiled::build)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build() -> Result<Compiled, String> {
        let engine = Engine::shared().map_err(|e| e.to_string())?;
        let registry = Registry::get();
        let mut plans: HashMap<String, HashMap<String, CompiledParam>> = HashMap::new();
        let mut components: HashMap<String, HashMap<String, ComponentPaths>> = HashMap::new();
        for resource_type in registry.resource_types() {
            for param in registry.params_for(resource_type) {
                if !param.components.is_empty() {
                    components
                        .entry(resource_type.clone())
                        .or_default()
                        .insert(param.code.clone(), component_paths(param));
                }
                if param.expression.is_empty() {
                    continue;
                }
                let compiled = split_union(&param.expression)
                    .into_iter()
                    .map(|branch| {
                        let (source, resolve_is) = rewrite_branch(branch, resource_type)?;
                        let first_element = first_element(&source, resource_type);
                        let direct = Direct::of(&source, resource_type);
                        let expression = engine.compile(&source).map_err(|e| e.to_string())?;
                        Ok(Branch {
                            expression,
                            resolve_is,
                            first_element,
                            direct,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>();
                plans
                    .entry(resource_type.clone())
                    .or_default()
                    .insert(param.code.clone(), compiled);
            }
        }
        Ok(Compiled {
            engine,
            plans,
            components,
        })
    }

    /// The compiled branches of `code` on `resource_type` (`None` if it has no expression).
    pub(crate) fn param(&self, resource_type: &str, code: &str) -> Option<&CompiledParam> {
        self.plans.get(resource_type)?.get(code)
    }

    /// The component paths of composite `code` on `resource_type`.
    pub(crate) fn components(&self, resource_type: &str, code: &str) -> Option<&ComponentPaths> {
        self.components.get(resource_type)?.get(code)
    }

    /// Every (resource type, code) whose expression could not be compiled, with the reason.
    pub(crate) fn failures(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = self
            .plans
            .iter()
            .flat_map(|(t, by_code)| {
                by_code.iter().filter_map(move |(c, r)| {
                    r.as_ref().err().map(|e| (t.clone(), c.clone(), e.clone()))
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Converts a resource into the engine's model once; reuse it for every branch.
    pub(crate) fn prepare<'v>(&self, resource: &'v Value) -> Prepared<'v> {
        self.engine.prepare(resource)
    }

    /// Evaluates one compiled branch.
    pub(crate) async fn evaluate<'v>(
        &self,
        branch: &Branch,
        prepared: &Prepared<'v>,
    ) -> Result<Vec<Node<'v>>, String> {
        self.engine
            .evaluate(&branch.expression, prepared)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rewritten() {
        assert_eq!(
            rewrite_branch("CarePlan.subject.where(resolve() is Patient)", "CarePlan"),
            Ok(("CarePlan.subject".to_string(), Some("Patient".to_string())))
        );
        assert_eq!(
            rewrite_branch("Resource.meta.tag", "Goal"),
            Ok(("Goal.meta.tag".to_string(), None))
        );
    }
}
