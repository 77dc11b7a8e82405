//! SDC 3.0 Observation-based extraction (extraction.html#observation-based-extraction): a
//! transaction Bundle of one Observation per answer of every item marked
//! `sdc-questionnaire-observationExtract` (itself, an ancestor, or the root) with a code.
//!
//! Stub: filled in below the API.

use serde_json::Value;

/// The extraction transaction Bundle (not stored): entries with `fullUrl` `urn:uuid:<id>`
/// (`new_id` supplies each id: randomness is injected), `request` POST Observation.
pub fn extract(
    questionnaire: &Value,
    response: &Value,
    response_ref: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Value {
    let _ = (questionnaire, response, response_ref, new_id);
    serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": []})
}
