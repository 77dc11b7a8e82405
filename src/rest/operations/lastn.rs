//! `Observation/$lastn` (R4 operation-observation-lastn.html): the most recent `max`
//! Observations (default 1) for each code, of the subject given by `patient` or `subject` and
//! the `category` given, both required; the other Observation search parameters narrow the
//! candidates as in a search. "Most recent" is by `date` (effective time), newest first; the
//! answer is a `searchset` Bundle grouped by code (codes in order of their newest
//! observation), on both backends through the ordinary search.

use crate::error::{FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::bundle_json::BundleJson;
use crate::rest::operations::OperationInput;
use crate::rest::FhirService;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;

/// Most candidate Observations one call considers; beyond it the caller narrows the request
/// (by `code` or `date`) rather than the server answering from part of the record.
const MOST_CANDIDATES: u32 = 5_000;
/// Largest `max`.
const MOST_PER_CODE: u32 = 100;

/// Result parameters a `$lastn` does not take: it decides the order and size itself.
const REFUSED: &[&str] = &[
    "_sort",
    "_count",
    "_page",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_contained",
    "_containedType",
];

impl FhirService {
    /// `GET|POST /Observation/$lastn`.
    pub async fn lastn(&self, access: &Access, input: &OperationInput) -> FhirResult<Bytes> {
        let max = match input.value("max")? {
            None => 1,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MOST_PER_CODE).contains(n))
                .ok_or_else(|| {
                    FhirError::invalid_at(
                        format!(
                            "max must be a whole number from 1 to {MOST_PER_CODE}, got {text:?}"
                        ),
                        "max",
                    )
                })?,
        };
        if !input.resources.is_empty() {
            return Err(FhirError::bad_request(
                "$lastn takes no resource parameters",
            ));
        }
        let base = |k: &str| k.split(':').next().unwrap_or(k).to_string();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in &input.values {
            if k == "max" || k == "_format" || k == "_pretty" {
                continue;
            }
            if REFUSED.contains(&base(k).as_str()) {
                return Err(FhirError::invalid_at(
                    format!("$lastn decides order and page size itself; it takes no {k}"),
                    k,
                ));
            }
            pairs.push((k.clone(), v.clone()));
        }
        let has = |name: &str| pairs.iter().any(|(k, _)| base(k) == name);
        if !(has("patient") || has("subject")) || !has("category") {
            return Err(FhirError::bad_request(
                "$lastn needs a subject (patient or subject) and a category, as R4 requires \
                 (e.g. patient=123&category=survey)",
            ));
        }
        let asked = pairs.clone();
        pairs.push(("_sort".into(), "-date".into()));
        let rows = self
            .rows_matching(access, "Observation", &pairs, MOST_CANDIDATES + 1)
            .await?;
        if rows.len() > MOST_CANDIDATES as usize {
            return Err(FhirError::new(
                crate::error::ErrorKind::BadRequest,
                "too-costly",
                format!(
                    "more than {MOST_CANDIDATES} Observations match; narrow the request \
                     (code=…, date=ge…)"
                ),
            ));
        }
        // Newest first already: keep the first `max` of each subject and code.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let Some(body) = &row.version.body else {
                continue;
            };
            let observation: Value = crate::rest::stored_json(body)?;
            let key = format!(
                "{}\u{0}{}",
                observation["subject"]["reference"].as_str().unwrap_or(""),
                code_key(&observation["code"])
            );
            let g = *group_of.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            if groups[g].1.len() < max as usize {
                groups[g].1.push(i);
            }
        }
        let chosen: Vec<usize> = groups.iter().flat_map(|(_, rows)| rows.clone()).collect();

        let mut bundle = BundleJson::new("searchset", 1024);
        bundle.field("total", chosen.len().to_string().as_bytes());
        let mut self_query: Vec<String> = asked
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k,
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        self_query.push(format!("max={max}"));
        bundle.link(
            "self",
            &format!(
                "{}/Observation/$lastn?{}",
                self.base_url,
                self_query.join("&")
            ),
        );
        for &i in &chosen {
            let row = &rows[i];
            if let Some(body) = &row.version.body {
                bundle.search_entry(
                    &format!("{}/Observation/{}", self.base_url, row.id),
                    body,
                    "match",
                );
            }
        }
        if self.audits("Observation") {
            let returned = chosen.iter().map(|&i| {
                let r = &rows[i];
                (
                    "Observation",
                    r.id.as_str(),
                    r.version.version_id,
                    r.version.body.as_deref(),
                )
            });
            let patients = self.patients_returned(returned)?;
            if !patients.is_empty() {
                let names: Vec<&str> = asked.iter().map(|(k, _)| k.as_str()).collect();
                let query = format!("Observation/$lastn?{}", names.join("&"));
                let nothing = crate::rest::audit::Named::Nothing;
                self.audit_read_of(access, "search-type", &patients, nothing, Some(&query))
                    .await;
            }
        }
        Ok(bundle.finish())
    }
}

/// What makes two Observations "the same code": their codings (system|code), in order, or the
/// text when there is no coding.
fn code_key(code: &Value) -> String {
    let codings: Vec<String> = code["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}|{}",
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or("")
            )
        })
        .collect();
    if codings.is_empty() {
        code["text"].as_str().unwrap_or("").to_string()
    } else {
        codings.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_are_the_same_by_their_codings_or_else_their_text() {
        let phq9 =
            json!({"coding": [{"system": "http://loinc.org", "code": "44261-6"}], "text": "PHQ-9"});
        let same = json!({"coding": [{"system": "http://loinc.org", "code": "44261-6"}]});
        let text = json!({"text": "mood"});
        assert_eq!(code_key(&phq9), code_key(&same));
        assert_eq!(code_key(&text), "mood");
        assert_ne!(code_key(&phq9), code_key(&text));
    }
}
