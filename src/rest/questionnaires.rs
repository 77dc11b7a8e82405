//! The Questionnaires that PROMs are checked and scored by (issue "PROMs" §1; R4
//! questionnaire.html, canonical.html): a QuestionnaireResponse's canonical reference
//! (`url|version`, `url`, or a literal `Questionnaire/{id}`) resolved to a stored
//! Questionnaire, and the instruments that ship with the server (`fhir-questionnaire`'s
//! `library/`: PHQ-9, PHQ-2, GAD-7) loaded at start — by canonical `url` + `version`, so a
//! restart never duplicates one and never overwrites what is stored under that url and
//! version (a local edit stays). A Questionnaire is resolved by a search on every use (so a
//! new version, written on any node, is seen at once), but parsed once per stored version
//! ([`ParsedQuestionnaires`]): a PHQ-9 is ~40 KB of JSON, and every response is checked and
//! scored against it.

use super::FhirService;
use crate::error::FhirResult;
use crate::policy::Access;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed Questionnaires by (id, version): a stored version never changes, so an entry is
/// never stale; the map is emptied when it reaches [`ParsedQuestionnaires::CAPACITY`].
#[derive(Default)]
pub(crate) struct ParsedQuestionnaires(Mutex<HashMap<(String, i64), Arc<Value>>>);

impl ParsedQuestionnaires {
    const CAPACITY: usize = 64;

    /// The parsed content of version `version_id` of Questionnaire `id`, whose bytes are
    /// `body`.
    fn parsed(&self, id: &str, version_id: i64, body: &[u8]) -> FhirResult<Arc<Value>> {
        let key = (id.to_string(), version_id);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Arc::clone(hit));
        }
        let parsed: Arc<Value> = Arc::new(super::stored_json(body)?);
        let mut map = self.lock();
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, Arc::clone(&parsed));
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Arc<Value>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl FhirService {
    /// The stored Questionnaire `canonical` names: `url|version`; `url` alone (the most
    /// recently changed of its versions); or `Questionnaire/{id}`. `None` when the server has
    /// none (a response may cite a form it does not know).
    pub(crate) async fn questionnaire(&self, canonical: &str) -> FhirResult<Option<Arc<Value>>> {
        if let Some(id) = canonical
            .strip_prefix("Questionnaire/")
            .filter(|id| crate::validate::is_valid_id(id))
        {
            return Ok(match self.store.current("Questionnaire", id).await? {
                Some(v) => v
                    .body
                    .map(|b| self.parsed_questionnaires.parsed(id, v.version_id, &b))
                    .transpose()?,
                None => None,
            });
        }
        let (url, version) = match canonical.split_once('|') {
            Some((url, version)) => (url, Some(version)),
            None => (canonical, None),
        };
        let version = version.filter(|v| !v.is_empty());
        let mut pairs = vec![("url".to_string(), fhir_search_query::literal(url))];
        if let Some(v) = version {
            pairs.push(("version".to_string(), fhir_search_query::literal(v)));
        }
        pairs.push(("_sort".to_string(), "-_lastUpdated".to_string()));
        let rows = self
            .rows_matching(&Access::Unrestricted, "Questionnaire", &pairs, 20)
            .await?;
        // The search found candidates; the stored content says which is exactly this one.
        for row in rows {
            let Some(body) = &row.version.body else {
                continue;
            };
            let q = self
                .parsed_questionnaires
                .parsed(&row.id, row.version.version_id, body)?;
            if q["url"] == url && version.is_none_or(|v| q["version"] == v) {
                return Ok(Some(q));
            }
        }
        Ok(None)
    }

    /// Load the shipped instruments that are not stored yet (by `url` + `version`), each
    /// under the id of its file name (`phq-9`) when that id is free. Returns the ids written.
    /// The writes go through the pipeline like any other, attributed to the server.
    pub async fn load_questionnaire_library(&self) -> FhirResult<Vec<String>> {
        let mut written = Vec::new();
        for (name, questionnaire) in fhir_questionnaire::library::shipped() {
            let url = questionnaire["url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let version = questionnaire["version"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let canonical = format!("{url}|{version}");
            if self.questionnaire(&canonical).await?.is_some() {
                continue;
            }
            let id = name.trim_end_matches(".json").to_string();
            if self.store.current("Questionnaire", &id).await?.is_some() {
                tracing::warn!(
                    id,
                    canonical,
                    "the shipped Questionnaire was not loaded: its id is another Questionnaire's"
                );
                continue;
            }
            let mut body = questionnaire;
            body["id"] = Value::from(id.clone());
            self.update(&Access::Unrestricted, "Questionnaire", &id, body, None)
                .await?;
            tracing::info!(id, canonical, "loaded a shipped Questionnaire");
            written.push(id);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_stored_version_is_parsed_once_and_another_version_again() {
        let cache = ParsedQuestionnaires::default();
        let v1 = br#"{"resourceType":"Questionnaire","id":"q","url":"http://x/q","version":"1"}"#;
        let v2 = br#"{"resourceType":"Questionnaire","id":"q","url":"http://x/q","version":"2"}"#;
        let first = cache.parsed("q", 1, v1).unwrap();
        let again = cache.parsed("q", 1, v1).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same version is not parsed twice"
        );
        let second = cache.parsed("q", 2, v2).unwrap();
        assert_eq!(second["version"], "2");
        assert_eq!(first["version"], "1");
        assert!(cache.parsed("bad", 1, b"{not json").is_err());
        // Full: emptied, then filled again — never more than its capacity.
        for n in 0..(ParsedQuestionnaires::CAPACITY as i64 + 5) {
            cache.parsed("q", 100 + n, v1).unwrap();
        }
        assert!(cache.lock().len() <= ParsedQuestionnaires::CAPACITY);
    }
}
