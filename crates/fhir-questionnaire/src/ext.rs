//! The extension URLs this crate reads (R4 extensions, SDC 3.0, Coplan's own) and small
//! helpers to find them on an element.

use serde_json::Value;

pub const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";
pub const ITEM_WEIGHT: &str = "http://hl7.org/fhir/StructureDefinition/itemWeight";
pub const VARIABLE: &str = "http://hl7.org/fhir/StructureDefinition/variable";
pub const QUESTIONNAIRE_UNIT: &str = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit";
pub const CALCULATED_EXPRESSION: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression";
pub const INITIAL_EXPRESSION: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression";
pub const OBSERVATION_EXTRACT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract";
pub const OBSERVATION_EXTRACT_CATEGORY: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observation-extract-category";
pub const SCORE_INTERPRETATION: &str =
    "http://coplan.dev/fhir/StructureDefinition/score-interpretation";
pub const MINIMAL_IMPORTANT_DIFFERENCE: &str =
    "http://coplan.dev/fhir/StructureDefinition/minimal-important-difference";

/// The extensions of `element` with `url`.
pub fn all<'v>(element: &'v Value, url: &'v str) -> impl Iterator<Item = &'v Value> + 'v {
    element
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e.get("url").and_then(Value::as_str) == Some(url))
}

/// The first extension of `element` with `url`.
pub fn first<'v>(element: &'v Value, url: &'v str) -> Option<&'v Value> {
    all(element, url).next()
}

/// An extension's `valueBoolean`.
pub fn boolean(element: &Value, url: &str) -> Option<bool> {
    first(element, url)?.get("valueBoolean")?.as_bool()
}
