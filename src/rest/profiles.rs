//! The profiles this server validates against (issue "Profiles"; R4 profiling.html,
//! validation.html): the StructureDefinitions, ValueSets and CodeSystems in `profiles/` — US
//! Core 9.0.0's care-plan profiles, Coplan's own, and the terminology they bind — embedded in
//! the binary, loaded once into a [`ProfileSet`] (the `fhir-profile` crate does the
//! validation), stored at start as resources a client can read and search
//! (`StructureDefinition?url=…`), and applied to writes (`write/conform_to_profiles.rs`) and
//! `$validate` (`operations/validate.rs`).
//!
//! Only these shipped definitions are validated against: a StructureDefinition a client
//! writes is stored and served like any resource, but does not change what writes are checked
//! against (that would let any writer change the rules for everyone).

use super::FhirService;
use crate::error::{FhirResult, Issue, Severity};
use crate::policy::Access;
use fhir_profile::ProfileSet;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

macro_rules! shipped {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/", $path)),
        )
    };
}
/// Every shipped conformance resource: its path under `profiles/` and its JSON text. A test
/// keeps this list and the folders the same.
pub const SHIPPED: &[(&str, &str)] = &[
    shipped!("coplan/StructureDefinition-coplan-shared-careplan.json"),
    shipped!("coplan/StructureDefinition-coplan-patient-goal.json"),
    shipped!("coplan/StructureDefinition-coplan-prom-response.json"),
    shipped!("us-core/StructureDefinition-us-core-careplan.json"),
    shipped!("us-core/StructureDefinition-us-core-careteam.json"),
    shipped!("us-core/StructureDefinition-us-core-condition-problems-health-concerns.json"),
    shipped!("us-core/StructureDefinition-us-core-goal.json"),
    shipped!("us-core/StructureDefinition-us-core-observation-screening-assessment.json"),
    shipped!("us-core/StructureDefinition-us-core-patient.json"),
    shipped!("us-core/StructureDefinition-us-core-practitioner.json"),
    shipped!("us-core/StructureDefinition-us-core-provenance.json"),
    shipped!("us-core/StructureDefinition-us-core-questionnaireresponse.json"),
    shipped!("us-core/StructureDefinition-us-core-relatedperson.json"),
    shipped!("us-core/CodeSystem-careplan-category.json"),
    shipped!("terminology/ValueSet-us-core-narrative-status.json"),
    shipped!("terminology/ValueSet-us-core-problem-or-health-concern.json"),
];

/// The shipped conformance resources, parsed.
pub fn shipped_resources() -> Vec<(&'static str, Value)> {
    SHIPPED
        .iter()
        .filter_map(|(path, text)| match serde_json::from_str(text) {
            Ok(value) => Some((*path, value)),
            Err(e) => {
                tracing::error!(path, error = %e, "a shipped conformance resource is not JSON");
                None
            }
        })
        .collect()
}

/// The loaded profiles, built once per process from [`SHIPPED`]. A shipped file that does not
/// load is a defect a test catches; at run time it leaves an empty set (nothing is claimed
/// valid against a profile that did not load) and an error in the log.
pub fn profile_set() -> Arc<ProfileSet> {
    static SET: OnceLock<Arc<ProfileSet>> = OnceLock::new();
    Arc::clone(SET.get_or_init(|| {
        let resources = shipped_resources().into_iter().map(|(_, v)| v).collect();
        match ProfileSet::load(resources) {
            Ok(set) => Arc::new(set),
            Err(e) => {
                tracing::error!(error = %e, "the shipped profiles did not load");
                Arc::new(ProfileSet::empty())
            }
        }
    }))
}

/// What checking a resource against profiles found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProfileCheck {
    /// Errors: the resource does not conform (a write is refused).
    pub errors: Vec<Issue>,
    /// Warnings: accepted, but said (an extensible binding not met, an unknown profile).
    pub warnings: Vec<Issue>,
    /// What could not be checked (a value set not shipped, a referenced resource's profile).
    pub information: Vec<Issue>,
}

impl ProfileCheck {
    /// Every issue, errors first.
    pub fn all(self) -> Vec<Issue> {
        let mut all = self.errors;
        all.extend(self.warnings);
        all.extend(self.information);
        all
    }
}

/// The profiles `resource` claims (`meta.profile`).
pub fn claimed(resource: &Value) -> Vec<String> {
    resource["meta"]["profile"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The most distinct profiles one resource is checked against: a resource claiming more is
/// refused (each profile is a walk of the resource; nobody needs seventeen).
pub const MAX_PROFILES: usize = 16;

/// Check `resource` against `profiles` (canonicals, `url` or `url|version`): each loaded one
/// by the set; one not loaded is a warning — or, `strict`, an error (`Prefer: handling=strict`).
pub fn check(
    set: &ProfileSet,
    resource: &Value,
    profiles: &[String],
    strict: bool,
) -> ProfileCheck {
    let mut found = ProfileCheck::default();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for canonical in profiles {
        if !seen.insert(canonical.as_str()) {
            continue;
        }
        if seen.len() > MAX_PROFILES {
            found.errors.push(Issue {
                severity: Severity::Error,
                code: "too-costly",
                diagnostics: format!(
                    "a resource is checked against at most {MAX_PROFILES} profiles; this one \
                     claims more"
                ),
                expression: vec!["meta.profile".into()],
            });
            break;
        }
        match set.validate(resource, canonical) {
            Ok(issues) => {
                for issue in issues {
                    let issue = crate::validate::convert_issue(issue);
                    match issue.severity {
                        Severity::Fatal | Severity::Error => found.errors.push(issue),
                        Severity::Warning => found.warnings.push(issue),
                        Severity::Information => found.information.push(issue),
                    }
                }
            }
            Err(_) => {
                let issue = Issue {
                    severity: if strict {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    code: "not-supported",
                    diagnostics: format!(
                        "profile {canonical} is not known to this server, so the resource was \
                         not checked against it (`coplan profiles list` shows the known ones)"
                    ),
                    expression: vec!["meta.profile".into()],
                };
                if strict {
                    found.errors.push(issue);
                } else {
                    found.warnings.push(issue);
                }
            }
        }
    }
    found
}

/// Whether `resource` claims the canonical (`url`, and `version` if it has one) of a shipped
/// conformance resource while saying something else: such a copy would be served as the
/// profile the server enforces, but differ from it. The shipped content itself (as the server
/// stores it at start) is fine; so is any resource under another canonical.
pub fn contradicts_shipped(resource: &Value) -> Option<String> {
    let rt = resource["resourceType"].as_str()?;
    if !matches!(rt, "StructureDefinition" | "ValueSet" | "CodeSystem") {
        return None;
    }
    let url = resource["url"].as_str()?;
    let without_meta = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("meta");
        }
        v
    };
    static SHIPPED_VALUES: OnceLock<Vec<Value>> = OnceLock::new();
    let shipped = SHIPPED_VALUES.get_or_init(|| {
        shipped_resources()
            .into_iter()
            .map(|(_, v)| without_meta(&v))
            .collect()
    });
    let same_canonical = shipped.iter().filter(|s| {
        s["resourceType"] == rt
            && s["url"] == url
            && (resource.get("version").is_none() || s.get("version") == resource.get("version"))
    });
    let mine = without_meta(resource);
    let mut found = false;
    for s in same_canonical {
        if *s == mine {
            return None;
        }
        found = true;
    }
    found.then(|| {
        format!(
            "{url} is a {rt} this server ships and enforces; a different resource under its \
             canonical would be served in its place. Give yours its own url"
        )
    })
}

impl FhirService {
    /// Store the shipped conformance resources that are not stored yet (by `url` and
    /// `version`), each under its own id when that id is free, so clients can read and search
    /// them. Returns the `Type/id`s written. The writes go through the pipeline like any other,
    /// attributed to the server.
    pub async fn load_conformance_library(&self) -> FhirResult<Vec<String>> {
        let mut written = Vec::new();
        for (path, resource) in shipped_resources() {
            let (Some(rt), Some(id), Some(url)) = (
                resource["resourceType"].as_str().map(str::to_string),
                resource["id"].as_str().map(str::to_string),
                resource["url"].as_str().map(str::to_string),
            ) else {
                tracing::error!(
                    path,
                    "a shipped conformance resource has no type, id or url"
                );
                continue;
            };
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("url", &url);
            if let Some(version) = resource["version"].as_str() {
                query.append_pair("version", version);
            }
            let query = query.finish();
            if !self
                .matching(&Access::Unrestricted, &rt, &query, 1)
                .await?
                .is_empty()
            {
                continue;
            }
            if self.store.current(&rt, &id).await?.is_some() {
                tracing::warn!(path, id, "a shipped {rt} was not stored: its id is taken");
                continue;
            }
            self.update(&Access::Unrestricted, &rt, &id, resource, None)
                .await?;
            tracing::info!(path, url, "stored a shipped {rt}");
            written.push(format!("{rt}/{id}"));
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_file_in_the_profile_folders_is_shipped_and_loads() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
        let mut on_disk = Vec::new();
        for folder in ["coplan", "us-core", "terminology"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{folder}")) else {
                continue;
            };
            for entry in entries {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".json") {
                    on_disk.push(format!("{folder}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = SHIPPED.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        let resources = shipped_resources().into_iter().map(|(_, v)| v).collect();
        let set = ProfileSet::load(resources).unwrap();
        assert!(set
            .get("http://coplan.dev/fhir/StructureDefinition/coplan-shared-careplan")
            .is_some());
    }
}

#[cfg(test)]
mod canonical_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn only_the_shipped_content_may_carry_a_shipped_canonical() {
        let (_, shipped) = shipped_resources()
            .into_iter()
            .find(|(p, _)| p.ends_with("coplan-shared-careplan.json"))
            .unwrap();
        assert_eq!(contradicts_shipped(&shipped), None);
        let mut stored = shipped.clone();
        stored["meta"] = serde_json::json!({"versionId": "1"});
        assert_eq!(contradicts_shipped(&stored), None);
        let mut altered = shipped.clone();
        altered["description"] = Value::from("Anything goes");
        assert!(contradicts_shipped(&altered).is_some());
        altered["url"] = Value::from("http://example.org/mine");
        assert_eq!(contradicts_shipped(&altered), None);
    }
}
