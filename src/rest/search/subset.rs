//! Subsetting matched resources (search.html#elements, #summary): `_elements` keeps the named
//! top-level elements (plus `resourceType`, `id` and `meta`), `_summary=data` drops the
//! narrative, `_summary=text` keeps it with the mandatory elements, and `_summary=true` keeps
//! the elements R4 marks isSummary (`fhir_validate::summarise`). A subsetted resource is tagged SUBSETTED in `meta.tag` so no client mistakes it
//! for the whole resource. This is the one place search re-parses stored bytes, and only when a
//! client asked for a subset.

use crate::error::{FhirError, FhirResult};
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// What to keep of each matched resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subset {
    Elements(Vec<String>),
    NoText,
    /// `_summary=text`: the narrative, `id`, `meta` and the mandatory top-level elements.
    TextOnly,
    /// `_summary=true`: the isSummary elements.
    Summary,
}

fn keep(key: &str, subset: &Subset, resource_type: &str) -> bool {
    match subset {
        Subset::NoText => key != "text",
        // Applied to the whole resource by `subset`.
        Subset::Summary => true,
        Subset::TextOnly => {
            matches!(key, "resourceType" | "id" | "meta" | "text")
                || fhir_validate::mandatory_elements(resource_type)
                    .iter()
                    .any(|m| key == *m || is_choice_of(key, m))
        }
        Subset::Elements(names) => {
            matches!(key, "resourceType" | "id" | "meta")
                || names.iter().any(|n| {
                    n == key
                        || n.strip_prefix(resource_type)
                            .and_then(|r| r.strip_prefix('.'))
                            == Some(key)
                })
        }
    }
}

/// `valueQuantity` is an instance of choice group `value`.
fn is_choice_of(key: &str, group: &str) -> bool {
    key.strip_prefix(group)
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_uppercase())
}

/// The subset of one stored resource, re-serialised, with the SUBSETTED tag.
pub fn subset(body: &[u8], subset: &Subset) -> FhirResult<Bytes> {
    let value: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
    let Value::Object(fields) = value else {
        return Err(FhirError::internal("stored resource is not an object"));
    };
    let resource_type = fields
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in fields {
        if keep(&key, subset, &resource_type) {
            out.insert(key, value);
        }
    }
    if *subset == Subset::Summary {
        fhir_validate::summarise(&mut out);
    }
    let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    if let Some(Value::Object(meta)) = out.get_mut("meta") {
        match meta.get_mut("tag") {
            Some(Value::Array(tags)) => tags.push(tag),
            _ => {
                meta.insert("tag".into(), Value::Array(vec![tag]));
            }
        }
    }
    serde_json::to_vec(&Value::Object(out))
        .map(Bytes::from)
        .map_err(FhirError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"{"resourceType":"CarePlan","id":"1","meta":{"versionId":"1"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"active","intent":"plan","title":"t"}"#;

    #[test]
    fn elements_keep_the_named_and_the_mandatory() {
        let out = subset(
            PLAN.as_bytes(),
            &Subset::Elements(vec!["status".into(), "CarePlan.title".into()]),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], "active");
        assert_eq!(v["title"], "t");
        assert!(v.get("intent").is_none() && v.get("text").is_none());
        assert_eq!(v["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn summary_text_keeps_the_narrative_and_the_mandatory() {
        let out = subset(PLAN.as_bytes(), &Subset::TextOnly).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("text").is_some());
        assert_eq!(v["status"], "active");
        assert_eq!(v["intent"], "plan");
        assert!(v.get("title").is_none());
        assert_eq!(v["meta"]["tag"][0]["code"], "SUBSETTED");
        let obs = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"valueQuantity":{"value":1},"note":[{"text":"n"}]}"#;
        let v: Value =
            serde_json::from_slice(&subset(obs.as_bytes(), &Subset::TextOnly).unwrap()).unwrap();
        assert!(v.get("code").is_some() && v.get("status").is_some());
        assert!(
            v.get("valueQuantity").is_none(),
            "value[x] is optional in Observation"
        );
        assert!(v.get("note").is_none());
    }

    #[test]
    fn summary_true_keeps_the_summary_elements_and_tags_the_subset() {
        let plan = r#"{"resourceType":"CarePlan","id":"1","meta":{"versionId":"1"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"active","intent":"plan","title":"t","note":[{"text":"n"}],"activity":[{"detail":{"status":"scheduled"}}]}"#;
        let out = subset(plan.as_bytes(), &Subset::Summary).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"resourceType":"CarePlan","id":"1","meta":{"versionId":"1","tag":[
                {"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},
                "status":"active","intent":"plan","title":"t"})
        );
    }

    #[test]
    fn summary_data_drops_the_narrative() {
        let out = subset(PLAN.as_bytes(), &Subset::NoText).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("text").is_none());
        assert_eq!(v["intent"], "plan");
    }
}
