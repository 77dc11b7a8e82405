//! SDC 3.0 Observation-based extraction (extraction.html#observation-based-extraction): a
//! transaction Bundle of one Observation per answer of every item marked
//! `sdc-questionnaire-observationExtract` (itself, an ancestor, or the root; the nearest mark
//! wins) with a code; the category comes from `sdc-questionnaire-observation-extract-category`
//! (item, else root), else survey. A calculated item the response leaves unanswered gets the
//! value [`crate::score`] computes, so the extracted total does not depend on the client
//! having sent it.

use serde_json::{json, Value};

use crate::answers::str_of;
use crate::ext;
use crate::observation::{answer_observation, extractable};

/// The extraction transaction Bundle (not stored): entries with `fullUrl` `urn:uuid:<id>`
/// (`new_id` supplies each id: randomness is injected), `request` POST Observation.
pub fn extract(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Value {
    let mut observations: Vec<Value> = extractable(questionnaire, response)
        .into_iter()
        .filter_map(|(item, answer)| {
            answer_observation(questionnaire, item, answer, response, response_ref)
        })
        .collect();
    if let Ok(scores) = crate::score(questionnaire, response) {
        for calculated in &scores.items {
            let Some(value) = calculated.value.as_deref() else {
                continue;
            };
            let Some(item) = crate::answers::find_item(questionnaire, &calculated.link_id) else {
                continue;
            };
            let answered =
                !crate::answers::response_answers(response, &calculated.link_id).is_empty();
            if answered || !marked(questionnaire, &calculated.link_id) {
                continue;
            }
            let Ok(number) = value.parse::<serde_json::Number>() else {
                continue;
            };
            let key = if str_of(item, "type") == Some("integer") {
                "valueInteger"
            } else {
                "valueDecimal"
            };
            let answer = json!({ key: Value::Number(number) });
            if let Some(o) =
                answer_observation(questionnaire, item, &answer, response, response_ref)
            {
                observations.push(o);
            }
        }
    }
    let entry: Vec<Value> = observations
        .into_iter()
        .map(|o| {
            json!({
                "fullUrl": format!("urn:uuid:{}", new_id()),
                "resource": o,
                "request": {"method": "POST", "url": "Observation"}
            })
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entry})
}

/// Whether the item with `link_id` is marked for extraction (itself or the nearest marked
/// ancestor, or the root).
fn marked(questionnaire: &Value, link_id: &str) -> bool {
    fn walk(parent: &Value, link_id: &str, inherited: bool) -> Option<bool> {
        for item in crate::answers::items(parent) {
            let mark = ext::boolean(item, ext::OBSERVATION_EXTRACT).unwrap_or(inherited);
            if str_of(item, "linkId") == Some(link_id) {
                return Some(mark);
            }
            if let Some(found) = walk(item, link_id, mark) {
                return Some(found);
            }
        }
        None
    }
    let root = ext::boolean(questionnaire, ext::OBSERVATION_EXTRACT).unwrap_or(false);
    walk(questionnaire, link_id, root).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;

    #[test]
    fn a_gad7_extraction_bundle() {
        let q = fixtures::shipped("gad-7.json");
        let r = fixtures::phr_gad7_response();
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("00000000-0000-0000-0000-{n:012}")
        };
        let bundle = extract(&q, &r, "QuestionnaireResponse/gad7", &mut ids);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "transaction");
        let entries = bundle["entry"].as_array().unwrap();
        // Seven items and the calculated total (the response does not carry it).
        assert_eq!(entries.len(), 8);
        assert_eq!(
            entries[0]["fullUrl"],
            "urn:uuid:00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            entries[0]["request"],
            json!({"method": "POST", "url": "Observation"})
        );
        let first = &entries[0]["resource"];
        assert_eq!(first["code"]["coding"][0]["code"], "69725-0");
        assert_eq!(
            first["valueCodeableConcept"]["coding"][0]["code"],
            "LA6568-5"
        );
        assert_eq!(first["subject"]["reference"], "Patient/PGHDPatientExample");
        assert_eq!(first["effectiveDateTime"], "2024-12-01T12:00:00+09:00");
        assert_eq!(first["category"][0]["coding"][0]["code"], "survey");
        assert_eq!(
            first["derivedFrom"][0]["reference"],
            "QuestionnaireResponse/gad7"
        );
        assert!(first.get("performer").is_none());
        let total = &entries[7]["resource"];
        assert_eq!(total["code"]["coding"][0]["code"], "70274-6");
        assert_eq!(
            total["valueQuantity"],
            json!({"value": 3, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"})
        );
        assert_eq!(
            entries[7]["fullUrl"],
            "urn:uuid:00000000-0000-0000-0000-000000000008"
        );
    }
}
