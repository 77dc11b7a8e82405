//! Which patients a signed-in user may open in a standalone launch with `launch/patient` (SMART
//! App Launch 2.2 "context-standalone-patient"): exactly whom their `user/` scopes reach — a
//! Patient user their own record, a RelatedPerson the patient their resource names, a
//! Practitioner the patients whose active CareTeam includes them (or anyone, for
//! organisation-wide clinicians); and how a patient is shown on the picker and consent pages.
//! Read from the FHIR store with unrestricted access (the server's own lookup, not the user's).

use super::launch::is_fhir_id;
use crate::policy::{Access, Reach};
use crate::rest::search::SearchInput;
use crate::rest::FhirService;
use serde_json::Value;

/// A patient's display name.
pub async fn patient_label(fhir: &FhirService, id: &str) -> String {
    let name = match fhir.store.current("Patient", id).await {
        Ok(Some(v)) => v
            .body
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|p| {
                let name = &p["name"][0];
                name["text"].as_str().map(str::to_string).or_else(|| {
                    let given: Vec<&str> = name["given"]
                        .as_array()
                        .map(|g| g.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let family = name["family"].as_str().unwrap_or("");
                    let full = format!("{} {family}", given.join(" "));
                    let full = full.trim();
                    (!full.is_empty()).then(|| full.to_string())
                })
            }),
        _ => None,
    };
    match name {
        Some(n) => format!("{n} (Patient/{id})"),
        None => format!("Patient/{id}"),
    }
}

/// The patients a signed-in user may pick in a standalone launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// The patients to list (sorted ids).
    pub listed: Vec<String>,
    /// Any existing patient may be chosen (organisation-wide clinicians); `listed` is then the
    /// first page of patients.
    pub anyone: bool,
}

/// Most patients listed on the picker.
const MAX_LISTED: usize = 200;

/// Whom the user may open: exactly what their `user/` scopes reach
/// ([`FhirService::user_reach`], the access policy's own answer), so a picked patient never
/// exceeds it.
pub async fn patients_for(
    fhir: &FhirService,
    fhir_user: Option<&str>,
    practitioners_see_all: bool,
) -> Candidates {
    match fhir.user_reach(fhir_user, practitioners_see_all).await {
        Ok(Reach::Patients(mut ids)) => {
            ids.retain(|id| is_fhir_id(id));
            ids.sort();
            ids.dedup();
            ids.truncate(MAX_LISTED);
            Candidates {
                listed: ids,
                anyone: false,
            }
        }
        Ok(Reach::Everyone) => Candidates {
            listed: first_patients(fhir).await,
            anyone: true,
        },
        Ok(Reach::Nobody) => Candidates {
            listed: Vec::new(),
            anyone: false,
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot work out whose records the user reaches");
            Candidates {
                listed: Vec::new(),
                anyone: false,
            }
        }
    }
}

/// The first patients by id.
async fn first_patients(fhir: &FhirService) -> Vec<String> {
    let input = SearchInput {
        resource_type: "Patient".into(),
        pairs: vec![
            ("_sort".into(), "_id".into()),
            ("_count".into(), MAX_LISTED.to_string()),
        ],
        strict: false,
        patient_compartment: None,
    };
    let Ok(bytes) = fhir.search(&Access::Unrestricted, &input).await else {
        return Vec::new();
    };
    let Ok(bundle) = serde_json::from_slice::<Value>(&bytes) else {
        return Vec::new();
    };
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

impl Candidates {
    /// May the user open `patient`?
    pub async fn allows(&self, fhir: &FhirService, patient: &str) -> bool {
        if self.listed.iter().any(|p| p == patient) {
            return true;
        }
        self.anyone
            && is_fhir_id(patient)
            && matches!(fhir.store.current("Patient", patient).await, Ok(Some(v)) if v.body.is_some())
    }
}
