//! An AuditEvent resource as stored (R4 auditevent.html; IHE Basic Audit Log Patterns): its
//! content from one recorded interaction, and its search index rows built directly.

use super::AuditRecord;
use crate::rest::meta::stamp;
use crate::rest::provenance::SERVER_DEVICE_ID;
use crate::store::index::IndexRow;
use crate::store::{Expected, VersionWrite, WriteMethod};
use crate::validate::CheckedResource;
use base64::Engine;
use fhir_primitives::format_instant;
use serde_json::{json, Value};

/// The stored version of one AuditEvent. Built here rather than through the generic write
/// path: at tens of thousands of reads a second the FHIRPath extraction and re-validation of
/// a resource the server itself composed were most of the cost. [`index_rows`] gives exactly
/// the rows the extraction would (a test compares them), and the content's shape is checked
/// against the R4 model by a test, not on every event.
pub(super) fn audit_version(r: &AuditRecord, id: &str) -> crate::error::FhirResult<VersionWrite> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::rest::provenance::Attribution;
    use std::sync::Arc;

    #[test]
    fn an_audit_event_names_who_what_and_whose() {
        let record = AuditRecord {
            subtype: "read",
            action: "R",
            recorded_us: 1_767_225_600_000_000,
            who: Arc::new(Attribution {
                author: "Practitioner/dr".into(),
                on_behalf_of: None,
                transmitter: "Device/app-ehr".into(),
                client_id: Some("ehr".into()),
            }),
            patients: vec!["p1".into()].into(),
            of_version: None,
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
                who: Arc::new(who),
                patients: patients.into_iter().map(String::from).collect(),
                of_version: None,
                what: what.map(String::from),
                query: query.map(String::from),
            };
            let version = audit_version(&record, "a1").unwrap();
            let stored: Value = serde_json::from_slice(version.body.as_ref().unwrap()).unwrap();
            let extracted = crate::rest::search::params::R4SearchParams::default()
                .index_rows(&stored)
                .unwrap();
            assert_eq!(version.index, extracted, "record {i}");
            crate::validate::check_resource(stored, "AuditEvent").unwrap();
        }
    }
}
