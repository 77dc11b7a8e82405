//! Whose records a signed-in user reaches through `user/` scopes (SMART App Launch 2.2
//! "fhirUser"): a Patient their own compartment, a RelatedPerson the patient they are linked to
//! (RelatedPerson.patient), a Practitioner the patients whose active CareTeam lists them as a
//! participant — or every patient, when the server is configured for organisation-wide
//! clinicians.

use super::FhirService;
use crate::error::FhirResult;
use crate::policy::Reach;
use crate::store::search::{Clause, Condition, Order, SearchQuery, SystemMatch};
use serde_json::Value;

/// Most care teams one practitioner's reach is gathered from.
const MAX_CARE_TEAMS: u32 = 5_000;

impl FhirService {
    /// What `user/` scopes reach for the user whose FHIR identity is `fhir_user`
    /// (`Practitioner/7`, …); `practitioners_see_all` widens practitioners to every patient.
    pub async fn user_reach(
        &self,
        fhir_user: Option<&str>,
        practitioners_see_all: bool,
    ) -> FhirResult<Reach> {
        let Some((kind, id)) = fhir_user.and_then(|u| u.split_once('/')) else {
            return Ok(Reach::Nobody);
        };
        match kind {
            "Patient" => Ok(Reach::Patients(vec![id.to_string()])),
            "RelatedPerson" => {
                let Some(current) = self.store.current_for_write("RelatedPerson", id).await? else {
                    return Ok(Reach::Nobody);
                };
                let patient = current
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    .and_then(|v| {
                        v.pointer("/patient/reference")
                            .and_then(Value::as_str)
                            .and_then(|r| r.strip_prefix("Patient/"))
                            .map(str::to_string)
                    });
                Ok(match patient {
                    Some(p) => Reach::Patients(vec![p]),
                    None => Reach::Nobody,
                })
            }
            "Practitioner" if practitioners_see_all => Ok(Reach::Everyone),
            "Practitioner" => self.care_team_patients(id).await.map(Reach::Patients),
            _ => Ok(Reach::Nobody),
        }
    }

    /// The patients of the active care teams that list `Practitioner/id` as a participant.
    async fn care_team_patients(&self, practitioner_id: &str) -> FhirResult<Vec<String>> {
        let query = SearchQuery {
            resource_type: "CareTeam".into(),
            clauses: vec![
                Clause {
                    any_of: vec![Condition::Reference {
                        code: "participant".into(),
                        target_type: Some("Practitioner".into()),
                        target_id: Some(practitioner_id.to_string()),
                        url: None,
                    }],
                    negated: false,
                },
                Clause {
                    any_of: vec![Condition::Token {
                        code: "status".into(),
                        system: SystemMatch::Any,
                        value: Some("active".into()),
                    }],
                    negated: false,
                },
            ],
            order: Order::IdAsc,
            after: None,
            limit: MAX_CARE_TEAMS,
        };
        let rows = self.store.search(&query).await?;
        let mut patients: Vec<String> = Vec::new();
        for row in rows {
            let Some(body) = row.version.body.as_deref() else {
                continue;
            };
            let Ok(team) = serde_json::from_slice::<Value>(body) else {
                continue;
            };
            if let Some(p) = team
                .pointer("/subject/reference")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("Patient/"))
            {
                if !patients.iter().any(|known| known == p) {
                    patients.push(p.to_string());
                }
            }
        }
        Ok(patients)
    }
}
