//! Interpretation bands and the minimal important difference (MID) of a scored instrument,
//! read as data from Coplan extensions on the Questionnaire's total item (so a user-loaded
//! Questionnaire with the same extensions behaves like a shipped one):
//!
//! * `http://coplan.dev/fhir/StructureDefinition/score-interpretation`, one per band, with
//!   nested extensions `low` (valueDecimal), `high` (valueDecimal) and `interpretation`
//!   (valueCodeableConcept); a band covers `low..=high`;
//! * `http://coplan.dev/fhir/StructureDefinition/minimal-important-difference`, valueDecimal.

use serde_json::Value;

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
    let _ = (questionnaire, link_id);
    Vec::new()
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
    let _ = (questionnaire, link_id);
    None
}
