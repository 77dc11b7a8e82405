//! Which patients a signed-in user may open in a standalone launch with `launch/patient` (SMART
//! App Launch 2.2 "context-standalone-patient"): a Patient user their own record, a
//! RelatedPerson the patient their resource names, a Practitioner the patients whose active
//! CareTeam includes them; and how a patient is shown on the picker and consent pages. Read from
//! the FHIR store with unrestricted access (the server's own lookup, not the user's).

use super::launch::is_fhir_id;
use crate::rest::search::SearchInput;
use crate::rest::FhirService;
use serde_json::Value;

/// The reference in `resource[field].reference`, as `Type/id`.
fn reference_of(value: &Value) -> Option<String> {
    value["reference"].as_str().map(str::to_string)
}

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

/// The patients a FHIR user may open in a standalone launch: a patient their own record, a
/// related person the patients they are linked to, a practitioner the patients whose active
/// care team includes them.
pub async fn patients_for(fhir: &FhirService, fhir_user: Option<&str>) -> Vec<String> {
    let Some((kind, id)) = fhir_user.and_then(|u| u.split_once('/')) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |reference: Option<String>| {
        if let Some(pid) = reference
            .as_deref()
            .and_then(|r| r.strip_prefix("Patient/"))
        {
            if is_fhir_id(pid) && !out.iter().any(|p| p == pid) {
                out.push(pid.to_string());
            }
        }
    };
    match kind {
        "Patient" => add(Some(format!("Patient/{id}"))),
        "RelatedPerson" => {
            if let Ok(Some(v)) = fhir.store.current("RelatedPerson", id).await {
                if let Some(rp) = v
                    .body
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                {
                    if rp["active"] != Value::Bool(false) {
                        add(reference_of(&rp["patient"]));
                    }
                }
            }
        }
        "Practitioner" => {
            let input = SearchInput {
                resource_type: "CareTeam".into(),
                pairs: vec![
                    ("participant".into(), format!("Practitioner/{id}")),
                    ("status".into(), "active".into()),
                    ("_count".into(), "200".into()),
                ],
                strict: false,
                patient_compartment: None,
            };
            if let Ok(bytes) = fhir
                .search(&crate::policy::Access::Unrestricted, &input)
                .await
            {
                if let Ok(bundle) = serde_json::from_slice::<Value>(&bytes) {
                    for entry in bundle["entry"].as_array().into_iter().flatten() {
                        add(reference_of(&entry["resource"]["subject"]));
                    }
                }
            }
        }
        _ => {}
    }
    out.sort();
    out
}
