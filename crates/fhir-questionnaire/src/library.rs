//! The shipped instruments: SDC Questionnaires authored as JSON data in
//! `crates/fhir-questionnaire/library/` (see its README.md for sources and licences),
//! compiled in with `include_str!`.

use serde_json::Value;

const FILES: &[(&str, &str)] = &[
    ("phq-9.json", include_str!("../library/phq-9.json")),
    ("phq-2.json", include_str!("../library/phq-2.json")),
    ("gad-7.json", include_str!("../library/gad-7.json")),
];

/// Every shipped Questionnaire: (file name, resource). A file that does not parse is left out
/// (the unit tests make sure none is).
pub fn shipped() -> Vec<(&'static str, Value)> {
    FILES
        .iter()
        .filter_map(|(name, text)| Some((*name, serde_json::from_str(text).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_file_parses_and_is_an_active_versioned_questionnaire() {
        let shipped = shipped();
        assert_eq!(shipped.len(), FILES.len());
        for (name, q) in &shipped {
            assert_eq!(q["resourceType"], "Questionnaire", "{name}");
            assert_eq!(q["status"], "active", "{name}");
            assert_eq!(q["version"], "1.0.0", "{name}");
            let id = name.trim_end_matches(".json");
            assert_eq!(
                q["url"],
                format!("http://coplan.dev/fhir/Questionnaire/{id}")
            );
            assert!(
                crate::bands::minimal_important_difference(q, None).is_some(),
                "{name}"
            );
            assert!(!crate::bands::bands(q, None).is_empty(), "{name}");
        }
    }
}
