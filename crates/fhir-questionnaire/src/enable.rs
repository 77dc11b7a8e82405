//! Whether a Questionnaire item is enabled for a response (R4 questionnaire.html
//! Questionnaire.item.enableWhen and enableBehavior).
//!
//! Each condition looks at the answers to its `question` anywhere in the response. `exists`
//! compares "has an answer" with answerBoolean; `=` holds when any answer equals the value;
//! `!=` when no answer equals it (so it holds for an unanswered question, as R5 clarifies);
//! `>`, `<`, `>=`, `<=` when any answer compares so. Several conditions combine with
//! `enableBehavior` (`all` when absent, the stricter reading).

use std::cmp::Ordering;

use serde_json::Value;

use crate::answers::{self, str_of};

/// Whether `item` (of a Questionnaire) is enabled given `response`'s answers. Ancestors are
/// the caller's concern.
pub fn enabled(item: &Value, response: &Value) -> bool {
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

fn condition(condition: &Value, response: &Value) -> bool {
    let Some(question) = str_of(condition, "question") else {
        return false;
    };
    let given = answers::response_answers(response, question);
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
