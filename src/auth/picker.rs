//! Which patients a signed-in user may open in a standalone launch with `launch/patient` (SMART
//! App Launch 2.2 "context-standalone-patient"): exactly whom their `user/` scopes reach — a
//! Patient user their own record, a RelatedPerson the patient their resource names, a
//! Practitioner the patients whose active CareTeam includes them (or anyone, for
//! organisation-wide clinicians); and how a patient is shown on the picker and consent pages
//! (name and date of birth, not the technical id); and whether a user still may open a grant's
//! patient ([`may_open`], asked again on every refresh, RFC 6749 §6).
//! Read from the FHIR store with unrestricted access (the server's own lookup, not the user's).

use super::launch::is_fhir_id;
use crate::error::{ErrorKind, FhirResult};
use crate::policy::{Access, Reach};
use crate::rest::search::SearchInput;
use crate::rest::FhirService;
use serde_json::Value;

/// How a patient is shown to people: their name and date of birth, never a technical id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientName {
    pub name: Option<String>,
    /// FHIR `birthDate` (`1970-03-02`, `1970-03` or `1970`).
    pub birth_date: Option<String>,
}

impl PatientName {
    /// "Ann Doe (born 2 March 1970)", "Ann Doe", or a plain phrase when the record has no name.
    pub fn label(&self) -> String {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| "A patient without a recorded name".into());
        match self.birth_date.as_deref() {
            Some(date) => format!("{name} (born {})", long_date(date)),
            None => name,
        }
    }

    /// "Ann Doe's record" (or "the chosen patient's record" without a name).
    pub fn record(&self) -> String {
        match &self.name {
            Some(name) if name.ends_with('s') => format!("{name}' record"),
            Some(name) => format!("{name}'s record"),
            None => "the chosen patient's record".into(),
        }
    }
}

/// `1970-03-02` → "2 March 1970"; partial dates keep the precision they have.
fn long_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let parts: Vec<&str> = date.split('-').collect();
    let month = parts
        .get(1)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| m.checked_sub(1))
        .and_then(|m| MONTHS.get(m));
    match (parts.as_slice(), month) {
        ([year, _, day], Some(month)) => match day.parse::<u8>() {
            Ok(day) => format!("{day} {month} {year}"),
            Err(_) => date.to_string(),
        },
        ([year, _], Some(month)) => format!("{month} {year}"),
        _ => date.to_string(),
    }
}

/// A patient's name and date of birth, read with the server's own (unrestricted) access.
pub async fn patient_name(fhir: &FhirService, id: &str) -> PatientName {
    let patient = match fhir.read(&Access::Unrestricted, "Patient", id).await {
        Ok(v) => serde_json::from_slice::<Value>(&v.body).ok(),
        Err(_) => None,
    };
    let Some(p) = patient else {
        return PatientName::default();
    };
    let name = &p["name"][0];
    let name = name["text"].as_str().map(str::to_string).or_else(|| {
        let given: Vec<&str> = name["given"]
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let family = name["family"].as_str().unwrap_or("");
        let full = format!("{} {family}", given.join(" "));
        let full = full.trim();
        (!full.is_empty()).then(|| full.to_string())
    });
    PatientName {
        name,
        birth_date: p["birthDate"].as_str().map(str::to_string),
    }
}

/// Picker labels for `ids`: plain labels, with the record's id added only where two patients
/// would otherwise read the same.
pub async fn picker_labels(fhir: &FhirService, ids: &[String]) -> Vec<(String, String)> {
    let mut labels = Vec::with_capacity(ids.len());
    for id in ids {
        labels.push((id.clone(), patient_name(fhir, id).await.label()));
    }
    let mut out = Vec::with_capacity(labels.len());
    for (id, label) in &labels {
        let twins = labels.iter().filter(|(_, l)| l == label).count();
        let shown = if twins > 1 {
            format!("{label}, record {id}")
        } else {
            label.clone()
        };
        out.push((id.clone(), shown));
    }
    out
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

/// May the user whose FHIR identity is `fhir_user` open `patient`? The access policy's own answer
/// ([`FhirService::user_reach`], with `practitioners_see_all` as configured), unbounded by the
/// picker's list: a patient among those reached, or, for organisation-wide clinicians, any
/// existing patient. A patient's own record needs no lookup. `Err` only when the store cannot
/// answer (a caller must not take that as a refusal).
pub async fn may_open(
    fhir: &FhirService,
    fhir_user: Option<&str>,
    practitioners_see_all: bool,
    patient: &str,
) -> FhirResult<bool> {
    if is_own_record(fhir_user, patient) {
        return Ok(true);
    }
    match fhir.user_reach(fhir_user, practitioners_see_all).await? {
        Reach::Patients(ids) => Ok(ids.iter().any(|id| id == patient)),
        Reach::Nobody => Ok(false),
        Reach::Everyone if !is_fhir_id(patient) => Ok(false),
        // The server's own existence check, not a read of the patient's record: it is not
        // recorded in their audit trail.
        Reach::Everyone => match fhir
            .read_unaudited(&Access::Unrestricted, "Patient", patient)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Gone) => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Is `patient` the user's own record (`fhir_user` = `Patient/{patient}`)?
pub fn is_own_record(fhir_user: Option<&str>, patient: &str) -> bool {
    fhir_user.and_then(|u| u.strip_prefix("Patient/")) == Some(patient)
}

impl Candidates {
    /// May the user open `patient`?
    pub async fn allows(&self, fhir: &FhirService, patient: &str) -> bool {
        if self.listed.iter().any(|p| p == patient) {
            return true;
        }
        self.anyone
            && is_fhir_id(patient)
            && fhir
                .read(&Access::Unrestricted, "Patient", patient)
                .await
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_are_shown_by_name_and_birth_date() {
        let p = PatientName {
            name: Some("Ann Doe".into()),
            birth_date: Some("1970-03-02".into()),
        };
        assert_eq!(p.label(), "Ann Doe (born 2 March 1970)");
        assert_eq!(p.record(), "Ann Doe's record");
        assert_eq!(long_date("1970-03"), "March 1970");
        assert_eq!(long_date("1970"), "1970");
        assert_eq!(long_date("1970-13-01"), "1970-13-01");
        let nameless = PatientName::default();
        assert!(!nameless.label().contains('/'));
        assert_eq!(nameless.record(), "the chosen patient's record");
    }

    #[test]
    fn only_a_patient_users_own_record_skips_the_reach_lookup() {
        assert!(is_own_record(Some("Patient/p1"), "p1"));
        assert!(!is_own_record(Some("Patient/p1"), "p2"));
        assert!(!is_own_record(Some("Patient/p10"), "p1"));
        assert!(!is_own_record(Some("Practitioner/p1"), "p1"));
        assert!(!is_own_record(Some("RelatedPerson/p1"), "p1"));
        assert!(!is_own_record(None, "p1"));
    }
}
