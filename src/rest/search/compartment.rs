//! The R4 Patient compartment (compartmentdefinition-patient.html): which search parameters of
//! each resource type place a resource in a patient's compartment. Compartment search
//! (`GET /Patient/{id}/CarePlan`) is a search with one more clause: any of those parameters
//! references the patient (and for Patient itself, the patient is its own compartment).

use crate::store::search::{Clause, Condition};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Types to their parameters; a fixed table looked up on every audited read, so a fixed fast
/// hash (nobody can insert into it).
type Table = HashMap<String, Vec<String>, foldhash::fast::FixedState>;

#[derive(serde::Deserialize)]
struct Definition {
    resources: Table,
}

fn definition() -> &'static Table {
    static DEFINITION: OnceLock<Table> = OnceLock::new();
    DEFINITION.get_or_init(|| {
        serde_json::from_str::<Definition>(include_str!(
            "../../../profiles/compartment-patient.json"
        ))
        .map(|d| d.resources)
        .unwrap_or_default()
    })
}

/// The resource types that can be in a Patient compartment, sorted.
pub fn patient_compartment_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = definition().keys().map(String::as_str).collect();
    types.sort_unstable();
    types
}

/// Whether `resource_type` has a place in the Patient compartment.
pub fn in_patient_compartment(resource_type: &str) -> bool {
    definition().contains_key(resource_type)
}

/// The reference search parameters that put a `resource_type` in a Patient compartment.
pub fn patient_compartment_params(resource_type: &str) -> &'static [String] {
    definition()
        .get(resource_type)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The clause confining a search of `resource_type` to Patient `patient_id`'s compartment, or
/// `None` when the type has no place in the Patient compartment.
pub fn patient_compartment_clause(resource_type: &str, patient_id: &str) -> Option<Clause> {
    patients_compartment_clause(resource_type, &[patient_id.to_string()])
}

/// The clause confining a search of `resource_type` to the compartments of any of
/// `patient_ids` (none at all when the list is empty), or `None` when the type has no place in
/// the Patient compartment.
pub fn patients_compartment_clause(resource_type: &str, patient_ids: &[String]) -> Option<Clause> {
    let params = definition().get(resource_type)?;
    if patient_ids.is_empty() {
        // No patient: match nothing.
        return Some(Clause {
            any_of: vec![Condition::IdIn(Vec::new())],
            negated: false,
        });
    }
    // One condition per parameter, each naming every patient: the statement stays small
    // however many patients a clinician's care teams cover.
    let mut any_of: Vec<Condition> = params
        .iter()
        .map(|param| Condition::ReferenceIn {
            code: param.clone(),
            target_type: "Patient".into(),
            target_ids: patient_ids.to_vec(),
        })
        .collect();
    if resource_type == "Patient" {
        any_of.push(Condition::IdIn(patient_ids.to_vec()));
    }
    Some(Clause {
        any_of,
        negated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn care_plan_and_patient_compartment_membership() {
        let clause =
            patient_compartment_clause("CarePlan", "p1").expect("CarePlan is in the compartment");
        assert!(clause
            .any_of
            .iter()
            .any(|c| matches!(c, Condition::ReferenceIn { code, target_ids, .. } if code == "patient" && target_ids == &["p1"])));
        let own = patient_compartment_clause("Patient", "p1").expect("Patient");
        assert!(own.any_of.contains(&Condition::IdIn(vec!["p1".into()])));
        // Many patients stay one condition per parameter (no OR chain SQLite would refuse).
        let many: Vec<String> = (0..2000).map(|n| format!("p{n}")).collect();
        let wide = patients_compartment_clause("Observation", &many).expect("Observation");
        assert_eq!(wide.any_of.len(), 2);
        assert!(patient_compartment_clause("Questionnaire", "p1").is_none());
    }
}
