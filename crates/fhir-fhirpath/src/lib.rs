//! FHIRPath (FHIRPath N1, as FHIR R4 fhirpath.html profiles it) over FHIR R4 JSON resources,
//! for everything in the workspace that evaluates expressions: search parameter extraction
//! today; PROM scoring, FHIRPath Patch and profile invariants next.
//!
//! It wraps `octofhir-fhirpath` 0.4.57 behind a small non-generic API:
//!
//! * [`Engine::shared`]: one process-wide engine (its start-up builds the function registry);
//! * [`Engine::compile`]: an [`Expression`], compiled once and kept;
//! * [`Engine::prepare`]: a resource converted into the engine's model once (the conversion
//!   costs far more than an evaluation), then [`Engine::evaluate`] any number of expressions
//!   on it;
//! * results as [`Node`]s: elements of the resource are borrowed from it rather than converted
//!   back, computed values are owned, decimals keep their exact text.
//!
//! ## Without a schema
//!
//! The engine runs with its `EmptyModelProvider`: the schema-backed provider lives in
//! `octofhir-fhirschema`, which links a second SQLite (`rusqlite`, `links = "sqlite3"`) that
//! cannot coexist with the server's sqlx. Without a schema the engine cannot type values, so
//! casts on choice elements must be spelled as JSON element names; [`rewrite_choice_casts`]
//! does that (`(Observation.value as Quantity)` → `Observation.valueQuantity`).
//!
//! ## Variables and SDC functions
//!
//! [`Prepared::bind_resource`] and [`Prepared::bind_nodes`] bind `%name` environment variables
//! (`%questionnaire`, `%patient`, SDC `variable`s) for the evaluations on a prepared resource.
//! The shared engine also registers the SDC functions `answers()`, `ordinal()` and `weight()`
//! (see the `sdc` module).
//!
//! The engine's API is async but does no I/O: callers drive it with a local `block_on`
//! (`futures::executor`), which works on any thread, inside a tokio runtime or not. The engine
//! keeps recently converted resources in an internal cache bounded at 32 MiB.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use octofhir_fhirpath::core::node::FhirNode;
use octofhir_fhirpath::{
    create_function_registry, Collection, CompiledPlan, EmptyModelProvider, EvaluationContext,
    FhirPathEngine, FhirPathValue, ModelProvider,
};
use regex::{Captures, Regex};
use serde_json::Value;

pub mod limits;
mod sdc;

/// Why the engine could not start, or an expression could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirPathError {
    message: String,
}

impl FhirPathError {
    fn new(message: String) -> Self {
        FhirPathError { message }
    }
}

impl fmt::Display for FhirPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FhirPathError {}

/// One value an expression yields: JSON (borrowed from the resource when the value is one of
/// its elements), or a decimal kept as its exact text.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'v> {
    Json(Cow<'v, Value>),
    Decimal(String),
}

/// A compiled expression.
#[derive(Clone)]
pub struct Expression {
    source: String,
    plan: Arc<CompiledPlan>,
}

impl Expression {
    /// The expression text that was compiled.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

/// One resource made ready for evaluation: the engine's context over the resource's tree, and
/// for every object and array of that tree the JSON element it was built from, so results
/// that are elements of the resource are read from the resource instead of converted back.
pub struct Prepared<'v> {
    context: EvaluationContext,
    /// Variables bound by rewriting the expression text: (name, replacement of `%name`).
    rewrites: Vec<(String, String)>,
    /// Identity of a container node of the engine's tree → its JSON. The context keeps the
    /// tree alive, so an identity found here is that node (addresses cannot be reused).
    json_of: HashMap<usize, &'v Value>,
}

impl<'v> Prepared<'v> {
    /// Binds the environment variable `%name` to a resource (or any JSON element) for every
    /// evaluation on this prepared resource; elements of it that results return are borrowed
    /// from it, as those of the prepared resource are.
    pub fn bind_resource(&mut self, name: &str, resource: &'v Value) {
        let node = FhirNode::from_json(resource);
        record_containers(&node, resource, &mut self.json_of);
        self.context
            .set_variable(name.to_string(), FhirPathValue::resource_from_node(node));
    }

    /// Binds the environment variable `%name` to values (typically an earlier evaluation's
    /// result, as SDC `variable` extensions are). Compile expressions that use it with
    /// [`Engine::compile_for`].
    ///
    /// The engine holds a variable as exactly one value: an empty or multi-valued one would
    /// read back as a single (empty or nested) value that `exists()` and `count()` miscount.
    /// So one value is bound as is; no values are substituted by the empty collection `{}`
    /// in the expression text; several values are bound inside a carrier element and the
    /// reference `%name` is rewritten to `%name.nodes` (see [`substitute_variable`]).
    pub fn bind_nodes(&mut self, name: &str, nodes: &[Node<'_>]) {
        self.rewrites.retain(|(n, _)| n != name);
        match nodes {
            [] => self.rewrites.push((name.to_string(), "{}".to_string())),
            [one] => {
                if let Some(value) = value_of_node(one) {
                    self.context.set_variable(name.to_string(), value);
                }
            }
            many => {
                let carrier = serde_json::json!({ "nodes": many.iter().map(json_of_node).collect::<Vec<_>>() });
                self.context.set_variable(
                    name.to_string(),
                    FhirPathValue::resource_from_node(FhirNode::from_json(&carrier)),
                );
                self.rewrites
                    .push((name.to_string(), format!("%{name}.nodes")));
            }
        }
    }

    /// `source` with the references to empty and multi-valued variables rewritten (see
    /// [`Prepared::bind_nodes`]).
    pub fn rewrite(&self, source: &str) -> String {
        let mut out = source.to_string();
        for (name, replacement) in &self.rewrites {
            out = substitute_variable(&out, name, replacement);
        }
        out
    }
}

/// A result node as JSON (a decimal as a JSON number with its exact text).
fn json_of_node(node: &Node<'_>) -> Value {
    match node {
        Node::Json(json) => json.as_ref().clone(),
        Node::Decimal(text) => text
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.clone())),
    }
}

/// A result node back as an engine value: JSON objects as elements, primitives typed as the
/// engine types JSON (numbers: integer when whole and without a decimal point, else decimal).
fn value_of_node(node: &Node<'_>) -> Option<FhirPathValue> {
    fn decimal(text: &str) -> Option<FhirPathValue> {
        use std::str::FromStr;
        rust_decimal::Decimal::from_str(text)
            .or_else(|_| rust_decimal::Decimal::from_scientific(text))
            .ok()
            .map(FhirPathValue::decimal)
    }
    match node {
        Node::Decimal(text) => decimal(text),
        Node::Json(json) => match json.as_ref() {
            Value::Null => None,
            Value::Bool(b) => Some(FhirPathValue::boolean(*b)),
            Value::Number(n) => {
                let text = n.to_string();
                match (text.contains(['.', 'e', 'E']), n.as_i64()) {
                    (false, Some(i)) => Some(FhirPathValue::integer(i)),
                    _ => decimal(&text),
                }
            }
            Value::String(s) => Some(FhirPathValue::string(s.clone())),
            other => Some(FhirPathValue::resource_from_node(FhirNode::from_json(
                other,
            ))),
        },
    }
}

/// The FHIRPath engine.
pub struct Engine {
    engine: FhirPathEngine,
    model: Arc<dyn ModelProvider + Send + Sync>,
}

impl Engine {
    /// The process-wide engine, started on first use.
    pub fn shared() -> Result<&'static Engine, FhirPathError> {
        static ENGINE: OnceLock<Result<Engine, FhirPathError>> = OnceLock::new();
        ENGINE
            .get_or_init(Engine::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start() -> Result<Engine, FhirPathError> {
        let model: Arc<dyn ModelProvider + Send + Sync> = Arc::new(EmptyModelProvider);
        let mut registry = create_function_registry();
        sdc::register(&mut registry);
        let engine =
            futures::executor::block_on(FhirPathEngine::new(Arc::new(registry), model.clone()))
                .map_err(|e| {
                    FhirPathError::new(format!("cannot start the FHIRPath engine: {e}"))
                })?;
        Ok(Engine { engine, model })
    }

    /// Compiles `source` (as written: see [`rewrite_choice_casts`] for casts).
    pub fn compile(&self, source: &str) -> Result<Expression, FhirPathError> {
        // Compiling evaluates literals, and the engine's unit look-up panics on some of them
        // (`1 'é'` slices a string inside a character, found by a review): the expression's
        // error, as in `evaluate`.
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.engine.compile_plan(source)
        }))
        .map_err(|_| {
            FhirPathError::new(format!(
                "`{source}` does not compile (a literal out of range)"
            ))
        })?;
        let plan = compiled
            .map_err(|e| FhirPathError::new(format!("`{source}` does not compile: {e}")))?;
        Ok(Expression {
            source: source.to_string(),
            plan,
        })
    }

    /// Compiles `source` for evaluation on `prepared`, whose variable bindings may need the
    /// text rewritten ([`Prepared::bind_nodes`]).
    pub fn compile_for(
        &self,
        source: &str,
        prepared: &Prepared<'_>,
    ) -> Result<Expression, FhirPathError> {
        let rewritten = prepared.rewrite(source);
        self.compile(&rewritten).map(|mut e| {
            e.source = source.to_string();
            e
        })
    }

    /// Converts a resource into the engine's model once; reuse it for every expression. The
    /// context is built here rather than by `FhirPathEngine::prepare_context`, whose cache of
    /// prepared roots (kept for repeated evaluation of the same JSON) costs an insertion per
    /// resource and holds every prepared resource until evicted.
    pub fn prepare<'v>(&self, resource: &'v Value) -> Prepared<'v> {
        let node = FhirNode::from_json(resource);
        let mut json_of = HashMap::new();
        record_containers(&node, resource, &mut json_of);
        let root = Collection::single(FhirPathValue::resource_from_node(node));
        Prepared {
            context: EvaluationContext::new(root, self.model.clone(), None, None, None),
            rewrites: Vec::new(),
            json_of,
        }
    }

    /// Evaluates `expression` on a prepared resource.
    pub async fn evaluate<'v>(
        &self,
        expression: &Expression,
        prepared: &Prepared<'v>,
    ) -> Result<Vec<Node<'v>>, FhirPathError> {
        // The engine panics on some values rather than failing (`rust_decimal`'s `*` on an
        // overflow, found by fuzzing a FHIRPath Patch path `3 * 33333333333333333333333 * 3…`):
        // a panic here is the expression's error, not the request's end. The engine holds no
        // lock while it computes, so it stays usable.
        let evaluation = std::panic::AssertUnwindSafe(
            self.engine
                .evaluate_plan(&expression.plan, &prepared.context),
        )
        .catch_unwind()
        .await
        .map_err(|_| {
            FhirPathError::new(format!(
                "`{}`: the expression could not be evaluated (a value out of range)",
                expression.source
            ))
        })?;
        let result =
            evaluation.map_err(|e| FhirPathError::new(format!("`{}`: {e}", expression.source)))?;
        let mut out = Vec::with_capacity(result.value.len());
        for value in result.value.iter() {
            push_node(value, &prepared.json_of, &mut out);
        }
        Ok(out)
    }
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

fn capitalize(t: &str) -> String {
    let mut c = t.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn cast_patterns() -> &'static [Regex; 3] {
    static PATTERNS: OnceLock<[Regex; 3]> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        // Constant patterns, covered by the unit tests below: a typo fails every test run,
        // never a request.
        #[allow(clippy::expect_used)]
        let build = |p: &str| Regex::new(p).expect("constant regex compiles");
        [
            // (A.b as T)
            build(r"\(\s*([A-Za-z][A-Za-z0-9_.]*)\s+as\s+([A-Za-z]+)\s*\)"),
            // b.as(T) / b.ofType(T)
            build(r"([A-Za-z][A-Za-z0-9_]*)\.(?:as|ofType)\(\s*([A-Za-z]+)\s*\)"),
            // A.b as T   (unparenthesised, whole expression)
            build(r"^([A-Za-z][A-Za-z0-9_.]*)\s+as\s+([A-Za-z]+)$"),
        ]
    })
}

/// Rewrites type casts on choice elements into the JSON element name, which a schema-less
/// engine can follow: `(Observation.value as Quantity)`, `Observation.value.as(Quantity)` and
/// `Observation.value.ofType(Quantity)` → `Observation.valueQuantity` (R4 choice elements are
/// named element name + type, json.html#choice).
pub fn rewrite_choice_casts(expression: &str) -> String {
    let mut out = expression.to_string();
    for re in cast_patterns() {
        out = re
            .replace_all(&out, |c: &Captures| {
                format!("{}{}", &c[1], capitalize(&c[2]))
            })
            .into_owned();
    }
    out
}

/// Replaces every reference to the environment variable `%name` in `source` with
/// `replacement` (outside string literals and delimited identifiers).
pub fn substitute_variable(source: &str, name: &str, replacement: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        match c {
            '\'' | '`' => {
                // Copy the literal through its closing delimiter (backslash escapes).
                let mut end = rest.len();
                let mut escaped = false;
                for (i, ch) in rest.char_indices().skip(1) {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == c {
                        end = i + ch.len_utf8();
                        break;
                    }
                }
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            '%' => {
                let after = &rest[1..];
                let ident_len = after.find(|ch: char| !is_ident(ch)).unwrap_or(after.len());
                if &after[..ident_len] == name {
                    out.push_str(replacement);
                } else {
                    out.push('%');
                    out.push_str(&after[..ident_len]);
                }
                rest = &after[ident_len..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_rewritten() {
        assert_eq!(
            rewrite_choice_casts("(Observation.value as Quantity)"),
            "Observation.valueQuantity"
        );
        assert_eq!(
            rewrite_choice_casts("(Observation.value as CodeableConcept).text"),
            "Observation.valueCodeableConcept.text"
        );
        assert_eq!(
            rewrite_choice_casts("Condition.onset.as(dateTime)"),
            "Condition.onsetDateTime"
        );
        assert_eq!(
            rewrite_choice_casts("(Goal.target.due as date)"),
            "Goal.target.dueDate"
        );
        assert_eq!(rewrite_choice_casts("value.as(Quantity)"), "valueQuantity");
    }

    #[test]
    fn elements_of_the_resource_are_borrowed_and_computed_values_owned() {
        let engine = Engine::shared().unwrap();
        let resource = serde_json::json!({
            "resourceType": "Patient",
            "name": [{"family": "Chalmers"}, {"family": "Windsor"}],
            "deceasedBoolean": true
        });
        let prepared = engine.prepare(&resource);
        let eval = |source: &str| {
            let expression = engine.compile(source).unwrap();
            futures::executor::block_on(engine.evaluate(&expression, &prepared)).unwrap()
        };
        let names = eval("Patient.name");
        assert_eq!(names.len(), 2);
        for (node, json) in names.iter().zip(resource["name"].as_array().unwrap()) {
            match node {
                // The very element of the resource, not a copy of it.
                Node::Json(Cow::Borrowed(v)) => assert!(std::ptr::eq(*v, json)),
                other => panic!("{other:?} is not borrowed"),
            }
        }
        // A computed value is new, owned.
        assert_eq!(
            eval("Patient.deceased.exists() and Patient.deceased != false"),
            vec![Node::Json(Cow::Owned(Value::Bool(true)))]
        );
    }

    #[test]
    fn decimals_keep_their_text_and_errors_name_the_expression() {
        let engine = Engine::shared().unwrap();
        let resource = serde_json::json!({"resourceType": "Observation"});
        let prepared = engine.prepare(&resource);
        let expression = engine.compile("1.50 + 0").unwrap();
        let nodes = futures::executor::block_on(engine.evaluate(&expression, &prepared)).unwrap();
        assert_eq!(nodes.len(), 1);
        assert!(matches!(&nodes[0], Node::Decimal(_)), "{nodes:?}");
        let err = engine.compile("Patient.name.where(").unwrap_err();
        assert!(err.to_string().contains("Patient.name.where("), "{err}");
    }

    #[test]
    fn an_overflow_the_engine_panics_on_is_an_error_and_the_engine_goes_on() {
        // fuzz/regressions/patch/: rust_decimal's `*` panics on an overflow.
        let engine = Engine::shared().unwrap();
        let resource = serde_json::json!({"resourceType": "Patient"});
        let prepared = engine.prepare(&resource);
        let big = "3 * 33333333333333333333333 * 33333333333333333333333";
        let expression = engine.compile(big).unwrap();
        let err = futures::executor::block_on(engine.evaluate(&expression, &prepared))
            .expect_err("out of range");
        assert!(err.to_string().contains("could not be evaluated"), "{err}");
        let fine = engine.compile("2 * 3").unwrap();
        let nodes = futures::executor::block_on(engine.evaluate(&fine, &prepared)).unwrap();
        assert_eq!(nodes.len(), 1, "the engine still evaluates");
    }

    #[test]
    fn a_literal_the_engine_panics_on_while_compiling_is_an_error() {
        // A review found octofhir-ucum's unit look-up slicing inside a character.
        let engine = Engine::shared().unwrap();
        let outcome = engine.compile("Observation.value = 1 'é'");
        if let Err(e) = &outcome {
            assert!(e.to_string().contains("does not compile"), "{e}");
        }
        assert!(
            engine.compile("1 'mg'").is_ok(),
            "the engine still compiles"
        );
    }

    #[test]
    fn variables_and_sdc_functions() {
        let engine = Engine::shared().unwrap();
        let questionnaire = serde_json::json!({
            "resourceType": "Questionnaire",
            "item": [{"linkId": "a", "type": "choice", "answerOption": [
                {"valueCoding": {"system": "s", "code": "x"},
                 "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 2.5}]},
                {"valueCoding": {"system": "s", "code": "y",
                 "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 1}]}}
            ]}]
        });
        let response = serde_json::json!({
            "resourceType": "QuestionnaireResponse",
            "item": [
                {"linkId": "a", "answer": [{"valueCoding": {"system": "s", "code": "x"}}]},
                {"linkId": "g", "item": [{"linkId": "a", "answer": [{"valueCoding": {"system": "s", "code": "y"},
                    "item": [{"linkId": "n", "answer": [{"valueInteger": 4}]}]}]}]}
            ]
        });
        let mut prepared = engine.prepare(&response);
        prepared.bind_resource("questionnaire", &questionnaire);
        fn eval<'v>(prepared: &Prepared<'v>, source: &str) -> Vec<Node<'v>> {
            let engine = Engine::shared().unwrap();
            let expression = engine.compile_for(source, prepared).unwrap();
            futures::executor::block_on(engine.evaluate(&expression, prepared)).unwrap()
        }
        // answers() goes through groups and answers' nested items.
        assert_eq!(
            eval(&prepared, "%resource.answers().count()"),
            vec![Node::Json(Cow::Owned(Value::from(3)))]
        );
        let sum = eval(&prepared, "%resource.answers().value.ordinal().sum()");
        assert_eq!(sum.len(), 1);
        match &sum[0] {
            Node::Decimal(d) => assert_eq!(d.parse::<f64>().unwrap(), 3.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            eval(&prepared, "item.answer.value.weight()"),
            vec![Node::Decimal("2.5".into())]
        );
        // The questionnaire is borrowed, like the resource.
        let options = eval(&prepared, "%questionnaire.item.answerOption");
        assert!(
            matches!(&options[0], Node::Json(Cow::Borrowed(v)) if std::ptr::eq(*v, &questionnaire["item"][0]["answerOption"][0]))
        );
        // Earlier results as variables, empty ones included.
        let first = eval(
            &prepared,
            "%questionnaire.item.answerOption.extension.valueDecimal",
        );
        prepared.bind_nodes("w", &first);
        prepared.bind_nodes("nothing", &[]);
        assert_eq!(eval(&prepared, "%w + 1"), vec![Node::Decimal("3.5".into())]);
        let source = substitute_variable(
            "%nothing.exists() or '%nothing' = %nothingElse",
            "nothing",
            "{}",
        );
        assert_eq!(source, "{}.exists() or '%nothing' = %nothingElse");
        assert_eq!(
            eval(&prepared, "%nothing.exists()"),
            vec![Node::Json(Cow::Owned(Value::Bool(false)))]
        );
        assert_eq!(
            eval(&prepared, "{}.exists()"),
            vec![Node::Json(Cow::Owned(Value::Bool(false)))]
        );
        assert_eq!(
            eval(&prepared, "iif({}.exists(), 1, 0) + 2"),
            vec![Node::Json(Cow::Owned(Value::from(2)))]
        );
        let two = eval(&prepared, "%resource.answers().value.ordinal()");
        prepared.bind_nodes("two", &two);
        assert_eq!(
            eval(&prepared, "%two.sum()"),
            vec![Node::Decimal("3.5".into())]
        );
        assert_eq!(
            eval(&prepared, "%two.count()"),
            vec![Node::Json(Cow::Owned(Value::from(2)))]
        );
    }
}
