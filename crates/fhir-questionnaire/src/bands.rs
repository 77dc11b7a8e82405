//! Interpretation bands and the minimal important difference (MID) of a scored instrument,
//! read as data from Coplan extensions on the Questionnaire's total item (so a user-loaded
//! Questionnaire with the same extensions behaves like a shipped one):
//!
//! * `http://coplan.dev/fhir/StructureDefinition/score-interpretation`, one per band, with
//!   nested extensions `low` (valueDecimal), `high` (valueDecimal) and `interpretation`
//!   (valueCodeableConcept); a band covers `low..=high`;
//! * `http://coplan.dev/fhir/StructureDefinition/minimal-important-difference`, valueDecimal.

use serde_json::Value;

use crate::answers::{items, str_of};
use crate::ext;

/// One interpretation band of a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// A CodeableConcept.
    pub interpretation: Value,
}

/// The bands on the item with `link_id` (the total item when `None`: the first top-level
/// item with a calculatedExpression and a code).
pub fn bands(questionnaire: &Value, link_id: Option<&str>) -> Vec<Band> {
    let Some(item) = scored_item(questionnaire, link_id) else {
        return Vec::new();
    };
    let nested = |band: &Value, url: &str| {
        band.get("extension")
            .and_then(Value::as_array)?
            .iter()
            .find(|e| str_of(e, "url") == Some(url))
            .cloned()
    };
    ext::all(item, ext::SCORE_INTERPRETATION)
        .filter_map(|band| {
            let number = |url: &str| nested(band, url)?.get("valueDecimal")?.as_f64();
            Some(Band {
                low: number("low"),
                high: number("high"),
                interpretation: nested(band, "interpretation")?
                    .get("valueCodeableConcept")?
                    .clone(),
            })
        })
        .collect()
}

/// The item with `link_id`, or the total item: the first top-level item with a
/// calculatedExpression and a code.
pub(crate) fn scored_item<'q>(
    questionnaire: &'q Value,
    link_id: Option<&str>,
) -> Option<&'q Value> {
    match link_id {
        Some(l) => crate::answers::find_item(questionnaire, l),
        None => items(questionnaire).iter().find(|i| {
            ext::first(i, ext::CALCULATED_EXPRESSION).is_some()
                && i.get("code").and_then(|c| c.get(0)).is_some()
        }),
    }
}

/// The interpretation (CodeableConcept) of `value` on the item with `link_id` (the total
/// item when `None`).
pub fn interpretation(questionnaire: &Value, link_id: Option<&str>, value: f64) -> Option<Value> {
    bands(questionnaire, link_id)
        .into_iter()
        .find(|b| b.low.is_none_or(|l| value >= l) && b.high.is_none_or(|h| value <= h))
        .map(|b| b.interpretation)
}

/// The minimal important difference of the item with `link_id` (the total item when
/// `None`).
pub fn minimal_important_difference(questionnaire: &Value, link_id: Option<&str>) -> Option<f64> {
    let item = scored_item(questionnaire, link_id)?;
    ext::first(item, ext::MINIMAL_IMPORTANT_DIFFERENCE)?
        .get("valueDecimal")?
        .as_f64()
}
