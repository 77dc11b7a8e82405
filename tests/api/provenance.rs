//! Provenance on every write (issue "The shared care plan" §1), over real HTTP with real
//! tokens, on every backend: who (the token's fhirUser, the app's Device), what (the versions
//! written), when (their lastUpdated) and how (v3-DataOperation) — in the same commit as the
//! change; one per transaction; the client's `X-Provenance` adds a reason but never changes who,
//! what or when; Provenance is immutable; and a patient sees the Provenance of their own record
//! and nothing of anyone else's.

use crate::common::auth::*;
use serde_json::{json, Value};

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("authorization", bearer),
        ("content-type", "application/fhir+json"),
    ];
    headers.extend_from_slice(extra);
    send(
        method,
        &server.url(&format!("/fhir/{path}")),
        &headers,
        body.map(|b| b.to_string()),
    )
    .await
}

/// The Provenance whose target is `reference` (a versioned reference).
async fn provenance_of(server: &Server, system: &str, reference: &str) -> Vec<Value> {
    let unversioned = reference.split("/_history/").next().unwrap();
    let found = call(
        server,
        "GET",
        &format!("Provenance?target={unversioned}"),
        system,
        None,
        &[],
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    found.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|p| {
            p["target"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["reference"] == reference)
        })
        .collect()
}

fn agent<'a>(provenance: &'a Value, kind: &str) -> &'a Value {
    provenance["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"]["coding"][0]["code"] == kind)
        .unwrap_or_else(|| panic!("no {kind} agent in {provenance}"))
}

fn activity(provenance: &Value) -> &str {
    provenance["activity"]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

async fn seed_patients(server: &Server) {
    for id in ["p1", "p2"] {
        server
            .seed(json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]}))
            .await;
    }
    server
        .seed(json!({"resourceType": "Practitioner", "id": "dr1"}))
        .await;
    server.seed(json!({"resourceType": "RelatedPerson", "id": "carer1", "patient": {"reference": "Patient/p1"}})).await;
}

#[tokio::test]
async fn every_write_records_who_what_when_and_how_in_the_same_commit() {
    each_backend_server(|server| async move {
        seed_patients(&server).await;
        let system = token(&server, "admin", "system/*.cruds", None, None);
        let patient = token(&server, "portal", "patient/*.cruds", Some("p1"), Some("Patient/p1"));

        // Create: author the patient, transmitter the portal's Device, recorded = lastUpdated.
        let goal = json!({"resourceType": "Goal", "lifecycleStatus": "proposed",
            "description": {"text": "Walk to the park"}, "subject": {"reference": "Patient/p1"},
            "expressedBy": {"reference": "Patient/p1"}});
        let created = call(&server, "POST", "Goal", &patient, Some(goal.clone()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let created = created.json();
        let id = created["id"].as_str().unwrap().to_string();
        let first = provenance_of(&server, &system, &format!("Goal/{id}/_history/1")).await;
        assert_eq!(first.len(), 1, "{first:?}");
        let p = &first[0];
        assert_eq!(p["recorded"], created["meta"]["lastUpdated"]);
        assert_eq!(activity(p), "CREATE");
        assert_eq!(agent(p, "author")["who"]["reference"], "Patient/p1");
        assert_eq!(agent(p, "transmitter")["who"]["reference"], "Device/app-portal");
        let device = call(&server, "GET", "Device/app-portal", &system, None, &[]).await;
        assert_eq!(device.status, 200, "the app's Device exists: {}", device.body);
        assert_eq!(device.json()["identifier"][0]["value"], "portal");

        // Update, patch and delete each record theirs, naming the version they wrote.
        let mut changed = created.clone();
        changed["lifecycleStatus"] = json!("active");
        let r = call(&server, "PUT", &format!("Goal/{id}"), &patient, Some(changed), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let patch = json!([{"op": "add", "path": "/note", "value": [{"text": "with Ann"}]}]);
        let r = send("PATCH", &server.url(&format!("/fhir/Goal/{id}")),
            &[("authorization", patient.as_str()), ("content-type", "application/json-patch+json"), ("if-match", "W/\"2\"")],
            Some(patch.to_string())).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = call(&server, "DELETE", &format!("Goal/{id}"), &system, None, &[]).await;
        assert_eq!(r.status, 204, "{}", r.body);
        for (version, expected, author) in [
            (2, "UPDATE", "Patient/p1"),
            (3, "UPDATE", "Patient/p1"),
            (4, "DELETE", "Device/app-admin"),
        ] {
            let found = provenance_of(&server, &system, &format!("Goal/{id}/_history/{version}")).await;
            assert_eq!(found.len(), 1, "version {version}: {found:?}");
            assert_eq!(activity(&found[0]), expected);
            assert_eq!(agent(&found[0], "author")["who"]["reference"], author);
        }
        // A backend service is author and transmitter as its own Device.
        let deleted = provenance_of(&server, &system, &format!("Goal/{id}/_history/4")).await;
        assert_eq!(agent(&deleted[0], "transmitter")["who"]["reference"], "Device/app-admin");

        // A carer (RelatedPerson) acts on behalf of the patient.
        let carer = token(&server, "carer-app", "patient/*.cruds", Some("p1"), Some("RelatedPerson/carer1"));
        let r = call(&server, "POST", "Goal", &carer, Some(goal.clone()), &[]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let found = provenance_of(&server, &system, &format!("Goal/{}/_history/1", r.json()["id"].as_str().unwrap())).await;
        let author = agent(&found[0], "author");
        assert_eq!(author["who"]["reference"], "RelatedPerson/carer1");
        assert_eq!(author["onBehalfOf"]["reference"], "Patient/p1");

        // A write that fails leaves no Provenance.
        let before = call(&server, "GET", "Provenance?_summary=count", &system, None, &[]).await.json()["total"].clone();
        let invalid = json!({"resourceType": "Goal", "lifecycleStatus": "bogus", "description": {"text": "x"}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(call(&server, "POST", "Goal", &patient, Some(invalid), &[]).await.status, 400);
        let after = call(&server, "GET", "Provenance?_summary=count", &system, None, &[]).await.json()["total"].clone();
        assert_eq!(before, after);
        server
    })
    .await;
}

#[tokio::test]
async fn a_transaction_gets_one_provenance_listing_every_entry() {
    each_backend_server(|server| async move {
        seed_patients(&server).await;
        let system = token(&server, "admin", "system/*.cruds", None, None);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:5f1c6f8e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "Sleep"}, "subject": {"reference": "Patient/p1"}},
             "request": {"method": "POST", "url": "Goal"}},
            {"resource": {"resourceType": "CarePlan", "id": "plan1", "status": "active", "intent": "plan", "subject": {"reference": "Patient/p1"},
                          "goal": [{"reference": "urn:uuid:5f1c6f8e-0000-4000-8000-000000000001"}]},
             "request": {"method": "PUT", "url": "CarePlan/plan1"}}
        ]});
        let r = call(&server, "POST", "", &system, Some(bundle), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let found = provenance_of(&server, &system, "CarePlan/plan1/_history/1").await;
        assert_eq!(found.len(), 1);
        let targets: Vec<&str> = found[0]["target"].as_array().unwrap().iter().map(|t| t["reference"].as_str().unwrap()).collect();
        assert_eq!(targets.len(), 2, "{targets:?}");
        assert!(targets[0].starts_with("Goal/") && targets[1] == "CarePlan/plan1/_history/1", "{targets:?}");
        assert_eq!(activity(&found[0]), "CREATE");
        server
    })
    .await;
}

#[tokio::test]
async fn x_provenance_adds_a_reason_but_never_changes_who_what_or_when() {
    each_backend_server(|server| async move {
        seed_patients(&server).await;
        let system = token(&server, "admin", "system/*.cruds", None, None);
        let patient = token(&server, "portal", "patient/*.cruds", Some("p1"), Some("Patient/p1"));
        let goal = json!({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
            "description": {"text": "Sleep"}, "subject": {"reference": "Patient/p1"}});
        let supplied = json!({"resourceType": "Provenance", "reason": [{"text": "agreed at my review"}],
            "agent": [{"who": {"reference": "Patient/p1"}}], "target": [{"reference": "Goal/g1"}]}).to_string();
        server.seed(goal.clone()).await;
        let r = call(&server, "PUT", "Goal/g1", &patient, Some(goal.clone()), &[("x-provenance", &supplied), ("if-match", "W/\"1\"")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let found = provenance_of(&server, &system, "Goal/g1/_history/2").await;
        assert_eq!(found[0]["reason"][0]["text"], "agreed at my review");

        // Claiming to be someone else, or to write something else, is refused, and nothing is
        // written.
        for spoof in [
            json!({"resourceType": "Provenance", "agent": [{"who": {"reference": "Practitioner/dr1"}}]}),
            json!({"resourceType": "Provenance", "target": [{"reference": "Goal/other"}]}),
            json!({"resourceType": "Provenance", "recorded": "2020-01-01T00:00:00Z"}),
            json!({"resourceType": "Provenance", "signature": [{"type": [{"code": "1.2.840.10065.1.12.1.1"}]}]}),
        ] {
            let r = call(&server, "PUT", "Goal/g1", &patient, Some(goal.clone()), &[("x-provenance", &spoof.to_string()), ("if-match", "W/\"2\"")]).await;
            assert_eq!(r.status, 400, "{spoof}: {}", r.body);
            assert_eq!(r.json()["resourceType"], "OperationOutcome");
        }
        let current = call(&server, "GET", "Goal/g1", &system, None, &[]).await;
        assert_eq!(current.json()["meta"]["versionId"], "2", "no refused write was stored");
        server
    })
    .await;
}

#[tokio::test]
async fn provenance_is_immutable_and_a_patient_sees_only_their_own() {
    each_backend_server(|server| async move {
        seed_patients(&server).await;
        let system = token(&server, "admin", "system/*.cruds", None, None);
        let p1 = token(&server, "portal", "patient/*.cruds", Some("p1"), Some("Patient/p1"));
        let p2 = token(&server, "portal", "patient/*.cruds", Some("p2"), Some("Patient/p2"));
        for (bearer, patient, plan) in [(&p1, "p1", "plan1"), (&p2, "p2", "plan2")] {
            let body = json!({"resourceType": "CarePlan", "id": plan, "status": "active", "intent": "plan",
                "subject": {"reference": format!("Patient/{patient}")}});
            server.seed(body.clone()).await;
            let r = call(&server, "PUT", &format!("CarePlan/{plan}"), bearer, Some(body), &[("if-match", "W/\"1\"")]).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        // p1's plan with every change to it, and nothing about p2's.
        let mine = call(&server, "GET", "CarePlan?patient=p1&_revinclude=Provenance:target", &p1, None, &[]).await;
        assert_eq!(mine.status, 200, "{}", mine.body);
        let included: Vec<Value> = mine.json()["entry"].as_array().unwrap().iter()
            .filter(|e| e["search"]["mode"] == "include").map(|e| e["resource"].clone()).collect();
        let mut targets: Vec<&str> = included.iter().map(|p| p["target"][0]["reference"].as_str().unwrap()).collect();
        targets.sort();
        assert_eq!(targets, ["CarePlan/plan1/_history/1", "CarePlan/plan1/_history/2"]);
        let provenance_ids = |reply: &Reply| -> Vec<String> {
            reply.json()["entry"].as_array().into_iter().flatten()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect()
        };
        let all_mine = call(&server, "GET", "Provenance", &p1, None, &[]).await;
        assert_eq!(all_mine.status, 200, "{}", all_mine.body);
        let theirs = call(&server, "GET", "Provenance?patient=p2", &system, None, &[]).await;
        let theirs = provenance_ids(&theirs);
        assert!(!theirs.is_empty());
        for id in &theirs {
            assert!(!provenance_ids(&all_mine).contains(id), "p1 sees p2's Provenance {id}");
            let read = call(&server, "GET", &format!("Provenance/{id}"), &p1, None, &[]).await;
            assert_eq!(read.status, 404, "never a hint: {}", read.body);
        }
        let searched = call(&server, "GET", "Provenance?patient=p2", &p1, None, &[]).await;
        assert!(provenance_ids(&searched).is_empty() || searched.status == 403, "{}", searched.body);

        // One commit touching both patients' records: each sees only their part of it.
        let both = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "a"}, "subject": {"reference": "Patient/p1"}},
             "request": {"method": "POST", "url": "Goal"}},
            {"resource": {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "b"}, "subject": {"reference": "Patient/p2"}},
             "request": {"method": "POST", "url": "Goal"}}]});
        let r = call(&server, "POST", "", &system, Some(both), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let p2_goal = r.json()["entry"][1]["response"]["location"].as_str().unwrap().to_string();
        let p2_goal = p2_goal.split("/_history").next().unwrap().rsplit("/fhir/").next().unwrap().to_string();
        let seen = call(&server, "GET", "Provenance?_count=100", &p1, None, &[]).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        assert!(!seen.body.contains("Patient/p2"), "{}", seen.body);
        assert!(!seen.body.contains(&p2_goal), "p1 never sees p2's goal {p2_goal}: {}", seen.body);
        let by_target = call(&server, "GET", &format!("Provenance?target={p2_goal}"), &p1, None, &[]).await;
        assert!(by_target.json().get("entry").is_none(), "{}", by_target.body);

        // The server's Provenance ids cannot be taken in advance.
        let squat = json!({"resourceType": "Provenance", "target": [{"reference": "CarePlan/plan1"}],
            "recorded": "2026-01-01T00:00:00Z", "agent": [{"who": {"reference": "Device/app-admin"}}]});
        let r = call(&server, "PUT", "Provenance/0123456789abcdef0123456789abcdef", &system,
            Some(json!({"id": "0123456789abcdef0123456789abcdef"}).as_object().unwrap().iter()
                .fold(squat, |mut v, (k, x)| { v[k] = x.clone(); v })), &[]).await;
        assert_eq!(r.status, 403, "{}", r.body);

        // A patient's app cannot write a record claiming someone else did something.
        for forged in [
            json!({"resourceType": "Provenance", "target": [{"reference": "CarePlan/plan1"}],
                   "recorded": "2026-01-01T00:00:00Z",
                   "agent": [{"who": {"reference": "Practitioner/dr1"}}]}),
            json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
                   "agent": [{"who": {"reference": "Practitioner/dr1"}, "requestor": true}],
                   "source": {"observer": {"reference": "Device/coplan"}},
                   "entity": [{"what": {"reference": "Patient/p1"}}]}),
        ] {
            let rt = forged["resourceType"].as_str().unwrap().to_string();
            let r = call(&server, "POST", &rt, &p1, Some(forged), &[]).await;
            assert_eq!(r.status, 403, "{rt}: {}", r.body);
        }

        // Nobody changes or deletes a Provenance, not even a backend service.
        let id = &theirs[0];
        let current = call(&server, "GET", &format!("Provenance/{id}"), &system, None, &[]).await.json();
        let put = call(&server, "PUT", &format!("Provenance/{id}"), &system, Some(current), &[]).await;
        assert_eq!(put.status, 405, "{}", put.body);
        let patch = send("PATCH", &server.url(&format!("/fhir/Provenance/{id}")),
            &[("authorization", system.as_str()), ("content-type", "application/json-patch+json")],
            Some(json!([{"op": "remove", "path": "/agent"}]).to_string())).await;
        assert_eq!(patch.status, 405, "{}", patch.body);
        let delete = call(&server, "DELETE", &format!("Provenance/{id}"), &system, None, &[]).await;
        assert_eq!(delete.status, 405, "{}", delete.body);
        server
    })
    .await;
}
