//! Validating a QuestionnaireResponse against its Questionnaire (R4 questionnaireresponse.html
//! "Questionnaire Responses and Questionnaires", questionnaire.html item rules: linkId,
//! nesting, type, answerOption / answerValueSet, required, repeats, enableWhen, maxLength).
//!
//! Nesting follows the Questionnaire: a response item's children must be children of its
//! Questionnaire item, under the item for a group and under an answer (or, leniently, the
//! item) for a question. Answers to calculated items (`calculatedExpression`) of a numeric
//! type may use either numeric value[x] (a warning, not an error): the server recomputes them
//! anyway, and published responses (US Core PHQ-9) carry an integer score as valueDecimal.

use std::collections::HashSet;

use serde_json::Value;

use crate::answers::{self, expected_keys, is_true, items, str_of};
use crate::enable::Enablement;
use crate::ext;
use crate::issue::Issue;

/// Validates `response` against `questionnaire` (`None`: the form is unknown).
///
/// * `completed` / `amended`: every rule (linkIds and nesting, answer types, answerOption /
///   contained answerValueSet, required, repeats, enableWhen, maxLength);
/// * any other status: structural rules only (linkIds, nesting, answer types);
/// * no questionnaire: the response's own structure (linkIds, one value[x] per answer) and
///   one warning that it was not checked against a form and cannot be scored.
pub fn validate(questionnaire: Option<&Value>, response: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    if str_of(response, "resourceType") != Some("QuestionnaireResponse") {
        issues.push(Issue::error(
            "structure",
            None,
            "QuestionnaireResponse",
            "The resource is not a QuestionnaireResponse.",
        ));
        return issues;
    }
    let Some(questionnaire) = questionnaire else {
        own_structure(response, "QuestionnaireResponse", &mut issues);
        let canonical = str_of(response, "questionnaire").unwrap_or("(none given)");
        issues.push(Issue::warning(
            "not-supported",
            None,
            "QuestionnaireResponse.questionnaire",
            format!(
                "The Questionnaire {canonical} is not known here: the response was checked for its own structure only, not against the form, and it cannot be scored."
            ),
        ));
        return issues;
    };
    let full = matches!(str_of(response, "status"), Some("completed" | "amended"));
    let mut enablement = Enablement::new(response);
    let mut check = Check {
        questionnaire,
        enablement: &mut enablement,
        full,
        issues,
    };
    check.level(questionnaire, response, "QuestionnaireResponse", true);
    check.issues
}

/// The linkIds of required, enabled items left unanswered (what makes a response incomplete
/// for scoring); `enablement`: the response's, shared with the caller.
pub(crate) fn missing_required<'a>(
    questionnaire: &'a Value,
    response: &'a Value,
    enablement: &mut Enablement<'a>,
) -> Vec<String> {
    let mut check = Check {
        questionnaire,
        enablement,
        full: true,
        issues: Vec::new(),
    };
    check.level(questionnaire, response, "QuestionnaireResponse", true);
    check
        .issues
        .into_iter()
        .filter(|i| i.code == "required")
        .filter_map(|i| i.link_id)
        .collect()
}

/// No Questionnaire: every item has a linkId, every answer exactly one value[x].
fn own_structure(parent: &Value, path: &str, issues: &mut Vec<Issue>) {
    for (i, item) in items(parent).iter().enumerate() {
        let path = format!("{path}.item[{i}]");
        let link_id = str_of(item, "linkId");
        if link_id.is_none() {
            issues.push(Issue::error(
                "required",
                None,
                &path,
                "An item has no linkId.",
            ));
        }
        for (j, answer) in answers::answers(item).iter().enumerate() {
            let apath = format!("{path}.answer[{j}]");
            let n = answers::values(answer, "value").len();
            if n != 1 {
                issues.push(Issue::error(
                    "structure",
                    link_id,
                    &apath,
                    format!(
                        "An answer to item {} has {n} values; it must have exactly one value[x].",
                        link_id.unwrap_or("(no linkId)")
                    ),
                ));
            }
            own_structure(answer, &apath, issues);
        }
        own_structure(item, &path, issues);
    }
}

struct Check<'a, 'e> {
    questionnaire: &'a Value,
    /// enableWhen over the response's answers, indexed once.
    enablement: &'e mut Enablement<'a>,
    full: bool,
    issues: Vec<Issue>,
}

impl Check<'_, '_> {
    /// Checks the response items under `r_parent` (at `path`) against the children of
    /// `q_parent`; `enabled_parent`: whether the enclosing item is enabled.
    fn level(&mut self, q_parent: &Value, r_parent: &Value, path: &str, enabled_parent: bool) {
        let q_items = items(q_parent);
        let r_items = items(r_parent);
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, r_item) in r_items.iter().enumerate() {
            let ipath = format!("{path}.item[{i}]");
            let Some(link_id) = str_of(r_item, "linkId") else {
                self.issues.push(Issue::error(
                    "required",
                    None,
                    &ipath,
                    "An item has no linkId.",
                ));
                continue;
            };
            let Some(q_item) = q_items
                .iter()
                .find(|q| str_of(q, "linkId") == Some(link_id))
            else {
                let message = if answers::find_item(self.questionnaire, link_id).is_some() {
                    format!("Item {link_id} is in the Questionnaire but not at this place: it must be nested where the Questionnaire nests it.")
                } else {
                    format!("Item {link_id} is not in the Questionnaire.")
                };
                self.issues
                    .push(Issue::error("structure", Some(link_id), &ipath, message));
                continue;
            };
            let repeats_ok = str_of(q_item, "type") == Some("group") && is_true(q_item, "repeats");
            if self.full && seen.contains(&link_id) && !repeats_ok {
                self.issues.push(Issue::error(
                    "structure",
                    Some(link_id),
                    &ipath,
                    format!("Item {link_id} appears more than once here but does not repeat."),
                ));
            }
            seen.insert(link_id);
            let enabled_here = enabled_parent && self.enablement.enabled(q_item);
            self.item(q_item, r_item, &ipath, link_id, enabled_here);
        }
        if self.full && enabled_parent {
            self.required(q_items, r_items, path);
        }
    }

    fn item(
        &mut self,
        q_item: &Value,
        r_item: &Value,
        path: &str,
        link_id: &str,
        enabled_here: bool,
    ) {
        let item_type = str_of(q_item, "type").unwrap_or("");
        let given = answers::answers(r_item);
        if self.full && !enabled_here && (!given.is_empty() || has_answers(r_item)) {
            self.issues.push(Issue::error(
                "business-rule",
                Some(link_id),
                path,
                format!("Item {link_id} is answered but is disabled by its enableWhen conditions, so it must not be answered."),
            ));
        }
        if let Some(expected) = expected_keys(item_type) {
            if expected.is_empty() && !given.is_empty() {
                self.issues.push(Issue::error(
                    "structure",
                    Some(link_id),
                    format!("{path}.answer[0]"),
                    format!("Item {link_id} is a {item_type} item and cannot have answers."),
                ));
            }
        }
        if self.full && !is_true(q_item, "repeats") && given.len() > 1 {
            self.issues.push(Issue::error(
                "structure",
                Some(link_id),
                format!("{path}.answer[1]"),
                format!(
                    "Item {link_id} does not repeat but has {} answers.",
                    given.len()
                ),
            ));
        }
        for (j, answer) in given.iter().enumerate() {
            let apath = format!("{path}.answer[{j}]");
            self.answer(q_item, answer, &apath, link_id, item_type);
            // A question's children are nested under its answers.
            self.level(q_item, answer, &apath, enabled_here);
        }
        // A group's children (and, leniently, a question's) under the item.
        self.level(q_item, r_item, path, enabled_here);
    }

    fn answer(
        &mut self,
        q_item: &Value,
        answer: &Value,
        path: &str,
        link_id: &str,
        item_type: &str,
    ) {
        let values = answers::values(answer, "value");
        let [(key, value)] = values.as_slice() else {
            self.issues.push(Issue::error(
                "structure",
                Some(link_id),
                path,
                format!(
                    "An answer to item {link_id} has {} values; it must have exactly one value[x].",
                    values.len()
                ),
            ));
            return;
        };
        let Some(expected) = expected_keys(item_type) else {
            return;
        };
        if expected.is_empty() {
            return;
        }
        if !expected.contains(key) {
            let numeric = |k: &str| matches!(k, "valueDecimal" | "valueInteger");
            let calculated = ext::first(q_item, ext::CALCULATED_EXPRESSION).is_some();
            let message = format!(
                "The answer to item {link_id} is a {key}, but a {item_type} item takes {}.",
                expected.join(" or ")
            );
            if calculated && numeric(key) && expected.iter().any(|k| numeric(k)) {
                self.issues.push(Issue::warning(
                    "value",
                    Some(link_id),
                    path,
                    format!(
                        "{message} Accepted: the item is calculated and its value is recomputed."
                    ),
                ));
            } else {
                self.issues
                    .push(Issue::error("value", Some(link_id), path, message));
            }
            return;
        }
        if !self.full {
            return;
        }
        let kind = &key["value".len()..];
        if let Some(options) = q_item.get("answerOption").and_then(Value::as_array) {
            let open_text = item_type == "open-choice" && kind == "String";
            let listed = options.iter().any(|o| {
                answers::value(o, "value")
                    .is_some_and(|(k, v)| k == kind && answers::same_value(kind, &v, value))
            });
            if !open_text && !options.is_empty() && !listed {
                self.issues.push(Issue::error(
                    "value",
                    Some(link_id),
                    path,
                    format!("The answer to item {link_id} ({}) is not one of the item's answer options.", describe(value)),
                ));
            }
        } else if let (Some(vs), "Coding") = (str_of(q_item, "answerValueSet"), kind) {
            // Only a contained value set can be checked; an external one is accepted.
            if let Some(concepts) = answers::contained_concepts(self.questionnaire, vs) {
                let listed = concepts.iter().any(|(system, c)| {
                    str_of(c, "code") == str_of(value, "code")
                        && system.as_deref() == str_of(value, "system")
                });
                if !listed {
                    self.issues.push(Issue::error(
                        "value",
                        Some(link_id),
                        path,
                        format!(
                            "The answer to item {link_id} ({}) is not in its value set {vs}.",
                            describe(value)
                        ),
                    ));
                }
            }
        }
        if let (Some(max), Some(text)) = (
            q_item.get("maxLength").and_then(Value::as_u64),
            value.as_str(),
        ) {
            let length = text.chars().count() as u64;
            if length > max {
                self.issues.push(Issue::error(
                    "value",
                    Some(link_id),
                    path,
                    format!("The answer to item {link_id} is {length} characters long; at most {max} are allowed."),
                ));
            }
        }
    }

    /// Required, enabled items among `q_items` with no answered response item.
    fn required(&mut self, q_items: &[Value], r_items: &[Value], path: &str) {
        for q_item in q_items {
            let Some(link_id) = str_of(q_item, "linkId") else {
                continue;
            };
            if !is_true(q_item, "required") || !self.enablement.enabled(q_item) {
                continue;
            }
            let present: Vec<(usize, &Value)> = r_items
                .iter()
                .enumerate()
                .filter(|(_, r)| str_of(r, "linkId") == Some(link_id))
                .collect();
            let is_group = str_of(q_item, "type") == Some("group");
            let answered = present.iter().any(|(_, r)| {
                if is_group {
                    has_answers(r)
                } else {
                    !answers::answers(r).is_empty()
                }
            });
            if !answered {
                let (where_, what) = match present.first() {
                    Some((i, _)) => (format!("{path}.item[{i}]"), "has no answer"),
                    None => (path.to_string(), "is missing"),
                };
                self.issues.push(Issue::error(
                    "required",
                    Some(link_id),
                    where_,
                    format!("Item {link_id} is required but {what}."),
                ));
            }
        }
    }
}

/// Whether any item under `r_item` (itself included) has an answer.
fn has_answers(r_item: &Value) -> bool {
    !answers::answers(r_item).is_empty() || items(r_item).iter().any(has_answers)
}

fn describe(value: &Value) -> String {
    match (str_of(value, "system"), str_of(value, "code")) {
        (Some(s), Some(c)) => format!("{s}|{c}"),
        (None, Some(c)) => c.to_string(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;
    use crate::issue::Severity;
    use serde_json::json;

    fn errors(q: &Value, r: &Value) -> Vec<(String, &'static str, String)> {
        validate(Some(q), r)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| (i.link_id.unwrap_or_default(), i.code, i.expression))
            .collect()
    }

    fn one(q: &Value, r: &Value) -> (String, &'static str, String) {
        let e = errors(q, r);
        assert_eq!(e.len(), 1, "{e:?}");
        e.into_iter().next().unwrap()
    }

    fn phq9() -> (Value, Value) {
        (
            fixtures::shipped("phq-9.json"),
            fixtures::uscore_phq9_response(),
        )
    }

    #[test]
    fn the_us_core_phq9_response_validates() {
        let (q, r) = phq9();
        // Against the shipped PHQ-9: the stated total is a valueDecimal on an integer item,
        // accepted with a warning because the item is calculated.
        let issues = validate(Some(&q), &r);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].severity, Severity::Warning);
        assert_eq!(issues[0].link_id.as_deref(), Some("/44261-6"));
        assert_eq!(
            issues[0].expression,
            "QuestionnaireResponse.item[9].answer[0]"
        );
        // Against the US Core PHQ-9 itself: clean.
        assert_eq!(
            validate(Some(&fixtures::uscore_phq9_questionnaire()), &r),
            vec![]
        );
        // GAD-7 too.
        assert_eq!(
            validate(
                Some(&fixtures::shipped("gad-7.json")),
                &fixtures::phr_gad7_response()
            ),
            vec![]
        );
    }

    #[test]
    fn unknown_link_id() {
        let (q, mut r) = phq9();
        r["item"][2]["linkId"] = json!("/nope");
        // The renamed item also leaves /44259-0 unanswered.
        assert_eq!(
            errors(&q, &r),
            vec![
                (
                    "/nope".into(),
                    "structure",
                    "QuestionnaireResponse.item[2]".into()
                ),
                (
                    "/44259-0".into(),
                    "required",
                    "QuestionnaireResponse".into()
                )
            ]
        );
        r["status"] = json!("in-progress");
        assert_eq!(
            one(&q, &r),
            (
                "/nope".into(),
                "structure",
                "QuestionnaireResponse.item[2]".into()
            )
        );
    }

    #[test]
    fn wrong_answer_type() {
        let (q, mut r) = phq9();
        r["item"][1]["answer"][0] = json!({"valueString": "often"});
        assert_eq!(
            one(&q, &r),
            (
                "/44255-8".into(),
                "value",
                "QuestionnaireResponse.item[1].answer[0]".into()
            )
        );
    }

    #[test]
    fn answer_not_among_the_options() {
        let (q, mut r) = phq9();
        r["item"][4]["answer"][0]["valueCoding"]["code"] = json!("LA9999-9");
        assert_eq!(
            one(&q, &r),
            (
                "/44251-7".into(),
                "value",
                "QuestionnaireResponse.item[4].answer[0]".into()
            )
        );
        // A contained answerValueSet is checked too.
        let sq = fixtures::stanford_gad7();
        let group = sq["item"][0]["linkId"].as_str().unwrap();
        let first = sq["item"][0]["item"][0]["linkId"].as_str().unwrap();
        let sr = json!({"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": [{"linkId": group, "item": [
            {"linkId": first, "answer": [{"valueCoding": {"system": "http://biodesign.stanford.edu/fhir/uv/sdc/CodeSystem/CSGAD7", "code": "Often"}}]}]}]});
        assert_eq!(errors(&sq, &sr), vec![]); // in-progress: no value checks
        let mut sr = sr;
        sr["status"] = json!("completed");
        let e = errors(&sq, &sr);
        assert!(
            e.contains(&(
                first.to_string(),
                "value",
                "QuestionnaireResponse.item[0].item[0].answer[0]".into()
            )),
            "{e:?}"
        );
    }

    #[test]
    fn missing_required_and_in_progress() {
        let (q, mut r) = phq9();
        r["item"].as_array_mut().unwrap().remove(3);
        assert_eq!(
            one(&q, &r),
            (
                "/44254-1".into(),
                "required",
                "QuestionnaireResponse".into()
            )
        );
        // Present without an answer: reported on the item.
        let (q, mut r2) = phq9();
        r2["item"][3].as_object_mut().unwrap().remove("answer");
        assert_eq!(
            one(&q, &r2),
            (
                "/44254-1".into(),
                "required",
                "QuestionnaireResponse.item[3]".into()
            )
        );
        // In progress: required is not checked.
        r["status"] = json!("in-progress");
        assert_eq!(errors(&q, &r), vec![]);
    }

    #[test]
    fn repeats_violated() {
        let (q, mut r) = phq9();
        let extra = r["item"][0]["answer"][0].clone();
        r["item"][0]["answer"].as_array_mut().unwrap().push(extra);
        assert_eq!(
            one(&q, &r),
            (
                "/44250-9".into(),
                "structure",
                "QuestionnaireResponse.item[0].answer[1]".into()
            )
        );
        let (q, mut r) = phq9();
        let dup = r["item"][0].clone();
        r["item"].as_array_mut().unwrap().push(dup);
        assert_eq!(
            one(&q, &r),
            (
                "/44250-9".into(),
                "structure",
                "QuestionnaireResponse.item[11]".into()
            )
        );
    }

    fn conditional() -> Value {
        json!({"resourceType": "Questionnaire", "item": [
            {"linkId": "smoker", "type": "boolean", "required": true},
            {"linkId": "packs", "type": "integer", "required": true,
             "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": true}]},
            {"linkId": "notes", "type": "string", "maxLength": 5},
            {"linkId": "history", "type": "group", "item": [
                {"linkId": "age", "type": "integer", "item": [{"linkId": "age-note", "type": "string"}]}]}
        ]})
    }

    #[test]
    fn enable_when() {
        let q = conditional();
        // Not a smoker: packs is disabled, so not required, and must not be answered.
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "smoker", "answer": [{"valueBoolean": false}]}]});
        assert_eq!(errors(&q, &r), vec![]);
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "smoker", "answer": [{"valueBoolean": false}]},
            {"linkId": "packs", "answer": [{"valueInteger": 3}]}]});
        assert_eq!(
            one(&q, &r),
            (
                "packs".into(),
                "business-rule",
                "QuestionnaireResponse.item[1]".into()
            )
        );
        // A smoker: packs is required.
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "smoker", "answer": [{"valueBoolean": true}]}]});
        assert_eq!(
            one(&q, &r),
            ("packs".into(), "required", "QuestionnaireResponse".into())
        );
    }

    #[test]
    fn nesting_and_max_length() {
        let q = conditional();
        // age-note belongs under age's answer, not directly under the group.
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "smoker", "answer": [{"valueBoolean": false}]},
            {"linkId": "history", "item": [{"linkId": "age", "answer": [{"valueInteger": 40,
                "item": [{"linkId": "age-note", "answer": [{"valueString": "ok"}]}]}]},
              {"linkId": "age-note", "answer": [{"valueString": "misplaced"}]}]}]});
        assert_eq!(
            one(&q, &r),
            (
                "age-note".into(),
                "structure",
                "QuestionnaireResponse.item[1].item[1]".into()
            )
        );
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "smoker", "answer": [{"valueBoolean": false}]},
            {"linkId": "notes", "answer": [{"valueString": "too long"}]}]});
        assert_eq!(
            one(&q, &r),
            (
                "notes".into(),
                "value",
                "QuestionnaireResponse.item[1].answer[0]".into()
            )
        );
    }

    #[test]
    fn unknown_questionnaire_checks_structure_and_warns_once() {
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "http://x/Q/1", "item": [
            {"text": "no link"},
            {"linkId": "a", "answer": [{"valueString": "x", "valueInteger": 1}]}]});
        let issues = validate(None, &r);
        assert_eq!(issues.len(), 3, "{issues:?}");
        assert_eq!(issues[0].expression, "QuestionnaireResponse.item[0]");
        assert_eq!(
            issues[1].expression,
            "QuestionnaireResponse.item[1].answer[0]"
        );
        assert_eq!(issues[1].link_id.as_deref(), Some("a"));
        assert_eq!(issues[2].severity, Severity::Warning);
        assert!(issues[2].message.contains("http://x/Q/1"));
        assert_eq!(
            issues
                .iter()
                .filter(|i| i.severity == Severity::Warning)
                .count(),
            1
        );
    }

    /// enableWhen is checked against answers indexed once per validation: a response of
    /// 20,000 repeated items, each under enableWhen, validates in linear time (it took about
    /// 10^9 steps when every check walked the whole response).
    #[test]
    fn enable_when_on_twenty_thousand_repeated_items() {
        let q = json!({
            "resourceType": "Questionnaire",
            "status": "active",
            "item": [
                {"linkId": "gate", "type": "boolean", "required": true},
                {"linkId": "visit", "type": "group", "repeats": true,
                 "enableWhen": [{"question": "gate", "operator": "=", "answerBoolean": true}],
                 "item": [
                    {"linkId": "pain", "type": "integer", "required": true,
                     "enableWhen": [
                        {"question": "gate", "operator": "exists", "answerBoolean": true},
                        {"question": "pain", "operator": "<=", "answerInteger": 10}]}
                 ]}
            ]
        });
        let n = 20_000;
        let response = |gate: bool| {
            let mut list = vec![json!({"linkId": "gate", "answer": [{"valueBoolean": gate}]})];
            list.extend((0..n).map(|i| {
                json!({"linkId": "visit", "item": [
                    {"linkId": "pain", "answer": [{"valueInteger": i % 11}]}]})
            }));
            json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": list})
        };
        assert_eq!(errors(&q, &response(true)), Vec::new());
        // Gate closed: every visit is answered while disabled (and so is every pain item,
        // its ancestor being disabled); nothing is reported as required.
        let closed = errors(&q, &response(false));
        assert_eq!(closed.len(), 2 * n);
        assert!(closed.iter().all(|(_, code, _)| *code == "business-rule"));
        assert_eq!(closed.iter().filter(|(l, _, _)| l == "visit").count(), n);
        assert_eq!(
            closed[1],
            (
                "pain".to_string(),
                "business-rule",
                "QuestionnaireResponse.item[1].item[0]".to_string()
            )
        );
        // Answers are found wherever they are nested, in document order.
        let r = response(true);
        let index = answers::ResponseAnswers::new(&r);
        assert_eq!(index.get("pain").len(), n);
        assert_eq!(
            index.get("pain").to_vec(),
            answers::response_answers(&r, "pain")
        );
        assert!(index.get("absent").is_empty());
    }
}
