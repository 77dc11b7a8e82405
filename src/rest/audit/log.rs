//! The audit log's writer (issue "The shared care plan" §4): one background task appends
//! the chunks of interactions the request path records (`queue.rs`) to the `audit_log` table
//! — a compact row per chunk of up to [`CHUNK`] interactions, batches gathered for a few
//! milliseconds, one commit (one fsync) per batch — and makes AuditEvent resources of the log
//! (`event.rs`) while interactions arrive slowly, when it is idle, and on demand
//! ([`FhirService::audit_caught_up`](super::FhirService)). An entry is consumed in the commit
//! that makes its AuditEvent, so it becomes exactly one, on whichever node makes it.

use super::event::audit_version;
use super::queue::{AuditQueue, Chunk, Interaction, Named, Whose, WriterAlive, CHUNK, CHUNK_FORM};
use super::{interaction, AuditRecord, BATCH};
use crate::clock::IdGenerator;
use crate::rest::membership::Compartments;
use crate::rest::provenance::Attribution;
use crate::store::{AuditLogEntry, CommitBatch, Store, StoreError, VersionWrite};
use serde_json::Value;
use std::sync::Arc;

/// How long the writer waits without anything to record before it makes AuditEvents of the
/// whole audit log.
const IDLE: std::time::Duration = std::time::Duration::from_millis(500);
/// A batch of at least this many interactions means they arrive fast: the writer waits
/// [`GATHER_FOR`] for more before it commits.
const GATHER_FROM: usize = 8;
const GATHER_FOR: std::time::Duration = std::time::Duration::from_millis(50);
/// Interactions a second below which they arrive slowly enough for the writer to make a batch
/// of AuditEvents after each append (measured over the last second or so).
const SLOW_ARRIVALS_PER_SECOND: f64 = 500.0;

pub(super) async fn write_batches(
    queue: Arc<AuditQueue>,
    store: Arc<dyn Store>,
    ids: Arc<dyn IdGenerator>,
    compartments: Compartments,
) {
    let _alive = WriterAlive(Arc::clone(&queue));
    // Entries may be left from before a restart.
    let mut log_may_hold_entries = true;
    // The arrival rate, measured over windows of about a second (scheduling only: no data
    // carries this time).
    let mut window_start = tokio::time::Instant::now();
    let mut window_count = 0usize;
    let mut arriving_slowly = true;
    loop {
        if tokio::time::timeout(IDLE, queue.arrival()).await.is_err() {
            if log_may_hold_entries {
                // Nothing to record: make everything, unless records arrive meanwhile.
                let drain = Drain::WhileIdle(&queue);
                match make_audit_events(store.as_ref(), &compartments, drain).await {
                    Ok(_) => log_may_hold_entries = !queue.is_empty(),
                    Err(e) => tracing::error!(error = ?e, "AuditEvents could not be made"),
                }
            }
            continue;
        }
        // Under load, gather a fuller batch first: every commit is an fsync, and a few
        // milliseconds' delay of an audit record costs nobody anything (a flush is answered
        // at once).
        let mut flushed = queue.take_flushes();
        if flushed.is_empty() && queue.waiting() >= GATHER_FROM {
            tokio::time::sleep(GATHER_FOR).await;
            flushed = queue.take_flushes();
        }
        // Taken after the flushes: everything appended before a flush was asked for is here.
        let chunks = queue.take();
        let count: usize = chunks.iter().map(|c| c.len()).sum();
        if count == 0 && flushed.is_empty() {
            if queue.is_closed() {
                return;
            }
            continue;
        }
        let entries: Vec<AuditLogEntry> = chunks
            .iter()
            .map(|chunk| AuditLogEntry {
                id: ids.new_id(),
                recorded_us: chunk.t0(),
                record: chunk.framed(),
            })
            .collect();
        drop(chunks);
        if !entries.is_empty() {
            let batch = CommitBatch {
                audit_log: entries,
                ..CommitBatch::default()
            };
            match store.commit(&batch).await {
                Ok(()) => log_may_hold_entries = true,
                Err(e) => {
                    tracing::error!(error = %e, events = count, "the audit log could not be written")
                }
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
        // Keep the log from growing under steady traffic that is never idle: when interactions
        // arrive slowly (under SLOW_ARRIVALS_PER_SECOND over the last second) and the writer
        // keeps up (fewer than GATHER_FROM were waiting), one batch of AuditEvents after each
        // append. Under load the writer only appends — making AuditEvents costs the CPU reads
        // need, ~20 rows each — and the log is made into AuditEvents when traffic eases. Both
        // conditions are needed: what was waiting alone says "slow" after any quick commit
        // (measured: the writer then made AuditEvents all through a read benchmark, +40 % CPU
        // a read), and the rate alone still says "slow" for the first second of load.
        window_count += count;
        let elapsed = window_start.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            arriving_slowly = (window_count as f64 / elapsed) < SLOW_ARRIVALS_PER_SECOND;
            window_start = tokio::time::Instant::now();
            window_count = 0;
        }
        if log_may_hold_entries && arriving_slowly && count < GATHER_FROM {
            match make_audit_events(store.as_ref(), &compartments, Drain::OneBatch).await {
                Ok(0) => log_may_hold_entries = false,
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "AuditEvents could not be made"),
            }
        }
    }
}

/// How much of the audit log [`make_audit_events`] makes into AuditEvents.
pub(super) enum Drain<'a> {
    /// Everything up to the newest entry when it starts (entries recorded meanwhile are left
    /// for later, so it ends however fast records arrive).
    All,
    /// Like [`Drain::All`], but only while `queue` has nothing to record.
    WhileIdle(&'a AuditQueue),
    /// One batch.
    OneBatch,
}

/// Make AuditEvents of audit log entries, oldest first, a batch per commit that also consumes
/// the entries it made, so each becomes exactly one AuditEvent, whichever node makes it.
/// Entries it cannot read (written by a later Coplan, say) are left in the log, not consumed.
/// Returns how many were made.
pub(super) async fn make_audit_events(
    store: &dyn Store,
    compartments: &Compartments,
    drain: Drain<'_>,
) -> crate::error::FhirResult<usize> {
    let Some(mut through) = store.audit_log_last_seq().await? else {
        return Ok(0);
    };
    let mut after = 0;
    let mut made = 0;
    let mut conflicts = 0;
    loop {
        if let Drain::WhileIdle(queue) = &drain {
            if !queue.is_empty() {
                break;
            }
        }
        // Rows until about a commit's worth of AuditEvents (at least one row); the rest of
        // the range is read again next round.
        let entries = store.audit_log_range(after, through, ROWS_READ).await?;
        if entries.is_empty() {
            break;
        }
        let mut last = after;
        // Each readable row with the AuditEvents it makes.
        let mut rows: Vec<(i64, Vec<VersionWrite>)> = Vec::new();
        let mut count = 0;
        for stored in &entries {
            if count >= BATCH {
                break;
            }
            last = stored.seq;
            let Some(records) = decode(&stored.entry) else {
                tracing::error!(
                    seq = stored.seq,
                    "an audit log entry this version cannot read is left in the log"
                );
                continue;
            };
            // One entry that cannot be made now does not hold up the entries after it.
            let records = match resolved(records, compartments).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::error!(seq = stored.seq, error = ?e,
                        "the patients of an audit log entry could not be found; it is left in the log");
                    continue;
                }
            };
            if records.len() > BATCH {
                // Reads of resources in many patients' compartments: more AuditEvents than
                // one commit should make. The records go back to the log, each naming its
                // patient, in rows of a chunk (the entry consumed in the same commit), and
                // are made from those; the range now reaches them.
                match store
                    .commit(&relogged(&stored.entry.id, stored.seq, &records))
                    .await
                {
                    Ok(()) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => tracing::error!(seq = stored.seq, error = %e,
                        "an audit log entry could not be split; it is left in the log"),
                }
                through = store.audit_log_last_seq().await?.unwrap_or(through);
                continue;
            }
            let versions = records
                .iter()
                .map(|(id, record)| audit_version(record, id))
                .collect::<crate::error::FhirResult<Vec<_>>>();
            match versions {
                Ok(versions) => {
                    count += versions.len();
                    rows.push((stored.seq, versions));
                }
                Err(e) => tracing::error!(seq = stored.seq, error = ?e,
                    "an audit log entry could not be made into AuditEvents; it is left in the log"),
            }
        }
        let batch = CommitBatch {
            versions: rows.iter().flat_map(|(_, v)| v.iter().cloned()).collect(),
            consumed_audit_log: rows.iter().map(|(seq, _)| *seq).collect(),
            ..CommitBatch::default()
        };
        match store.commit(&batch).await {
            Ok(()) => {
                made += batch.versions.len();
                after = last;
                conflicts = 0;
                if matches!(drain, Drain::OneBatch) {
                    break;
                }
            }
            // Another node (or another caller here) took some of them: read the range again.
            // Failing again and again is a defect to report, not to spin on.
            Err(StoreError::Conflict { .. }) if conflicts < 8 => conflicts += 1,
            Err(e @ StoreError::Conflict { .. }) => return Err(e.into()),
            // One row the database refuses (a value it cannot index, say) must not stop every
            // row after it: commit them one by one; a row that fails alone is left in the log
            // and reported, and the rest are made.
            Err(e) if rows.len() > 1 => {
                tracing::warn!(error = %e, "a batch of AuditEvents failed; making them row by row");
                for (seq, versions) in rows {
                    let one = CommitBatch {
                        versions,
                        consumed_audit_log: vec![seq],
                        ..CommitBatch::default()
                    };
                    match store.commit(&one).await {
                        Ok(()) => made += one.versions.len(),
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => tracing::error!(
                            seq,
                            error = %e,
                            "an audit log entry could not be made into AuditEvents; it is left in the log"
                        ),
                    }
                }
                after = last;
            }
            Err(e) => {
                tracing::error!(
                    seq = last,
                    error = %e,
                    "an audit log entry could not be made into AuditEvents; it is left in the log"
                );
                after = last;
            }
        }
    }
    Ok(made)
}

/// The records of a log entry with their patients: a read recorded without them gets those of
/// the version it read. A version in several patients' compartments makes one record per
/// patient, each naming only that patient and the first keeping the record's id (the others
/// `{id}.{k}`), as the request path splits the interactions it resolves itself: no patient
/// learns from their log whose records were read alongside theirs.
async fn resolved(
    records: Vec<(String, AuditRecord)>,
    compartments: &Compartments,
) -> crate::error::FhirResult<Vec<(String, AuditRecord)>> {
    let mut out = Vec::with_capacity(records.len());
    for (id, mut record) in records {
        let Some((resource_type, resource_id, version)) = record.of_version.take() else {
            out.push((id, record));
            continue;
        };
        let patients = compartments
            .of_version(&resource_type, &resource_id, version)
            .await?
            .unwrap_or_else(|| {
                tracing::warn!(
                    resource_type,
                    id = resource_id,
                    version,
                    "a read's version is no longer stored; its AuditEvent names no patient"
                );
                Arc::from([])
            });
        if patients.len() <= 1 {
            record.patients = patients;
            out.push((id, record));
            continue;
        }
        for (k, patient) in patients.iter().enumerate() {
            let mut one = record.clone();
            one.patients = Arc::from([patient.clone()]);
            one.query = None;
            out.push((
                if k == 0 {
                    id.clone()
                } else {
                    format!("{id}.{k}")
                },
                one,
            ));
        }
    }
    Ok(out)
}

/// The commit that replaces log entry `seq` (id `entry_id`) by entries of at most a chunk of
/// `records` each, every record naming its patients (ids `{entry_id}-r{n}`: the same on every
/// node, so two nodes splitting one entry conflict on its consumption, not on new ids).
fn relogged(entry_id: &str, seq: i64, records: &[(String, AuditRecord)]) -> CommitBatch {
    let audit_log = records
        .chunks(CHUNK)
        .enumerate()
        .map(|(n, part)| {
            let mut chunk = Chunk::default();
            for (_, r) in part {
                chunk.push(&Interaction {
                    subtype: r.subtype,
                    recorded_us: r.recorded_us,
                    who: &r.who,
                    whose: Whose::Patients(&r.patients),
                    what: r.what.as_deref().map_or(Named::Nothing, Named::Text),
                    query: r.query.as_deref(),
                });
            }
            AuditLogEntry {
                id: format!("{entry_id}-r{n}"),
                recorded_us: chunk.t0(),
                record: chunk.framed(),
            }
        })
        .collect();
    CommitBatch {
        audit_log,
        consumed_audit_log: vec![seq],
        ..CommitBatch::default()
    }
}

/// Log rows read per round of [`make_audit_events`]: rows of single interactions (written
/// before rows held chunks) still make a commit's worth.
const ROWS_READ: u32 = BATCH as u32;

/// The records of a log entry, each with the id its AuditEvent gets (`{entry id}-{n}`, or the
/// entry's own id for an entry of one record in the earliest form); `None` when the entry is
/// not one [`Chunk`](super::queue::Chunk) or an earlier Coplan wrote: a chunk whose records are arrays of all
/// their fields (`[subtype, author, onBehalfOf, transmitter, clientId, patients, what, query,
/// recorded µs]`), or one such record with its time in the entry's column.
fn decode(entry: &AuditLogEntry) -> Option<Vec<(String, AuditRecord)>> {
    let value: Value = serde_json::from_slice(&entry.record).ok()?;
    let fields = value.as_array()?;
    let id = |n: usize| format!("{}-{n}", entry.id);
    match fields.first()? {
        // Form 2 is form 3 without records that name a version instead of their patients.
        Value::Number(form) if matches!(form.as_i64(), Some(2 | CHUNK_FORM)) => {
            let agents = fields
                .get(1)?
                .as_array()?
                .iter()
                .map(|agent| decode_attribution(agent.as_array()?, 0).map(Arc::new))
                .collect::<Option<Vec<_>>>()?;
            let t0 = fields.get(2)?.as_i64()?;
            fields
                .get(3)?
                .as_array()?
                .iter()
                .enumerate()
                .map(|(n, record)| {
                    let f = record.as_array()?;
                    let (subtype, action) = interaction(f.first()?.as_str()?);
                    let agent = agents.get(usize::try_from(f.get(1)?.as_u64()?).ok()?)?;
                    let what = text(f.get(3));
                    // `null` patients: those of the version that follows, of the resource
                    // `what` names (`Type/id`, `Type/id/_history/v`).
                    let (patients, of_version) = match f.get(2)? {
                        Value::Null => {
                            let mut named = what.as_deref()?.split('/');
                            let (rt, id) = (named.next()?, named.next()?);
                            let version = f.get(6)?.as_i64()?;
                            (Vec::new(), Some((rt.to_string(), id.to_string(), version)))
                        }
                        patients => (texts(patients)?, None),
                    };
                    Some((
                        id(n),
                        AuditRecord {
                            subtype,
                            action,
                            recorded_us: t0.checked_add(f.get(5)?.as_i64()?)?,
                            who: Arc::clone(agent),
                            patients: patients.into(),
                            of_version,
                            what,
                            query: text(f.get(4)),
                        },
                    ))
                })
                .collect()
        }
        // One record, its time in the entry's column.
        Value::String(_) => Some(vec![(
            entry.id.clone(),
            decode_record(fields, entry.recorded_us)?,
        )]),
        _ => fields
            .iter()
            .enumerate()
            .map(|(n, record)| {
                let fields = record.as_array()?;
                let recorded_us = fields.get(8)?.as_i64()?;
                Some((id(n), decode_record(fields, recorded_us)?))
            })
            .collect(),
    }
}

/// A string field (absent or `null`: `None`).
fn text(field: Option<&Value>) -> Option<String> {
    field.and_then(Value::as_str).map(str::to_string)
}

/// An array of strings.
fn texts(field: &Value) -> Option<Vec<String>> {
    field
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// `[author, onBehalfOf, transmitter, clientId]` from `fields[from..]`.
fn decode_attribution(fields: &[Value], from: usize) -> Option<Attribution> {
    Some(Attribution {
        author: text(fields.get(from))?,
        on_behalf_of: text(fields.get(from + 1)),
        transmitter: text(fields.get(from + 2))?,
        client_id: text(fields.get(from + 3)),
    })
}

/// A record of the earlier forms: `[subtype, author, onBehalfOf, transmitter, clientId,
/// patients, what, query, …]`.
fn decode_record(fields: &[Value], recorded_us: i64) -> Option<AuditRecord> {
    let (subtype, action) = interaction(fields.first()?.as_str()?);
    Some(AuditRecord {
        subtype,
        action,
        recorded_us,
        who: Arc::new(decode_attribution(fields, 1)?),
        patients: texts(fields.get(5)?)?.into(),
        of_version: None,
        what: text(fields.get(6)),
        query: text(fields.get(7)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rest::audit::queue::{Chunk, Interaction, Named, Whose};

    /// `Goal/g1` or `Goal/g1/_history/2` as the request path names it.
    fn named(what: Option<&str>) -> Named<'_> {
        let Some(what) = what else {
            return Named::Nothing;
        };
        let (name, version) = match what.split_once("/_history/") {
            Some((name, v)) => (name, Some(v.parse().unwrap())),
            None => (what, None),
        };
        let (resource_type, id) = name.split_once('/').unwrap();
        Named::Resource(resource_type, id, version)
    }

    /// The log entry the request path makes of `records`.
    fn encode(records: &[AuditRecord]) -> bytes::Bytes {
        let mut chunk = Chunk::default();
        for r in records {
            chunk.push(&Interaction {
                subtype: r.subtype,
                recorded_us: r.recorded_us,
                who: &r.who,
                whose: Whose::Patients(&r.patients),
                what: named(r.what.as_deref()),
                query: r.query.as_deref(),
            });
        }
        chunk.framed()
    }

    #[test]
    fn a_read_logged_without_its_patients_comes_back_with_the_version_to_resolve() {
        let who = Arc::new(Attribution {
            author: "Device/coplan".into(),
            on_behalf_of: None,
            transmitter: "Device/coplan".into(),
            client_id: None,
        });
        let mut chunk = Chunk::default();
        for (what, version) in [(None, 3), (Some(2), 2)] {
            chunk.push(&Interaction {
                subtype: if what.is_some() { "vread" } else { "read" },
                recorded_us: 10,
                who: &who,
                whose: Whose::OfVersion(version),
                what: Named::Resource("Observation", "o1", what),
                query: None,
            });
        }
        let entry = AuditLogEntry {
            id: "e".into(),
            recorded_us: 10,
            record: chunk.framed(),
        };
        let back = decode(&entry).unwrap();
        let plain: Vec<_> = back
            .iter()
            .map(|(id, r)| {
                (
                    id.as_str(),
                    r.subtype,
                    r.what.as_deref(),
                    r.patients.len(),
                    r.of_version.clone(),
                )
            })
            .collect();
        let of = |v| Some(("Observation".to_string(), "o1".to_string(), v));
        assert_eq!(
            plain,
            [
                ("e-0", "read", Some("Observation/o1"), 0, of(3)),
                ("e-1", "vread", Some("Observation/o1/_history/2"), 0, of(2)),
            ]
        );
        // Without the version, or without a resource named: not read.
        for bad in [
            &br#"[3,[["Device/coplan",null,"Device/coplan",null]],5,[["read",0,null,"Observation/o1",null,0]]]"#[..],
            br#"[3,[["Device/coplan",null,"Device/coplan",null]],5,[["read",0,null,null,null,0,3]]]"#,
        ] {
            let entry = AuditLogEntry {
                id: "e".into(),
                recorded_us: 5,
                record: bytes::Bytes::copy_from_slice(bad),
            };
            assert!(decode(&entry).is_none());
        }
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
                who: Arc::new(Attribution {
                    author: "RelatedPerson/r".into(),
                    on_behalf_of: on_behalf_of.map(String::from),
                    transmitter: "Device/app-ehr".into(),
                    client_id: Some("ehr".into()),
                }),
                patients: vec!["p1".into(), "p2".into()].into(),
                of_version: None,
                what: what.map(String::from),
                query: query.map(String::from),
            };
            let mut later = record.clone();
            later.recorded_us = 9;
            // A third record by someone else: the chunk names two agents.
            let mut other = record.clone();
            other.recorded_us = 12;
            other.who = Arc::new(Attribution {
                author: "Practitioner/d".into(),
                on_behalf_of: None,
                transmitter: "Device/app-ehr".into(),
                client_id: Some("ehr".into()),
            });
            // The same agent in an attribution of its own: still one agent in the chunk.
            let mut same = record.clone();
            same.who = Arc::new((*record.who).clone());
            let chunk = [record.clone(), later, other.clone(), same];
            let entry = AuditLogEntry {
                id: "a1".into(),
                recorded_us: 7,
                record: encode(&chunk),
            };
            let encoded: Value = serde_json::from_slice(&entry.record).unwrap();
            assert_eq!(encoded[0], CHUNK_FORM);
            assert_eq!(encoded[1].as_array().unwrap().len(), 2, "{encoded}");
            let back = decode(&entry).unwrap();
            assert_eq!(back.len(), 4);
            for (n, ((id, back), sent)) in back.into_iter().zip(&chunk).enumerate() {
                assert_eq!(id, format!("a1-{n}"));
                assert_eq!(back.subtype, sent.subtype);
                assert_eq!(back.action, sent.action);
                assert_eq!(back.who, sent.who);
                assert_eq!(
                    (back.patients, back.what, back.query, back.recorded_us),
                    (
                        sent.patients.clone(),
                        sent.what.clone(),
                        sent.query.clone(),
                        [7, 9, 12, 7][n]
                    )
                );
            }
        }
        // A chunk of the earlier form (every record with all its fields) still reads.
        let chunk_v1 = AuditLogEntry {
            id: "a3".into(),
            recorded_us: 5,
            record: bytes::Bytes::from_static(
                br#"[["read","Patient/p1",null,"Device/app-portal","portal",["p1"],"Goal/g1",null,5],["search-type","Patient/p1",null,"Device/app-portal","portal",["p1"],null,"patient=p1",6]]"#,
            ),
        };
        let back = decode(&chunk_v1).unwrap();
        assert_eq!(
            back.iter()
                .map(|(id, r)| (id.as_str(), r.subtype, r.recorded_us, r.query.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("a3-0", "read", 5, None),
                ("a3-1", "search-type", 6, Some("patient=p1"))
            ]
        );
        assert_eq!(back[1].1.who.client_id.as_deref(), Some("portal"));
        // A chunk of form 2 (before records could name a version) still reads.
        let form2 = AuditLogEntry {
            id: "a5".into(),
            recorded_us: 5,
            record: bytes::Bytes::from_static(
                br#"[2,[["Patient/p1",null,"Device/d",null]],5,[["read",0,["p1"],"Goal/g1",null,2]]]"#,
            ),
        };
        let back = decode(&form2).unwrap();
        assert_eq!(
            (
                back[0].0.as_str(),
                back[0].1.recorded_us,
                &back[0].1.patients[..]
            ),
            ("a5-0", 7, &["p1".to_string()][..])
        );
        // An agent index past the agents, or a form this version does not know: not read.
        for unknown in [
            &br#"[2,[["Patient/p1",null,"Device/d",null]],5,[["read",1,["p1"],null,null,0]]]"#[..],
            br#"[4,[],5,[]]"#,
        ] {
            let entry = AuditLogEntry {
                id: "a4".into(),
                recorded_us: 5,
                record: bytes::Bytes::copy_from_slice(unknown),
            };
            assert!(decode(&entry).is_none());
        }
        // An entry of the earlier form (one record, its time in the row) still reads.
        let earlier = AuditLogEntry {
            id: "a0".into(),
            recorded_us: 5,
            record: bytes::Bytes::from_static(
                br#"["read","Patient/p1",null,"Device/app-portal","portal",["p1"],"Goal/g1",null]"#,
            ),
        };
        let back = decode(&earlier).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, "a0");
        assert_eq!(
            (
                back[0].1.subtype,
                back[0].1.recorded_us,
                back[0].1.what.as_deref()
            ),
            ("read", 5, Some("Goal/g1"))
        );
        let garbage = AuditLogEntry {
            id: "a2".into(),
            recorded_us: 7,
            record: bytes::Bytes::from_static(b"{not json"),
        };
        assert!(decode(&garbage).is_none());
    }
}
