//! FHIRPath evaluation for SDC expressions (SDC 3.0 expressions.html): `text/fhirpath`
//! Expressions evaluated on a resource with environment variables (`%resource`,
//! `%questionnaire`, `%patient`, SDC `variable`s) through the workspace engine
//! (crates/fhir-fhirpath), synchronously.

use std::borrow::Cow;

use fhir_fhirpath::{Engine, Node, Prepared};
use serde_json::Value;

/// A `valueExpression`'s FHIRPath text, when its language is FHIRPath (absent counts too).
pub fn fhirpath_of(expression: &Value) -> Option<&str> {
    let language = expression.get("language").and_then(Value::as_str);
    if !matches!(language, None | Some("text/fhirpath")) {
        return None;
    }
    expression.get("expression").and_then(Value::as_str)
}

/// Evaluates `source` on `prepared`, owning the result.
pub fn evaluate(
    engine: &Engine,
    prepared: &Prepared<'_>,
    source: &str,
) -> Result<Vec<Node<'static>>, String> {
    let expression = engine
        .compile_for(source, prepared)
        .map_err(|e| e.to_string())?;
    let nodes = futures::executor::block_on(engine.evaluate(&expression, prepared))
        .map_err(|e| e.to_string())?;
    Ok(nodes
        .into_iter()
        .map(|n| match n {
            Node::Json(v) => Node::Json(Cow::Owned(v.into_owned())),
            Node::Decimal(d) => Node::Decimal(d),
        })
        .collect())
}

/// A result node as JSON (decimals as numbers with their exact text).
pub fn json_of(node: &Node<'_>) -> Value {
    match node {
        Node::Json(v) => v.as_ref().clone(),
        Node::Decimal(d) => d
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(d.clone())),
    }
}

/// A numeric result's exact decimal text.
pub fn number_text(node: &Node<'_>) -> Option<String> {
    match node {
        Node::Decimal(d) => Some(d.clone()),
        Node::Json(v) => match v.as_ref() {
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => o.get("value").and_then(|v| match v {
                // A Quantity (its value).
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        },
    }
}
