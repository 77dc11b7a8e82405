//! The score and the observable items of a response as Observations, shaped like US Core's
//! PHQ-9 total score example (Observation-PHQ9-item-example-44261-6: status final, category
//! survey, code, subject, effective = authored, performer = author, derivedFrom the response)
//! and SDC 3.0 Observation-based extraction (extraction.html, `observationExtract`).
//!
//! The total is a `valueQuantity` in UCUM `{score}` (the unit LOINC gives 44261-6), where the
//! US Core example writes `valueString "12"`: a Quantity is what Goal.target.detailQuantity
//! and value-quantity searches compare with.

use serde_json::{json, Map, Value};

use crate::answers::{self, items, str_of};
use crate::ext;
use crate::score::Scores;

const SURVEY: &str = "survey";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";

/// The total score as an Observation (no id): status final, category survey, code = the
/// total item's code, valueQuantity in `{score}`, effective = authored, subject, performer =
/// author, derivedFrom = `response_ref`, interpretation from the total item's
/// `score-interpretation` bands. `None` when there is no total or no value. `hasMember` is
/// left to the caller (link the [`item_observations`] it stores).
pub fn score_observation(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
    scores: &Scores,
) -> Option<Value> {
    let total = scores.total()?;
    let value = total.value.as_deref()?;
    let item = answers::find_item(questionnaire, &total.link_id)?;
    let number = value.parse::<serde_json::Number>().ok()?;
    let unit = total.unit.clone().unwrap_or_else(|| "{score}".to_string());
    let mut observation = base(questionnaire, item, response, response_ref)?;
    observation.insert(
        "valueQuantity".into(),
        json!({"value": Value::Number(number), "unit": unit, "system": UCUM, "code": unit}),
    );
    if let Some(interpretation) =
        crate::bands::interpretation(questionnaire, Some(&total.link_id), total.as_f64()?)
    {
        observation.insert("interpretation".into(), json!([interpretation]));
    }
    Some(Value::Object(reorder(observation)))
}

/// One Observation (no id) per answer of each item marked `observationExtract` (on the item
/// or an ancestor or the root) that has a code, except calculated items (the total is
/// [`score_observation`]'s).
pub fn item_observations(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (item, answer) in extractable(questionnaire, response) {
        if ext::first(item, ext::CALCULATED_EXPRESSION).is_some() {
            continue;
        }
        if let Some(o) = answer_observation(questionnaire, item, answer, response, response_ref) {
            out.push(o);
        }
    }
    out
}

/// Every (item, answer) of the response whose Questionnaire item is marked for extraction
/// (itself, an ancestor or the root, the nearest mark winning) and has a code.
pub(crate) fn extractable<'a>(
    questionnaire: &'a Value,
    response: &'a Value,
) -> Vec<(&'a Value, &'a Value)> {
    fn walk<'a>(
        q_parent: &'a Value,
        r_parent: &'a Value,
        inherited: bool,
        out: &mut Vec<(&'a Value, &'a Value)>,
    ) {
        for r_item in items(r_parent) {
            let Some(link_id) = str_of(r_item, "linkId") else {
                continue;
            };
            let Some(q_item) = items(q_parent)
                .iter()
                .find(|q| str_of(q, "linkId") == Some(link_id))
            else {
                continue;
            };
            let marked = ext::boolean(q_item, ext::OBSERVATION_EXTRACT).unwrap_or(inherited);
            for answer in answers::answers(r_item) {
                if marked && q_item.get("code").and_then(|c| c.get(0)).is_some() {
                    out.push((q_item, answer));
                }
                walk(q_item, answer, marked, out);
            }
            walk(q_item, r_item, marked, out);
        }
    }
    let mut out = Vec::new();
    let root = ext::boolean(questionnaire, ext::OBSERVATION_EXTRACT).unwrap_or(false);
    walk(questionnaire, response, root, &mut out);
    out
}

/// An answer's value as an Observation value[x] (R4 Observation.value[x] has no decimal,
/// uri, attachment or reference: decimals become Quantities, uris strings, the others have
/// none).
pub(crate) fn observation_value(item: &Value, answer: &Value) -> Option<(String, Value)> {
    let (kind, value) = answers::value(answer, "value")?;
    let unit = ext::first(item, ext::QUESTIONNAIRE_UNIT).and_then(|u| u.get("valueCoding"));
    let quantity = |value: Value| {
        let mut q = json!({ "value": value });
        if let Some(u) = unit {
            let code = str_of(u, "code").or_else(|| str_of(u, "display"));
            if let Some(c) = code {
                q["unit"] = json!(str_of(u, "display").unwrap_or(c));
                q["system"] = json!(str_of(u, "system").unwrap_or(UCUM));
                q["code"] = json!(c);
            }
        }
        q
    };
    Some(match kind.as_str() {
        "Coding" => ("valueCodeableConcept".into(), json!({"coding": [value]})),
        "Decimal" => ("valueQuantity".into(), quantity(value)),
        "Integer" if unit.is_some() => ("valueQuantity".into(), quantity(value)),
        "Integer" => ("valueInteger".into(), value),
        "Date" | "DateTime" => ("valueDateTime".into(), value),
        "Uri" | "String" => ("valueString".into(), value),
        "Boolean" | "Time" | "Quantity" => (format!("value{kind}"), value),
        _ => return None,
    })
}

/// The Observation for one answer to `item`.
pub(crate) fn answer_observation(
    questionnaire: &Value,
    item: &Value,
    answer: &Value,
    response: &Value,
    response_ref: &str,
) -> Option<Value> {
    let (key, value) = observation_value(item, answer)?;
    let mut observation = base(questionnaire, item, response, response_ref)?;
    observation.insert(key, value);
    Some(Value::Object(reorder(observation)))
}

/// The parts every extracted Observation shares; `None` when the item has no code.
pub(crate) fn base(
    questionnaire: &Value,
    item: &Value,
    response: &Value,
    response_ref: &str,
) -> Option<Map<String, Value>> {
    let codings = item
        .get("code")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())?;
    let mut code = json!({"coding": codings});
    if let Some(text) = codings.first().and_then(|c| str_of(c, "display")) {
        code["text"] = json!(text);
    }
    let category = ext::first(item, ext::OBSERVATION_EXTRACT_CATEGORY)
        .or_else(|| ext::first(questionnaire, ext::OBSERVATION_EXTRACT_CATEGORY))
        .and_then(|e| e.get("valueCodeableConcept"))
        .cloned()
        .unwrap_or_else(|| json!({"coding": [{"system": CATEGORY_SYSTEM, "code": SURVEY, "display": "Survey"}]}));
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert("status".into(), json!("final"));
    o.insert("category".into(), json!([category]));
    o.insert("code".into(), code);
    if let Some(subject) = response.get("subject") {
        o.insert("subject".into(), subject.clone());
    }
    if let Some(authored) = response.get("authored") {
        o.insert("effectiveDateTime".into(), authored.clone());
    }
    if let Some(author) = response.get("author") {
        o.insert("performer".into(), json!([author]));
    }
    o.insert("derivedFrom".into(), json!([{"reference": response_ref}]));
    Some(o)
}

/// The element order of R4 Observation (the value and interpretation come before
/// derivedFrom), for readable output.
fn reorder(mut o: Map<String, Value>) -> Map<String, Value> {
    const ORDER: &[&str] = &[
        "resourceType",
        "status",
        "category",
        "code",
        "subject",
        "effectiveDateTime",
        "performer",
    ];
    let mut out = Map::new();
    for key in ORDER {
        if let Some(v) = o.remove(*key) {
            out.insert((*key).to_string(), v);
        }
    }
    let tail: Vec<(String, Value)> = ["interpretation", "derivedFrom"]
        .iter()
        .filter_map(|k| o.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    // The value[x].
    out.extend(o);
    out.extend(tail);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;

    #[test]
    fn the_phq9_total_observation_field_by_field() {
        let q = fixtures::shipped("phq-9.json");
        let r = fixtures::uscore_phq9_response();
        let scores = crate::score(&q, &r).unwrap();
        let o = score_observation(&q, &r, "QuestionnaireResponse/7", &scores).unwrap();
        let example = fixtures::uscore_phq9_total_observation();
        assert_eq!(o["resourceType"], "Observation");
        assert_eq!(o["status"], "final");
        assert_eq!(o["category"][0], example["category"][0]);
        assert_eq!(o["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(o["code"]["coding"][0]["code"], "44261-6");
        assert_eq!(o["code"], example["code"]);
        assert_eq!(o["subject"], json!({"reference": "Patient/example"}));
        assert_eq!(o["effectiveDateTime"], "2022-11-29T20:50:32.718Z");
        assert_eq!(
            o["performer"],
            json!([{"reference": "Practitioner/practitioner-1"}])
        );
        assert_eq!(
            o["valueQuantity"],
            json!({"value": 12, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"})
        );
        assert_eq!(
            o["valueQuantity"]["value"].to_string(),
            example["valueString"].as_str().unwrap()
        );
        assert_eq!(
            o["interpretation"],
            json!([{"text": "Moderate depression"}])
        );
        assert_eq!(
            o["derivedFrom"],
            json!([{"reference": "QuestionnaireResponse/7"}])
        );
        assert!(o.get("id").is_none() && o.get("hasMember").is_none());
        // No total, no Observation.
        let mut partial = r.clone();
        partial["item"].as_array_mut().unwrap().remove(0);
        let scores = crate::score(&q, &partial).unwrap();
        assert_eq!(
            score_observation(&q, &partial, "QuestionnaireResponse/7", &scores),
            None
        );
    }

    #[test]
    fn item_observations_for_the_marked_items() {
        let q = fixtures::shipped("phq-9.json");
        let r = fixtures::uscore_phq9_response();
        let items = item_observations(&q, &r, "QuestionnaireResponse/7");
        // The nine questions (not the total, not the unmarked difficulty item).
        assert_eq!(items.len(), 9);
        assert_eq!(items[0]["code"]["coding"][0]["code"], "44250-9");
        assert_eq!(
            items[0]["valueCodeableConcept"],
            json!({"coding": [{"system": "http://loinc.org", "code": "LA6570-1", "display": "More than half the days"}]})
        );
        assert_eq!(
            items[0]["derivedFrom"][0]["reference"],
            "QuestionnaireResponse/7"
        );
    }
}
