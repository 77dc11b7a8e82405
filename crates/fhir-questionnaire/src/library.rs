//! The shipped instruments: SDC Questionnaires authored as JSON data in
//! `crates/fhir-questionnaire/library/` (see its README.md for sources and licences),
//! compiled in with `include_str!`.

use serde_json::Value;

const FILES: &[(&str, &str)] = &[];

/// Every shipped Questionnaire: (file name, resource). A file that does not parse is left out
/// (the unit tests make sure none is).
pub fn shipped() -> Vec<(&'static str, Value)> {
    FILES
        .iter()
        .filter_map(|(name, text)| Some((*name, serde_json::from_str(text).ok()?)))
        .collect()
}
