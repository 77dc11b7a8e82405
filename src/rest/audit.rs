//! Who looked at my plan: an AuditEvent for every read, search and write of patient data
//! (issue "The shared care plan" §4; R4 auditevent.html; IHE Basic Audit Log Patterns: type
//! `rest`, subtype the interaction, the agent from the token, entities the patient and the
//! resource). Recording is a non-blocking send on the request path; one background task
//! appends the interactions to the audit log in batches (`audit_log`: one compact row each, one
//! commit per batch), so reads stay fast. The AuditEvent resources — about twenty rows each with
//! their search index, too many to write at the rate reads arrive — are made from the log by
//! that task when it is idle, and before anything that may serve AuditEvents is answered
//! ([`FhirService::audit_caught_up`]); each log entry is consumed in the commit that makes its
//! AuditEvent, so it becomes exactly one, on whichever node makes it.
//! [`FhirService::flush_audit`] writes whatever is queued to the log and is called on a clean
//! shutdown, so nothing queued is lost then.
//!
//! AuditEvents are in the Patient compartment of the patient they name (R4's `patient`
//! parameter reads `entity.what`), so a patient can search the ones about them; nobody can
//! change or delete one (`write/record_provenance.rs` refuses it, as for Provenance). Reading
//! AuditEvents is not itself audited (the log would grow by being read).

use super::provenance::{Attribution, SERVER_DEVICE_ID};
use super::FhirService;
use crate::clock::IdGenerator;
use crate::policy::Access;
use crate::rest::meta::stamp;
use crate::store::index::IndexRow;
use crate::store::{
    AuditLogEntry, CommitBatch, Expected, Store, StoreError, VersionWrite, WriteMethod,
};
use crate::validate::CheckedResource;
use base64::Engine;
use fhir_primitives::format_instant;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// AuditEvents made per commit at most.
const BATCH: usize = 256;
/// Events waiting at most; beyond it recording waits for the writer (back-pressure, never
/// loss).
const QUEUE: usize = 65_536;

/// One interaction to record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// R4 restful-interaction code: read, vread, search-type, history-instance, create, …
    pub subtype: &'static str,
    /// C, R, U, D or E.
    pub action: &'static str,
    pub recorded_us: i64,
    pub who: Attribution,
    /// The patients whose data it touched.
    pub patients: Vec<String>,
    /// The resource (`Goal/7`, `Goal/7/_history/2`), when there is one.
    pub what: Option<String>,
    /// The search or operation query, when there is one.
    pub query: Option<String>,
}

enum Message {
    Record(AuditRecord),
    Flush(oneshot::Sender<()>),
}

/// The request path's end of the audit trail.
#[derive(Clone)]
pub struct AuditTrail {
    sender: mpsc::Sender<Message>,
}

impl AuditTrail {
    /// Start the writer task over `store`.
    pub(crate) fn start(store: Arc<dyn Store>, ids: Arc<dyn IdGenerator>) -> AuditTrail {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(receiver, store, ids));
        AuditTrail { sender }
    }
}

/// How long the writer waits without anything to record before it makes AuditEvents of the
/// whole audit log.
const IDLE: std::time::Duration = std::time::Duration::from_millis(500);
/// Interactions appended to the log per commit at most (one row each).
const LOG_BATCH: usize = 8_192;
/// A batch of at least this many interactions means they arrive fast: the writer waits
/// [`GATHER_FOR`] for more before it commits.
const GATHER_FROM: usize = 8;
const GATHER_FOR: std::time::Duration = std::time::Duration::from_millis(10);
/// Interactions a second below which they arrive slowly enough for the writer to make a batch
/// of AuditEvents after each append (measured over the last second or so).
const SLOW_ARRIVALS_PER_SECOND: f64 = 500.0;

async fn write_batches(
    mut receiver: mpsc::Receiver<Message>,
    store: Arc<dyn Store>,
    ids: Arc<dyn IdGenerator>,
) {
    let mut messages = Vec::with_capacity(BATCH);
    // Entries may be left from before a restart.
    let mut log_may_hold_entries = true;
    // The arrival rate, measured over windows of about a second (scheduling only: no data
    // carries this time).
    let mut window_start = tokio::time::Instant::now();
    let mut window_count = 0usize;
    let mut arriving_slowly = true;
    loop {
        let received =
            tokio::time::timeout(IDLE, receiver.recv_many(&mut messages, LOG_BATCH)).await;
        let count = match received {
            Ok(0) => return,
            Ok(count) => {
                // Under load, gather a fuller batch first: every commit is an fsync, and a few
                // milliseconds' delay of an audit record costs nobody anything (a flush is
                // answered at once).
                let flushing = messages.iter().any(|m| matches!(m, Message::Flush(_)));
                if !flushing && (GATHER_FROM..LOG_BATCH).contains(&count) {
                    tokio::time::sleep(GATHER_FOR).await;
                    let room = LOG_BATCH - messages.len();
                    if room > 0 && !receiver.is_empty() {
                        receiver.recv_many(&mut messages, room).await;
                    }
                }
                messages.len()
            }
            Err(_idle) => {
                if log_may_hold_entries {
                    // Nothing to record: make everything, unless records arrive meanwhile.
                    match make_audit_events(store.as_ref(), Drain::WhileIdle(&receiver)).await {
                        Ok(_) => log_may_hold_entries = !receiver.is_empty(),
                        Err(e) => tracing::error!(error = ?e, "AuditEvents could not be made"),
                    }
                }
                continue;
            }
        };
        let mut entries = Vec::new();
        let mut flushed = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Record(record) => entries.push(AuditLogEntry {
                    id: ids.new_id(),
                    recorded_us: record.recorded_us,
                    record: encode(&record),
                }),
                Message::Flush(done) => flushed.push(done),
            }
        }
        if !entries.is_empty() {
            let appended = entries.len();
            let batch = CommitBatch {
                audit_log: entries,
                ..CommitBatch::default()
            };
            match store.commit(&batch).await {
                Ok(()) => log_may_hold_entries = true,
                Err(e) => {
                    tracing::error!(error = %e, events = appended, "the audit log could not be written")
                }
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
        // Keep the log from growing under steady traffic that is never idle: when interactions
        // arrive slowly, one batch of AuditEvents after each append. Under load
        // the writer only appends — making AuditEvents costs the CPU reads need, ~20 rows each
        // — and the log is made into AuditEvents when traffic eases.
        window_count += count;
        let elapsed = window_start.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            arriving_slowly = (window_count as f64 / elapsed) < SLOW_ARRIVALS_PER_SECOND;
            window_start = tokio::time::Instant::now();
            window_count = 0;
        }
        if log_may_hold_entries && arriving_slowly {
            match make_audit_events(store.as_ref(), Drain::OneBatch).await {
                Ok(0) => log_may_hold_entries = false,
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "AuditEvents could not be made"),
            }
        }
    }
}

/// How much of the audit log [`make_audit_events`] makes into AuditEvents.
enum Drain<'a> {
    /// Everything up to the newest entry when it starts (entries recorded meanwhile are left
    /// for later, so it ends however fast records arrive).
    All,
    /// Like [`Drain::All`], but only while `receiver` has nothing to record.
    WhileIdle(&'a mpsc::Receiver<Message>),
    /// One batch.
    OneBatch,
}

/// Make AuditEvents of audit log entries, oldest first, a batch per commit that also consumes
/// the entries it made, so each becomes exactly one AuditEvent, whichever node makes it.
/// Entries it cannot read (written by a later Coplan, say) are left in the log, not consumed.
/// Returns how many were made.
async fn make_audit_events(store: &dyn Store, drain: Drain<'_>) -> crate::error::FhirResult<usize> {
    let Some(through) = store.audit_log_last_seq().await? else {
        return Ok(0);
    };
    let mut after = 0;
    let mut made = 0;
    let mut conflicts = 0;
    loop {
        if let Drain::WhileIdle(receiver) = &drain {
            if !receiver.is_empty() {
                break;
            }
        }
        let entries = store.audit_log_range(after, through, BATCH as u32).await?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            break;
        };
        let mut versions = Vec::with_capacity(entries.len());
        let mut consumed = Vec::with_capacity(entries.len());
        for stored in &entries {
            match decode(&stored.entry) {
                Some(record) => {
                    versions.push(audit_version(&record, &stored.entry.id)?);
                    consumed.push(stored.seq);
                }
                None => tracing::error!(
                    seq = stored.seq,
                    "an audit log entry this version cannot read is left in the log"
                ),
            }
        }
        let batch = CommitBatch {
            versions,
            consumed_audit_log: consumed,
            ..CommitBatch::default()
        };
        match store.commit(&batch).await {
            Ok(()) => {
                made += batch.consumed_audit_log.len();
                after = last;
                conflicts = 0;
                if matches!(drain, Drain::OneBatch) {
                    break;
                }
            }
            // Another node (or another caller here) took some of them: read the range again.
            // Failing again and again is a defect to report, not to spin on.
            Err(StoreError::Conflict { .. }) if conflicts < 8 => conflicts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(made)
}

/// The compact form of a record in the audit log (its time is the entry's own column).
fn encode(r: &AuditRecord) -> bytes::Bytes {
    // Serialised straight from the fields (a JSON array), without building a `Value` first.
    let fields = (
        r.subtype,
        &r.who.author,
        &r.who.on_behalf_of,
        &r.who.transmitter,
        &r.who.client_id,
        &r.patients,
        &r.what,
        &r.query,
    );
    bytes::Bytes::from(serde_json::to_vec(&fields).unwrap_or_default())
}

/// A record from its log entry; `None` when the entry is not one [`encode`] wrote.
fn decode(entry: &AuditLogEntry) -> Option<AuditRecord> {
    let value: Value = serde_json::from_slice(&entry.record).ok()?;
    let fields = value.as_array()?;
    let text = |i: usize| fields.get(i).and_then(Value::as_str).map(str::to_string);
    let (subtype, action) = interaction(fields.first()?.as_str()?);
    let texts = |i: usize| -> Option<Vec<String>> {
        fields
            .get(i)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    Some(AuditRecord {
        subtype,
        action,
        recorded_us: entry.recorded_us,
        who: Attribution {
            author: text(1)?,
            on_behalf_of: text(2),
            transmitter: text(3)?,
            client_id: text(4),
        },
        patients: texts(5)?,
        what: text(6),
        query: text(7),
    })
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

/// The stored version of one AuditEvent. Built here rather than through the generic write
/// path: at tens of thousands of reads a second the FHIRPath extraction and re-validation of
/// a resource the server itself composed were most of the cost. [`index_rows`] gives exactly
/// the rows the extraction would (a test compares them), and the content's shape is checked
/// against the R4 model by a test, not on every event.
fn audit_version(r: &AuditRecord, id: &str) -> crate::error::FhirResult<VersionWrite> {
    let Value::Object(map) = audit_event(r) else {
        return Err(crate::error::FhirError::internal(
            "an AuditEvent is an object",
        ));
    };
    let body = stamp(&CheckedResource::from_object(map), id, 1, r.recorded_us)?;
    Ok(VersionWrite {
        resource_type: "AuditEvent".into(),
        id: id.to_string(),
        expected: Expected::Absent,
        version_id: 1,
        last_updated_us: r.recorded_us,
        method: WriteMethod::Create,
        body: Some(body),
        index: index_rows(r, id),
    })
}

/// The search index rows of the AuditEvent of `r` stored as `id`: the parameters the
/// extraction yields for it, grouped by parameter code in code order, each group in document
/// order without repeats.
fn index_rows(r: &AuditRecord, id: &str) -> Vec<IndexRow> {
    let reference = |code: &str, target: &str| {
        let (t, i) = target.split_once('/').unwrap_or((target, ""));
        let i = i.split("/_history/").next().unwrap_or(i);
        IndexRow::Reference {
            code: code.into(),
            target_type: Some(t.into()),
            target_id: Some(i.into()),
            url: target.into(),
        }
    };
    let token =
        |code: &str, system: Option<&str>, value: &str, display: Option<&str>| IndexRow::Token {
            code: code.into(),
            system: system.map(str::to_string),
            value: Some(value.into()),
            text_norm: display.map(fhir_search_index::normalize_string),
        };
    let instant = |code: &str| IndexRow::Date {
        code: code.into(),
        low_us: r.recorded_us - r.recorded_us.rem_euclid(1_000),
        high_us: r.recorded_us - r.recorded_us.rem_euclid(1_000) + 999,
    };
    let patients: Vec<String> = r.patients.iter().map(|p| format!("Patient/{p}")).collect();
    let mut agents = vec![r.who.author.clone()];
    if r.who.transmitter != r.who.author {
        agents.push(r.who.transmitter.clone());
    }
    let mut entities = patients.clone();
    entities.extend(r.what.clone());
    const ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
    const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
    let mut roles = Vec::new();
    let mut types = Vec::new();
    if !r.patients.is_empty() {
        roles.push(token("entity-role", Some(ROLE), "1", Some("Patient")));
        types.push(token("entity-type", Some(ENTITY_TYPE), "1", Some("Person")));
    }
    let query = r.query.as_deref().is_some_and(|q| !q.is_empty());
    if query {
        roles.push(token("entity-role", Some(ROLE), "24", Some("Query")));
    }
    if r.what.is_some() || query {
        types.push(token(
            "entity-type",
            Some(ENTITY_TYPE),
            "2",
            Some("System Object"),
        ));
    }
    let mut rows = vec![
        token("_id", None, id, None),
        instant("_lastUpdated"),
        token("action", None, r.action, None),
    ];
    rows.extend(agents.iter().map(|a| reference("agent", a)));
    rows.push(instant("date"));
    rows.extend(entities.iter().map(|e| reference("entity", e)));
    rows.extend(roles);
    rows.extend(types);
    rows.push(token("outcome", None, "0", None));
    // `patient`: agents, then entities, that are Patients.
    let mut patient_rows: Vec<String> = Vec::new();
    for target in agents.iter().chain(entities.iter()) {
        if target.starts_with("Patient/") && !patient_rows.contains(target) {
            patient_rows.push(target.clone());
        }
    }
    rows.extend(patient_rows.iter().map(|p| reference("patient", p)));
    rows.push(reference("source", &format!("Device/{SERVER_DEVICE_ID}")));
    rows.push(token(
        "subtype",
        Some("http://hl7.org/fhir/restful-interaction"),
        r.subtype,
        None,
    ));
    rows.push(token(
        "type",
        Some("http://terminology.hl7.org/CodeSystem/audit-event-type"),
        "rest",
        Some("RESTful Operation"),
    ));
    // The extraction keeps one row per distinct value (a patient read as themselves is one
    // entity row).
    let mut distinct: Vec<IndexRow> = Vec::with_capacity(rows.len());
    for row in rows {
        if !distinct.contains(&row) {
            distinct.push(row);
        }
    }
    distinct
}

/// One event per patient: an AuditEvent is in the compartment of every patient it names, so
/// an interaction that touched several patients' records is recorded once for each, naming
/// only that patient — no patient learns from their log whose records were read alongside
/// theirs. The query of such an interaction is left out (it may name the others); a
/// single-patient interaction keeps it.
fn per_patient(patients: Vec<String>, query: Option<String>) -> Vec<(Vec<String>, Option<String>)> {
    if patients.len() <= 1 {
        return vec![(patients, query)];
    }
    patients.into_iter().map(|p| (vec![p], None)).collect()
}

/// The AuditEvent of one interaction.
pub fn audit_event(r: &AuditRecord) -> Value {
    let mut agents = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
        "who": {"reference": r.who.author},
        "requestor": true,
    })];
    if r.who.transmitter != r.who.author {
        agents.push(json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": {"reference": r.who.transmitter},
            "requestor": false,
        }));
    }
    let mut entities: Vec<Value> = r
        .patients
        .iter()
        .map(|p| {
            json!({
                "what": {"reference": format!("Patient/{p}")},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
            })
        })
        .collect();
    if let Some(what) = &r.what {
        entities.push(json!({
            "what": {"reference": what},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        }));
    }
    if let Some(query) = r.query.as_deref().filter(|q| !q.is_empty()) {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(query),
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": r.subtype}],
        "action": r.action,
        "recorded": format_instant(r.recorded_us),
        "outcome": "0",
        "agent": agents,
        "source": {"observer": {"reference": format!("Device/{SERVER_DEVICE_ID}")}},
    });
    if !entities.is_empty() {
        event["entity"] = Value::from(entities);
    }
    event
}

impl FhirService {
    /// Record one read or search of patient data, if auditing is on. When the writer is behind
    /// by a full queue, the request waits for room (back-pressure: reads slow down, memory stays
    /// bounded, nothing is dropped).
    pub(crate) async fn audit_read_of(
        &self,
        access: &Access,
        subtype: &'static str,
        patients: Vec<String>,
        what: Option<String>,
        query: Option<String>,
    ) {
        let Some(trail) = &self.audit else {
            return;
        };
        for (patients, query) in per_patient(patients, query) {
            let Some(record) = self.audit_record(access, subtype, patients, what.clone(), query)
            else {
                return;
            };
            if trail.sender.send(Message::Record(record)).await.is_err() {
                tracing::error!("the audit writer has stopped; an AuditEvent was not recorded");
            }
        }
    }

    fn audit_record(
        &self,
        access: &Access,
        subtype: &'static str,
        patients: Vec<String>,
        what: Option<String>,
        query: Option<String>,
    ) -> Option<AuditRecord> {
        self.audit.as_ref()?;
        let (subtype, action) = interaction(subtype);
        Some(AuditRecord {
            subtype,
            action,
            recorded_us: self.now_us(),
            who: Attribution::of(access, &patients),
            patients,
            what,
            query,
        })
    }

    /// Record one write of patient data, if auditing is on (from the write pipeline's
    /// after-commit step, which cannot wait: a full queue hands the event to a task that waits
    /// for room; writes are far fewer than reads).
    pub(crate) fn audit_write(
        &self,
        access: &Access,
        subtype: &'static str,
        patients: Vec<String>,
        what: Option<String>,
    ) {
        let Some(trail) = &self.audit else {
            return;
        };
        for (patients, _) in per_patient(patients, None) {
            let Some(record) = self.audit_record(access, subtype, patients, what.clone(), None)
            else {
                return;
            };
            trail.hand_off(record);
        }
    }
}

impl AuditTrail {
    /// Queue `record` without waiting: when the queue is full a task waits for room.
    fn hand_off(&self, record: AuditRecord) {
        match self.sender.try_send(Message::Record(record)) {
            Ok(()) => {}
            // The writer is behind: wait for room off the request path, never drop.
            Err(mpsc::error::TrySendError::Full(message)) => {
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    if sender.send(message).await.is_err() {
                        tracing::error!("the audit writer has stopped; an AuditEvent was lost");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped; an AuditEvent was not recorded");
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

    /// Record a read (`vread` when `versioned`) of `r`.
    pub(crate) async fn audit_read(
        &self,
        access: &Access,
        r: &super::VersionedResource,
        versioned: bool,
    ) -> crate::error::FhirResult<()> {
        if !self.audits(&r.resource_type) {
            return Ok(());
        }
        let patients = self
            .patients_of(&r.resource_type, &r.id, r.version_id, &r.body)?
            .to_vec();
        let (subtype, what) = if versioned {
            (
                "vread",
                format!("{}/{}/_history/{}", r.resource_type, r.id, r.version_id),
            )
        } else {
            ("read", format!("{}/{}", r.resource_type, r.id))
        };
        self.audit_read_of(access, subtype, patients, Some(what), None)
            .await;
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
        if let Err(e) = make_audit_events(self.store.as_ref(), Drain::All).await {
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
        if trail.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Turn auditing on: start the writer (needs a tokio runtime).
    pub fn start_audit(&mut self) {
        self.audit = Some(AuditTrail::start(
            Arc::clone(&self.store),
            Arc::clone(&self.ids),
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_interaction_with_several_patients_is_recorded_once_for_each() {
        let split = per_patient(vec!["p1".into(), "p2".into()], Some("patient=p1,p2".into()));
        assert_eq!(
            split,
            vec![
                (vec!["p1".to_string()], None),
                (vec!["p2".to_string()], None)
            ]
        );
        let one = per_patient(vec!["p1".into()], Some("patient=p1".into()));
        assert_eq!(
            one,
            vec![(vec!["p1".to_string()], Some("patient=p1".to_string()))]
        );
    }

    #[test]
    fn a_record_comes_back_from_its_log_entry_as_it_went_in() {
        for (subtype, on_behalf_of, what, query) in [
            ("read", None, Some("Goal/g1"), None),
            (
                "search-type",
                Some("Patient/p1"),
                None,
                Some("patient=p1&_count=5"),
            ),
            ("delete", None, Some("Goal/g1/_history/2"), Some("")),
        ] {
            let record = AuditRecord {
                subtype,
                action: interaction(subtype).1,
                recorded_us: 7,
                who: Attribution {
                    author: "RelatedPerson/r".into(),
                    on_behalf_of: on_behalf_of.map(String::from),
                    transmitter: "Device/app-ehr".into(),
                    client_id: Some("ehr".into()),
                },
                patients: vec!["p1".into(), "p2".into()],
                what: what.map(String::from),
                query: query.map(String::from),
            };
            let entry = AuditLogEntry {
                id: "a1".into(),
                recorded_us: 7,
                record: encode(&record),
            };
            let back = decode(&entry).unwrap();
            assert_eq!(back.subtype, record.subtype);
            assert_eq!(back.action, record.action);
            assert_eq!(back.who, record.who);
            assert_eq!(
                (back.patients, back.what, back.query, back.recorded_us),
                (record.patients, record.what, record.query, 7)
            );
        }
        let garbage = AuditLogEntry {
            id: "a2".into(),
            recorded_us: 7,
            record: bytes::Bytes::from_static(b"{not json"),
        };
        assert!(decode(&garbage).is_none());
    }

    #[test]
    fn every_interaction_has_its_action_and_others_are_operations() {
        assert_eq!(interaction("create"), ("create", "C"));
        assert_eq!(interaction("patch"), ("patch", "U"));
        assert_eq!(interaction("delete"), ("delete", "D"));
        assert_eq!(interaction("history-type"), ("history-type", "R"));
        assert_eq!(interaction("$everything"), ("operation", "E"));
    }

    #[test]
    fn an_audit_event_names_who_what_and_whose() {
        let record = AuditRecord {
            subtype: "read",
            action: "R",
            recorded_us: 1_767_225_600_000_000,
            who: Attribution {
                author: "Practitioner/dr".into(),
                on_behalf_of: None,
                transmitter: "Device/app-ehr".into(),
                client_id: Some("ehr".into()),
            },
            patients: vec!["p1".into()],
            what: Some("Goal/g1".into()),
            query: None,
        };
        let event = audit_event(&record);
        assert_eq!(event["subtype"][0]["code"], "read");
        assert_eq!(event["action"], "R");
        assert_eq!(event["recorded"], "2026-01-01T00:00:00.000Z");
        assert_eq!(event["agent"][0]["who"]["reference"], "Practitioner/dr");
        assert_eq!(event["agent"][1]["who"]["reference"], "Device/app-ehr");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][1]["what"]["reference"], "Goal/g1");
        let checked = crate::validate::check_resource(event, "AuditEvent");
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[test]
    fn the_index_rows_built_directly_are_the_extractions() {
        let who = |author: &str, transmitter: &str| Attribution {
            author: author.into(),
            on_behalf_of: None,
            transmitter: transmitter.into(),
            client_id: None,
        };
        let records = [
            (
                who("Practitioner/dr", "Device/app-ehr"),
                vec!["p1"],
                Some("Goal/g1"),
                None,
            ),
            (
                who("Patient/p1", "Device/app-portal"),
                vec!["p1"],
                Some("Patient/p1"),
                None,
            ),
            (
                who("Device/coplan", "Device/coplan"),
                vec!["p1", "p2"],
                None,
                Some("Goal?patient=p1"),
            ),
            (
                who("RelatedPerson/r", "Device/app-c"),
                vec!["p2"],
                Some("Goal/g/_history/3"),
                Some(""),
            ),
            (
                who("Device/app-s", "Device/app-s"),
                vec![],
                Some("Goal/g"),
                None,
            ),
        ];
        for (i, (who, patients, what, query)) in records.into_iter().enumerate() {
            let record = AuditRecord {
                subtype: "search-type",
                action: "R",
                recorded_us: 1_767_225_600_123_456,
                who,
                patients: patients.into_iter().map(String::from).collect(),
                what: what.map(String::from),
                query: query.map(String::from),
            };
            let version = audit_version(&record, "a1").unwrap();
            let stored: Value = serde_json::from_slice(version.body.as_ref().unwrap()).unwrap();
            let extracted = super::super::search::params::R4SearchParams::default()
                .index_rows(&stored)
                .unwrap();
            assert_eq!(version.index, extracted, "record {i}");
            crate::validate::check_resource(stored, "AuditEvent").unwrap();
        }
    }
}
