//! Profile invariants: `ElementDefinition.constraint` (FHIR R4 elementdefinition.html
//! §2.24.0.5 "Constraints", conformance-rules.html) compiled once at load with the workspace
//! FHIRPath engine and evaluated with the element instance as context (`%resource` bound to
//! the resource).
//!
//! The engine runs without a schema, so it cannot type values. Type tests on the context
//! (`$this is dateTime`, `ofType(Quantity)`, `$this as Period`) are therefore decided when
//! the expression is compiled: one compiled variant per type the element can hold, with the
//! test replaced by its outcome for that type. Primitive instances are evaluated through a
//! small holder object (`v.select(…)`), as the engine reads a bare JSON string as a resource.
//! Expressions that need what a profile check cannot have (other resources, a terminology
//! server, other profiles) are not evaluated and say so.

use fhir_fhirpath::{Engine, Expression, Node as FpNode};
use fhir_validate::Severity;
use serde_json::Value;

use crate::element::ElemTy;

/// Functions that need the referenced resources, a terminology service or other profiles.
const UNCHECKABLE: &[&str] = &[
    "resolve(",
    "conformsTo(",
    "memberOf(",
    "subsumes(",
    "subsumedBy(",
    "htmlChecks(",
    "checkModifiers(",
    "elementDefinition(",
    "slice(",
    "%terminologies",
];

/// The variable `%resource` and `%rootResource` are evaluated as.
const RESOURCE_VARIABLE: &str = "%profiledResource";

/// The holder member a primitive instance is evaluated through.
const HOLDER: &str = "v";

#[derive(Debug)]
struct Variant {
    ty: &'static str,
    /// Evaluated as `v.select(…)` over `{"v": instance}`.
    wrapped: bool,
    compiled: Result<Expression, String>,
}

/// One compiled constraint.
#[derive(Debug)]
pub(crate) struct Invariant {
    pub key: String,
    pub severity: Severity,
    pub human: String,
    /// Why it is never evaluated (a function that needs other resources, no expression).
    not_checked: Option<String>,
    uses_resource: bool,
    variants: Vec<Variant>,
}

/// The outcome of one evaluation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Holds,
    Fails,
    NotChecked(String),
}

impl Invariant {
    /// Compiles a `constraint` entry for an element whose instances have one of `types`.
    /// `Err` says what is malformed.
    pub(crate) fn compile(constraint: &Value, types: &[ElemTy]) -> Result<Invariant, String> {
        let key = constraint
            .get("key")
            .and_then(Value::as_str)
            .ok_or("a constraint has no key")?;
        let severity = match constraint.get("severity").and_then(Value::as_str) {
            Some("error") => Severity::Error,
            Some("warning") => Severity::Warning,
            other => {
                return Err(format!(
                    "constraint {key} has severity {other:?}, not error or warning"
                ))
            }
        };
        let human = constraint
            .get("human")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut invariant = Invariant {
            key: key.to_string(),
            severity,
            human,
            not_checked: None,
            uses_resource: false,
            variants: Vec::new(),
        };
        let Some(source) = constraint.get("expression").and_then(Value::as_str) else {
            invariant.not_checked = Some("it has no FHIRPath expression".into());
            return Ok(invariant);
        };
        if let Some(f) = UNCHECKABLE.iter().find(|f| source.contains(*f)) {
            invariant.not_checked = Some(format!(
                "it uses {}, which needs more than the resource itself",
                f.trim_end_matches('(')
            ));
            return Ok(invariant);
        }
        invariant.uses_resource = source.contains("%resource") || source.contains("%rootResource");
        // The engine reads `%resource` as its evaluation root (here the element): the resource
        // is bound under a name of its own.
        let source = &fhir_fhirpath::substitute_variable(
            &fhir_fhirpath::substitute_variable(source, "resource", RESOURCE_VARIABLE),
            "rootResource",
            RESOURCE_VARIABLE,
        );
        let engine = match Engine::shared() {
            Ok(engine) => engine,
            Err(e) => {
                invariant.not_checked = Some(e.to_string());
                return Ok(invariant);
            }
        };
        let mut seen: Vec<(bool, String)> = Vec::new();
        for ty in types {
            let wrapped = matches!(ty, ElemTy::Primitive(_));
            let specialised = fhir_fhirpath::rewrite_choice_casts(&specialise(source, ty.code()));
            let text = if wrapped {
                format!("{HOLDER}.select({specialised})")
            } else {
                specialised
            };
            // Types whose text comes out the same share one compilation's result.
            let compiled = match seen.iter().position(|s| s.0 == wrapped && s.1 == text) {
                Some(i) => invariant.variants[i].compiled.clone(),
                None => engine.compile(&text).map_err(|e| e.to_string()),
            };
            seen.push((wrapped, text));
            invariant.variants.push(Variant {
                ty: ty.code(),
                wrapped,
                compiled,
            });
        }
        Ok(invariant)
    }

    /// Evaluates the constraint on `instance` (of type `ty`) inside `resource`.
    pub(crate) fn evaluate(&self, instance: &Value, ty: ElemTy, resource: &Value) -> Outcome {
        if let Some(reason) = &self.not_checked {
            return Outcome::NotChecked(reason.clone());
        }
        let Some(variant) = self
            .variants
            .iter()
            .find(|v| v.ty == ty.code())
            .or(self.variants.first())
        else {
            return Outcome::NotChecked("the element's type is not known".into());
        };
        let expression = match &variant.compiled {
            Ok(e) => e,
            Err(e) => return Outcome::NotChecked(e.clone()),
        };
        let engine = match Engine::shared() {
            Ok(engine) => engine,
            Err(e) => return Outcome::NotChecked(e.to_string()),
        };
        let holder;
        let context = if variant.wrapped {
            let mut map = serde_json::Map::new();
            map.insert(HOLDER.to_string(), instance.clone());
            holder = Value::Object(map);
            &holder
        } else {
            instance
        };
        let mut prepared = engine.prepare(context);
        if self.uses_resource {
            prepared.bind_resource(&RESOURCE_VARIABLE[1..], resource);
        }
        match futures::executor::block_on(engine.evaluate(expression, &prepared)) {
            Ok(nodes) => {
                if truthy(&nodes) {
                    Outcome::Holds
                } else {
                    Outcome::Fails
                }
            }
            Err(e) => Outcome::NotChecked(e.to_string()),
        }
    }
}

/// FHIRPath's reading of a constraint result (fhirpath.html §4.5 singleton evaluation as the
/// reference validator applies it): one boolean is itself, an empty result is false, any
/// other value is true.
fn truthy(nodes: &[FpNode<'_>]) -> bool {
    match nodes {
        [] => false,
        [FpNode::Json(v)] => v.as_bool().unwrap_or(true),
        _ => true,
    }
}

/// Decides type tests on the context for an instance of type `ty`: `$this is T` and
/// `$this.is(T)` become `true`/`false`; `$this as T`, `$this.as(T)`, `$this.ofType(T)` and a
/// leading `ofType(T)` become `$this` or the empty collection `{}`. Only tests on the
/// context itself are rewritten: those inside function arguments (where `$this` is the
/// iteration item) and inside string literals are left alone.
pub(crate) fn specialise(source: &str, ty: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    // One entry per open parenthesis: true when it opens a function call's arguments.
    let mut parens: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        let c = bytes[i];
        if c == b'\'' || c == b'`' {
            let end = literal_end(source, i);
            out.push_str(&source[i..end]);
            i = end;
            continue;
        }
        if !parens.iter().any(|call| *call) {
            if let Some((len, replacement)) = type_test_at(source, i, ty) {
                out.push_str(replacement);
                i += len;
                continue;
            }
        }
        match c {
            b'(' => {
                let prev = source[..i].trim_end().chars().last();
                parens.push(prev.is_some_and(|p| p.is_alphanumeric() || p == '_'));
            }
            b')' => {
                parens.pop();
            }
            _ => {}
        }
        let ch_len = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&source[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// The end (exclusive) of the string or delimited identifier starting at `start`.
fn literal_end(source: &str, start: usize) -> usize {
    let bytes = source.as_bytes();
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A type name at the start of `s` (`dateTime`, `FHIR.Quantity`): its length and the name
/// without the `FHIR.` prefix.
fn type_name(s: &str) -> Option<(usize, &str)> {
    let len = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..len];
    (!name.is_empty()).then(|| (len, name.strip_prefix("FHIR.").unwrap_or(name)))
}

/// A type test on the context at byte `i`: its length and replacement.
fn type_test_at(source: &str, i: usize, ty: &str) -> Option<(usize, &'static str)> {
    let rest = &source[i..];
    let focus = |matches: bool| if matches { "$this" } else { "{}" };
    let boolean = |matches: bool| if matches { "true" } else { "false" };
    if let Some(after) = rest.strip_prefix("$this") {
        let ws = after.len() - after.trim_start().len();
        let trimmed = after.trim_start();
        for (op, is_test) in [("is ", true), ("as ", false)] {
            if ws > 0 {
                if let Some(t) = trimmed.strip_prefix(op) {
                    let t_ws = t.len() - t.trim_start().len();
                    let (len, name) = type_name(t.trim_start())?;
                    let total = 5 + ws + op.len() + t_ws + len;
                    let result = if is_test {
                        boolean(name == ty)
                    } else {
                        focus(name == ty)
                    };
                    return Some((total, result));
                }
            }
        }
        for (call, is_test) in [(".is(", true), (".as(", false), (".ofType(", false)] {
            if let Some(t) = after.strip_prefix(call) {
                let (len, name) = type_name(t)?;
                if t[len..].starts_with(')') {
                    let total = 5 + call.len() + len + 1;
                    let result = if is_test {
                        boolean(name == ty)
                    } else {
                        focus(name == ty)
                    };
                    return Some((total, result));
                }
            }
        }
        return None;
    }
    if let Some(t) = rest.strip_prefix("ofType(") {
        let before = source[..i].trim_end();
        let applied_to_focus = match before.chars().last() {
            None => true,
            Some(p) if p.is_alphanumeric() || p == '_' => {
                let word_start = before
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(0, |w| w + 1);
                matches!(&before[word_start..], "and" | "or" | "xor" | "implies")
            }
            Some(p) => p != '.' && p != '$' && p != '`',
        };
        let (len, name) = type_name(t)?;
        if applied_to_focus && t[len..].starts_with(')') {
            return Some((7 + len + 1, focus(name == ty)));
        }
    }
    None
}
