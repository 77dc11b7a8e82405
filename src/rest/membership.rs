//! Which patients' compartments a stored version of a resource is in (R4 Patient
//! CompartmentDefinition), remembered per version so that a confined read costs a lookup, not
//! a query. A version's content never changes, so an entry keyed by (type, id, version) stays
//! true on every server node; writes record the membership of what they store, and a miss
//! recomputes it from the stored bytes with the same extraction that indexes writes.

use super::search::{in_patient_compartment, patient_compartment_params};
use super::FhirService;
use crate::error::FhirResult;
use crate::store::index::IndexRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept before the cache starts over (each is a few dozen bytes).
const CAPACITY: usize = 200_000;

type Key = (String, String);
/// A version and the patients whose compartments it is in.
type Entry = (i64, Arc<[String]>);

/// Compartment membership of recent versions.
#[derive(Default)]
pub struct MembershipCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl MembershipCache {
    fn get(&self, resource_type: &str, id: &str, version_id: i64) -> Option<Arc<[String]>> {
        let entries = self.entries.lock().ok()?;
        match entries.get(&(resource_type.to_string(), id.to_string())) {
            Some((v, patients)) if *v == version_id => Some(Arc::clone(patients)),
            _ => None,
        }
    }

    fn put(&self, resource_type: &str, id: &str, version_id: i64, patients: Arc<[String]>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(
                (resource_type.to_string(), id.to_string()),
                (version_id, patients),
            );
        }
    }
}

/// The patients whose compartments index rows put `resource_type/id` in.
pub(crate) fn patients_in(resource_type: &str, id: &str, index: &[IndexRow]) -> Vec<String> {
    let params = patient_compartment_params(resource_type);
    let mut patients: Vec<String> = Vec::new();
    if resource_type == "Patient" {
        patients.push(id.to_string());
    }
    for row in index {
        if let IndexRow::Reference {
            code,
            target_type: Some(t),
            target_id: Some(target),
            ..
        } = row
        {
            if t == "Patient" && params.contains(code) && !patients.contains(target) {
                patients.push(target.clone());
            }
        }
    }
    patients
}

impl FhirService {
    /// Remember the compartments of a version just written.
    pub(crate) fn remember_membership(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
        index: &[IndexRow],
    ) {
        if in_patient_compartment(resource_type) {
            let patients: Arc<[String]> = patients_in(resource_type, id, index).into();
            self.membership.put(resource_type, id, version_id, patients);
        }
    }

    /// The patients whose compartments stored version `version_id` (`body`) is in.
    pub(crate) fn patients_of(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
        body: &[u8],
    ) -> FhirResult<Arc<[String]>> {
        if let Some(hit) = self.membership.get(resource_type, id, version_id) {
            return Ok(hit);
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(crate::error::FhirError::internal)?;
        let index = self.search_params.index_rows(&value)?;
        let patients: Arc<[String]> = patients_in(resource_type, id, &index).into();
        self.membership
            .put(resource_type, id, version_id, Arc::clone(&patients));
        Ok(patients)
    }
}
