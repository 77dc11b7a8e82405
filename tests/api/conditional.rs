//! Conditional create, update and delete (http.html#ccreate, #cond-update, #cdelete) on every
//! backend: no match, one match, several matches.

use crate::common::{each_backend, TestApp, TestResponse};
use axum::http::{Method, StatusCode};
use serde_json::json;

fn patient(mrn: &str) -> serde_json::Value {
    json!({"resourceType":"Patient","identifier":[{"system":"http://hospital.example/mrn","value":mrn}],"active":true})
}

async fn post_if_none_exist(
    app: &TestApp,
    body: &serde_json::Value,
    condition: &str,
) -> TestResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    app.request(
        Method::POST,
        "/fhir/Patient",
        &[
            ("content-type", "application/fhir+json"),
            ("if-none-exist", condition),
        ],
        Some(&bytes),
    )
    .await
}

#[tokio::test]
async fn conditional_create() {
    each_backend(|app| async move {
        let condition = "identifier=http://hospital.example/mrn|123";
        let first = post_if_none_exist(&app, &patient("123"), condition).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
        let id = first.json()["id"].as_str().unwrap().to_string();
        let again = post_if_none_exist(&app, &patient("123"), condition).await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "an existing match is returned, nothing created"
        );
        assert_eq!(again.json()["id"], id.as_str());
        assert_eq!(again.header("etag"), Some("W/\"1\""));
        app.post_json("/fhir/Patient", &patient("123")).await;
        let ambiguous = post_if_none_exist(&app, &patient("123"), condition).await;
        assert_eq!(ambiguous.status, StatusCode::PRECONDITION_FAILED);
        let typo = post_if_none_exist(&app, &patient("9"), "identifer=x").await;
        assert_eq!(
            typo.status,
            StatusCode::BAD_REQUEST,
            "an unknown criterion never matches everything"
        );
        let empty = post_if_none_exist(&app, &patient("9"), "").await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        app
    })
    .await;
}

#[tokio::test]
async fn conditional_update_and_delete() {
    each_backend(|app| async move {
        let url = "/fhir/Patient?identifier=http://hospital.example/mrn|555";
        let created = app.put_json(url, &patient("555"), &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let id = created.json()["id"].as_str().unwrap().to_string();
        let mut changed = patient("555");
        changed["active"] = json!(false);
        let updated = app.put_json(url, &changed, &[]).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
        assert_eq!(updated.json()["id"], id.as_str());
        assert_eq!(updated.json()["meta"]["versionId"], "2");
        let mut wrong_id = changed.clone();
        wrong_id["id"] = json!("someone-else");
        assert_eq!(
            app.put_json(url, &wrong_id, &[]).await.status,
            StatusCode::BAD_REQUEST
        );
        let stale = app
            .put_json(url, &changed, &[("if-match", "W/\"1\"")])
            .await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);

        app.post_json("/fhir/Patient", &patient("777")).await;
        app.post_json("/fhir/Patient", &patient("777")).await;
        let several = app
            .put_json(
                "/fhir/Patient?identifier=http://hospital.example/mrn|777",
                &patient("777"),
                &[],
            )
            .await;
        assert_eq!(several.status, StatusCode::PRECONDITION_FAILED);
        let deleted = app
            .request(
                Method::DELETE,
                "/fhir/Patient?identifier=http://hospital.example/mrn|777",
                &[("prefer", "return=OperationOutcome")],
                None,
            )
            .await;
        assert_eq!(deleted.status, StatusCode::OK);
        assert!(
            deleted.diagnostics().starts_with("2 Patient"),
            "{}",
            deleted.text()
        );
        let none = app
            .request(
                Method::DELETE,
                "/fhir/Patient?identifier=http://hospital.example/mrn|777",
                &[],
                None,
            )
            .await;
        assert_eq!(none.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get(&format!("/fhir/Patient/{id}")).await.status,
            StatusCode::OK,
            "other patients untouched"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn racing_conditional_creates_make_one_resource() {
    each_backend(|app| async move {
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let state = app.state.clone();
            racers.spawn(async move {
                use tower::ServiceExt;
                let body = serde_json::to_vec(&patient("race-1")).unwrap();
                let request = axum::http::Request::builder()
                    .method(Method::POST)
                    .uri("/fhir/Patient")
                    .header("content-type", "application/fhir+json")
                    .header(
                        "if-none-exist",
                        "identifier=http://hospital.example/mrn|race-1",
                    )
                    .body(axum::body::Body::from(body))
                    .unwrap();
                coplan::app::router(state)
                    .oneshot(request)
                    .await
                    .unwrap()
                    .status()
            });
        }
        let mut created = 0;
        let mut existing = 0;
        while let Some(status) = racers.join_next().await {
            match status.unwrap() {
                StatusCode::CREATED => created += 1,
                StatusCode::OK => existing += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!((created, existing), (1, 11));
        let found = app
            .get("/fhir/Patient?identifier=http://hospital.example/mrn|race-1")
            .await
            .json();
        assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 1);
        app
    })
    .await;
}

/// A stale version condition refuses the write on every path that takes one: conditional
/// update and delete, PATCH, and Bundle entries' `ifMatch` (batch and transaction).
#[tokio::test]
async fn a_stale_version_condition_refuses_every_write_path() {
    each_backend(|app| async move {
        let goal = json!({"resourceType": "Goal", "id": "g", "lifecycleStatus": "active", "description": {"text": "walk"},
                          "subject": {"reference": "Patient/p1"}, "identifier": [{"system": "urn:t", "value": "g"}]});
        assert_eq!(app.put_json("/fhir/Goal/g", &goal, &[]).await.status, StatusCode::CREATED);
        assert_eq!(app.put_json("/fhir/Goal/g", &goal, &[]).await.status, StatusCode::OK);
        let stale = [("if-match", "W/\"1\"")];
        let versions = app.version_count().await;

        let update = app.put_json("/fhir/Goal?identifier=urn:t|g", &goal, &stale).await;
        assert_eq!(update.status, StatusCode::PRECONDITION_FAILED, "{}", update.text());
        let delete = app.request(Method::DELETE, "/fhir/Goal?identifier=urn:t|g", &stale, None).await;
        assert_eq!(delete.status, StatusCode::PRECONDITION_FAILED, "{}", delete.text());
        let none = app.request(Method::DELETE, "/fhir/Goal?identifier=urn:t|nothing", &stale, None).await;
        assert_eq!(none.status, StatusCode::PRECONDITION_FAILED, "{}", none.text());
        let patch = br#"[{"op":"replace","path":"/lifecycleStatus","value":"completed"}]"#;
        let patched = app
            .request(Method::PATCH, "/fhir/Goal/g", &[("content-type", "application/json-patch+json"), stale[0]], Some(patch))
            .await;
        assert_eq!(patched.status, StatusCode::PRECONDITION_FAILED, "{}", patched.text());
        for kind in ["batch", "transaction"] {
            for (method, url) in [("PUT", "Goal/g"), ("PUT", "Goal?identifier=urn:t|g"), ("DELETE", "Goal/g"), ("DELETE", "Goal?identifier=urn:t|g")] {
                let mut entry = json!({"request": {"method": method, "url": url, "ifMatch": "W/\"1\""}});
                if method == "PUT" {
                    entry["resource"] = goal.clone();
                }
                let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [entry]});
                let answer = app.post_json("/fhir", &bundle).await;
                let status = if kind == "batch" {
                    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
                    answer.json()["entry"][0]["response"]["status"].as_str().unwrap_or("").to_string()
                } else {
                    answer.status.as_u16().to_string()
                };
                assert!(status.starts_with("412"), "{kind} {method} {url}: {status} {}", answer.text());
            }
        }
        assert_eq!(app.version_count().await, versions, "no stale write left a version");

        // The current version still works, on the conditional delete too.
        let current = [("if-match", "W/\"2\"")];
        let delete = app.request(Method::DELETE, "/fhir/Goal?identifier=urn:t|g", &current, None).await;
        assert_eq!(delete.status, StatusCode::NO_CONTENT, "{}", delete.text());
        assert_eq!(app.get("/fhir/Goal/g").await.status, StatusCode::GONE);
        app
    })
    .await;
}

/// Search terms in a create's URL are its conditional-create criteria (fhirpy's
/// `get_or_create()` sends them there), never ignored.
#[tokio::test]
async fn a_create_with_search_terms_in_the_url_is_a_conditional_create() {
    each_backend(|app| async move {
        let patient =
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": "fp"}]});
        let url = "/fhir/Patient?identifier=urn:t%7Cfp";
        let first = app.post_json(url, &patient).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
        let second = app.post_json(url, &patient).await;
        assert_eq!(
            second.status,
            StatusCode::OK,
            "the existing match: {}",
            second.text()
        );
        assert_eq!(second.json()["id"], first.json()["id"]);
        let found = app.get("/fhir/Patient?identifier=urn:t|fp").await.json();
        assert_eq!(
            found["entry"].as_array().map_or(0, Vec::len),
            1,
            "no second Patient"
        );

        let body = serde_json::to_vec(&patient).expect("json");
        let agreeing = app
            .request(
                Method::POST,
                url,
                &[
                    ("content-type", "application/fhir+json"),
                    ("if-none-exist", "identifier=urn:t|fp"),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(agreeing.status, StatusCode::OK, "{}", agreeing.text());
        let disagreeing = app
            .request(
                Method::POST,
                url,
                &[
                    ("content-type", "application/fhir+json"),
                    ("if-none-exist", "identifier=urn:t|other"),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(disagreeing.status, StatusCode::BAD_REQUEST);
        assert!(
            disagreeing.diagnostics().contains("If-None-Exist"),
            "{}",
            disagreeing.text()
        );

        // The same in Bundle entries: a POST entry's URL terms are its ifNoneExist.
        for kind in ["batch", "transaction"] {
            let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
                {"request": {"method": "POST", "url": "Patient?identifier=urn:t%7Cfp"}, "resource": patient.clone()}]});
            let answer = app.post_json("/fhir", &bundle).await;
            assert_eq!(answer.status, StatusCode::OK, "{kind}: {}", answer.text());
            assert_eq!(answer.json()["entry"][0]["response"]["status"], "200 OK", "{kind}: the existing match");
            let clash = json!({"resourceType": "Bundle", "type": kind, "entry": [
                {"request": {"method": "POST", "url": "Patient?identifier=urn:t%7Cfp", "ifNoneExist": "identifier=urn:t|other"}, "resource": patient.clone()}]});
            let refused = app.post_json("/fhir", &clash).await;
            // Contradicting criteria make the entry malformed: the whole Bundle is a 400.
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{kind}: {}", refused.text());
            assert!(refused.diagnostics().starts_with("Bundle.entry[0]"), "{}", refused.text());
        }
        let found = app.get("/fhir/Patient?identifier=urn:t|fp").await.json();
        assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 1, "still one Patient");

        // Response-shaping parameters are not criteria: a plain create.
        let plain = app
            .post_json("/fhir/Patient?_format=json&_pretty=true", &patient)
            .await;
        assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text());
        let unknown = app.post_json("/fhir/Patient?colour=blue", &patient).await;
        assert_eq!(
            unknown.status,
            StatusCode::BAD_REQUEST,
            "unknown criteria are refused: {}",
            unknown.text()
        );
        app
    })
    .await;
}

/// Conditional creates racing on two server nodes over one database, plain and inside
/// transactions: every round makes exactly one resource, and every request gets it.
#[tokio::test]
async fn racing_conditional_creates_on_two_nodes_make_one_resource() {
    each_backend(|app| async move {
        let other = app.another_node().await;
        let nodes = [&app, &other];
        for round in 0..12 {
            let mrn = format!("race-{round}");
            let condition = format!("identifier=http://hospital.example/mrn|{mrn}");
            // Four plain conditional creates, two on each node, at once.
            let body = patient(&mrn);
            let create = |n: usize| post_if_none_exist(nodes[n % 2], &body, &condition);
            let (a, b, c, d) = tokio::join!(create(0), create(1), create(2), create(3));
            let answers = [a, b, c, d];
            let mut ids = Vec::new();
            for a in &answers {
                assert!(
                    a.status == StatusCode::CREATED || a.status == StatusCode::OK,
                    "round {round}: {} {}",
                    a.status,
                    a.text()
                );
                ids.push(a.json()["id"].as_str().unwrap().to_string());
            }
            let created = answers
                .iter()
                .filter(|a| a.status == StatusCode::CREATED)
                .count();
            assert_eq!(created, 1, "round {round}: one create, the others find it");
            assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
            let found = app.get(&format!("/fhir/Patient?{condition}")).await.json();
            assert_eq!(found["total"], 1, "round {round}: {found}");

            // Four transactions, each creating the patient if none exists and an Observation
            // about it: one patient, four Observations that all name it.
            let tx_mrn = format!("tx-race-{round}");
            let tx_condition = format!("identifier=http://hospital.example/mrn|{tx_mrn}");
            let bundle = |n: usize| {
                json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"fullUrl": "urn:uuid:6a3c39f8-5d7e-4a0b-9a44-000000000001",
                     "resource": patient(&tx_mrn),
                     "request": {"method": "POST", "url": "Patient", "ifNoneExist": tx_condition}},
                    {"resource": {"resourceType": "Observation", "status": "final",
                        "code": {"text": format!("reading {n}")},
                        "subject": {"reference": "urn:uuid:6a3c39f8-5d7e-4a0b-9a44-000000000001"}},
                     "request": {"method": "POST", "url": "Observation"}}
                ]})
            };
            let bundles: Vec<_> = (0..4).map(bundle).collect();
            let transaction = |n: usize| nodes[n % 2].post_json("/fhir", &bundles[n]);
            let (a, b, c, d) = tokio::join!(
                transaction(0),
                transaction(1),
                transaction(2),
                transaction(3)
            );
            let answers = [a, b, c, d];
            let mut subjects = Vec::new();
            for a in &answers {
                assert_eq!(a.status, StatusCode::OK, "round {round}: {}", a.text());
                subjects.push(
                    a.json()["entry"][0]["response"]["location"]
                        .as_str()
                        .unwrap()
                        .split("/_history")
                        .next()
                        .unwrap()
                        .to_string(),
                );
            }
            assert!(
                subjects.iter().all(|s| *s == subjects[0]),
                "round {round}: {subjects:?}"
            );
            let found = app
                .get(&format!("/fhir/Patient?{tx_condition}"))
                .await
                .json();
            assert_eq!(found["total"], 1, "round {round}: {found}");
            let patient_id = found["entry"][0]["resource"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            let observations = app
                .get(&format!(
                    "/fhir/Observation?subject=Patient/{patient_id}&_summary=count"
                ))
                .await
                .json();
            assert_eq!(observations["total"], 4, "round {round}: {observations}");
        }
        other.cleanup().await;
        app
    })
    .await;
}
