//! FHIRPath evaluation of registry expressions (FHIR R4 searchparameter.html
//! `SearchParameter.expression`, FHIRPath N1) with the `octofhir-fhirpath` engine.
//!
//! The engine runs without a FHIR schema (`EmptyModelProvider`; the schema crate
//! `octofhir-fhirschema` links a second SQLite, which the server's sqlx already links),
//! so type-dependent constructs are rewritten before compiling:
//!
//! * `(X.value as T)`, `X.value.as(T)`, `X.value.ofType(T)` → `X.valueT` (R4 search
//!   expressions only cast choice elements, whose JSON name is the element name + type);
//! * `X.where(resolve() is T)` → `X`, and the extractor keeps only references whose
//!   target type is `T` (the engine cannot resolve references);
//! * a leading `Resource.` / `DomainResource.` → the concrete resource type.
//!
//! Every (resource type, code) expression is compiled once, on first use of [`Compiled::get`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use octofhir_fhirpath::core::node::FhirNode;
use octofhir_fhirpath::{
    create_function_registry, Collection, CompiledPlan, EmptyModelProvider, EvaluationContext,
    FhirPathEngine, FhirPathValue, ModelProvider,
};
use regex::{Captures, Regex};
use serde_json::Value;
use std::borrow::Cow;

use crate::registry::{split_union, Registry};

/// One value produced by an expression: JSON (borrowed from the resource when the value is
/// one of its elements), or a decimal kept as its exact text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'v> {
    Json(Cow<'v, Value>),
    Decimal(String),
}

/// One resource made ready for evaluation: the engine's context over the resource's tree, and
/// for every object and array of that tree the JSON element it was built from, so results
/// that are elements of the resource are read from the resource instead of converted back.
pub(crate) struct Prepared<'v> {
    context: EvaluationContext,
    /// Identity of a container node of the engine's tree → its JSON. The context keeps the
    /// tree alive, so an identity found here is that node (addresses cannot be reused).
    json_of: HashMap<usize, &'v Value>,
}

/// Records the JSON of every container node of `node` (built from `json`, so the two have
/// the same shape).
fn record_containers<'v>(node: &FhirNode, json: &'v Value, out: &mut HashMap<usize, &'v Value>) {
    match (node, json) {
        (FhirNode::Object(entries), Value::Object(map)) => {
            if let Some(id) = node.identity() {
                out.insert(id, json);
            }
            for (key, child) in entries.iter() {
                if let Some(child_json) = map.get(key.as_ref()) {
                    record_containers(child, child_json, out);
                }
            }
        }
        (FhirNode::Array(items), Value::Array(values)) => {
            if let Some(id) = node.identity() {
                out.insert(id, json);
            }
            for (child, child_json) in items.iter().zip(values) {
                record_containers(child, child_json, out);
            }
        }
        _ => {}
    }
}

/// One compiled union branch.
pub(crate) struct Branch {
    /// The rewritten expression that was compiled.
    pub source: String,
    plan: Arc<CompiledPlan>,
    /// `Some(T)` when the branch ended in `.where(resolve() is T)`.
    pub resolve_is: Option<String>,
    /// The first element the path steps into (`name` in `Patient.name.family`), when the
    /// branch is a plain path whose result is empty if that element is absent. Lets the
    /// extractor skip evaluating branches for elements the resource does not have.
    pub first_element: Option<String>,
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
    engine: FhirPathEngine,
    model: Arc<dyn ModelProvider + Send + Sync>,
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
                    plain.then(|| rewrite_casts(branch))
                })
                .collect()
        })
        .collect()
}

fn capitalize(t: &str) -> String {
    let mut c = t.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn regexes() -> &'static [Regex; 3] {
    static RE: OnceLock<[Regex; 3]> = OnceLock::new();
    RE.get_or_init(|| {
        // Constant patterns, covered by the unit tests below.
        let build = |p: &str| Regex::new(p).expect("constant regex compiles");
        [
            // (A.b as T)
            build(r"\(\s*([A-Za-z][A-Za-z0-9_.]*)\s+as\s+([A-Za-z]+)\s*\)"),
            // b.as(T) / b.ofType(T)
            build(r"([A-Za-z][A-Za-z0-9_]*)\.(?:as|ofType)\(\s*([A-Za-z]+)\s*\)"),
            // A.b as T   (unparenthesised, whole branch)
            build(r"^([A-Za-z][A-Za-z0-9_.]*)\s+as\s+([A-Za-z]+)$"),
        ]
    })
}

/// Rewrites type casts on choice elements into the JSON element name (`value as Quantity`
/// → `valueQuantity`).
pub(crate) fn rewrite_casts(expr: &str) -> String {
    let mut out = expr.to_string();
    for re in regexes() {
        out = re
            .replace_all(&out, |c: &Captures| {
                format!("{}{}", &c[1], capitalize(&c[2]))
            })
            .into_owned();
    }
    out
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
    let expr = rewrite_casts(&expr);
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
        let model: Arc<dyn ModelProvider + Send + Sync> = Arc::new(EmptyModelProvider);
        let engine = futures::executor::block_on(FhirPathEngine::new(
            Arc::new(create_function_registry()),
            model.clone(),
        ))
        .map_err(|e| format!("cannot start the FHIRPath engine: {e}"))?;
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
                        let plan = engine
                            .compile_plan(&source)
                            .map_err(|e| format!("`{source}` does not compile: {e}"))?;
                        let first_element = first_element(&source, resource_type);
                        Ok(Branch {
                            source,
                            plan,
                            resolve_is,
                            first_element,
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
            model,
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

    /// Converts a resource into the engine's model once; reuse it for every expression. The
    /// context is built here rather than by `FhirPathEngine::prepare_context`, whose cache of
    /// prepared roots (kept for repeated evaluation of the same JSON) costs an insertion per
    /// resource and holds every indexed resource until evicted.
    pub(crate) fn prepare<'v>(&self, resource: &'v Value) -> Prepared<'v> {
        let node = FhirNode::from_json(resource);
        let mut json_of = HashMap::new();
        record_containers(&node, resource, &mut json_of);
        let root = Collection::single(FhirPathValue::resource_from_node(node));
        Prepared {
            context: EvaluationContext::new(root, self.model.clone(), None, None, None),
            json_of,
        }
    }

    /// Evaluates one compiled branch.
    pub(crate) async fn evaluate<'v>(
        &self,
        branch: &Branch,
        prepared: &Prepared<'v>,
    ) -> Result<Vec<Node<'v>>, String> {
        let result = self
            .engine
            .evaluate_plan(&branch.plan, &prepared.context)
            .await
            .map_err(|e| format!("`{}`: {e}", branch.source))?;
        let mut out = Vec::with_capacity(result.value.len());
        for value in result.value.iter() {
            push_node(value, &prepared.json_of, &mut out);
        }
        Ok(out)
    }
}

fn push_node<'v>(
    value: &FhirPathValue,
    json_of: &HashMap<usize, &'v Value>,
    out: &mut Vec<Node<'v>>,
) {
    let owned = |json: Value| Node::Json(Cow::Owned(json));
    match value {
        FhirPathValue::Empty => {}
        FhirPathValue::Collection(items) => {
            for item in items.iter() {
                push_node(item, json_of, out);
            }
        }
        FhirPathValue::Resource(node, _, _) => {
            out.push(match node.identity().and_then(|id| json_of.get(&id)) {
                Some(json) => Node::Json(Cow::Borrowed(*json)),
                None => owned(node.to_json()),
            })
        }
        FhirPathValue::Boolean(b, _, _) => out.push(owned(Value::Bool(*b))),
        FhirPathValue::Integer(i, _, _) => out.push(owned(Value::from(*i))),
        FhirPathValue::Decimal(d, _, _) => out.push(Node::Decimal(d.to_string())),
        FhirPathValue::String(s, _, _) => out.push(owned(Value::String(s.clone()))),
        FhirPathValue::Quantity {
            value,
            unit,
            code,
            system,
            ..
        } => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), Value::String(value.to_string()));
            for (k, v) in [("unit", unit), ("code", code), ("system", system)] {
                if let Some(v) = v {
                    map.insert(k.into(), Value::String(v.clone()));
                }
            }
            out.push(owned(Value::Object(map)));
        }
        other => {
            if let Ok(json) = serde_json::to_value(other) {
                out.push(owned(json));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_rewritten() {
        assert_eq!(
            rewrite_casts("(Observation.value as Quantity)"),
            "Observation.valueQuantity"
        );
        assert_eq!(
            rewrite_casts("(Observation.value as CodeableConcept).text"),
            "Observation.valueCodeableConcept.text"
        );
        assert_eq!(
            rewrite_casts("Condition.onset.as(dateTime)"),
            "Condition.onsetDateTime"
        );
        assert_eq!(
            rewrite_casts("(Goal.target.due as date)"),
            "Goal.target.dueDate"
        );
        assert_eq!(rewrite_casts("value.as(Quantity)"), "valueQuantity");
    }

    #[test]
    fn elements_of_the_resource_are_borrowed_and_computed_values_owned() {
        let compiled = Compiled::get().unwrap();
        let resource = serde_json::json!({
            "resourceType": "Patient",
            "name": [{"family": "Chalmers"}, {"family": "Windsor"}],
            "deceasedBoolean": true
        });
        let prepared = compiled.prepare(&resource);
        let eval = |code: &str| {
            let Some(Ok(branches)) = compiled.param("Patient", code) else {
                panic!("Patient {code} compiles")
            };
            futures::executor::block_on(compiled.evaluate(&branches[0], &prepared)).unwrap()
        };
        let names = eval("name");
        assert_eq!(names.len(), 2);
        for (node, json) in names.iter().zip(resource["name"].as_array().unwrap()) {
            match node {
                // The very element of the resource, not a copy of it.
                Node::Json(Cow::Borrowed(v)) => assert!(std::ptr::eq(*v, json)),
                other => panic!("{other:?} is not borrowed"),
            }
        }
        // `deceased` is computed (`exists() and … != false`): a new value, owned.
        assert_eq!(
            eval("deceased"),
            vec![Node::Json(Cow::Owned(Value::Bool(true)))]
        );
    }

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
