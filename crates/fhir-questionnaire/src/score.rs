//! Scoring a QuestionnaireResponse from its Questionnaire alone (nothing per instrument in
//! code): SDC 3.0 "Calculations" (`calculatedExpression`, `variable`), the `ordinalValue`
//! and SDC `itemWeight` extensions, and the SDC `ordinal()` / `weight()` FHIRPath functions.
//!
//! How:
//! 1. every answer is matched to its Questionnaire item and its ordinal looked up (the
//!    matching answerOption's `ordinalValue`/`itemWeight`, on the option or its Coding, else a
//!    contained answerValueSet concept's): [`Scores::answered`];
//! 2. the ordinal is written onto a copy of the response, as an `ordinalValue` extension on
//!    the answer's Coding, so `ordinal()` / `weight()` (registered in the engine by
//!    crates/fhir-fhirpath, reading an element's own extension first) give each answer the
//!    weight of *its* item even when two items weight one code differently;
//! 3. each `calculatedExpression` (language `text/fhirpath`) is evaluated on that copy with
//!    `%resource` = `%context` = the response, `%questionnaire` = the Questionnaire, and the
//!    `variable` extensions of the root and of the enclosing items (and the item itself) bound
//!    as `%name`, evaluated in document order, outer first.
//!
//! No score without the answers it needs: when a required, enabled item is unanswered, or an
//! enabled item whose answers carry ordinals has no answer with an ordinal (unanswered, or a
//! declined option without one), every calculated item gets no value ([`ItemScore::missing`] says which). Calculated values are not written back into the
//! response: an expression reading another calculated item sees what the client sent.
//! Values are exact decimal text; an `integer` item's whole value is written without a
//! fraction (`"12"`, not `"12.0"`).

use fhir_fhirpath::Engine;
use serde_json::Value;

use crate::answers::{self, items, str_of};
use crate::enable::Enablement;
use crate::expr;
use crate::ext;

/// One calculated item's score.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// The calculated item's linkId.
    pub link_id: String,
    /// The item's first code (`item.code[0]`, a Coding), when it has one.
    pub code: Option<Value>,
    /// The calculated value as exact decimal text (`"12"`, `"3.5"`); `None` when no score is
    /// produced: a required item is unanswered, an item contributing an ordinal is missing,
    /// or the expression yields nothing.
    pub value: Option<String>,
    /// The unit, from the item's `questionnaire-unit` extension (its code, else its display).
    pub unit: Option<String>,
    /// Why there is no value: the linkIds of the missing answers (empty when `value` is set).
    pub missing: Vec<String>,
    /// Whether the item is a top-level item of the Questionnaire.
    pub top_level: bool,
}

impl ItemScore {
    /// The value as an `f64` (for comparisons; keep [`ItemScore::value`] for storage).
    pub fn as_f64(&self) -> Option<f64> {
        self.value.as_deref().and_then(|v| v.parse().ok())
    }
}

/// The scores of one response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// Every calculated item (one with `calculatedExpression`), in Questionnaire order.
    pub items: Vec<ItemScore>,
    /// Every answer that carries an ordinal/weight: (linkId, exact decimal text), in response
    /// order.
    pub answered: Vec<(String, String)>,
    /// Whether every required, enabled item is answered.
    pub complete: bool,
}

impl Scores {
    /// The total: the first top-level calculated item that carries a code (else the first
    /// calculated item with a code at any depth).
    pub fn total(&self) -> Option<&ItemScore> {
        let coded = || self.items.iter().filter(|i| i.code.is_some());
        coded().find(|i| i.top_level).or_else(|| coded().next())
    }
}

/// Why a response could not be scored at all.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreError {
    /// The first argument is not a Questionnaire, or the second not a QuestionnaireResponse.
    NotAQuestionnaire(&'static str),
    /// The FHIRPath engine could not start.
    Engine(String),
    /// A `calculatedExpression` or `variable` does not compile or evaluate, or is refused
    /// unevaluated for exceeding the limits on client-written expressions (the `expr` module:
    /// length, `replace` / `repeat`, `descendants()` more than once).
    Expression {
        link_id: Option<String>,
        expression: String,
        message: String,
    },
}

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreError::NotAQuestionnaire(what) => write!(f, "{what}"),
            ScoreError::Engine(m) => write!(f, "FHIRPath engine: {m}"),
            ScoreError::Expression {
                link_id,
                expression,
                message,
            } => match link_id {
                Some(l) => write!(f, "item {l}: expression `{expression}`: {message}"),
                None => write!(f, "expression `{expression}`: {message}"),
            },
        }
    }
}

impl std::error::Error for ScoreError {}

/// Scores `response` with the scoring `questionnaire` defines (see the module doc).
pub fn score(questionnaire: &Value, response: &Value) -> Result<Scores, ScoreError> {
    if str_of(questionnaire, "resourceType") != Some("Questionnaire") {
        return Err(ScoreError::NotAQuestionnaire(
            "the form is not a Questionnaire",
        ));
    }
    if str_of(response, "resourceType") != Some("QuestionnaireResponse") {
        return Err(ScoreError::NotAQuestionnaire(
            "the response is not a QuestionnaireResponse",
        ));
    }
    let mut annotated = response.clone();
    let mut answered = Vec::new();
    annotate(questionnaire, questionnaire, &mut annotated, &mut answered);

    let mut enablement = Enablement::new(response);
    let required = crate::validate::missing_required(questionnaire, response, &mut enablement);
    let complete = required.is_empty();
    let mut missing = required;
    unanswered_scored(questionnaire, questionnaire, &mut enablement, &mut missing);

    let mut scores = Scores {
        items: Vec::new(),
        answered,
        complete,
    };
    let mut calculated = Vec::new();
    calculated_items(questionnaire, Vec::new(), true, &mut calculated);
    if calculated.is_empty() {
        return Ok(scores);
    }
    let engine = Engine::shared().map_err(|e| ScoreError::Engine(e.to_string()))?;
    for (item, variables, top_level) in calculated {
        let link_id = str_of(item, "linkId").unwrap_or_default().to_string();
        let value = if missing.is_empty() {
            calculate(engine, questionnaire, &annotated, item, &variables)?
        } else {
            None
        };
        let unit = ext::first(item, ext::QUESTIONNAIRE_UNIT)
            .and_then(|u| u.get("valueCoding"))
            .and_then(|c| str_of(c, "code").or_else(|| str_of(c, "display")))
            .map(str::to_string);
        scores.items.push(ItemScore {
            link_id,
            code: item.get("code").and_then(|c| c.get(0)).cloned(),
            missing: if value.is_some() {
                Vec::new()
            } else {
                missing.clone()
            },
            value,
            unit,
            top_level,
        });
    }
    Ok(scores)
}

/// Records every answer's ordinal and writes it onto the answer's Coding (module doc, 1-2).
fn annotate(
    questionnaire: &Value,
    q_parent: &Value,
    r_parent: &mut Value,
    answered: &mut Vec<(String, String)>,
) {
    let Some(r_items) = r_parent.get_mut("item").and_then(Value::as_array_mut) else {
        return;
    };
    for r_item in r_items {
        let Some(link_id) = str_of(r_item, "linkId").map(str::to_string) else {
            continue;
        };
        let q_item = items(q_parent)
            .iter()
            .find(|q| str_of(q, "linkId") == Some(&link_id))
            .or_else(|| answers::find_item(questionnaire, &link_id));
        let Some(q_item) = q_item else {
            continue;
        };
        if let Some(list) = r_item.get_mut("answer").and_then(Value::as_array_mut) {
            for answer in list {
                if let Some(weight) = answers::ordinal(questionnaire, q_item, answer) {
                    if let Some(coding) = answer.get_mut("valueCoding") {
                        if answers::own_weight(coding).is_none() {
                            mark(coding, &weight);
                        }
                    }
                    answered.push((link_id.clone(), weight));
                }
                annotate(questionnaire, q_item, answer, answered);
            }
        }
        annotate(questionnaire, q_item, r_item, answered);
    }
}

/// Adds an `ordinalValue` extension with `weight` to a Coding.
fn mark(coding: &mut Value, weight: &str) {
    let Ok(number) = weight.parse::<serde_json::Number>() else {
        return;
    };
    let Some(map) = coding.as_object_mut() else {
        return;
    };
    let extension =
        serde_json::json!({"url": ext::ORDINAL_VALUE, "valueDecimal": Value::Number(number)});
    match map.get_mut("extension").and_then(Value::as_array_mut) {
        Some(list) => list.push(extension),
        None => {
            map.insert("extension".into(), Value::Array(vec![extension]));
        }
    }
}

/// Enabled items whose answers carry ordinals but that have no answer with an ordinal (added
/// to `missing`).
fn unanswered_scored(
    questionnaire: &Value,
    q_parent: &Value,
    response: &mut Enablement<'_>,
    missing: &mut Vec<String>,
) {
    for item in items(q_parent) {
        if !response.enabled(item) {
            continue;
        }
        if let Some(link_id) = str_of(item, "linkId") {
            // Unanswered, or answered only with options that carry no ordinal (a declined
            // answer): the score would silently count it as 0.
            if answers::is_scored(questionnaire, item)
                && !response
                    .answers()
                    .get(link_id)
                    .iter()
                    .any(|a| answers::ordinal(questionnaire, item, a).is_some())
                && !missing.iter().any(|m| m == link_id)
            {
                missing.push(link_id.to_string());
            }
        }
        unanswered_scored(questionnaire, item, response, missing);
    }
}

type Calculated<'q> = (&'q Value, Vec<&'q Value>, bool);

/// Every item with a calculatedExpression, with the variables in scope (root's, enclosing
/// items', its own; as valueExpressions), in document order.
fn calculated_items<'q>(
    parent: &'q Value,
    mut scope: Vec<&'q Value>,
    top: bool,
    out: &mut Vec<Calculated<'q>>,
) {
    scope.extend(ext::all(parent, ext::VARIABLE).filter_map(|v| v.get("valueExpression")));
    for item in items(parent) {
        let mut inner = scope.clone();
        inner.extend(ext::all(item, ext::VARIABLE).filter_map(|v| v.get("valueExpression")));
        if ext::first(item, ext::CALCULATED_EXPRESSION).is_some() {
            out.push((item, inner.clone(), top));
        }
        calculated_items_children(item, inner, out);
    }
}

fn calculated_items_children<'q>(
    item: &'q Value,
    scope: Vec<&'q Value>,
    out: &mut Vec<Calculated<'q>>,
) {
    // The item's own variables are already in `scope`.
    for child in items(item) {
        let mut inner = scope.clone();
        inner.extend(ext::all(child, ext::VARIABLE).filter_map(|v| v.get("valueExpression")));
        if ext::first(child, ext::CALCULATED_EXPRESSION).is_some() {
            out.push((child, inner.clone(), false));
        }
        calculated_items_children(child, inner, out);
    }
}

/// Evaluates one item's calculatedExpression (module doc, 3).
fn calculate(
    engine: &Engine,
    questionnaire: &Value,
    response: &Value,
    item: &Value,
    variables: &[&Value],
) -> Result<Option<String>, ScoreError> {
    let link_id = str_of(item, "linkId").map(str::to_string);
    let error = |expression: &str, message: String| ScoreError::Expression {
        link_id: link_id.clone(),
        expression: expr::shown(expression),
        message,
    };
    // Beyond the limits on client-written expressions (expr.rs module doc): not evaluated.
    let refused = |expression: &str, what: &str| {
        expr::check(expression).map(|why| {
            let whose = link_id.as_deref().unwrap_or("(no linkId)");
            error(
                expression,
                format!("the {what} of item {whose} is refused: {why}"),
            )
        })
    };
    let mut prepared = engine.prepare(response);
    prepared.bind_resource("questionnaire", questionnaire);
    for variable in variables {
        let (Some(name), Some(source)) = (str_of(variable, "name"), expr::fhirpath_of(variable))
        else {
            continue;
        };
        if let Some(e) = refused(source, &format!("variable %{name} in scope")) {
            return Err(e);
        }
        let nodes = expr::evaluate(engine, &prepared, source).map_err(|m| error(source, m))?;
        prepared.bind_nodes(name, &nodes);
    }
    let Some(source) = ext::first(item, ext::CALCULATED_EXPRESSION)
        .and_then(|e| e.get("valueExpression"))
        .and_then(expr::fhirpath_of)
    else {
        return Ok(None);
    };
    if let Some(e) = refused(source, "calculatedExpression") {
        return Err(e);
    }
    let nodes = expr::evaluate(engine, &prepared, source).map_err(|m| error(source, m))?;
    let [node] = nodes.as_slice() else {
        return Ok(None);
    };
    let Some(mut text) = expr::number_text(node) else {
        return Ok(None);
    };
    if str_of(item, "type") == Some("integer") {
        if let Some((whole, fraction)) = text.split_once('.') {
            if fraction.chars().all(|c| c == '0') {
                text = whole.to_string();
            }
        }
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;
    use serde_json::json;

    fn total(q: &Value, r: &Value) -> Option<String> {
        score(q, r).unwrap().total().and_then(|t| t.value.clone())
    }

    #[test]
    fn us_core_phq9_response_scores_its_stated_total_on_the_shipped_phq9() {
        let q = fixtures::shipped("phq-9.json");
        let r = fixtures::uscore_phq9_response();
        let scores = score(&q, &r).unwrap();
        let t = scores.total().unwrap();
        assert_eq!(t.link_id, "/44261-6");
        assert_eq!(t.code.as_ref().unwrap()["code"], "44261-6");
        assert_eq!(t.unit.as_deref(), Some("{score}"));
        // The response states 12, and so does the US Core total score Observation.
        let stated = r["item"][9]["answer"][0]["valueDecimal"].to_string();
        assert_eq!(stated, "12");
        let observed = fixtures::uscore_phq9_total_observation()["valueString"].clone();
        assert_eq!(t.value.as_deref(), Some("12"));
        assert_eq!(observed, "12");
        assert!(scores.complete);
        assert_eq!(scores.answered.len(), 9);
        assert_eq!(
            scores.answered[0],
            ("/44250-9".to_string(), "2".to_string())
        );
    }

    #[test]
    fn phr_gad7_response_scores_on_the_shipped_gad7() {
        // The PHR IG example states no total; its answers are 0,0,1,1,0,1,0 (LOINC ordinals).
        let q = fixtures::shipped("gad-7.json");
        let r = fixtures::phr_gad7_response();
        assert_eq!(total(&q, &r).as_deref(), Some("3"));
        assert_eq!(
            crate::bands::interpretation(&q, None, 3.0).unwrap()["text"],
            "Minimal anxiety"
        );
    }

    #[test]
    fn phq2_scores_the_first_two_items() {
        let q = fixtures::shipped("phq-2.json");
        let mut r = fixtures::uscore_phq9_response();
        r["item"].as_array_mut().unwrap().truncate(2);
        assert_eq!(total(&q, &r).as_deref(), Some("4"));
    }

    #[test]
    fn lhc_phq9_scores_through_its_own_variables() {
        let q = fixtures::lhc_phq9();
        let r = fixtures::uscore_phq9_response();
        let scores = score(&q, &r).unwrap();
        let t = scores.total().unwrap();
        assert_eq!(t.link_id, "/44261-6");
        // A decimal item: the sum keeps the decimal text of the ordinals.
        assert_eq!(t.as_f64(), Some(12.0));
    }

    #[test]
    fn stanford_phq9_scores_with_its_contained_value_set_ordinals() {
        // The example's JSON omits the total item its narrative shows (H1/TS, a quantity
        // calculated as `%resource.answers().value.ordinal().sum()`); add it as shown.
        let mut q = fixtures::stanford_phq9();
        q["item"].as_array_mut().unwrap()[0]["item"].as_array_mut().unwrap().push(json!({
            "linkId": "H1/TS", "text": "Patient health questionnaire 9 item total score", "type": "quantity",
            "extension": [{"url": ext::CALCULATED_EXPRESSION, "valueExpression": {
                "language": "text/fhirpath", "expression": "%resource.answers().value.ordinal().sum()"}}]
        }));
        let codes = [
            "Not-at-all",
            "Several-days",
            "More than half the days",
            "Nearly every day",
        ];
        let chosen = [1, 1, 2, 3, 0, 0, 1, 2, 0];
        let items: Vec<Value> = chosen
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"linkId": format!("H1/T1/Q{}", i + 1), "answer": [{"valueCoding": {
                "system": "http://hl7.org/fhir/uv/sdc/CodeSystem/CSPHQ9", "code": codes[*c]}}]})
            })
            .collect();
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
            "item": [{"linkId": "H1/T1", "item": items}]});
        let scores = score(&q, &r).unwrap();
        assert_eq!(scores.answered.len(), 9);
        let ts = &scores.items[0];
        assert_eq!(ts.link_id, "H1/TS");
        assert!(!ts.top_level);
        assert_eq!(ts.as_f64(), Some(10.0));
        // It has no code, so it is not "the total".
        assert!(scores.total().is_none());
        assert!(crate::validate(Some(&q), &r).is_empty());
    }

    #[test]
    fn a_user_questionnaire_with_item_weights_and_variables() {
        let weight = |w: f64| json!([{"url": ext::ITEM_WEIGHT, "valueDecimal": w}]);
        let q = json!({
            "resourceType": "Questionnaire", "status": "active",
            "extension": [{"url": ext::VARIABLE, "valueExpression": {"name": "bonus", "language": "text/fhirpath", "expression": "0.5"}}],
            "item": [
                {"linkId": "a", "type": "choice", "required": true, "answerOption": [
                    {"valueCoding": {"system": "urn:x", "code": "lo"}, "extension": weight(1.0)},
                    {"valueCoding": {"system": "urn:x", "code": "hi"}, "extension": weight(2.5)}]},
                {"linkId": "b", "type": "choice", "answerOption": [
                    // The same code weighted differently: each answer takes its own item's.
                    {"valueCoding": {"system": "urn:x", "code": "lo", "extension": weight(10.0)}},
                    {"valueCoding": {"system": "urn:x", "code": "hi", "extension": weight(20.0)}}]},
                {"linkId": "g", "type": "group",
                 "extension": [{"url": ext::VARIABLE, "valueExpression": {"name": "weights", "language": "text/fhirpath",
                     "expression": "%resource.item.answer.value.weight()"}}],
                 "item": [{"linkId": "sum", "type": "decimal", "readOnly": true, "code": [{"system": "urn:x", "code": "total"}],
                    "extension": [{"url": ext::CALCULATED_EXPRESSION, "valueExpression": {"language": "text/fhirpath",
                        "expression": "%weights.sum() + %bonus + %resource.item.where(linkId = 'a').answer.value.ordinal()"}}]}]}
            ]
        });
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "a", "answer": [{"valueCoding": {"system": "urn:x", "code": "hi"}}]},
            {"linkId": "b", "answer": [{"valueCoding": {"system": "urn:x", "code": "lo"}}]}]});
        let scores = score(&q, &r).unwrap();
        // 2.5 + 10 + 0.5 + 2.5
        assert_eq!(scores.total().unwrap().as_f64(), Some(15.5));
        assert_eq!(scores.total().unwrap().link_id, "sum");
        assert_eq!(
            scores.answered,
            vec![("a".into(), "2.5".into()), ("b".into(), "10.0".into())]
        );
        // b unanswered: it carries weights, so no score.
        let partial = json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
            {"linkId": "a", "answer": [{"valueCoding": {"system": "urn:x", "code": "hi"}}]}]});
        let scores = score(&q, &partial).unwrap();
        assert!(scores.complete);
        assert_eq!(scores.items[0].value, None);
        assert_eq!(scores.items[0].missing, vec!["b".to_string()]);
        // An answer without an ordinal (say, a declined option) counts as missing too.
        let mut declined = r.clone();
        declined["item"][1]["answer"][0]["valueCoding"]["code"] = json!("asked-declined");
        assert_eq!(
            score(&q, &declined).unwrap().items[0].missing,
            vec!["b".to_string()]
        );
    }

    #[test]
    fn no_score_when_a_required_item_is_missing() {
        let q = fixtures::shipped("phq-9.json");
        let mut r = fixtures::uscore_phq9_response();
        r["item"].as_array_mut().unwrap().remove(3);
        let scores = score(&q, &r).unwrap();
        assert!(!scores.complete);
        let t = scores.total().unwrap();
        assert_eq!(t.value, None);
        assert_eq!(t.missing, vec!["/44254-1".to_string()]);
    }

    #[test]
    fn broken_expressions_and_wrong_resources_are_errors() {
        let q = json!({"resourceType": "Questionnaire", "item": [{"linkId": "x", "type": "integer",
            "extension": [{"url": ext::CALCULATED_EXPRESSION, "valueExpression": {"language": "text/fhirpath", "expression": "item.where("}}]}]});
        let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed"});
        match score(&q, &r) {
            Err(ScoreError::Expression {
                link_id,
                expression,
                ..
            }) => {
                assert_eq!(link_id.as_deref(), Some("x"));
                assert_eq!(expression, "item.where(");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            score(&r, &r),
            Err(ScoreError::NotAQuestionnaire(_))
        ));
        assert!(matches!(
            score(&q, &q),
            Err(ScoreError::NotAQuestionnaire(_))
        ));
    }

    /// Expressions beyond the limits (expr.rs) are refused with an error naming the item and
    /// the limit, before they are evaluated (these would otherwise exhaust memory or time).
    #[test]
    fn expressions_beyond_the_limits_are_refused() {
        let r = fixtures::uscore_phq9_response();
        let form = |calculated: &str, variable: Option<&str>| {
            let mut item = json!({"linkId": "total", "type": "integer",
                "extension": [{"url": ext::CALCULATED_EXPRESSION,
                    "valueExpression": {"language": "text/fhirpath", "expression": calculated}}]});
            if let Some(v) = variable {
                item["extension"].as_array_mut().unwrap().push(json!({"url": ext::VARIABLE,
                    "valueExpression": {"name": "v", "language": "text/fhirpath", "expression": v}}));
            }
            json!({"resourceType": "Questionnaire", "status": "active", "item": [item]})
        };
        let refused = |q: &Value| match score(q, &r) {
            Err(e @ ScoreError::Expression { .. }) => {
                let ScoreError::Expression {
                    link_id, message, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(link_id.as_deref(), Some("total"));
                assert!(message.contains("item total is refused"), "{message}");
                assert!(e.to_string().contains("item total"));
                message.clone()
            }
            other => panic!("{other:?}"),
        };
        let bomb = format!("'ab'{}.length()", ".replace('a','aaaaaaaaaa')".repeat(10));
        assert!(refused(&form(&bomb, None)).contains("calls replace()"));
        assert!(
            refused(&form("'ab'.replaceMatches('a', 'aa').length()", None))
                .contains("calls replaceMatches()")
        );
        assert!(refused(&form("item.repeat(item).count()", None)).contains("calls repeat()"));
        let cubic =
            "descendants().select(%resource.descendants()).select(%resource.descendants()).count()";
        assert!(refused(&form(cubic, None)).contains("descendants() 3 times; at most 1"));
        let long = format!("0{}", " + 0".repeat(600));
        let message = refused(&form(&long, None));
        assert!(
            message.contains("2401 characters long; at most 2000"),
            "{message}"
        );
        // In a variable, too; the error quotes a shortened expression.
        let message = refused(&form("%v.count()", Some(&long)));
        assert!(message.contains("variable %v"), "{message}");
        assert!(matches!(score(&form("%v.count()", Some(&long)), &r),
            Err(ScoreError::Expression { expression, .. }) if expression.chars().count() == 201));
        // Within the limits: one descendants(), names inside texts.
        let fine = form(
            "descendants().where(linkId = 'replace(').count() + iif('repeat(' = 'x', 1, 0)",
            None,
        );
        let scores = score(&fine, &r).unwrap();
        assert_eq!(scores.items[0].value.as_deref(), Some("0"));
    }
}
