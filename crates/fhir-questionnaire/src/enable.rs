//! Whether a Questionnaire item is enabled for a response (R4 questionnaire.html
//! Questionnaire.item.enableWhen and enableBehavior).
//!
//! Each condition looks at the answers to its `question` anywhere in the response. `exists`
//! compares "has an answer" with answerBoolean; `=` holds when any answer equals the value;
//! `!=` when no answer equals it (so it holds for an unanswered question, as R5 clarifies);
//! `>`, `<`, `>=`, `<=` when any answer compares so. Several conditions combine with
//! `enableBehavior` (`all` when absent, the stricter reading).
//!
//! The answers are looked up in a [`ResponseAnswers`] index built once per validation or
//! scoring, and each Questionnaire item's result is remembered ([`Enablement`]), so checking
//! every item of a large response stays linear in its size.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use crate::answers::{self, str_of, ResponseAnswers};

/// Whether the items of a Questionnaire are enabled for one response: the response's answers
/// indexed by linkId once, and each item's answer remembered, since it depends on the item
/// and the whole response only (a repeated item is checked once, however often it repeats).
pub struct Enablement<'r> {
    answers: ResponseAnswers<'r>,
    /// The Questionnaire item (by address: items are borrowed while this lives) → enabled.
    known: HashMap<*const Value, bool>,
}

impl<'r> Enablement<'r> {
    pub fn new(response: &'r Value) -> Self {
        Enablement {
            answers: ResponseAnswers::new(response),
            known: HashMap::new(),
        }
    }

    /// The response's answers by linkId.
    pub fn answers(&self) -> &ResponseAnswers<'r> {
        &self.answers
    }

    /// Whether `item` (of a Questionnaire) is enabled (see [`enabled`]).
    pub fn enabled(&mut self, item: &Value) -> bool {
        let answers = &self.answers;
        *self
            .known
            .entry(std::ptr::from_ref(item))
            .or_insert_with(|| enabled(item, answers))
    }
}

/// Whether `item` (of a Questionnaire) is enabled given a response's answers (indexed once
/// per response with [`ResponseAnswers::new`]). Ancestors are the caller's concern.
pub fn enabled(item: &Value, response: &ResponseAnswers<'_>) -> bool {
    let Some(conditions) = item.get("enableWhen").and_then(Value::as_array) else {
        return true;
    };
    if conditions.is_empty() {
        return true;
    }
    let mut results = conditions.iter().map(|c| condition(c, response));
    match str_of(item, "enableBehavior") {
        Some("any") => results.any(|r| r),
        _ => results.all(|r| r),
    }
}

fn condition(condition: &Value, response: &ResponseAnswers<'_>) -> bool {
    let Some(question) = str_of(condition, "question") else {
        return false;
    };
    let given = response.get(question);
    let operator = str_of(condition, "operator").unwrap_or("=");
    let Some((kind, expected)) = answers::value(condition, "answer") else {
        return false;
    };
    if operator == "exists" {
        return expected.as_bool() == Some(!given.is_empty());
    }
    let values: Vec<Value> = given
        .iter()
        .filter_map(|a| answers::value(a, "value"))
        .filter(|(k, _)| *k == kind)
        .map(|(_, v)| v)
        .collect();
    let equal = |v: &Value| answers::same_value(&kind, v, &expected);
    let ordered = |v: &Value, ok: &dyn Fn(Ordering) -> bool| {
        answers::compare(&kind, v, &expected).is_some_and(ok)
    };
    match operator {
        "=" => values.iter().any(equal),
        "!=" => !values.iter().any(equal),
        ">" => values
            .iter()
            .any(|v| ordered(v, &|o| o == Ordering::Greater)),
        "<" => values.iter().any(|v| ordered(v, &|o| o == Ordering::Less)),
        ">=" => values.iter().any(|v| ordered(v, &|o| o != Ordering::Less)),
        "<=" => values
            .iter()
            .any(|v| ordered(v, &|o| o != Ordering::Greater)),
        _ => false,
    }
}
