//! The coproduction rule table (issue "The shared care plan" §3), row by row, over real HTTP
//! with real tokens, on every backend: each side may do its part and is refused (403 naming the
//! rule) when it would rewrite or remove the other side's contribution. Backend services keep
//! plain R4. The table itself is `src/policy/coproduction/mod.rs`; the README prints it.

use crate::common::auth::*;
use coplan::config::ConfigLayer;
use serde_json::{json, Value};

struct Sides {
    patient: String,
    clinician: String,
    other_clinician: String,
    backend: String,
}

async fn setup(server: &Server) -> Sides {
    for resource in [
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Practitioner", "id": "dr1"}),
        json!({"resourceType": "Practitioner", "id": "dr2"}),
        json!({"resourceType": "Goal", "id": "mine", "lifecycleStatus": "active", "description": {"text": "Walk to the park"},
               "subject": {"reference": "Patient/p1"}, "expressedBy": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Goal", "id": "set", "lifecycleStatus": "active", "description": {"text": "HbA1c below 7%"},
               "subject": {"reference": "Patient/p1"}, "expressedBy": {"reference": "Practitioner/dr1"}}),
        json!({"resourceType": "CarePlan", "id": "plan", "status": "active", "intent": "plan",
               "subject": {"reference": "Patient/p1"}, "author": {"reference": "Practitioner/dr1"},
               "activity": [{"detail": {"status": "in-progress", "code": {"text": "daily walk"}}}]}),
        json!({"resourceType": "CareTeam", "id": "team", "status": "active", "subject": {"reference": "Patient/p1"},
               "participant": [{"role": [{"coding": [{"system": "http://snomed.info/sct", "code": "116154003"}]}], "member": {"reference": "Patient/p1"}},
                               {"member": {"reference": "Practitioner/dr1"}}]}),
    ] {
        server.seed(resource).await;
    }
    Sides {
        patient: token(
            server,
            "portal",
            "patient/*.cruds",
            Some("p1"),
            Some("Patient/p1"),
        ),
        clinician: token(
            server,
            "ehr",
            "user/*.cruds",
            None,
            Some("Practitioner/dr1"),
        ),
        other_clinician: token(
            server,
            "ehr",
            "user/*.cruds",
            None,
            Some("Practitioner/dr2"),
        ),
        backend: token(server, "sync", "system/*.cruds", None, None),
    }
}

async fn get(server: &Server, bearer: &str, path: &str) -> Value {
    let r = send(
        "GET",
        &server.url(&format!("/fhir/{path}")),
        &[("authorization", bearer)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

/// PUT `edit(current)` as `bearer`, naming the version read; the status, and the rule a 403
/// names.
async fn edit(
    server: &Server,
    bearer: &str,
    path: &str,
    change: impl Fn(&mut Value),
) -> (u16, String) {
    let mut resource = get(server, bearer, path).await;
    let etag = format!("W/\"{}\"", resource["meta"]["versionId"].as_str().unwrap());
    change(&mut resource);
    let r = send(
        "PUT",
        &server.url(&format!("/fhir/{path}")),
        &[
            ("authorization", bearer),
            ("content-type", "application/fhir+json"),
            ("if-match", &etag),
        ],
        Some(resource.to_string()),
    )
    .await;
    let diagnostics = if r.status >= 400 {
        r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    (r.status, diagnostics)
}

fn refused(result: (u16, String), rule: &str) {
    assert_eq!(
        result.0, 403,
        "expected rule {rule} to refuse: {}",
        result.1
    );
    assert!(result.1.contains(&format!("[rule {rule}:")), "{}", result.1);
}

async fn each_server<F, Fut>(story: F)
where
    F: Fn(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    for backend in coplan::testing::backends() {
        let layer = ConfigLayer::default().set("practitioners_see_all_patients", true);
        let server = Server::start_with(backend, layer).await;
        story(server).await.stop().await;
    }
}

#[tokio::test]
async fn goals_the_patient_expressed_and_goals_a_clinician_set() {
    each_server(|server| async move {
        let s = setup(&server).await;
        // goal-expressed-by-patient: clinicians note and assess, they do not rewrite.
        assert_eq!(edit(&server, &s.clinician, "Goal/mine", |g| g["note"] = json!([{"text": "good plan"}])).await.0, 200);
        assert_eq!(edit(&server, &s.clinician, "Goal/mine", |g| g["achievementStatus"] = json!({"text": "improving"})).await.0, 200);
        refused(edit(&server, &s.clinician, "Goal/mine", |g| g["description"] = json!({"text": "Run 5 km"})).await, "goal-expressed-by-patient");
        refused(edit(&server, &s.clinician, "Goal/mine", |g| g["lifecycleStatus"] = json!("cancelled")).await, "goal-expressed-by-patient");
        assert_eq!(edit(&server, &s.patient, "Goal/mine", |g| g["description"] = json!({"text": "Walk to the lake"})).await.0, 200);
        assert_eq!(edit(&server, &s.patient, "Goal/mine", |g| g["lifecycleStatus"] = json!("cancelled")).await.0, 200);

        // goal-set-by-clinician: the patient agrees or disagrees and notes; no rewriting.
        let accept = json!([{"url": "http://hl7.org/fhir/StructureDefinition/goal-acceptance",
            "extension": [{"url": "status", "valueCode": "disagree"}]}]);
        assert_eq!(edit(&server, &s.patient, "Goal/set", |g| g["extension"] = accept.clone()).await.0, 200);
        assert_eq!(edit(&server, &s.patient, "Goal/set", |g| g["note"] = json!([{"text": "too strict"}])).await.0, 200);
        refused(edit(&server, &s.patient, "Goal/set", |g| g["description"] = json!({"text": "HbA1c below 9%"})).await, "goal-set-by-clinician");
        refused(edit(&server, &s.patient, "Goal/set", |g| g["expressedBy"] = json!({"reference": "Patient/p1"})).await, "goal-set-by-clinician");
        assert_eq!(edit(&server, &s.clinician, "Goal/set", |g| g["description"] = json!({"text": "HbA1c below 7.5%"})).await.0, 200);

        // The same rules bind FHIRPath Patch.
        let current = get(&server, &s.clinician, "Goal/mine").await;
        let etag = format!("W/\"{}\"", current["meta"]["versionId"].as_str().unwrap());
        let patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Goal.description.text"},
            {"name": "value", "valueString": "Run"}]}]});
        let r = send("PATCH", &server.url("/fhir/Goal/mine"),
            &[("authorization", s.clinician.as_str()), ("content-type", "application/fhir+json"), ("if-match", &etag)],
            Some(patch.to_string())).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("goal-expressed-by-patient"), "{}", r.body);
        server
    })
    .await;
}

#[tokio::test]
async fn the_plan_its_activities_and_retiring_rather_than_deleting() {
    each_server(|server| async move {
        let s = setup(&server).await;
        refused(
            edit(&server, &s.clinician, "CarePlan/plan", |p| {
                p["subject"] = json!({"reference": "Patient/p2"})
            })
            .await,
            "plan-subject",
        );
        refused(
            edit(&server, &s.patient, "CarePlan/plan", |p| {
                p["author"] = json!({"reference": "Patient/p1"})
            })
            .await,
            "plan-authorship",
        );
        assert_eq!(
            edit(&server, &s.patient, "CarePlan/plan", |p| {
                p["contributor"] = json!([{"reference": "Patient/p1"}])
            })
            .await
            .0,
            200,
            "both sides contribute"
        );
        assert_eq!(
            edit(&server, &s.clinician, "CarePlan/plan", |p| p["author"] =
                json!({"reference": "Practitioner/dr2"}))
            .await
            .0,
            200
        );

        // Activities are added by either side and never removed; retiring one says why.
        let swim = json!({"detail": {"status": "not-started", "code": {"text": "swimming"}}});
        assert_eq!(
            edit(&server, &s.patient, "CarePlan/plan", |p| p["activity"]
                .as_array_mut()
                .unwrap()
                .push(swim.clone()))
            .await
            .0,
            200
        );
        refused(
            edit(&server, &s.clinician, "CarePlan/plan", |p| {
                p["activity"].as_array_mut().unwrap().pop();
            })
            .await,
            "plan-activities",
        );
        refused(
            edit(&server, &s.patient, "CarePlan/plan", |p| {
                p["activity"][0]["detail"]["status"] = json!("cancelled")
            })
            .await,
            "plan-activities",
        );
        assert_eq!(
            edit(&server, &s.patient, "CarePlan/plan", |p| {
                p["activity"][0]["detail"]["status"] = json!("cancelled");
                p["activity"][0]["detail"]["statusReason"] = json!({"text": "knee pain"});
            })
            .await
            .0,
            200
        );

        // no-hard-delete: the apps retire; a backend service may delete.
        for (bearer, path) in [
            (&s.patient, "Goal/mine"),
            (&s.clinician, "CarePlan/plan"),
            (&s.clinician, "CareTeam/team"),
        ] {
            let current = get(&server, bearer, path).await;
            let etag = format!("W/\"{}\"", current["meta"]["versionId"].as_str().unwrap());
            let r = send(
                "DELETE",
                &server.url(&format!("/fhir/{path}")),
                &[("authorization", bearer.as_str()), ("if-match", &etag)],
                None,
            )
            .await;
            assert_eq!(r.status, 403, "{path}: {}", r.body);
            assert!(r.body.contains("no-hard-delete"), "{}", r.body);
        }
        assert_eq!(
            edit(&server, &s.clinician, "CarePlan/plan", |p| p["status"] =
                json!("revoked"))
            .await
            .0,
            200
        );
        let r = send(
            "DELETE",
            &server.url("/fhir/Goal/mine"),
            &[("authorization", s.backend.as_str())],
            None,
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.body);
        server
    })
    .await;
}

#[tokio::test]
async fn only_clinicians_on_the_patients_active_care_team_change_its_members() {
    each_server(|server| async move {
        let s = setup(&server).await;
        let add_dr2 = |t: &mut Value| {
            t["participant"]
                .as_array_mut()
                .unwrap()
                .push(json!({"member": {"reference": "Practitioner/dr2"}}))
        };
        refused(
            edit(&server, &s.patient, "CareTeam/team", add_dr2).await,
            "team-members",
        );
        refused(
            edit(&server, &s.other_clinician, "CareTeam/team", add_dr2).await,
            "team-members",
        );
        assert_eq!(
            edit(&server, &s.clinician, "CareTeam/team", add_dr2)
                .await
                .0,
            200
        );
        // The patient sees their team and may name it.
        let team = get(&server, &s.patient, "CareTeam/team").await;
        assert_eq!(team["participant"].as_array().unwrap().len(), 3);
        assert_eq!(
            edit(&server, &s.patient, "CareTeam/team", |t| t["name"] =
                json!("Ann's team"))
            .await
            .0,
            200
        );
        server
    })
    .await;
}

/// POST `resource` as `bearer`; the status and the new resource's `Type/id`.
async fn create(server: &Server, bearer: &str, resource: Value) -> (u16, String, String) {
    let rt = resource["resourceType"].as_str().unwrap().to_string();
    let r = send(
        "POST",
        &server.url(&format!("/fhir/{rt}")),
        &[
            ("authorization", bearer),
            ("content-type", "application/fhir+json"),
        ],
        Some(resource.to_string()),
    )
    .await;
    let id = if r.status == 201 {
        format!("{rt}/{}", r.json()["id"].as_str().unwrap())
    } else {
        String::new()
    };
    (r.status, id, r.body)
}

#[tokio::test]
async fn a_goal_without_expressed_by_is_whoever_created_it() {
    each_server(|server| async move {
        let s = setup(&server).await;
        let goal = |text: &str| {
            json!({"resourceType": "Goal", "lifecycleStatus": "proposed",
                   "description": {"text": text}, "subject": {"reference": "Patient/p1"}})
        };
        // The patient's own goal, said nowhere but in the Provenance of its creation.
        let (status, patients, body) = create(&server, &s.patient, goal("Sleep 7 hours")).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(edit(&server, &s.patient, &patients, |g| g["description"] = json!({"text": "Sleep 8 hours"})).await.0, 200);
        assert_eq!(edit(&server, &s.clinician, &patients, |g| g["note"] = json!([{"text": "sounds right"}])).await.0, 200);
        refused(edit(&server, &s.clinician, &patients, |g| g["description"] = json!({"text": "Sleep 6 hours"})).await, "goal-expressed-by-patient");

        // A clinician's, the same way.
        let (status, clinicians, body) = create(&server, &s.clinician, goal("Walk daily")).await;
        assert_eq!(status, 201, "{body}");
        refused(edit(&server, &s.patient, &clinicians, |g| g["description"] = json!({"text": "Walk weekly"})).await, "goal-set-by-clinician");
        assert_eq!(edit(&server, &s.clinician, &clinicians, |g| g["description"] = json!({"text": "Walk twice daily"})).await.0, 200);

        // A goal loaded without Provenance (seed) and without expressedBy is the clinicians'.
        server
            .seed(json!({"resourceType": "Goal", "id": "loaded", "lifecycleStatus": "active",
                "description": {"text": "Imported"}, "subject": {"reference": "Patient/p1"}}))
            .await;
        refused(edit(&server, &s.patient, "Goal/loaded", |g| g["description"] = json!({"text": "Mine"})).await, "goal-set-by-clinician");

        // A Provenance a client writes claims nothing: only the server's own count.
        let forged = json!({"resourceType": "Provenance", "recorded": "2026-01-01T00:00:00Z",
            "target": [{"reference": "Goal/loaded/_history/1"}],
            "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                       "who": {"reference": "Patient/p1"}}]});
        let (status, _, body) = create(&server, &s.backend, forged).await;
        assert_eq!(status, 201, "{body}");
        refused(edit(&server, &s.patient, "Goal/loaded", |g| g["description"] = json!({"text": "Mine"})).await, "goal-set-by-clinician");
        server
    })
    .await;
}

#[tokio::test]
async fn a_patient_is_a_member_of_their_own_care_team() {
    each_server(|server| async move {
        let s = setup(&server).await;
        let without_patient = json!({"resourceType": "CareTeam", "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "Practitioner/dr1"}}]});
        let (status, _, body) = create(&server, &s.clinician, without_patient.clone()).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("[rule team-includes-patient:"), "{body}");
        let mut with_patient = without_patient.clone();
        with_patient["participant"]
            .as_array_mut()
            .unwrap()
            .push(json!({
            "role": [{"coding": [{"system": "http://snomed.info/sct", "code": "116154003"}]}],
            "member": {"reference": "Patient/p1"}}));
        let (status, team, body) = create(&server, &s.clinician, with_patient).await;
        assert_eq!(status, 201, "{body}");
        // Taking the patient off the team is refused even to a clinician on it.
        refused(
            edit(&server, &s.clinician, &team, |t| {
                t["participant"].as_array_mut().unwrap().pop();
            })
            .await,
            "team-includes-patient",
        );
        // The patient sees it; a backend service keeps plain R4.
        get(&server, &s.patient, &team).await;
        let (status, _, body) = create(&server, &s.backend, without_patient).await;
        assert_eq!(status, 201, "{body}");
        server
    })
    .await;
}

#[test]
fn the_readme_prints_the_rule_table() {
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README");
    let table = coplan::policy::coproduction::table_markdown();
    assert!(
        readme.contains(&table),
        "README.md must contain the rule table as printed by table_markdown():\n{table}"
    );
}
