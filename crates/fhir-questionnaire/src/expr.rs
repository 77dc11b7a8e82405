//! FHIRPath evaluation for SDC expressions (SDC 3.0 expressions.html): `text/fhirpath`
//! Expressions evaluated on a resource with environment variables (`%resource`,
//! `%questionnaire`, `%patient`, SDC `variable`s) through the workspace engine
//! (crates/fhir-fhirpath), synchronously.
//!
//! ## Limits on client-written expressions
//!
//! Questionnaires are written by clients, and their expressions run on the server; [`check`]
//! refuses, before compiling, what exceeds the SDC limits of `fhir_fhirpath::limits` (length,
//! functions that multiply a size, `descendants()` more than once). Those are lexical bounds,
//! not a sandbox: see that module for what they leave open.

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

/// Why `source` is refused before evaluation (see the module doc), as a sentence naming the
/// limit; `None` when it is within the limits ([`fhir_fhirpath::limits::SDC`]).
pub fn check(source: &str) -> Option<String> {
    fhir_fhirpath::limits::check(source, &fhir_fhirpath::limits::SDC)
}

/// An expression as quoted in messages: at most 200 characters.
pub fn shown(source: &str) -> String {
    const SHOWN: usize = 200;
    if source.chars().count() <= SHOWN {
        source.to_string()
    } else {
        let head: String = source.chars().take(SHOWN).collect();
        format!("{head}…")
    }
}

/// Evaluates `source` on `prepared`, owning the result; an expression beyond the limits
/// ([`check`]) is refused before it is compiled.
pub fn evaluate(
    engine: &Engine,
    prepared: &Prepared<'_>,
    source: &str,
) -> Result<Vec<Node<'static>>, String> {
    if let Some(refused) = check(source) {
        return Err(format!("refused: {refused}"));
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;

    #[test]
    fn the_sdc_limits_apply_and_messages_quote_at_most_200_characters() {
        let bomb = format!("'ab'{}", ".replace('a','aaaaaaaaaa')".repeat(10));
        assert!(check(&bomb).unwrap().contains("calls replace()"));
        assert_eq!(check("%resource.item.select(answer.value)"), None);
        assert_eq!(shown(&"x".repeat(300)).chars().count(), 201);
    }

    /// Every expression of the shipped instruments and the published fixtures is within the
    /// limits.
    #[test]
    fn shipped_and_published_expressions_are_within_the_limits() {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(source) = fhirpath_of(v).filter(|_| o.contains_key("expression")) {
                        out.push(source.to_string());
                    }
                    o.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut sources = Vec::new();
        for q in [
            fixtures::shipped("phq-9.json"),
            fixtures::shipped("phq-2.json"),
            fixtures::shipped("gad-7.json"),
            fixtures::lhc_phq9(),
            fixtures::stanford_phq9(),
            fixtures::stanford_gad7(),
            fixtures::uscore_phq9_questionnaire(),
        ] {
            walk(&q, &mut sources);
        }
        assert!(sources.len() >= 5, "{sources:?}");
        for source in &sources {
            assert_eq!(check(source), None, "{source}");
        }
    }
}
