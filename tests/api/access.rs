//! Access enforcement on every FHIR interaction (SMART App Launch 2.2 scopes, R4 Patient
//! compartment): 401 without a valid token, 403 when no scope allows the interaction, 404 for
//! anything outside the caller's compartments — and no way around it through search,
//! includes, chains, `_has`, history, `$everything`, conditional interactions, bundles or the
//! references a write makes. Tokens are verified by a table of test grants (the JWT verifier
//! has its own tests); everything else is the real router on each backend.

use crate::common::{each_backend, TestApp, TestResponse};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use coplan::policy::{BearerVerifier, Grant, InvalidToken};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Tokens → grants.
struct TestGrants(HashMap<&'static str, Grant>);

#[async_trait]
impl BearerVerifier for TestGrants {
    async fn verify(&self, token: &str) -> Result<Grant, InvalidToken> {
        self.0
            .get(token)
            .cloned()
            .ok_or_else(|| InvalidToken("unknown test token".into()))
    }
}

fn grant(scope: &str, patient: Option<&str>, fhir_user: Option<&str>) -> Grant {
    Grant {
        client_id: "test-app".into(),
        subject: "test-user".into(),
        scope: scope.into(),
        patient: patient.map(str::to_string),
        fhir_user: fhir_user.map(str::to_string),
        expires_at: i64::MAX,
    }
}

fn grants() -> TestGrants {
    TestGrants(HashMap::from([
        ("admin", grant("system/*.cruds", None, None)),
        ("backend-read", grant("system/*.rs", None, None)),
        ("p1-read", grant("patient/*.rs", Some("p1"), None)),
        ("p1-v1-read", grant("patient/*.read", Some("p1"), None)),
        ("p1-all", grant("patient/*.cruds", Some("p1"), None)),
        ("p1-careplan-only", grant("patient/CarePlan.rs", Some("p1"), None)),
        (
            "p1-surveys",
            grant(
                "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
                Some("p1"),
                None,
            ),
        ),
        (
            "dr-user",
            grant("user/*.cruds", None, Some("Practitioner/dr1")),
        ),
        (
            "relative-user",
            grant("user/*.rs", None, Some("RelatedPerson/rp1")),
        ),
        ("no-patient", grant("patient/*.rs", None, None)),
        ("p1-read-no-search", grant("patient/*.r", Some("p1"), None)),
        (
            "dr-nobody",
            grant("user/*.rs", None, Some("Practitioner/dr-none")),
        ),
    ]))
}

struct Client<'a> {
    app: &'a TestApp,
    token: &'a str,
}

impl Client<'_> {
    async fn send(&self, method: Method, uri: &str, body: Option<&Value>) -> TestResponse {
        let auth = format!("Bearer {}", self.token);
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        let mut headers = vec![("authorization", auth.as_str())];
        if bytes.is_some() {
            headers.push(("content-type", "application/fhir+json"));
        }
        // Like a co-editing app, name the version read (the shared plan requires it).
        let etag = body
            .and_then(|b| b["meta"]["versionId"].as_str())
            .map(|v| format!("W/\"{v}\""));
        if let Some(etag) = &etag {
            headers.push(("if-match", etag.as_str()));
        }
        self.app
            .request(method, uri, &headers, bytes.as_deref())
            .await
    }
    async fn get(&self, uri: &str) -> TestResponse {
        self.send(Method::GET, uri, None).await
    }
    async fn put(&self, uri: &str, body: &Value) -> TestResponse {
        self.send(Method::PUT, uri, Some(body)).await
    }
    async fn post(&self, uri: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, uri, Some(body)).await
    }
}

fn as_<'a>(app: &'a TestApp, token: &'a str) -> Client<'a> {
    Client { app, token }
}

fn ids(bundle: &Value) -> Vec<String> {
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["resource"]["resourceType"] != "OperationOutcome")
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or("?"),
                        e["resource"]["id"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

const SURVEY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Two patients with a plan, goals, observations and care teams each; a practitioner on each
/// team; a relative of patient 1.
async fn world(app: &TestApp) {
    let admin = as_(app, "admin");
    let resources = vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Alpha"}], "birthDate": "1980-01-01"}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Beta"}], "birthDate": "1970-07-07"}),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "One"}]}),
        json!({"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Two"}]}),
        json!({"resourceType": "CareTeam", "id": "ct1", "status": "active", "subject": {"reference": "Patient/p1"},
               "participant": [{"member": {"reference": "Practitioner/dr1"}}]}),
        json!({"resourceType": "CareTeam", "id": "ct2", "status": "active", "subject": {"reference": "Patient/p2"},
               "participant": [{"member": {"reference": "Practitioner/dr2"}}]}),
        json!({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active", "description": {"text": "walk"},
               "subject": {"reference": "Patient/p1"}, "identifier": [{"system": "urn:goals", "value": "g1"}]}),
        json!({"resourceType": "Goal", "id": "g2", "lifecycleStatus": "on-hold", "description": {"text": "sleep"},
               "subject": {"reference": "Patient/p2"}, "identifier": [{"system": "urn:goals", "value": "g2"}]}),
        // cp1 names patient 2 as a performer (so it is in both compartments) and links g2,
        // which patient 1 must still never see through it.
        json!({"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
               "subject": {"reference": "Patient/p1"}, "goal": [{"reference": "Goal/g1"}, {"reference": "Goal/g2"}],
               "careTeam": [{"reference": "CareTeam/ct1"}]}),
        json!({"resourceType": "CarePlan", "id": "cp2", "status": "active", "intent": "plan",
               "subject": {"reference": "Patient/p2"}, "goal": [{"reference": "Goal/g2"}]}),
        json!({"resourceType": "Observation", "id": "o1s", "status": "final",
               "category": [{"coding": [{"system": SURVEY, "code": "survey"}]}],
               "code": {"text": "PHQ-9"}, "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Observation", "id": "o1v", "status": "final",
               "category": [{"coding": [{"system": SURVEY, "code": "vital-signs"}]}],
               "code": {"text": "BP"}, "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Observation", "id": "o2s", "status": "final",
               "category": [{"coding": [{"system": SURVEY, "code": "survey"}]}],
               "code": {"text": "PHQ-9"}, "subject": {"reference": "Patient/p2"}}),
        json!({"resourceType": "RelatedPerson", "id": "rp1", "patient": {"reference": "Patient/p1"}}),
    ];
    for r in resources {
        let uri = format!(
            "/fhir/{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        let resp = admin.put(&uri, &r).await;
        assert!(
            resp.status.is_success(),
            "{uri}: {} {}",
            resp.status,
            resp.text()
        );
    }
}

async fn secured(app: TestApp) -> TestApp {
    let mut app = app;
    app.state = app.state.clone().with_verifier(Arc::new(grants()));
    world(&app).await;
    app
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let none = app.get("/fhir/CarePlan/cp1").await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            none.header("www-authenticate"),
            Some("Bearer realm=\"coplan\"")
        );
        assert_eq!(none.json()["resourceType"], "OperationOutcome");
        let bad = as_(&app, "forged").get("/fhir/CarePlan/cp1").await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        assert!(bad
            .header("www-authenticate")
            .unwrap_or("")
            .contains("error=\"invalid_token\""));
        let basic = app
            .request(
                Method::GET,
                "/fhir/CarePlan",
                &[("authorization", "Basic dXNlcjpwdw==")],
                None,
            )
            .await;
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        for uri in [
            "/fhir/CarePlan",
            "/fhir/_history",
            "/fhir/Patient/p1/$everything",
            "/fhir/Patient/p1/Goal",
        ] {
            assert_eq!(app.get(uri).await.status, StatusCode::UNAUTHORIZED, "{uri}");
        }
        let write = app
            .post_json("/fhir/Goal", &json!({"resourceType": "Goal"}))
            .await;
        assert_eq!(write.status, StatusCode::UNAUTHORIZED);
        // Discovery stays open.
        assert_eq!(app.get("/fhir/metadata").await.status, StatusCode::OK);
        app
    })
    .await;
}

#[tokio::test]
async fn patient_scopes_confine_reads_and_searches_to_the_launch_patient() {
    each_backend(|app| async move {
        let app = secured(app).await;
        for token in ["p1-read", "p1-v1-read"] {
            let p1 = as_(&app, token);
            assert_eq!(p1.get("/fhir/CarePlan/cp1").await.status, StatusCode::OK);
            let other = p1.get("/fhir/CarePlan/cp2").await;
            let missing = p1.get("/fhir/CarePlan/nope").await;
            assert_eq!(other.status, StatusCode::NOT_FOUND);
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
            assert_eq!(
                other.diagnostics().replace("cp2", "X"),
                missing.diagnostics().replace("nope", "X"),
                "another patient's resource must look exactly like a missing one"
            );
            assert_eq!(
                p1.get("/fhir/CarePlan/cp2/_history/1").await.status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                p1.get("/fhir/Patient/p2").await.status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(p1.get("/fhir/Patient/p1").await.status, StatusCode::OK);
            // Types outside the Patient compartment are readable with the scope.
            assert_eq!(
                p1.get("/fhir/Practitioner/dr2").await.status,
                StatusCode::OK
            );

            assert_eq!(
                ids(&p1.get("/fhir/CarePlan").await.json()),
                vec!["CarePlan/cp1"]
            );
            assert!(ids(&p1.get("/fhir/CarePlan?subject=Patient/p2").await.json()).is_empty());
            assert!(ids(&p1.get("/fhir/Goal?identifier=urn:goals|g2").await.json()).is_empty());
            assert_eq!(
                ids(&p1.get("/fhir/Patient").await.json()),
                vec!["Patient/p1"]
            );
            assert!(ids(&p1.get("/fhir/Patient/p2/CarePlan").await.json()).is_empty());
            let post = app
                .request(
                    Method::POST,
                    "/fhir/Goal/_search",
                    &[
                        ("authorization", &format!("Bearer {token}")),
                        ("content-type", "application/x-www-form-urlencoded"),
                    ],
                    Some(b"lifecycle-status=active"),
                )
                .await;
            assert_eq!(ids(&post.json()), vec!["Goal/g1"]);
        }
        // A token without any search scope learns nothing from system history.
        let no_search = as_(&app, "p1-read-no-search");
        assert_eq!(
            no_search.get("/fhir/_history").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            no_search.get("/fhir/CarePlan/cp1").await.status,
            StatusCode::OK
        );
        // patient/ scopes without a launch patient reach nothing.
        assert_eq!(
            as_(&app, "no-patient").get("/fhir/CarePlan").await.status,
            StatusCode::FORBIDDEN
        );
        app
    })
    .await;
}

#[tokio::test]
async fn includes_chains_and_has_cannot_reach_other_patients() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-read");
        // cp1 links g2 (patient 2's goal): the include leaves it out.
        let included = p1
            .get("/fhir/CarePlan?_id=cp1&_include=CarePlan:goal")
            .await
            .json();
        assert_eq!(ids(&included), vec!["CarePlan/cp1", "Goal/g1"]);
        let iterate = p1
            .get("/fhir/Goal?_id=g1&_revinclude=CarePlan:goal&_include:iterate=CarePlan:goal")
            .await
            .json();
        assert_eq!(ids(&iterate), vec!["CarePlan/cp1", "Goal/g1"]);
        let rev = p1
            .get("/fhir/Patient?_revinclude=CarePlan:subject")
            .await
            .json();
        assert_eq!(ids(&rev), vec!["CarePlan/cp1", "Patient/p1"]);
        // A chain into patient 2's record cannot be used to probe it...
        assert!(ids(&p1
            .get("/fhir/CarePlan?goal:Goal.subject:Patient.birthdate=1970-07-07")
            .await
            .json())
        .is_empty());
        assert!(ids(&p1
            .get("/fhir/CarePlan?goal:Goal.lifecycle-status=on-hold")
            .await
            .json())
        .is_empty());
        // ...while chains within the caller's record work, and unconfined callers see both.
        assert_eq!(
            ids(&as_(&app, "backend-read")
                .get("/fhir/CarePlan?goal:Goal.subject:Patient.birthdate=1970-07-07")
                .await
                .json()),
            vec!["CarePlan/cp1", "CarePlan/cp2"]
        );
        assert_eq!(
            ids(&p1
                .get("/fhir/CarePlan?goal:Goal.lifecycle-status=active")
                .await
                .json()),
            vec!["CarePlan/cp1"]
        );
        // _has over patient 2's care team does not reveal who is on it.
        assert_eq!(
            ids(&p1
                .get("/fhir/Practitioner?_has:CareTeam:participant:status=active")
                .await
                .json()),
            vec!["Practitioner/dr1"]
        );
        let backend = as_(&app, "backend-read");
        assert_eq!(
            ids(&backend
                .get("/fhir/Practitioner?_has:CareTeam:participant:status=active")
                .await
                .json()),
            vec!["Practitioner/dr1", "Practitioner/dr2"]
        );
        app
    })
    .await;
}

#[tokio::test]
async fn history_and_everything_are_confined() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-read");
        assert_eq!(
            p1.get("/fhir/CarePlan/cp2/_history").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            p1.get("/fhir/CarePlan/cp1/_history").await.status,
            StatusCode::OK
        );
        let type_history = p1.get("/fhir/CarePlan/_history").await.json();
        assert_eq!(ids(&type_history), vec!["CarePlan/cp1"]);
        let system = ids(&p1.get("/fhir/_history?_count=100").await.json());
        assert!(system.contains(&"CarePlan/cp1".to_string()));
        assert!(system.contains(&"Practitioner/dr2".to_string()));
        for hidden in [
            "CarePlan/cp2",
            "Goal/g2",
            "Patient/p2",
            "Observation/o2s",
            "CareTeam/ct2",
        ] {
            assert!(
                !system.contains(&hidden.to_string()),
                "{hidden} leaked into system history"
            );
        }
        assert_eq!(
            p1.get("/fhir/Patient/p2/$everything").await.status,
            StatusCode::NOT_FOUND
        );
        let everything = ids(&p1
            .get("/fhir/Patient/p1/$everything?_count=100")
            .await
            .json());
        assert!(everything.contains(&"Goal/g1".to_string()));
        assert!(
            !everything.contains(&"Goal/g2".to_string()),
            "{everything:?}"
        );
        assert!(!everything.contains(&"Patient/p2".to_string()));
        app
    })
    .await;
}

#[tokio::test]
async fn writes_stay_inside_the_compartment() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-all");
        let mine = json!({"resourceType": "Goal", "lifecycleStatus": "proposed",
            "description": {"text": "what matters to me"}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(p1.post("/fhir/Goal", &mine).await.status, StatusCode::CREATED);
        let theirs = json!({"resourceType": "Goal", "lifecycleStatus": "proposed",
            "description": {"text": "x"}, "subject": {"reference": "Patient/p2"}});
        assert_eq!(p1.post("/fhir/Goal", &theirs).await.status, StatusCode::FORBIDDEN);
        // Updating, patching or deleting another patient's plan: as if it did not exist.
        let cp2 = as_(&app, "admin").get("/fhir/CarePlan/cp2").await.json();
        assert_eq!(p1.put("/fhir/CarePlan/cp2", &cp2).await.status, StatusCode::NOT_FOUND);
        let patch = app
            .request(
                Method::PATCH,
                "/fhir/CarePlan/cp2",
                &[("authorization", "Bearer p1-all"), ("content-type", "application/json-patch+json")],
                Some(br#"[{"op":"replace","path":"/status","value":"revoked"}]"#),
            )
            .await;
        assert_eq!(patch.status, StatusCode::NOT_FOUND);
        assert_eq!(p1.send(Method::DELETE, "/fhir/CarePlan/cp2", None).await.status, StatusCode::NOT_FOUND);
        // Moving one's own goal into another patient's record is refused.
        let mut g1 = p1.get("/fhir/Goal/g1").await.json();
        g1["subject"] = json!({"reference": "Patient/p2"});
        assert_eq!(p1.put("/fhir/Goal/g1", &g1).await.status, StatusCode::FORBIDDEN);
        // A client-chosen id cannot create (it would reveal which ids are taken).
        let mut fresh = mine.clone();
        fresh["id"] = json!("brand-new");
        assert_eq!(p1.put("/fhir/Goal/brand-new", &fresh).await.status, StatusCode::NOT_FOUND);
        // References may not point into another patient's record.
        let mut cp1 = p1.get("/fhir/CarePlan/cp1").await.json();
        cp1["goal"] = json!([{"reference": "Goal/g1"}, {"reference": "Goal/g2"}]);
        cp1["description"] = json!("linking someone else's goal");
        let linked = p1.put("/fhir/CarePlan/cp1", &cp1).await;
        assert_eq!(linked.status, StatusCode::FORBIDDEN, "{}", linked.text());
        cp1["goal"] = json!([{"reference": "Goal/g1"}]);
        assert_eq!(p1.put("/fhir/CarePlan/cp1", &cp1).await.status, StatusCode::OK);
        let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}, "hasMember": [{"reference": "Observation/o2s"}]});
        assert_eq!(p1.post("/fhir/Observation", &observation).await.status, StatusCode::FORBIDDEN);
        // Shared definitions are read-only to a patient; other types outside the compartment
        // are out of reach.
        let mut dr2 = p1.get("/fhir/Practitioner/dr2").await.json();
        dr2["name"] = json!([{"family": "Renamed"}]);
        assert_eq!(p1.put("/fhir/Practitioner/dr2", &dr2).await.status, StatusCode::FORBIDDEN);
        assert_eq!(p1.get("/fhir/Task").await.status, StatusCode::FORBIDDEN);
        // Nothing of patient 2's changed.
        let admin = as_(&app, "admin");
        assert_eq!(admin.get("/fhir/CarePlan/cp2").await.json()["meta"]["versionId"], "1");
        assert_eq!(admin.get("/fhir/Goal/g2").await.json()["subject"]["reference"], "Patient/p2");
        app
    })
    .await;
}

#[tokio::test]
async fn conditional_interactions_match_only_within_reach() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-all");
        // If-None-Exist on patient 2's goal identifier: no match is visible, so this creates.
        let goal = json!({"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "mine"},
            "subject": {"reference": "Patient/p1"}, "identifier": [{"system": "urn:goals", "value": "g2"}]});
        let auth = [("authorization", "Bearer p1-all"), ("content-type", "application/fhir+json"), ("if-none-exist", "identifier=urn:goals|g2")];
        let created = app
            .request(Method::POST, "/fhir/Goal", &auth, Some(&serde_json::to_vec(&goal).unwrap()))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_ne!(created.json()["id"], "g2");
        // Conditional delete of patient 2's goals deletes nothing of theirs: the one match
        // within reach is p1's own (pinned by If-Match, as the shared plan requires) — and a
        // patient's app retires goals rather than deleting them (coproduction rule).
        let pinned = [("authorization", "Bearer p1-all"), ("if-match", "W/\"1\"")];
        let deleted = app
            .request(Method::DELETE, "/fhir/Goal?identifier=urn:goals|g2", &pinned, None)
            .await;
        assert_eq!(deleted.status, StatusCode::FORBIDDEN, "{}", deleted.text());
        let own = created.json()["id"].as_str().unwrap().to_string();
        assert!(deleted.text().contains(&format!("Goal/{own}")) && deleted.text().contains("no-hard-delete"), "{}", deleted.text());
        assert_eq!(as_(&app, "admin").get("/fhir/Goal/g2").await.status, StatusCode::OK);
        // Conditional update aimed at patient 2's goal cannot touch it.
        let mut takeover = goal.clone();
        takeover["subject"] = json!({"reference": "Patient/p2"});
        let updated = p1.put("/fhir/Goal?identifier=urn:goals|g2", &takeover).await;
        assert_eq!(updated.status, StatusCode::FORBIDDEN);
        assert_eq!(as_(&app, "admin").get("/fhir/Goal/g2").await.json()["meta"]["versionId"], "1");
        app
    })
    .await;
}

#[tokio::test]
async fn bundles_check_every_entry() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-all");
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": "CarePlan/cp1"}},
            {"request": {"method": "GET", "url": "CarePlan/cp2"}},
            {"request": {"method": "GET", "url": "Goal?identifier=urn:goals|g2"}},
            {"request": {"method": "GET", "url": "Task"}},
        ]});
        let response = p1.post("/fhir", &batch).await;
        assert_eq!(response.status, StatusCode::OK);
        let entries = response.json()["entry"].as_array().cloned().unwrap_or_default();
        assert!(entries[0]["response"]["status"].as_str().unwrap_or("").starts_with("200"));
        assert!(entries[1]["response"]["status"].as_str().unwrap_or("").starts_with("404"));
        assert_eq!(entries[2]["resource"]["entry"].as_array().map_or(0, Vec::len), 0);
        assert_eq!(entries[3]["response"]["status"], "403 Forbidden");

        let before = as_(&app, "admin").get("/fhir/Goal").await.json()["entry"].as_array().map_or(0, Vec::len);
        let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:6a1c3d4e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "ok"}, "subject": {"reference": "Patient/p1"}},
             "request": {"method": "POST", "url": "Goal"}},
            {"resource": {"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "not mine"}, "subject": {"reference": "Patient/p2"}},
             "request": {"method": "POST", "url": "Goal"}},
        ]});
        assert_eq!(p1.post("/fhir", &transaction).await.status, StatusCode::FORBIDDEN);
        let after = as_(&app, "admin").get("/fhir/Goal").await.json()["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(before, after, "a refused transaction writes nothing");
        let reading = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": "Goal/g2"}}]});
        assert_eq!(p1.post("/fhir", &reading).await.status, StatusCode::NOT_FOUND);
        // A transaction whose new resources reference each other inside the compartment works.
        let linked = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:6a1c3d4e-0000-4000-8000-000000000002",
             "resource": {"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "new"}, "subject": {"reference": "Patient/p1"}},
             "request": {"method": "POST", "url": "Goal"}},
            {"resource": {"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": {"reference": "Patient/p1"},
                          "goal": [{"reference": "urn:uuid:6a1c3d4e-0000-4000-8000-000000000002"}]},
             "request": {"method": "POST", "url": "CarePlan"}},
        ]});
        let ok = p1.post("/fhir", &linked).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
        app
    })
    .await;
}

#[tokio::test]
async fn scopes_limit_types_interactions_and_granular_filters() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let plans = as_(&app, "p1-careplan-only");
        assert_eq!(plans.get("/fhir/CarePlan/cp1").await.status, StatusCode::OK);
        let goal = plans.get("/fhir/Goal/g1").await;
        assert_eq!(goal.status, StatusCode::FORBIDDEN);
        assert!(goal.header("www-authenticate").unwrap_or("").contains("insufficient_scope"));
        assert_eq!(plans.get("/fhir/Goal").await.status, StatusCode::FORBIDDEN);
        let write = plans.post("/fhir/CarePlan", &json!({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": {"reference": "Patient/p1"}})).await;
        assert_eq!(write.status, StatusCode::FORBIDDEN);
        // _include of a type the token cannot read is left out.
        let included = plans.get("/fhir/CarePlan?_id=cp1&_include=CarePlan:goal").await.json();
        assert_eq!(ids(&included), vec!["CarePlan/cp1"]);
        // Read-only backend services cannot write.
        let backend = as_(&app, "backend-read");
        assert_eq!(backend.get("/fhir/CarePlan/cp2").await.status, StatusCode::OK);
        assert_eq!(backend.send(Method::DELETE, "/fhir/CarePlan/cp2", None).await.status, StatusCode::FORBIDDEN);

        let surveys = as_(&app, "p1-surveys");
        assert_eq!(ids(&surveys.get("/fhir/Observation").await.json()), vec!["Observation/o1s"]);
        assert_eq!(surveys.get("/fhir/Observation/o1s").await.status, StatusCode::OK);
        assert_eq!(surveys.get("/fhir/Observation/o1v").await.status, StatusCode::FORBIDDEN);
        assert_eq!(surveys.get("/fhir/Observation/o2s").await.status, StatusCode::NOT_FOUND);
        app
    })
    .await;
}

#[tokio::test]
async fn user_scopes_follow_care_teams_and_relationships() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let dr = as_(&app, "dr-user");
        assert_eq!(dr.get("/fhir/CarePlan/cp1").await.status, StatusCode::OK);
        assert_eq!(dr.get("/fhir/CarePlan/cp2").await.status, StatusCode::NOT_FOUND);
        assert_eq!(ids(&dr.get("/fhir/Goal").await.json()), vec!["Goal/g1"]);
        let relative = as_(&app, "relative-user");
        assert_eq!(relative.get("/fhir/Goal/g1").await.status, StatusCode::OK);
        assert_eq!(relative.get("/fhir/Goal/g2").await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            relative.post("/fhir/Goal", &json!({"resourceType": "Goal", "lifecycleStatus": "proposed", "description": {"text": "x"}, "subject": {"reference": "Patient/p1"}})).await.status,
            StatusCode::FORBIDDEN
        );
        // Once dr1 joins patient 2's care team, patient 2's plan is in reach.
        let admin = as_(&app, "admin");
        let mut ct2 = admin.get("/fhir/CareTeam/ct2").await.json();
        ct2["participant"] = json!([{"member": {"reference": "Practitioner/dr2"}}, {"member": {"reference": "Practitioner/dr1"}}]);
        assert_eq!(admin.put("/fhir/CareTeam/ct2", &ct2).await.status, StatusCode::OK);
        assert_eq!(dr.get("/fhir/CarePlan/cp2").await.status, StatusCode::OK);
        app
    })
    .await;
}

#[tokio::test]
async fn cors_opens_discovery_to_all_and_the_api_to_registered_origins() {
    let layer = coplan::config::ConfigLayer::default()
        .set("allowed_origins", ["https://portal.example.org"]);
    let app = TestApp::with_config(coplan::testing::Backend::Sqlite, layer).await;
    let preflight = |origin: &'static str| {
        let app = &app;
        async move {
            app.request(
                Method::OPTIONS,
                "/fhir/CarePlan",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
                None,
            )
            .await
        }
    };
    let allowed = preflight("https://portal.example.org").await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://portal.example.org")
    );
    assert!(allowed
        .header("access-control-allow-headers")
        .unwrap_or("")
        .contains("authorization"));
    let other = preflight("https://evil.example.com").await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let metadata = app
        .request(
            Method::GET,
            "/fhir/metadata",
            &[("origin", "https://anyone.example.net")],
            None,
        )
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(
        metadata.header("access-control-allow-origin"),
        Some("https://anyone.example.net")
    );
    // Without Origin a request is not a CORS request: no CORS headers, but the same `Vary` a
    // CORS response carries, so a shared cache keeps the two apart.
    let plain = app.request(Method::GET, "/fhir/metadata", &[], None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.header("access-control-allow-origin"), None);
    assert_eq!(plain.header("access-control-expose-headers"), None);
    assert_eq!(
        plain.header("vary"),
        Some("origin, access-control-request-method, access-control-request-headers")
    );
    assert_eq!(metadata.header("vary"), plain.header("vary"));
    // OPTIONS is answered as a preflight with or without Origin, as the CORS layer always did.
    let options = app
        .request(Method::OPTIONS, "/fhir/Patient", &[], None)
        .await;
    assert_eq!(options.status, StatusCode::OK);
    assert!(options
        .header("access-control-allow-methods")
        .unwrap_or("")
        .contains("PATCH"));
    assert_eq!(options.header("access-control-allow-origin"), None);
    let api = app
        .request(
            Method::GET,
            "/fhir/CarePlan",
            &[("origin", "https://portal.example.org")],
            None,
        )
        .await;
    assert_eq!(
        api.header("access-control-allow-origin"),
        Some("https://portal.example.org")
    );
    assert!(api
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("etag"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_resource_moved_to_another_patient_leaves_the_first_ones_reach() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-read");
        let admin = as_(&app, "admin");
        assert_eq!(p1.get("/fhir/Goal/g1").await.status, StatusCode::OK);
        let mut g1 = admin.get("/fhir/Goal/g1").await.json();
        g1["subject"] = json!({"reference": "Patient/p2"});
        assert_eq!(admin.put("/fhir/Goal/g1", &g1).await.status, StatusCode::OK);
        assert_eq!(p1.get("/fhir/Goal/g1").await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            as_(&app, "dr-user").get("/fhir/Goal/g1").await.status,
            StatusCode::NOT_FOUND
        );
        g1["subject"] = json!({"reference": "Patient/p1"});
        g1["meta"]["versionId"] = json!("2");
        assert_eq!(admin.put("/fhir/Goal/g1", &g1).await.status, StatusCode::OK);
        assert_eq!(p1.get("/fhir/Goal/g1").await.status, StatusCode::OK);
        // The version that was patient 2's stays theirs: not in vread, not in any history.
        assert_eq!(
            p1.get("/fhir/Goal/g1/_history/2").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            p1.get("/fhir/Goal/g1/_history/3").await.status,
            StatusCode::OK
        );
        let versions = |bundle: Value| -> Vec<String> {
            bundle["entry"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter(|x| x["resource"]["id"] == "g1")
                        .map(|x| {
                            x["resource"]["meta"]["versionId"]
                                .as_str()
                                .unwrap_or("")
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            versions(p1.get("/fhir/Goal/g1/_history").await.json()),
            ["3", "1"]
        );
        assert_eq!(
            versions(p1.get("/fhir/Goal/_history").await.json()),
            ["3", "1"]
        );
        assert_eq!(
            versions(p1.get("/fhir/_history?_count=200").await.json()),
            ["3", "1"]
        );
        assert_eq!(
            versions(admin.get("/fhir/Goal/g1/_history").await.json()),
            ["3", "2", "1"]
        );
        // A deleted resource of another patient is not revealed as deleted.
        assert_eq!(
            admin
                .send(Method::DELETE, "/fhir/Goal/g2", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(p1.get("/fhir/Goal/g2").await.status, StatusCode::NOT_FOUND);
        assert_eq!(admin.get("/fhir/Goal/g2").await.status, StatusCode::GONE);
        app
    })
    .await;
}

#[tokio::test]
async fn references_are_read_the_way_the_index_reads_them() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let p1 = as_(&app, "p1-all");
        // The index (and so compartments and searches) reads all of these as Patient/p2.
        for sneaky in [
            "https://evil.example/Patient/p2",
            "Patient/p2/",
            "/Patient/p2",
            "Patient//p2",
            "http://coplan.test/fhirx/Patient/p2",
        ] {
            let allergy = json!({"resourceType": "AllergyIntolerance", "patient": {"reference": sneaky},
                "recorder": {"reference": "Patient/p1"}});
            let r = p1.post("/fhir/AllergyIntolerance", &allergy).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{sneaky}: {}", r.text());
        }
        let mut cp1 = p1.get("/fhir/CarePlan/cp1").await.json();
        cp1["goal"] = json!([{"reference": "Goal/g2/"}]);
        assert_eq!(p1.put("/fhir/CarePlan/cp1", &cp1).await.status, StatusCode::FORBIDDEN);
        // Nothing landed in patient 2's record.
        let theirs = as_(&app, "admin").get("/fhir/Patient/p2/AllergyIntolerance").await.json();
        assert!(ids(&theirs).is_empty(), "{theirs}");
        // A resource in both compartments cannot be written by one of the two patients.
        let shared = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}, "performer": [{"reference": "Patient/p2"}]});
        assert_eq!(p1.post("/fhir/Observation", &shared).await.status, StatusCode::FORBIDDEN);
        app
    })
    .await;
}

#[tokio::test]
async fn a_clinician_with_many_patients_can_still_search() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let admin = as_(&app, "admin");
        // 1,200 one-member care teams for dr1: the compartment clause must not become an
        // expression SQLite refuses.
        for batch in 0..2 {
            let entries: Vec<Value> = (0..600)
                .map(|n| {
                    json!({"resource": {"resourceType": "CareTeam", "status": "active",
                    "subject": {"reference": format!("Patient/x{batch}-{n}")},
                    "participant": [{"member": {"reference": "Practitioner/dr1"}}]},
                    "request": {"method": "POST", "url": "CareTeam"}})
                })
                .collect();
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
            let r = admin.post("/fhir", &bundle).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                &r.text()[..r.text().len().min(300)]
            );
        }
        let dr = as_(&app, "dr-user");
        let goals = dr.get("/fhir/Goal").await;
        assert_eq!(goals.status, StatusCode::OK, "{}", goals.text());
        assert_eq!(ids(&goals.json()), vec!["Goal/g1"]);
        assert_eq!(dr.get("/fhir/CarePlan/cp1").await.status, StatusCode::OK);
        app
    })
    .await;
}

/// Follow a history's next links from `first`; every page's entries (type/id/version), and
/// every link seen.
async fn walk_history(client: &Client<'_>, first: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut links = Vec::new();
    let mut uri = first.to_string();
    for _ in 0..100 {
        let page = client.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.text());
        let body = page.json();
        let entries: Vec<String> = body["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|x| {
                        format!(
                            "{}/{}/{}",
                            x["resource"]["resourceType"].as_str().unwrap_or("?"),
                            x["resource"]["id"].as_str().unwrap_or("?"),
                            x["resource"]["meta"]["versionId"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        pages.push(entries);
        let next = body["link"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["relation"] == "next"))
            .and_then(|x| x["url"].as_str())
            .map(str::to_string);
        for link in body["link"].as_array().into_iter().flatten() {
            links.push(link["url"].as_str().unwrap_or("").to_string());
        }
        match next {
            Some(next) => uri = next.trim_start_matches("http://coplan.test").to_string(),
            None => return (pages, links),
        }
    }
    panic!("history paging from {first} does not end");
}

#[tokio::test]
async fn history_shows_nothing_of_a_resource_now_out_of_reach_and_pages_only_what_is_visible() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let admin = as_(&app, "admin");
        let p1 = as_(&app, "p1-read");
        let moved = |patient: &str| {
            json!({"resourceType": "Goal", "id": "g-moved", "lifecycleStatus": "active",
                   "description": {"text": "moved"}, "subject": {"reference": format!("Patient/{patient}")}})
        };
        assert_eq!(admin.put("/fhir/Goal/g-moved", &moved("p1")).await.status, StatusCode::CREATED);
        assert_eq!(admin.put("/fhir/Goal/g-moved", &moved("p2")).await.status, StatusCode::OK);
        assert_eq!(p1.get("/fhir/Goal/g-moved").await.status, StatusCode::NOT_FOUND);
        assert_eq!(p1.get("/fhir/Goal/g-moved/_history/1").await.status, StatusCode::NOT_FOUND);
        assert_eq!(p1.get("/fhir/Goal/g-moved/_history").await.status, StatusCode::NOT_FOUND);
        for uri in ["/fhir/Goal/_history?_count=1", "/fhir/_history?_count=1", "/fhir/_history?_count=3"] {
            let (pages, links) = walk_history(&p1, uri).await;
            let all: Vec<&String> = pages.iter().flatten().collect();
            assert!(!all.iter().any(|e| e.starts_with("Goal/g-moved/")), "{uri}: {all:?}");
            assert!(all.contains(&&"Goal/g1/1".to_string()), "{uri}: {all:?}");
            assert!(!all.iter().any(|e| e.starts_with("Goal/g2/")), "{uri}: {all:?}");
            let per_page: usize = uri.rsplit('=').next().unwrap().parse().unwrap();
            for (n, page) in pages.iter().enumerate() {
                let last = n + 1 == pages.len();
                assert!(
                    page.len() == per_page || (last && !page.is_empty()),
                    "{uri}: page {n} of {}: {page:?}",
                    pages.len()
                );
            }
            for link in &links {
                let cursor = link.split("_page=").nth(1).unwrap_or("");
                assert!(
                    cursor.is_empty() || cursor.contains("%2F"),
                    "{uri}: a link carries a sequence number: {link}"
                );
            }
        }
        // The admin sees both versions, and pages through them the same way.
        let (pages, _) = walk_history(&admin, "/fhir/Goal/g-moved/_history?_count=1").await;
        assert_eq!(pages, [vec!["Goal/g-moved/2".to_string()], vec!["Goal/g-moved/1".to_string()]]);

        // A practitioner who reaches no patient gets one empty page and no link to walk.
        let nobody = as_(&app, "dr-nobody");
        let (pages, links) = walk_history(&nobody, "/fhir/Goal/_history?_count=2").await;
        assert_eq!(pages, [Vec::<String>::new()]);
        assert_eq!(links.len(), 1, "{links:?}");
        // A cursor cannot probe: one naming another patient's resource, one naming nothing and
        // one of the old form are the same 400.
        for cursor in ["Goal/g2/1", "Goal/nothing/1", "Goal/g-moved/1", "12", "Goal/g1/1/x"] {
            let answer = p1.get(&format!("/fhir/Goal/_history?_page={cursor}")).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{cursor}: {}", answer.text());
            assert_eq!(
                answer.json()["issue"][0]["diagnostics"],
                format!("_page {cursor:?} is not a page of this history"),
                "{cursor}"
            );
        }
        app
    })
    .await;
}

/// A granular scope's filter holds for every version shown: an Observation that was a vital
/// sign and is a survey now shows its survey version to a survey-only token, never the old one.
#[tokio::test]
async fn history_and_vread_apply_a_granular_filter_to_each_version() {
    each_backend(|app| async move {
        let app = secured(app).await;
        let admin = as_(&app, "admin");
        let surveys = as_(&app, "p1-surveys");
        let observation = |code: &str, text: &str| {
            json!({"resourceType": "Observation", "id": "o-recat", "status": "final",
                   "category": [{"coding": [{"system": SURVEY, "code": code}]}],
                   "code": {"text": text}, "subject": {"reference": "Patient/p1"}})
        };
        assert_eq!(
            admin
                .put(
                    "/fhir/Observation/o-recat",
                    &observation("vital-signs", "BP")
                )
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            admin
                .put("/fhir/Observation/o-recat", &observation("survey", "PHQ-9"))
                .await
                .status,
            StatusCode::OK
        );

        assert_eq!(
            surveys.get("/fhir/Observation/o-recat").await.status,
            StatusCode::OK
        );
        assert_eq!(
            surveys
                .get("/fhir/Observation/o-recat/_history/2")
                .await
                .status,
            StatusCode::OK
        );
        let old = surveys.get("/fhir/Observation/o-recat/_history/1").await;
        assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.text());
        for uri in [
            "/fhir/Observation/o-recat/_history",
            "/fhir/Observation/_history",
            "/fhir/_history",
        ] {
            let page = surveys.get(uri).await;
            assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.text());
            let text = page.text();
            assert!(text.contains("PHQ-9"), "{uri}: {text}");
            assert!(
                !text.contains("\"BP\""),
                "{uri} shows the version outside the filter: {text}"
            );
        }
        app
    })
    .await;
}
