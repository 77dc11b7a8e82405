//! Who looked at my plan (issue "The shared care plan" §4), over real HTTP with real tokens, on
//! every backend: reads, searches and writes of patient data become AuditEvents naming who,
//! through which app, and whose data; a patient finds the ones about them and nothing about
//! anyone else; nobody changes or deletes one; a clean shutdown writes what is queued.

use crate::common::auth::*;
use coplan::config::ConfigLayer;
use serde_json::{json, Value};

async fn get(server: &Server, bearer: &str, path: &str) -> Reply {
    send(
        "GET",
        &server.url(&format!("/fhir/{path}")),
        &[("authorization", bearer)],
        None,
    )
    .await
}

fn events(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    resources(&reply.json())
}

/// The resources of a search Bundle's entries.
fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

/// A server with AuditEvents on.
async fn audited(backend: coplan::testing::Backend) -> Server {
    Server::start_with(backend, ConfigLayer::default().set("audit_events", true)).await
}

/// Seed a Patient of each id.
async fn seed_patients(server: &Server, ids: &[&str]) {
    for id in ids {
        server
            .seed(json!({"resourceType": "Patient", "id": id}))
            .await;
    }
}

fn has(events: &[Value], subtype: &str, who: &str, what: &str) -> bool {
    events.iter().any(|e| {
        e["subtype"][0]["code"] == subtype
            && e["agent"][0]["who"]["reference"] == who
            && e["entity"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["what"]["reference"] == what)
    })
}

#[tokio::test]
async fn reads_searches_and_writes_of_patient_data_are_recorded_and_only_the_patient_sees_theirs() {
    for backend in coplan::testing::backends() {
        let server = audited(backend).await;
        for id in ["p1", "p2"] {
            server
                .seed(json!({"resourceType": "Patient", "id": id}))
                .await;
            server.seed(json!({"resourceType": "Goal", "id": format!("g-{id}"), "lifecycleStatus": "active",
                "description": {"text": "walk"}, "subject": {"reference": format!("Patient/{id}")}})).await;
        }
        let clinician = token(&server, "ehr", "system/*.cruds", None, None);
        let p1 = token(
            &server,
            "portal",
            "patient/*.rs",
            Some("p1"),
            Some("Patient/p1"),
        );
        let p2 = token(
            &server,
            "portal",
            "patient/*.rs",
            Some("p2"),
            Some("Patient/p2"),
        );

        assert_eq!(get(&server, &clinician, "Goal/g-p1").await.status, 200);
        assert_eq!(
            get(&server, &clinician, "Goal?patient=p1").await.status,
            200
        );
        assert_eq!(get(&server, &p2, "Goal/g-p2").await.status, 200);
        // One search across two patients: each patient's log names only them.
        assert_eq!(
            get(&server, &clinician, "Goal?patient=p1,p2").await.status,
            200
        );
        assert_eq!(
            get(&server, &clinician, "Goal/g-p1/_history").await.status,
            200
        );
        server
            .seed(
                json!({"resourceType": "Goal", "id": "gone", "lifecycleStatus": "active",
                "description": {"text": "x"}, "subject": {"reference": "Patient/p1"}}),
            )
            .await;
        let deleted = send(
            "DELETE",
            &server.url("/fhir/Goal/gone"),
            &[("authorization", clinician.as_str())],
            None,
        )
        .await;
        assert_eq!(deleted.status, 204, "{}", deleted.body);
        server.state.fhir.flush_audit().await;

        // p1 sees who read their goal and searched their record, and the seeding writes.
        let mine = events(&get(&server, &p1, "AuditEvent?patient=p1").await);
        assert!(
            has(&mine, "read", "Device/app-ehr", "Goal/g-p1"),
            "{mine:?}"
        );
        assert!(
            has(&mine, "search-type", "Device/app-ehr", "Patient/p1"),
            "{mine:?}"
        );
        assert!(
            has(&mine, "history-instance", "Device/app-ehr", "Goal/g-p1"),
            "{mine:?}"
        );
        assert!(
            has(&mine, "delete", "Device/app-ehr", "Goal/gone/_history/2"),
            "a deletion names whose record it was: {mine:?}"
        );
        assert!(
            mine.iter().any(|e| e["action"] == "C"),
            "the writes too: {mine:?}"
        );
        let searches: Vec<&Value> = mine
            .iter()
            .filter(|e| e["subtype"][0]["code"] == "search-type")
            .collect();
        let has_query = |e: &Value| {
            e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.get("query").is_some())
        };
        // The search of p1's record carries its query; the one across p1 and p2 is recorded
        // for p1 without it (it names p2).
        assert_eq!(searches.len(), 2, "{searches:?}");
        assert_eq!(searches.iter().filter(|e| has_query(e)).count(), 1);
        // ... and nothing about p2: not in their search, not by id.
        assert!(
            !mine.iter().any(|e| e.to_string().contains("Patient/p2")),
            "{mine:?}"
        );
        let theirs = events(&get(&server, &clinician, "AuditEvent?patient=p2").await);
        let read_by_p2 = theirs
            .iter()
            .find(|e| e["agent"][0]["who"]["reference"] == "Patient/p2")
            .expect("p2's own read");
        let id = read_by_p2["id"].as_str().unwrap();
        assert_eq!(
            get(&server, &p1, &format!("AuditEvent/{id}")).await.status,
            404
        );

        // Nobody changes or deletes one.
        let mut changed = read_by_p2.clone();
        changed["outcome"] = json!("4");
        let put = send(
            "PUT",
            &server.url(&format!("/fhir/AuditEvent/{id}")),
            &[
                ("authorization", clinician.as_str()),
                ("content-type", "application/fhir+json"),
            ],
            Some(changed.to_string()),
        )
        .await;
        assert_eq!(put.status, 405, "{}", put.body);
        let delete = send(
            "DELETE",
            &server.url(&format!("/fhir/AuditEvent/{id}")),
            &[("authorization", clinician.as_str())],
            None,
        )
        .await;
        assert_eq!(delete.status, 405, "{}", delete.body);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_search_that_finds_nothing_and_everything_are_recorded_for_the_patient_asked_about() {
    for backend in coplan::testing::backends() {
        let server = audited(backend).await;
        seed_patients(&server, &["p1", "p2"]).await;
        server
            .seed(
                json!({"resourceType": "Goal", "id": "g-p1", "lifecycleStatus": "active",
            "description": {"text": "walk"}, "subject": {"reference": "Patient/p1"}}),
            )
            .await;
        let service = token(&server, "ehr", "system/*.cruds", None, None);
        let p2 = token(
            &server,
            "portal",
            "patient/*.rs",
            Some("p2"),
            Some("Patient/p2"),
        );
        let searched = |reply: Reply| {
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.json()["entry"].as_array().map_or(0, Vec::len), 0);
        };
        // Nothing found, or only counted: the question was still about p1.
        searched(get(&server, &service, "CarePlan?patient=p1").await);
        searched(
            get(
                &server,
                &service,
                "Observation?subject=Patient/p1&_summary=count",
            )
            .await,
        );
        // A patient's app that finds nothing: about that patient.
        searched(get(&server, &p2, "CarePlan").await);
        // $everything: one operation event, not a read of the Patient.
        let everything = get(&server, &service, "Patient/p1/$everything").await;
        assert_eq!(everything.status, 200, "{}", everything.body);
        server.state.fhir.flush_audit().await;

        let about_p1 = events(&get(&server, &service, "AuditEvent?patient=p1&_count=100").await);
        let queries = |events: &[Value], subtype: &str| -> Vec<String> {
            events
                .iter()
                .filter(|e| e["subtype"][0]["code"] == subtype)
                .flat_map(|e| e["entity"].as_array().unwrap().clone())
                .filter_map(|x| x["query"].as_str().map(str::to_string))
                .collect()
        };
        let mut decoded: Vec<String> = queries(&about_p1, "search-type")
            .iter()
            .map(|q| decode(q))
            .collect();
        decoded.sort();
        assert_eq!(
            decoded,
            [
                "CarePlan?patient&_count",
                "Observation?subject&_count&_summary"
            ],
            "{about_p1:?}"
        );
        assert!(
            has(&about_p1, "operation", "Device/app-ehr", "Patient/p1"),
            "{about_p1:?}"
        );
        let ops: Vec<String> = queries(&about_p1, "operation")
            .iter()
            .map(|q| decode(q))
            .collect();
        assert_eq!(ops, ["Patient/p1/$everything?_count"], "{about_p1:?}");
        assert!(
            !about_p1.iter().any(|e| e["subtype"][0]["code"] == "read"),
            "$everything is not also a read: {about_p1:?}"
        );
        let about_p2 = events(&get(&server, &service, "AuditEvent?patient=p2").await);
        assert_eq!(
            queries(&about_p2, "search-type")
                .iter()
                .map(|q| decode(q))
                .collect::<Vec<_>>(),
            ["CarePlan?_count"],
            "{about_p2:?}"
        );
        assert!(has(&about_p2, "search-type", "Patient/p2", "Patient/p2"));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_search_about_a_patient_out_of_reach_is_not_in_their_log_and_everything_names_only_its_patient(
) {
    for backend in coplan::testing::backends() {
        let server = audited(backend).await;
        seed_patients(&server, &["p1", "p2"]).await;
        // A team of p1 that p2 is on: $everything of p1 returns data in p2's record too.
        server.seed(json!({"resourceType": "CareTeam", "id": "t1", "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "Patient/p1"}}, {"member": {"reference": "Patient/p2"}}]})).await;
        let service = token(&server, "ehr", "system/*.cruds", None, None);
        let p1 = token(
            &server,
            "portal",
            "patient/*.rs",
            Some("p1"),
            Some("Patient/p1"),
        );
        // p1's app asks about p2 (finds nothing: confined to p1), and about nobody real.
        for path in ["Observation?patient=p2", "Observation?patient=nobody-here"] {
            assert_eq!(get(&server, &p1, path).await.status, 200);
        }
        // A compartment id that is not an id at all: 404, nothing recorded.
        let junk = format!("Patient/{}/Observation", "x".repeat(100));
        assert_eq!(get(&server, &service, &junk).await.status, 404);
        assert_eq!(
            get(&server, &service, "Patient/p1/$everything")
                .await
                .status,
            200
        );
        server.state.fhir.flush_audit().await;

        let about_p2 = events(&get(&server, &service, "AuditEvent?patient=p2&_count=100").await);
        assert!(
            !about_p2
                .iter()
                .any(|e| e["agent"][0]["who"]["reference"] == "Patient/p1"),
            "p1's question is not in p2's log: {about_p2:?}"
        );
        let everything: Vec<&Value> = about_p2
            .iter()
            .filter(|e| e["subtype"][0]["code"] == "operation")
            .collect();
        assert_eq!(everything.len(), 1, "{about_p2:?}");
        assert!(
            !everything[0].to_string().contains("Patient/p1"),
            "p2's event does not name p1: {}",
            everything[0]
        );
        // p1's own log has the question about them (their own app's search) and $everything.
        let about_p1 = events(&get(&server, &service, "AuditEvent?patient=p1&_count=100").await);
        assert!(has(&about_p1, "operation", "Device/app-ehr", "Patient/p1"));
        assert!(
            !about_p1
                .iter()
                .any(|e| e.to_string().contains("nobody-here")),
            "{about_p1:?}"
        );
        server.stop().await;
    }
}

/// An AuditEvent entity's `query` (base64Binary) as text.
fn decode(query: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(query)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[tokio::test]
async fn a_clean_shutdown_writes_what_is_queued() {
    for backend in coplan::testing::backends() {
        let mut server = audited(backend).await;
        seed_patients(&server, &["p1"]).await;
        let system = token(&server, "ehr", "system/*.rs", None, None);
        for _ in 0..50 {
            assert_eq!(get(&server, &system, "Patient/p1").await.status, 200);
        }
        let state = server.state.clone();
        let db = server.detach_database();
        server.stop().await;
        // The server is gone; its store holds every read.
        let found = state
            .fhir
            .search(
                &coplan::policy::Access::Unrestricted,
                &coplan::rest::search::SearchInput {
                    resource_type: "AuditEvent".into(),
                    pairs: vec![
                        ("subtype".into(), "read".into()),
                        ("_summary".into(), "count".into()),
                    ],
                    strict: true,
                    patient_compartment: None,
                },
            )
            .await
            .expect("search");
        let found: Value = serde_json::from_slice(&found).unwrap();
        assert_eq!(found["total"], 50, "{found}");
        db.cleanup().await;
    }
}

/// A read is logged with the version it read, and its patients are those whose compartments
/// that version is in, found when its AuditEvent is made (off the read's path): a resource in
/// two patients' compartments makes one event in each patient's log, naming only that
/// patient. Here the events are made by another node that never saw the reads, so the
/// compartments come from the stored version, not from a cache.
#[tokio::test]
async fn a_read_is_recorded_for_each_patient_of_the_version_it_read() {
    for backend in coplan::testing::backends() {
        let mut server = audited(backend).await;
        seed_patients(&server, &["p1", "p2"]).await;
        server
            .seed(
                json!({"resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"text": "steps"}, "subject": {"reference": "Patient/p1"},
                "performer": [{"reference": "Patient/p2"}]}),
            )
            .await;
        let system = token(&server, "ehr", "system/*.rs", None, None);
        assert_eq!(get(&server, &system, "Observation/o1").await.status, 200);
        assert_eq!(
            get(&server, &system, "Observation/o1/_history/1")
                .await
                .status,
            200
        );
        server.state.fhir.flush_audit().await;
        let db = server.detach_database();
        server.stop().await;

        let config = ConfigLayer::default().resolve().expect("config");
        let other = coplan::rest::FhirService::new(
            db.another_node().await,
            std::sync::Arc::new(coplan::clock::SystemClock),
            std::sync::Arc::new(coplan::clock::SequentialIds::new("other")),
            &config,
        );
        for (patient, not) in [("p1", "p2"), ("p2", "p1")] {
            for (subtype, what) in [
                ("read", "Observation/o1"),
                ("vread", "Observation/o1/_history/1"),
            ] {
                let found = other
                    .search(
                        &coplan::policy::Access::Unrestricted,
                        &coplan::rest::search::SearchInput {
                            resource_type: "AuditEvent".into(),
                            pairs: vec![
                                ("patient".into(), patient.into()),
                                ("subtype".into(), subtype.into()),
                            ],
                            strict: true,
                            patient_compartment: None,
                        },
                    )
                    .await
                    .expect("search");
                let found: Value = serde_json::from_slice(&found).unwrap();
                let events = resources(&found);
                assert_eq!(events.len(), 1, "{patient} {subtype}: {found}");
                let event = events[0].to_string();
                assert!(event.contains(&format!("\"Patient/{patient}\"")), "{event}");
                assert!(event.contains(&format!("\"{what}\"")), "{event}");
                assert!(!event.contains(&format!("Patient/{not}")), "{event}");
            }
        }
        db.cleanup().await;
    }
}

/// A read of a resource in more patients' compartments than one commit should make events
/// for (a Group of 300): the log entry is split into entries of a chunk each, naming their
/// patients, and every patient still gets exactly one event naming only them.
#[tokio::test]
async fn a_read_of_a_resource_in_many_compartments_makes_one_event_per_patient() {
    for backend in coplan::testing::backends() {
        let server = audited(backend).await;
        let members: Vec<Value> = (0..300)
            .map(|n| json!({"entity": {"reference": format!("Patient/m{n}")}}))
            .collect();
        let ids: Vec<String> = (0..300).map(|n| format!("m{n}")).collect();
        seed_patients(&server, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
        server
            .seed(json!({"resourceType": "Group", "id": "g", "type": "person",
                "actual": true, "member": members}))
            .await;
        let system = token(&server, "ehr", "system/*.rs", None, None);
        assert_eq!(get(&server, &system, "Group/g").await.status, 200);
        server.state.fhir.flush_audit().await;
        for _ in 0..2 {
            let all = get(&server, &system, "AuditEvent?subtype=read&_summary=count").await;
            assert_eq!(all.json()["total"], 300, "{}", all.body);
        }
        for n in [0, 150, 299] {
            let mine = events(
                &get(
                    &server,
                    &system,
                    &format!("AuditEvent?patient=m{n}&subtype=read"),
                )
                .await,
            );
            assert_eq!(mine.len(), 1, "m{n}: {mine:?}");
            assert!(has(&mine, "read", "Device/app-ehr", "Group/g"), "{mine:?}");
            let text = mine[0].to_string();
            let named = text.matches("Patient/m").count();
            assert_eq!(named, 1, "only m{n}: {text}");
        }
        // Made from the entry split in two (ids `{entry}-r{n}-{k}`; the entry may also have
        // held the Group's creation, recorded just before).
        let all = events(&get(&server, &system, "AuditEvent?subtype=read&_count=300").await);
        let from = |part: &str| {
            all.iter()
                .filter(|e| e["id"].as_str().is_some_and(|id| id.contains(part)))
                .count()
        };
        assert_eq!(all.len(), 300);
        assert_eq!(from("-r0-") + from("-r1-"), 300);
        assert!(from("-r1-") > 0);
        server.stop().await;
    }
}

/// Interactions go to the audit log first; AuditEvents are made from it when asked for. Many
/// askers at once (here, concurrent searches; in production, several nodes on one database)
/// make each interaction exactly one AuditEvent, and a read by id of an AuditEvent finds it
/// as a search does.
#[tokio::test]
async fn concurrent_askers_make_each_logged_interaction_exactly_one_audit_event() {
    for backend in coplan::testing::backends() {
        let server = audited(backend).await;
        seed_patients(&server, &["p1"]).await;
        let system = token(&server, "ehr", "system/*.rs", None, None);
        const READS: usize = 600;
        for _ in 0..READS {
            assert_eq!(get(&server, &system, "Patient/p1").await.status, 200);
        }
        server.state.fhir.flush_audit().await;
        let mut askers = Vec::new();
        for _ in 0..6 {
            let url = server.url("/fhir/AuditEvent?subtype=read&_summary=count");
            let bearer = system.clone();
            askers.push(tokio::spawn(async move {
                send("GET", &url, &[("authorization", bearer.as_str())], None).await
            }));
        }
        for asker in askers {
            let reply = asker.await.unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
            // Each asker has waited until the log was empty: all of them are there.
            assert_eq!(reply.json()["total"], READS, "{}", reply.body);
        }
        let page = events(&get(&server, &system, "AuditEvent?subtype=read&_count=1").await);
        let id = page[0]["id"].as_str().unwrap().to_string();
        let by_id = get(&server, &system, &format!("AuditEvent/{id}")).await;
        assert_eq!(by_id.status, 200, "{}", by_id.body);
        assert_eq!(by_id.json()["entity"][0]["what"]["reference"], "Patient/p1");
        server.stop().await;
    }
}

/// An audit log entry this version cannot read (written by a later Coplan during a rolling
/// upgrade, say) stays in the log for a node that can; the entries around it become
/// AuditEvents and AuditEvent searches are served.
#[tokio::test]
async fn an_entry_this_version_cannot_read_stays_in_the_log_and_the_rest_are_served() {
    crate::common::each_backend(|app| async move {
        let store = app.db.as_ref().unwrap().store.clone();
        let entry = |id: &str, record: &str| coplan::store::AuditLogEntry {
            id: id.into(),
            recorded_us: 1_767_225_600_000_000,
            record: bytes::Bytes::from(record.to_string()),
        };
        let readable =
            r#"["read","Patient/p1",null,"Device/app-portal","portal",["p1"],"Patient/p1",null]"#;
        store
            .commit(&coplan::store::CommitBatch {
                audit_log: vec![
                    entry("before", readable),
                    entry("future", r#"{"format":2}"#),
                    entry("after", readable),
                ],
                ..Default::default()
            })
            .await
            .unwrap();
        let found = app.get("/fhir/AuditEvent?patient=p1").await;
        assert_eq!(found.status, 200, "{}", found.text());
        let ids: Vec<String> = found.json()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&"before".to_string()) && ids.contains(&"after".to_string()));
        let left = store.audit_log_range(0, i64::MAX, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].entry.id, "future");
        app
    })
    .await;
}
