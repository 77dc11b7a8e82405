//! No lost update between patient and clinician (issue "The shared care plan" §2), over real
//! HTTP with real tokens, on every backend: changes to the shared plan's types by the
//! co-editing apps must name the version they replace; backend services keep plain R4 unless
//! configured otherwise; and a patient app and a clinician app editing one plan and goal at the
//! same moment for 100 rounds lose nothing.

use crate::common::auth::*;
use coplan::config::ConfigLayer;
use serde_json::{json, Value};

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let content_type = if method == "PATCH" {
        "application/json-patch+json"
    } else {
        "application/fhir+json"
    };
    let mut headers = vec![("authorization", bearer), ("content-type", content_type)];
    headers.extend_from_slice(extra);
    send(
        method,
        &server.url(&format!("/fhir/{path}")),
        &headers,
        body.map(Value::to_string),
    )
    .await
}

async fn seed_plan(server: &Server) {
    server
        .seed(json!({"resourceType": "Patient", "id": "p1"}))
        .await;
    server
        .seed(json!({"resourceType": "Practitioner", "id": "dr1"}))
        .await;
    server
        .seed(
            json!({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
        "description": {"text": "Walk to the park"}, "subject": {"reference": "Patient/p1"}}),
        )
        .await;
    server
        .seed(
            json!({"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/p1"}, "goal": [{"reference": "Goal/g1"}]}),
        )
        .await;
    server
        .seed(
            json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"text": "steps"}, "subject": {"reference": "Patient/p1"}}),
        )
        .await;
}

/// Servers on every backend with `layer` (clinicians reach every patient, so a user/ token of
/// Practitioner/dr1 co-edits p1's plan without a CareTeam).
async fn each_server<F, Fut>(layer: ConfigLayer, story: F)
where
    F: Fn(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    for backend in coplan::testing::backends() {
        let layer = layer.clone().set("practitioners_see_all_patients", true);
        let server = Server::start_with(backend, layer).await;
        story(server).await.stop().await;
    }
}

#[tokio::test]
async fn co_editing_apps_must_name_the_version_they_replace() {
    each_server(ConfigLayer::default(), |server| async move {
        seed_plan(&server).await;
        let patient = token(&server, "portal", "patient/*.cruds", Some("p1"), Some("Patient/p1"));
        let clinician = token(&server, "ehr", "user/*.cruds", None, Some("Practitioner/dr1"));
        let backend = token(&server, "sync", "system/*.cruds", None, None);
        let goal = call(&server, "GET", "Goal/g1", &patient, None, &[]).await.json();

        // Without If-Match: 412, saying what to do; nothing is written.
        for bearer in [&patient, &clinician] {
            let r = call(&server, "PUT", "Goal/g1", bearer, Some(&goal), &[]).await;
            assert_eq!(r.status, 412, "{}", r.body);
            let text = r.json()["issue"][0]["diagnostics"].as_str().unwrap().to_string();
            assert!(text.contains("If-Match") && text.contains("W/\"1\""), "{text}");
        }
        let patch = json!([{"op": "add", "path": "/note", "value": [{"text": "x"}]}]);
        assert_eq!(call(&server, "PATCH", "Goal/g1", &patient, Some(&patch), &[]).await.status, 412);
        assert_eq!(call(&server, "DELETE", "CarePlan/cp1", &clinician, None, &[]).await.status, 412);
        assert_eq!(call(&server, "GET", "Goal/g1", &patient, None, &[]).await.json()["meta"]["versionId"], "1");

        // With it: the change is made.
        let r = call(&server, "PUT", "Goal/g1", &patient, Some(&goal), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = call(&server, "PATCH", "Goal/g1", &clinician, Some(&patch), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(r.status, 200, "{}", r.body);

        // Types outside the shared plan, and backend services, keep plain R4.
        let observation = call(&server, "GET", "Observation/o1", &patient, None, &[]).await.json();
        assert_eq!(call(&server, "PUT", "Observation/o1", &patient, Some(&observation), &[]).await.status, 200);
        let current = call(&server, "GET", "Goal/g1", &backend, None, &[]).await.json();
        assert_eq!(call(&server, "PUT", "Goal/g1", &backend, Some(&current), &[]).await.status, 200);

        // In a transaction the entry names the version in request.ifMatch.
        let current = call(&server, "GET", "Goal/g1", &patient, None, &[]).await.json();
        let version = current["meta"]["versionId"].as_str().unwrap().to_string();
        let bundle = |if_match: Option<&str>| {
            let mut request = json!({"method": "PUT", "url": "Goal/g1"});
            if let Some(v) = if_match {
                request["ifMatch"] = json!(format!("W/\"{v}\""));
            }
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": current.clone(), "request": request}]})
        };
        let r = call(&server, "POST", "", &patient, Some(&bundle(None)), &[]).await;
        assert_eq!(r.status, 412, "{}", r.body);
        assert!(r.body.contains("ifMatch"), "{}", r.body);
        let r = call(&server, "POST", "", &patient, Some(&bundle(Some(&version))), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // In a batch only that entry fails.
        let mut batch = bundle(None);
        batch["type"] = json!("batch");
        let r = call(&server, "POST", "", &clinician, Some(&batch), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.json()["entry"][0]["response"]["status"].as_str().unwrap().starts_with("412"), "{}", r.body);

        // The CapabilityStatement says so, and for whom.
        let metadata = send("GET", &server.url("/fhir/metadata"), &[], None).await.json();
        let goal_entry = metadata["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Goal").unwrap().clone();
        assert_eq!(goal_entry["versioning"], "versioned-update");
        assert!(goal_entry["documentation"].as_str().unwrap().contains("system/"));
        server
    })
    .await;
}

#[tokio::test]
async fn configured_for_every_caller_backend_services_pin_versions_too() {
    let layer = ConfigLayer::default()
        .set("require_if_match", ["Goal"])
        .set("require_if_match_for_all", true);
    each_server(layer, |server| async move {
        seed_plan(&server).await;
        let backend = token(&server, "sync", "system/*.cruds", None, None);
        let goal = call(&server, "GET", "Goal/g1", &backend, None, &[])
            .await
            .json();
        assert_eq!(
            call(&server, "PUT", "Goal/g1", &backend, Some(&goal), &[])
                .await
                .status,
            412
        );
        assert_eq!(
            call(
                &server,
                "PUT",
                "Goal/g1",
                &backend,
                Some(&goal),
                &[("if-match", "W/\"1\"")]
            )
            .await
            .status,
            200
        );
        // A PUT that creates has nothing to overwrite; CarePlan is not listed any more.
        let new_goal = json!({"resourceType": "Goal", "id": "g2", "lifecycleStatus": "active",
            "description": {"text": "Sleep"}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(
            call(&server, "PUT", "Goal/g2", &backend, Some(&new_goal), &[])
                .await
                .status,
            201
        );
        let plan = call(&server, "GET", "CarePlan/cp1", &backend, None, &[])
            .await
            .json();
        assert_eq!(
            call(&server, "PUT", "CarePlan/cp1", &backend, Some(&plan), &[])
                .await
                .status,
            200
        );
        server
    })
    .await;
}

/// One side's edit of `path`: read, append a note, write with the version read; on 412 read
/// again and re-apply. Returns the status of the first attempt.
async fn add_note(server: &Server, bearer: &str, path: &str, text: &str, first: &Value) -> u16 {
    let mut current = first.clone();
    let mut first_status = None;
    for _ in 0..5 {
        let mut edited = current.clone();
        let mut notes = edited["note"].as_array().cloned().unwrap_or_default();
        notes.push(json!({"text": text}));
        edited["note"] = Value::from(notes);
        let version = current["meta"]["versionId"].as_str().unwrap().to_string();
        let etag = format!("W/\"{version}\"");
        let r = call(
            server,
            "PUT",
            path,
            bearer,
            Some(&edited),
            &[("if-match", &etag)],
        )
        .await;
        first_status.get_or_insert(r.status);
        match r.status {
            200 => return first_status.unwrap(),
            412 => current = call(server, "GET", path, bearer, None, &[]).await.json(),
            other => panic!("{path}: {other} {}", r.body),
        }
    }
    panic!("{path}: no success after 5 attempts");
}

#[tokio::test]
async fn a_patient_and_a_clinician_editing_one_plan_at_once_lose_nothing() {
    each_server(ConfigLayer::default(), |server| async move {
        seed_plan(&server).await;
        let patient = token(
            &server,
            "portal",
            "patient/*.cruds",
            Some("p1"),
            Some("Patient/p1"),
        );
        let clinician = token(
            &server,
            "ehr",
            "user/*.cruds",
            None,
            Some("Practitioner/dr1"),
        );
        const ROUNDS: usize = 100;
        for round in 0..ROUNDS {
            let path = if round % 2 == 0 {
                "Goal/g1"
            } else {
                "CarePlan/cp1"
            };
            // Both read the same version, then both write at the same moment.
            let (seen_by_patient, seen_by_clinician) = tokio::join!(
                call(&server, "GET", path, &patient, None, &[]),
                call(&server, "GET", path, &clinician, None, &[]),
            );
            let (a, b) = (seen_by_patient.json(), seen_by_clinician.json());
            assert_eq!(a["meta"]["versionId"], b["meta"]["versionId"]);
            let (by_patient, by_clinician) =
                (format!("patient {round}"), format!("clinician {round}"));
            let (first_patient, first_clinician) = tokio::join!(
                add_note(&server, &patient, path, &by_patient, &a),
                add_note(&server, &clinician, path, &by_clinician, &b),
            );
            let mut firsts = [first_patient, first_clinician];
            firsts.sort();
            assert_eq!(
                firsts,
                [200, 412],
                "round {round}: exactly one wins, the other is told"
            );
        }
        for path in ["Goal/g1", "CarePlan/cp1"] {
            let done = call(&server, "GET", path, &patient, None, &[]).await.json();
            let notes: Vec<&str> = done["note"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["text"].as_str().unwrap())
                .collect();
            assert_eq!(
                notes.len(),
                ROUNDS,
                "{path}: every change of both sides is there"
            );
            let parity = if path == "Goal/g1" { 0 } else { 1 };
            for round in (0..ROUNDS).filter(|r| r % 2 == parity) {
                for side in ["patient", "clinician"] {
                    let text = format!("{side} {round}");
                    assert_eq!(
                        notes.iter().filter(|n| **n == text).count(),
                        1,
                        "{path}: {text}"
                    );
                }
            }
            // 1 seeded version + 2 per round on this resource.
            assert_eq!(done["meta"]["versionId"], (1 + ROUNDS).to_string());
        }
        server
    })
    .await;
}
