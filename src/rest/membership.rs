//! Which patients' compartments a stored version of a resource is in (R4 Patient
//! CompartmentDefinition), remembered per version so that a confined read costs a lookup, not
//! a query. A version's content never changes, so an entry keyed by (type, id, version) stays
//! true on every server node; writes record the membership of what they store, and a miss
//! recomputes it from the stored bytes with the same extraction that indexes writes.
//! [`Compartments`] does the same for a version named by its id alone: the audit log's reads
//! are resolved that way when their AuditEvents are made, off the request path.

use super::search::params::R4SearchParams;
use super::search::{in_patient_compartment, patient_compartment_params};
use super::FhirService;
use crate::error::FhirResult;
use crate::store::index::IndexRow;
use crate::store::Store;
use std::cell::RefCell;
use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Entries kept before the cache starts over (each is a few dozen bytes).
const CAPACITY: usize = 200_000;

/// A version and the patients whose compartments it is in.
type Entry = (i64, Arc<[String]>);

/// Compartment membership of recent versions, by `"{type}/{id}"` (neither holds a `/`).
/// Every audited read looks here, on every worker thread at once: lookups share a read lock
/// and build their key in a per-thread buffer, so they allocate nothing and never wait for
/// each other (a differential profile of a read benchmark pinned to one core put the earlier
/// `Mutex` lookup with two key `String`s at ~0.2 µs a read, with more in `malloc`/`free` and,
/// likely, the kernel's wake-ups of a contended lock).
/// The std hasher (SipHash, keyed per process), although a faster hash would save ~0.05 µs a
/// lookup: clients choose the ids (a create by PUT), and foldhash does not claim resistance to
/// deliberate collisions.
#[derive(Default)]
pub struct MembershipCache {
    entries: RwLock<HashMap<String, Entry>>,
}

thread_local! {
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(96));
}

/// `f` of the key of `resource_type/id`, built without allocating.
fn with_key<R>(resource_type: &str, id: &str, f: impl FnOnce(&str) -> R) -> R {
    KEY.with(|key| {
        let mut key = key.borrow_mut();
        key.clear();
        key.push_str(resource_type);
        key.push('/');
        key.push_str(id);
        f(&key)
    })
}

impl MembershipCache {
    fn get(&self, resource_type: &str, id: &str, version_id: i64) -> Option<Arc<[String]>> {
        let entries = self.entries.read().ok()?;
        with_key(resource_type, id, |key| match entries.get(key) {
            Some((v, patients)) if *v == version_id => Some(Arc::clone(patients)),
            _ => None,
        })
    }

    /// Remember `version_id`'s patients, unless a later version of the resource is
    /// remembered (an old version resolved for an AuditEvent must not push out the current
    /// one that confined reads look up).
    fn put(&self, resource_type: &str, id: &str, version_id: i64, patients: Arc<[String]>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            match entries.entry(format!("{resource_type}/{id}")) {
                Slot::Occupied(mut e) if e.get().0 <= version_id => {
                    e.insert((version_id, patients));
                }
                Slot::Occupied(_) => {}
                Slot::Vacant(e) => {
                    e.insert((version_id, patients));
                }
            }
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
        from_body(
            &self.membership,
            &self.search_params,
            resource_type,
            id,
            version_id,
            body,
        )
    }

    /// What resolves versions' compartments beside this service (the audit log's writer).
    pub(crate) fn compartments(&self) -> Compartments {
        Compartments {
            store: Arc::clone(&self.store),
            membership: Arc::clone(&self.membership),
            params: self.search_params,
        }
    }
}

/// The compartments of version `version_id` (`body`) computed from its content, and
/// remembered.
fn from_body(
    membership: &MembershipCache,
    params: &R4SearchParams,
    resource_type: &str,
    id: &str,
    version_id: i64,
    body: &[u8],
) -> FhirResult<Arc<[String]>> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(crate::error::FhirError::internal)?;
    let index = params.index_rows(&value)?;
    let patients: Arc<[String]> = patients_in(resource_type, id, &index).into();
    membership.put(resource_type, id, version_id, Arc::clone(&patients));
    Ok(patients)
}

/// Resolves the compartments of a stored version named by type, id and version: from the
/// cache, or from the version's stored content. A version never changes, so resolving it
/// when its read's AuditEvent is made gives what resolving it during the read would have.
#[derive(Clone)]
pub(crate) struct Compartments {
    store: Arc<dyn Store>,
    membership: Arc<MembershipCache>,
    params: R4SearchParams,
}

impl Compartments {
    /// The patients whose compartments version `version_id` of `resource_type/id` is in;
    /// `None` when no such version is stored with content.
    pub(crate) async fn of_version(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> FhirResult<Option<Arc<[String]>>> {
        if let Some(hit) = self.membership.get(resource_type, id, version_id) {
            return Ok(Some(hit));
        }
        let stored = self.store.version(resource_type, id, version_id).await?;
        let Some(body) = stored.and_then(|v| v.body) else {
            return Ok(None);
        };
        let patients = from_body(
            &self.membership,
            &self.params,
            resource_type,
            id,
            version_id,
            &body,
        )?;
        Ok(Some(patients))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_version_is_remembered_under_its_type_and_id() {
        let cache = MembershipCache::default();
        let patients: Arc<[String]> = vec!["p1".to_string()].into();
        cache.put("Goal", "g1", 2, Arc::clone(&patients));
        assert_eq!(cache.get("Goal", "g1", 2).as_deref(), Some(&patients[..]));
        assert!(cache.get("Goal", "g1", 1).is_none(), "another version");
        assert!(cache.get("CarePlan", "g1", 2).is_none(), "another type");
        assert!(cache.get("Goal", "g", 2).is_none());
        // The key buffer is reused: a longer key, then a shorter one, still finds its entry.
        cache.put("G", "x", 1, Arc::clone(&patients));
        assert!(cache
            .get("Observation", "a-very-long-id-0123456789", 1)
            .is_none());
        assert!(cache.get("G", "x", 1).is_some());
        // A newer version replaces the older one; an older one does not replace a newer one.
        cache.put("Goal", "g1", 3, Arc::from(Vec::<String>::new()));
        assert!(cache.get("Goal", "g1", 2).is_none());
        assert_eq!(cache.get("Goal", "g1", 3).map(|p| p.len()), Some(0));
        cache.put("Goal", "g1", 1, Arc::clone(&patients));
        assert!(cache.get("Goal", "g1", 1).is_none());
        assert_eq!(cache.get("Goal", "g1", 3).map(|p| p.len()), Some(0));
    }
}
