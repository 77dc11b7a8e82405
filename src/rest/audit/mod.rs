//! Who looked at my plan: an AuditEvent for every read, search and write of patient data
//! (issue "The shared care plan" §4; R4 auditevent.html; IHE Basic Audit Log Patterns: type
//! `rest`, subtype the interaction, the agent from the token, entities the patient and the
//! resource). Recording appends a few dozen bytes to a chunk of the calling thread's shard
//! (`queue.rs`); one background task takes the chunks and appends them to the audit log in
//! batches (`audit_log`: a compact row per chunk, one commit per batch), so reads stay fast.
//! The AuditEvent resources — about twenty rows each with their search index, too many to
//! write at the rate reads arrive — are made from the log by that task when it is idle, and
//! before anything that may serve AuditEvents is answered
//! ([`FhirService::audit_caught_up`]); each log entry is consumed in the commit that makes its
//! AuditEvent, so it becomes exactly one, on whichever node makes it.
//! [`FhirService::flush_audit`] writes whatever is queued to the log and is called on a clean
//! shutdown, so nothing queued is lost then. This file is the request path's end; the
//! writer and the log are `log.rs`, an AuditEvent's content and index rows `event.rs`.
//!
//! AuditEvents are in the Patient compartment of the patient they name (R4's `patient`
//! parameter reads `entity.what`), so a patient can search the ones about them; nobody can
//! change or delete one (`write/record_provenance.rs` refuses it, as for Provenance). Reading
//! AuditEvents is not itself audited (the log would grow by being read).

mod event;
mod log;
mod queue;

pub use event::audit_event;
pub(crate) use queue::Named;

use super::membership::Compartments;
use super::provenance::Attribution;
use super::FhirService;
use crate::clock::IdGenerator;
use crate::policy::Access;
use crate::store::Store;
use log::{make_audit_events, write_batches, Drain};
use queue::{AuditQueue, Interaction, Whose};
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::oneshot;

/// AuditEvents made per commit at most.
const BATCH: usize = 256;

/// One recorded interaction, as the audit log gives it back to make its AuditEvent.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// R4 restful-interaction code: read, vread, search-type, history-instance, create, …
    pub subtype: &'static str,
    /// C, R, U, D or E.
    pub action: &'static str,
    pub recorded_us: i64,
    /// Shared by the records of one caller (no copy per read).
    pub who: Arc<Attribution>,
    /// The patients whose data it touched (none yet while `of_version` is to be resolved).
    pub patients: Arc<[String]>,
    /// A read recorded without its patients: the version (type, id, version) whose
    /// compartments are the patients, resolved when its AuditEvent is made.
    pub of_version: Option<(String, String, i64)>,
    /// The resource (`Goal/7`, `Goal/7/_history/2`), when there is one.
    pub what: Option<String>,
    /// The search or operation query, when there is one.
    pub query: Option<String>,
}

/// The request path's end of the audit trail; dropping it lets the writer write what is
/// left and end.
pub struct AuditTrail {
    queue: Arc<AuditQueue>,
}

impl AuditTrail {
    /// Start the writer task over `store`.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        ids: Arc<dyn IdGenerator>,
        compartments: Compartments,
    ) -> AuditTrail {
        let queue = Arc::new(AuditQueue::default());
        tokio::spawn(write_batches(Arc::clone(&queue), store, ids, compartments));
        AuditTrail { queue }
    }
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The interactions recorded (R4 restful-interaction codes) and their AuditEvent.action; an
/// interaction not listed is recorded as `operation` with action E.
const SUBTYPES: &[(&str, &str)] = &[
    ("create", "C"),
    ("read", "R"),
    ("vread", "R"),
    ("search-type", "R"),
    ("search-system", "R"),
    ("history-instance", "R"),
    ("history-type", "R"),
    ("history-system", "R"),
    ("update", "U"),
    ("patch", "U"),
    ("delete", "D"),
    ("operation", "E"),
];

/// The listed interaction `subtype` is, with its action.
fn interaction(subtype: &str) -> (&'static str, &'static str) {
    SUBTYPES
        .iter()
        .find(|(s, _)| *s == subtype)
        .copied()
        .unwrap_or(("operation", "E"))
}

/// One event per patient: an AuditEvent is in the compartment of every patient it names, so
/// an interaction that touched several patients' records is recorded once for each, naming
/// only that patient — no patient learns from their log whose records were read alongside
/// theirs. The query of such an interaction is left out (it may name the others); a
/// single-patient interaction keeps it.
/// Borrowed pieces of the interaction's: it allocates nothing.
fn per_patient<'a>(
    patients: &'a [String],
    query: Option<&'a str>,
) -> impl Iterator<Item = (&'a [String], Option<&'a str>)> {
    let split = patients.len() > 1;
    let whole = (!split).then_some((patients, query));
    let each: &[String] = if split { patients } else { &[] };
    whole
        .into_iter()
        .chain(each.iter().map(|p| (std::slice::from_ref(p), None)))
}

/// The attribution of `access`'s records: the server's own (requests without a token) is made
/// once and shared.
fn attribution(access: &Access, patients: &[String]) -> Cow<'static, Arc<Attribution>> {
    static SERVER: std::sync::OnceLock<Arc<Attribution>> = std::sync::OnceLock::new();
    if access.grant().is_none() {
        return Cow::Borrowed(SERVER.get_or_init(|| Arc::new(Attribution::of(access, patients))));
    }
    Cow::Owned(Arc::new(Attribution::of(access, patients)))
}

/// The most patients an empty search is recorded for (a search naming more records the first
/// ones: the log of a patient is not a place anyone can fill at will).
pub(crate) const MAX_SEARCHED_PATIENTS: usize = 16;

/// The patients a search asked about, for a search that returned nothing (or only a count):
/// the patient of a compartment search (`Patient/{id}/{type}`), the one patient a confined
/// token reaches, and the patients named by the type's Patient compartment parameters
/// and `patient` (`patient=123`, `subject=Patient/123`, an absolute reference; not chains) —
/// valid ids only, at most [`MAX_SEARCHED_PATIENTS`]. A token that reaches several patients
/// names none of them by itself: only what the search names counts. The caller keeps only
/// those it may reach ([`FhirService::reachable_patients`]).
pub(crate) fn patients_searched(
    resource_type: &str,
    pairs: &[(String, String)],
    compartment: Option<&str>,
    confined_to: Option<&[String]>,
) -> Vec<String> {
    let mut patients: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if patients.len() < MAX_SEARCHED_PATIENTS
            && crate::validate::is_valid_id(id)
            && !patients.iter().any(|p| p == id)
        {
            patients.push(id.to_string());
        }
    };
    if let Some(id) = compartment {
        add(id);
    }
    if let Some([only]) = confined_to {
        add(only);
    }
    let params = super::search::patient_compartment_params(resource_type);
    for (name, value) in pairs {
        let (base, modifier) = name.split_once(':').unwrap_or((name, ""));
        // `patient` always means a Patient (R4 defines it as `subject`/… `where(resolve() is
        // Patient)`), whether or not the compartment lists it.
        if !(base == "patient" || params.iter().any(|p| p == base))
            || !matches!(modifier, "" | "Patient")
        {
            continue;
        }
        for v in value.split(',') {
            let id = match v.rsplit_once("Patient/") {
                Some((_, id)) => id,
                None if base == "patient" || modifier == "Patient" => v,
                None => continue,
            };
            if !id.contains('/') {
                add(id);
            }
        }
    }
    patients
}

impl FhirService {
    /// Of `named` patients, those the caller may reach: within a confined rule, its patients;
    /// otherwise those that exist. A search that named a patient the caller cannot reach is
    /// not recorded in that patient's log (it would tell them who asked, about nothing they
    /// could be shown).
    pub(crate) async fn reachable_patients(
        &self,
        named: Vec<String>,
        confined_to: Option<&[String]>,
    ) -> crate::error::FhirResult<Vec<String>> {
        let mut kept = Vec::with_capacity(named.len());
        for id in named {
            let reachable = match confined_to {
                Some(allowed) => allowed.contains(&id),
                None => self
                    .store
                    .current("Patient", &id)
                    .await?
                    .is_some_and(|v| v.body.is_some()),
            };
            if reachable {
                kept.push(id);
            }
        }
        Ok(kept)
    }

    /// Record one read or search of patient data, if auditing is on. When the writer is behind
    /// by a full queue, the request waits for room (back-pressure: reads slow down, memory stays
    /// bounded, nothing is dropped).
    pub(crate) async fn audit_read_of(
        &self,
        access: &Access,
        subtype: &'static str,
        patients: &[String],
        what: Named<'_>,
        query: Option<&str>,
    ) {
        let Some(trail) = &self.audit else {
            return;
        };
        trail.queue.room().await;
        self.record(
            trail,
            access,
            subtype,
            Whose::Patients(patients),
            what,
            query,
        );
    }

    /// Record one write of patient data, if auditing is on (from the write pipeline's
    /// after-commit step, which cannot wait: it is recorded even past the queue's bound;
    /// writes are far fewer than reads).
    pub(crate) fn audit_write(
        &self,
        access: &Access,
        subtype: &'static str,
        patients: &[String],
        what: Named<'_>,
    ) {
        if let Some(trail) = &self.audit {
            self.record(
                trail,
                access,
                subtype,
                Whose::Patients(patients),
                what,
                None,
            );
        }
    }

    /// Append the interaction's records without waiting: one per patient ([`per_patient`]),
    /// or one naming the version whose patients they are.
    fn record(
        &self,
        trail: &AuditTrail,
        access: &Access,
        subtype: &'static str,
        whose: Whose<'_>,
        what: Named<'_>,
        query: Option<&str>,
    ) {
        let (subtype, _) = interaction(subtype);
        let recorded_us = self.now_us();
        let append = |whose: Whose<'_>, patients: &[String], query: Option<&str>| {
            trail.queue.append(&Interaction {
                subtype,
                recorded_us,
                who: &attribution(access, patients),
                whose,
                what,
                query,
            });
        };
        match whose {
            Whose::OfVersion(_) => append(whose, &[], query),
            Whose::Patients(patients) => {
                for (patients, query) in per_patient(patients, query) {
                    append(Whose::Patients(patients), patients, query);
                }
            }
        }
    }
}

impl FhirService {
    /// Whether reads and searches of `resource_type` are recorded: patient data (a type of the
    /// Patient compartment), but not the audit log itself.
    pub(crate) fn audits(&self, resource_type: &str) -> bool {
        self.audit.is_some()
            && resource_type != "AuditEvent"
            && super::search::in_patient_compartment(resource_type)
    }

    /// The patients whose data the returned versions (`type`, `id`, version, body) hold, for
    /// the types that are audited.
    pub(crate) fn patients_returned<'a>(
        &self,
        returned: impl Iterator<Item = (&'a str, &'a str, i64, Option<&'a [u8]>)>,
    ) -> crate::error::FhirResult<Vec<String>> {
        let mut patients: Vec<String> = Vec::new();
        for (rt, id, version_id, body) in returned {
            let Some(body) = body.filter(|_| self.audits(rt)) else {
                continue;
            };
            for p in self.patients_of(rt, id, version_id, body)?.iter() {
                if !patients.contains(p) {
                    patients.push(p.clone());
                }
            }
        }
        Ok(patients)
    }

    /// Record a read (`vread` when `versioned`) of `r`. Its patients are left to be resolved
    /// from the version when its AuditEvent is made ([`Whose::OfVersion`]), unless the
    /// caller's attribution depends on them.
    pub(crate) async fn audit_read(
        &self,
        access: &Access,
        r: &super::VersionedResource,
        versioned: bool,
    ) -> crate::error::FhirResult<()> {
        let Some(trail) = self
            .audit
            .as_ref()
            .filter(|_| self.audits(&r.resource_type))
        else {
            return Ok(());
        };
        let (subtype, version) = if versioned {
            ("vread", Some(r.version_id))
        } else {
            ("read", None)
        };
        let what = Named::Resource(&r.resource_type, &r.id, version);
        if Attribution::needs_patients(access) {
            let patients = self.patients_of(&r.resource_type, &r.id, r.version_id, &r.body)?;
            self.audit_read_of(access, subtype, &patients, what, None)
                .await;
            return Ok(());
        }
        trail.queue.room().await;
        self.record(
            trail,
            access,
            subtype,
            Whose::OfVersion(r.version_id),
            what,
            None,
        );
        Ok(())
    }

    /// Make AuditEvents of everything in the audit log so far, so that a read, search or
    /// history of AuditEvents finds every interaction recorded before it. Called, after the
    /// caller's permission is checked, before serving anything that may hold AuditEvents; one
    /// caller at a time per node (the others wait, then find little or nothing left); when the
    /// log is empty it costs one indexed query. If the log cannot be made into AuditEvents
    /// now, what is stored is served (the error is logged; the entries stay for later).
    pub(crate) async fn audit_caught_up(&self) {
        let _one_at_a_time = self.audit_catch_up.lock().await;
        let compartments = self.compartments();
        if let Err(e) = make_audit_events(self.store.as_ref(), &compartments, Drain::All).await {
            tracing::error!(error = ?e, "AuditEvents could not be made before serving them");
        }
    }

    /// Write every queued interaction to the audit log now (a clean shutdown calls this; the
    /// log is durable, and its AuditEvents are made when next asked for).
    pub async fn flush_audit(&self) {
        let Some(trail) = &self.audit else {
            return;
        };
        let (done, wait) = oneshot::channel();
        trail.queue.flush(done);
        let _ = wait.await;
    }

    /// Turn auditing on: start the writer (needs a tokio runtime).
    pub fn start_audit(&mut self) {
        self.audit = Some(AuditTrail::start(
            Arc::clone(&self.store),
            Arc::clone(&self.ids),
            self.compartments(),
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_interaction_with_several_patients_is_recorded_once_for_each() {
        let plain = |split: Vec<(&[String], Option<&str>)>| {
            split
                .into_iter()
                .map(|(p, q)| (p.to_vec(), q.map(String::from)))
                .collect::<Vec<_>>()
        };
        let two = ["p1".to_string(), "p2".to_string()];
        let split = per_patient(&two, Some("patient=p1,p2")).collect();
        assert_eq!(
            plain(split),
            vec![
                (vec!["p1".to_string()], None),
                (vec!["p2".to_string()], None)
            ]
        );
        let one = ["p1".to_string()];
        let kept: Vec<_> = per_patient(&one, Some("patient=p1")).collect();
        assert!(std::ptr::eq(kept[0].0, &one[..]), "one patient: no copy");
        assert_eq!(
            plain(kept),
            vec![(vec!["p1".to_string()], Some("patient=p1".to_string()))]
        );
        let none: Vec<_> = per_patient(&[], None).collect();
        assert_eq!(none.len(), 1, "an interaction of no patient is one record");
    }

    #[test]
    fn an_empty_search_is_about_the_patients_it_names() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let named = |rt: &str, p: &[(&str, &str)], c: Option<&str>, conf: Option<&[String]>| {
            patients_searched(rt, &pairs(p), c, conf)
        };
        assert_eq!(
            named("Observation", &[("patient", "p1")], None, None),
            ["p1"]
        );
        assert_eq!(
            named(
                "Observation",
                &[
                    ("subject", "Patient/p2,http://x/fhir/Patient/p3"),
                    ("code", "1")
                ],
                None,
                None
            ),
            ["p2", "p3"]
        );
        assert_eq!(
            named("Observation", &[("subject:Patient", "p4")], None, None),
            ["p4"]
        );
        // Not a patient: another type, a chain, a parameter outside the compartment.
        assert!(named("Observation", &[("subject", "Group/g1")], None, None).is_empty());
        assert!(named("Observation", &[("subject.name", "x")], None, None).is_empty());
        assert!(named("Observation", &[("code", "Patient/p5")], None, None).is_empty());
        // The compartment of the URL; the one patient a token reaches, not a clinician's many.
        assert_eq!(named("CarePlan", &[], Some("p6"), None), ["p6"]);
        let one = ["p7".to_string()];
        assert_eq!(named("CarePlan", &[], None, Some(&one)), ["p7"]);
        let many = ["p8".to_string(), "p9".to_string()];
        assert!(named("CarePlan", &[], None, Some(&many)).is_empty());
        assert_eq!(
            named("CarePlan", &[("patient", "p7")], None, Some(&one)),
            ["p7"]
        );
        // Only valid ids, and a bounded number of them.
        let long = "x".repeat(65);
        assert!(named("CarePlan", &[("patient", long.as_str())], None, None).is_empty());
        assert!(named(
            "CarePlan",
            &[("subject", "http://x/Patient/a b")],
            None,
            None
        )
        .is_empty());
        let many: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        let list = many.join(",");
        assert_eq!(
            named("CarePlan", &[("patient", list.as_str())], None, None).len(),
            MAX_SEARCHED_PATIENTS
        );
    }

    #[test]
    fn every_interaction_has_its_action_and_others_are_operations() {
        assert_eq!(interaction("create"), ("create", "C"));
        assert_eq!(interaction("patch"), ("patch", "U"));
        assert_eq!(interaction("delete"), ("delete", "D"));
        assert_eq!(interaction("history-type"), ("history-type", "R"));
        assert_eq!(interaction("$everything"), ("operation", "E"));
    }
}
