//! Comparing instance values with a profile's `fixed[x]` and `pattern[x]` (FHIR R4
//! elementdefinition-definitions.html#ElementDefinition.fixed_x_ and #pattern_x_): fixed is
//! exact equality; a pattern is contained in the instance (objects member by member, arrays
//! item by item: every pattern item matched by some instance item).

use serde_json::Value;

/// `instance` exactly equals `fixed` (object member order aside).
pub(crate) fn equals_fixed(instance: &Value, fixed: &Value) -> bool {
    instance == fixed
}

/// `instance` contains everything `pattern` says.
pub(crate) fn matches_pattern(instance: &Value, pattern: &Value) -> bool {
    match (instance, pattern) {
        (Value::Object(i), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| i.get(k).is_some_and(|iv| matches_pattern(iv, pv))),
        (Value::Array(i), Value::Array(p)) => p
            .iter()
            .all(|pv| i.iter().any(|iv| matches_pattern(iv, pv))),
        (a, b) => a == b,
    }
}

/// A short rendering of a JSON value for diagnostics.
pub(crate) fn show(value: &Value) -> String {
    const MAX: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_are_contained_fixed_values_equal() {
        let cc = json!({"coding": [
            {"system": "a", "code": "x", "display": "X"},
            {"system": "b", "code": "survey"}
        ], "text": "t"});
        assert!(matches_pattern(
            &cc,
            &json!({"coding": [{"system": "b", "code": "survey"}]})
        ));
        assert!(!matches_pattern(
            &cc,
            &json!({"coding": [{"system": "a", "code": "survey"}]})
        ));
        assert!(matches_pattern(
            &cc,
            &json!({"coding": [{"code": "x"}, {"code": "survey"}]})
        ));
        assert!(!matches_pattern(&cc, &json!({"id": "1"})));
        assert!(matches_pattern(&json!("abc"), &json!("abc")));
        assert!(!matches_pattern(&json!(["abc"]), &json!("abc")));
        assert!(equals_fixed(
            &json!({"a": 1, "b": 2}),
            &json!({"b": 2, "a": 1})
        ));
        assert!(!equals_fixed(&json!({"a": 1, "b": 2}), &json!({"a": 1})));
        assert_eq!(show(&json!("x".repeat(200))).chars().count(), 121);
    }
}
