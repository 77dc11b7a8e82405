//! FHIRPath evaluation for SDC expressions (SDC 3.0 expressions.html): `text/fhirpath`
//! Expressions evaluated on a resource with environment variables (`%resource`,
//! `%questionnaire`, `%patient`, SDC `variable`s) through the workspace engine
//! (crates/fhir-fhirpath), synchronously.
//!
//! ## Limits on client-written expressions
//!
//! Questionnaires are written by clients, and their expressions (`calculatedExpression`,
//! `variable`, `initialExpression`) run on the server. The engine (octofhir-fhirpath 0.4.57)
//! bounds neither the size of the collections nor of the strings it builds, nor the time it
//! takes, so [`check`] refuses, before compiling, expressions that can blow up:
//!
//! * longer than [`MAX_LENGTH`] (2,000) characters: the longest shipped or published scoring
//!   expression (LHC PHQ-9's) is a few hundred; a bound on the text also bounds how many
//!   operations one expression chains;
//! * calling `replace`, `replaceMatches`, `repeat` or `repeatAll`: each call can multiply a
//!   string's or a collection's size, so a short chain grows exponentially (`'ab'` followed by
//!   ten `.replace('a','aaaaaaaaaa')` asks for a gigabyte); scoring and population need none
//!   of them;
//! * calling `descendants()` more than once: each call is as large as the resource, and nested
//!   in `select` they multiply (cubic for two nested calls on `descendants()`).
//!
//! The scan reads function calls outside string literals, delimited identifiers and comments,
//! so a name inside a text is not refused. These are lexical bounds, not a sandbox; they do
//! not catch a string or collection doubled on each step of a chain (`select($this & $this)`
//! repeated, `combine`), growth spread over several `variable`s each within the limits, or a
//! cross product without `descendants()` (`item.select(%resource.item)` nested). A real bound
//! needs the engine to cap collection and string sizes, which octofhir-fhirpath 0.4.57 does
//! not offer (no size, depth or time limit in its evaluation context or VM).

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

/// The longest expression evaluated, in characters.
pub const MAX_LENGTH: usize = 2_000;

/// Functions never evaluated: each call can multiply the size of its input.
pub const REFUSED_FUNCTIONS: [&str; 4] = ["replace", "replaceMatches", "repeat", "repeatAll"];

/// The most `descendants()` calls in one expression.
pub const MAX_DESCENDANTS: usize = 1;

/// Why `source` is refused before evaluation (see the module doc), as a sentence naming the
/// limit; `None` when it is within the limits.
pub fn check(source: &str) -> Option<String> {
    let length = source.chars().count();
    if length > MAX_LENGTH {
        return Some(format!(
            "the expression is {length} characters long; at most {MAX_LENGTH} are evaluated"
        ));
    }
    let calls = function_calls(source);
    if let Some(name) = calls
        .iter()
        .find(|c| REFUSED_FUNCTIONS.contains(&c.as_str()))
    {
        return Some(format!(
            "the expression calls {name}(), which is not evaluated here (the functions {} can grow a result exponentially)",
            REFUSED_FUNCTIONS.join(", ")
        ));
    }
    let descendants = calls.iter().filter(|c| *c == "descendants").count();
    if descendants > MAX_DESCENDANTS {
        return Some(format!(
            "the expression calls descendants() {descendants} times; at most {MAX_DESCENDANTS} call is evaluated"
        ));
    }
    None
}

/// The names of the functions `source` calls: identifiers (plain or `delimited`) followed by
/// `(`, outside string literals and comments.
fn function_calls(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut calls = Vec::new();
    let mut i = 0;
    // Skips whitespace and comments from `i`; returns the next position.
    let skip = |mut i: usize| -> usize {
        loop {
            match (chars.get(i), chars.get(i + 1)) {
                (Some(c), _) if c.is_whitespace() => i += 1,
                (Some('/'), Some('/')) => {
                    while chars.get(i).is_some_and(|c| *c != '\n') {
                        i += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    i += 2;
                    while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                        i += 1;
                    }
                    i += 2;
                }
                _ => return i,
            }
        }
    };
    // The end of a quoted text opened at `i` (past its closing quote), escapes skipped.
    let quoted = |mut i: usize, quote: char| -> usize {
        i += 1;
        while let Some(c) = chars.get(i) {
            match c {
                '\\' => i += 2,
                c if *c == quote => return i + 1,
                _ => i += 1,
            }
        }
        i
    };
    while i < chars.len() {
        let next = skip(i);
        if next != i {
            i = next;
            continue;
        }
        let c = chars[i];
        let (name, end) = if c == '\'' {
            i = quoted(i, '\'');
            continue;
        } else if c == '`' {
            let end = quoted(i, '`');
            let inner: String = chars[i + 1..end.saturating_sub(1).max(i + 1)]
                .iter()
                .collect();
            (inner, end)
        } else if c.is_alphabetic() || c == '_' {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                end += 1;
            }
            (chars[i..end].iter().collect(), end)
        } else {
            i += 1;
            continue;
        };
        if chars.get(skip(end)) == Some(&'(') {
            calls.push(name);
        }
        i = end;
    }
    calls
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
    fn refused_patterns_name_their_limit() {
        let long = format!("1{}", " + 1".repeat(500));
        assert!(check(&long)
            .unwrap()
            .contains("2001 characters long; at most 2000"));
        assert_eq!(check(&long[..2000]), None);
        let bomb = format!("'ab'{}", ".replace('a','aaaaaaaaaa')".repeat(10));
        assert!(check(&bomb).unwrap().contains("calls replace()"));
        for source in [
            "'ab'.replaceMatches('a', 'aa')",
            "item.repeat(item)",
            "item.repeatAll(item)",
            "item.`repeat`(item)",
            "item.repeat /* comment */ (item)",
            "item.repeat\n(item)",
        ] {
            let why = check(source).unwrap_or_else(|| panic!("{source}"));
            assert!(why.contains("is not evaluated here"), "{why}");
        }
        let cubic = "descendants().select(%resource.descendants()).select(%resource.descendants())";
        assert!(check(cubic)
            .unwrap()
            .contains("descendants() 3 times; at most 1"));
        assert!(check("descendants().select(descendants())").is_some());
    }

    #[test]
    fn names_in_texts_and_comments_are_not_calls() {
        for source in [
            "'replace(' + 'descendants()descendants()'",
            "'it\\'s repeat(' & item.text",
            "item.answer.value // replace(x)\n.first()",
            "/* repeat( */ descendants().count()",
            "item.replaced.exists()",
            "%resource.descendants().where(linkId = 'repeat')",
        ] {
            assert_eq!(check(source), None, "{source}");
        }
        assert_eq!(
            function_calls("a.where(b).`select`(c) and d.first ()"),
            ["where", "select", "first"]
        );
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
