//! Profiles (issue "Profiles"), on every backend: the shipped StructureDefinitions, ValueSets
//! and CodeSystems are readable and searchable; a resource claiming a profile is checked
//! against it on every write (422 with the issues); an unknown claimed profile is a warning,
//! or a refusal under `Prefer: handling=strict`; configured profiles apply unclaimed;
//! `$validate` in each mode answers an OperationOutcome and stores nothing.

use crate::common::*;
use axum::http::Method;
use coplan::config::ConfigLayer;
use serde_json::{json, Value};

const SHARED_PLAN: &str = "http://coplan.dev/fhir/StructureDefinition/coplan-shared-careplan";
const PATIENT_GOAL: &str = "http://coplan.dev/fhir/StructureDefinition/coplan-patient-goal";

fn plan(profile: &str) -> Value {
    json!({"resourceType": "CarePlan", "meta": {"profile": [profile]},
        "status": "active", "intent": "plan",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}],
        "subject": {"reference": "Patient/p1"},
        "contributor": [{"reference": "Patient/p1"}]})
}

/// The issues of an OperationOutcome as (severity, code, expression, diagnostics).
fn issues(outcome: &Value) -> Vec<(String, String, String, String)> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["severity"].as_str().unwrap_or_default().to_string(),
                i["code"].as_str().unwrap_or_default().to_string(),
                i["expression"][0].as_str().unwrap_or_default().to_string(),
                i["diagnostics"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn errors(outcome: &Value) -> Vec<(String, String, String, String)> {
    issues(outcome)
        .into_iter()
        .filter(|i| i.0 == "error" || i.0 == "fatal")
        .collect()
}

async fn post(app: &TestApp, uri: &str, body: &Value, prefer: Option<&str>) -> TestResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut headers = vec![("content-type", "application/fhir+json")];
    if let Some(p) = prefer {
        headers.push(("prefer", p));
    }
    app.request(Method::POST, uri, &headers, Some(&bytes)).await
}

#[tokio::test]
async fn the_shipped_profiles_are_readable_and_searchable() {
    each_backend(|app| async move {
        let written = app.state.fhir.load_conformance_library().await.unwrap();
        assert_eq!(written.len(), coplan::rest::profiles::SHIPPED.len());
        // Loading again writes nothing: they are found by url and version.
        assert!(app
            .state
            .fhir
            .load_conformance_library()
            .await
            .unwrap()
            .is_empty());
        let found = app
            .get(&format!("/fhir/StructureDefinition?url={SHARED_PLAN}"))
            .await
            .json();
        assert_eq!(found["total"], 1, "{found}");
        let sd = &found["entry"][0]["resource"];
        assert_eq!(
            sd["baseDefinition"],
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan"
        );
        assert_eq!(
            app.get("/fhir/StructureDefinition/us-core-goal")
                .await
                .json()["type"],
            "Goal"
        );
        let vs = app
            .get("/fhir/ValueSet?url=http://hl7.org/fhir/us/core/ValueSet/us-core-narrative-status")
            .await
            .json();
        assert_eq!(vs["total"], 1, "{vs}");
        let cs = app
            .get("/fhir/CodeSystem?url=http://hl7.org/fhir/us/core/CodeSystem/careplan-category")
            .await
            .json();
        assert_eq!(cs["total"], 1, "{cs}");
        app
    })
    .await;
}

#[tokio::test]
async fn a_shipped_canonical_serves_only_the_shipped_content() {
    each_backend(|app| async move {
        app.state.fhir.load_conformance_library().await.unwrap();
        let mut altered = app
            .get("/fhir/StructureDefinition/coplan-shared-careplan")
            .await
            .json();
        altered["description"] = json!("Anything goes");
        let put = app
            .put_json(
                "/fhir/StructureDefinition/coplan-shared-careplan",
                &altered,
                &[],
            )
            .await;
        assert_eq!(put.status, 403, "{}", put.text());
        altered["id"] = json!("lookalike");
        let put = app
            .put_json("/fhir/StructureDefinition/lookalike", &altered, &[])
            .await;
        assert_eq!(put.status, 403, "{}", put.text());
        // Under its own canonical it is any other resource.
        altered["url"] = json!("http://example.org/StructureDefinition/mine");
        let put = app
            .put_json("/fhir/StructureDefinition/lookalike", &altered, &[])
            .await;
        assert_eq!(put.status, 201, "{}", put.text());
        // The shipped content itself may be written again (a restore).
        let shipped = app
            .get("/fhir/StructureDefinition/coplan-shared-careplan")
            .await
            .json();
        let put = app
            .put_json(
                "/fhir/StructureDefinition/coplan-shared-careplan",
                &shipped,
                &[],
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        app
    })
    .await;
}

#[tokio::test]
async fn a_resource_claiming_a_profile_is_checked_on_every_write() {
    each_backend(|app| async move {
        // Conforms: stored.
        let created = post(&app, "/fhir/CarePlan", &plan(SHARED_PLAN), None).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().unwrap().to_string();

        // No author and no contributor: the Coplan profile's invariant.
        let mut nobody = plan(SHARED_PLAN);
        nobody.as_object_mut().unwrap().remove("contributor");
        let refused = post(&app, "/fhir/CarePlan", &nobody, None).await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        let found = errors(&refused.json());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].1.as_str(), found[0].2.as_str()),
            ("invariant", "CarePlan")
        );
        assert!(found[0].3.contains("coplan-careplan-1"), "{found:?}");

        // Not an assess-plan plan: the slice the Coplan profile requires.
        let mut other = plan(SHARED_PLAN);
        other["category"] = json!([{"text": "diet"}]);
        let refused = post(&app, "/fhir/CarePlan", &other, None).await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        assert!(
            errors(&refused.json())
                .iter()
                .any(|e| e.3.contains("AssessPlan")),
            "{}",
            refused.text()
        );

        // An update that breaks it is refused too, and nothing is stored.
        let mut update = plan(SHARED_PLAN);
        update["id"] = json!(id);
        update.as_object_mut().unwrap().remove("contributor");
        let put = app
            .put_json(&format!("/fhir/CarePlan/{id}"), &update, &[])
            .await;
        assert_eq!(put.status, 422, "{}", put.text());
        let stored = app.get(&format!("/fhir/CarePlan/{id}")).await.json();
        assert_eq!(stored["meta"]["versionId"], "1");

        // A patch too.
        let patch = json!([{"op": "remove", "path": "/contributor"}]);
        let patched = app
            .request(
                Method::PATCH,
                &format!("/fhir/CarePlan/{id}"),
                &[("content-type", "application/json-patch+json")],
                Some(patch.to_string().as_bytes()),
            )
            .await;
        assert_eq!(patched.status, 422, "{}", patched.text());

        // And an entry of a transaction.
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": nobody, "request": {"method": "POST", "url": "CarePlan"}}]});
        let tx = post(&app, "/fhir", &bundle, None).await;
        assert_eq!(tx.status, 422, "{}", tx.text());
        app
    })
    .await;
}

#[tokio::test]
async fn an_unknown_profile_is_a_warning_or_under_strict_handling_a_refusal() {
    each_backend(|app| async move {
        let unknown = "http://example.org/StructureDefinition/not-here";
        let accepted = post(
            &app,
            "/fhir/CarePlan",
            &plan(unknown),
            Some("return=OperationOutcome"),
        )
        .await;
        assert_eq!(accepted.status, 201, "{}", accepted.text());
        let said = issues(&accepted.json());
        assert!(
            said.iter()
                .any(|i| i.0 == "warning" && i.3.contains(unknown)),
            "{said:?}"
        );
        let strict = post(
            &app,
            "/fhir/CarePlan",
            &plan(unknown),
            Some("handling=strict, return=OperationOutcome"),
        )
        .await;
        assert_eq!(strict.status, 422, "{}", strict.text());
        assert!(errors(&strict.json())[0].3.contains(unknown));
        app
    })
    .await;
}

#[tokio::test]
async fn claiming_more_profiles_than_are_checked_is_refused() {
    each_backend(|app| async move {
        let mut many = plan(SHARED_PLAN);
        many["meta"]["profile"] = json!((0..17)
            .map(|i| format!("http://example.org/StructureDefinition/p{i}"))
            .collect::<Vec<_>>());
        let refused = post(&app, "/fhir/CarePlan", &many, None).await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        let found = errors(&refused.json());
        assert_eq!(
            (found[0].1.as_str(), found[0].2.as_str()),
            ("too-costly", "meta.profile")
        );
        app
    })
    .await;
}

#[tokio::test]
async fn configured_profiles_apply_to_resources_that_do_not_claim_them() {
    for backend in coplan::testing::backends() {
        let layer =
            ConfigLayer::default().set("required_profiles", json!({"Goal": [PATIENT_GOAL]}));
        let app = TestApp::with_config(backend, layer).await;
        let goal = json!({"resourceType": "Goal", "lifecycleStatus": "active",
            "description": {"text": "Walk to the park"}, "subject": {"reference": "Patient/p1"}});
        let refused = post(&app, "/fhir/Goal", &goal, None).await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        let found = errors(&refused.json());
        assert_eq!(
            (found[0].1.as_str(), found[0].2.as_str()),
            ("required", "Goal.expressedBy"),
            "{found:?}"
        );
        let mut expressed = goal.clone();
        expressed["expressedBy"] = json!({"reference": "Patient/p1"});
        assert_eq!(post(&app, "/fhir/Goal", &expressed, None).await.status, 201);
        // Expressed by a clinician: not a patient-expressed goal.
        expressed["expressedBy"] = json!({"reference": "Practitioner/dr"});
        let refused = post(&app, "/fhir/Goal", &expressed, None).await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        app.cleanup().await;
    }
}

#[tokio::test]
async fn validate_answers_an_outcome_in_each_mode_and_stores_nothing() {
    each_backend(|app| async move {
        let before = app.version_count().await;
        // A resource as the body: errors are the answer, not a failure.
        let mut nobody = plan(SHARED_PLAN);
        nobody.as_object_mut().unwrap().remove("contributor");
        let answer = post(&app, "/fhir/CarePlan/$validate", &nobody, None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(errors(&answer.json())[0].3.contains("coplan-careplan-1"));

        // Clean: says so; what could not be checked is information.
        let answer = post(&app, "/fhir/CarePlan/$validate", &plan(SHARED_PLAN), None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let said = issues(&answer.json());
        assert!(errors(&answer.json()).is_empty(), "{said:?}");
        assert_eq!(said[0].0, "information");
        assert!(said[0].3.contains("would be accepted"), "{said:?}");

        // A profile asked for in Parameters, against a resource that claims none.
        let mut plain = plan(SHARED_PLAN);
        plain.as_object_mut().unwrap().remove("meta");
        plain.as_object_mut().unwrap().remove("category");
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": plain},
            {"name": "mode", "valueCode": "create"},
            {"name": "profile", "valueUri": SHARED_PLAN}]});
        let answer = post(&app, "/fhir/CarePlan/$validate", &params, None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let found = errors(&answer.json());
        assert!(
            found.iter().any(|e| e.1 == "required" && e.2 == "CarePlan.category"),
            "{found:?}"
        );
        // An unknown profile asked for is an error (resource-operation-validate.html).
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": plan(SHARED_PLAN)},
            {"name": "profile", "valueUri": "http://example.org/nope"}]});
        let answer = post(&app, "/fhir/CarePlan/$validate", &params, None).await;
        assert!(errors(&answer.json())[0].3.contains("http://example.org/nope"));

        assert_eq!(app.version_count().await, before, "nothing stored");

        // update at the type level: there is no stored resource to change.
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": plan(SHARED_PLAN)}, {"name": "mode", "valueCode": "update"}]});
        assert_eq!(post(&app, "/fhir/CarePlan/$validate", &params, None).await.status, 400);

        // update: on an instance, the id must be the instance's.
        let created = post(&app, "/fhir/CarePlan", &plan(SHARED_PLAN), None).await;
        let id = created.json()["id"].as_str().unwrap().to_string();
        let before = app.version_count().await;
        let mut other_id = plan(SHARED_PLAN);
        other_id["id"] = json!("someone-else");
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": other_id}, {"name": "mode", "valueCode": "update"}]});
        let answer = post(&app, &format!("/fhir/CarePlan/{id}/$validate"), &params, None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(errors(&answer.json())[0].2, "CarePlan.id");

        // delete: without access control the delete would be accepted; a stored instance is
        // needed.
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "mode", "valueCode": "delete"}]});
        let answer = post(&app, &format!("/fhir/CarePlan/{id}/$validate"), &params, None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(errors(&answer.json()).is_empty(), "{}", answer.text());
        let answer = post(&app, "/fhir/CarePlan/$validate", &params, None).await;
        assert_eq!(answer.status, 400, "{}", answer.text());

        // A bad mode is a 400.
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": plan(SHARED_PLAN)}, {"name": "mode", "valueCode": "upsert"}]});
        assert_eq!(post(&app, "/fhir/CarePlan/$validate", &params, None).await.status, 400);

        assert_eq!(app.version_count().await, before, "nothing stored");
        app
    })
    .await;
}

#[tokio::test]
async fn the_published_us_core_examples_validate_against_their_profiles() {
    each_backend(|app| async move {
        let dir = format!("{}/crates/fhir-profile/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
        for (file, profile) in [
            ("uscore-CarePlan-colonoscopy.json", "us-core-careplan"),
            ("uscore-CareTeam-example.json", "us-core-careteam"),
            ("uscore-Goal-goal-1.json", "us-core-goal"),
            ("uscore-Patient-example.json", "us-core-patient"),
            ("uscore-Practitioner-practitioner-1.json", "us-core-practitioner"),
            ("uscore-RelatedPerson-shaw-niece.json", "us-core-relatedperson"),
            ("uscore-QuestionnaireResponse-phq-9-example.json", "us-core-questionnaireresponse"),
            ("uscore-Observation-PHQ9-total-score-44261-6.json", "us-core-observation-screening-assessment"),
            ("uscore-Condition-health-concern.json", "us-core-condition-problems-health-concerns"),
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            let resource: Value = serde_json::from_str(&text).unwrap();
            let rt = resource["resourceType"].as_str().unwrap();
            let params = json!({"resourceType": "Parameters", "parameter": [
                {"name": "resource", "resource": resource},
                {"name": "profile", "valueUri": format!("http://hl7.org/fhir/us/core/StructureDefinition/{profile}")}]});
            let answer = post(&app, &format!("/fhir/{rt}/$validate"), &params, None).await;
            assert_eq!(answer.status, 200, "{file}: {}", answer.text());
            assert!(errors(&answer.json()).is_empty(), "{file}: {}", answer.text());
        }
        app
    })
    .await;
}

#[tokio::test]
async fn validate_answers_for_the_caller_it_is_asked_by() {
    use crate::common::auth::{send, token, Server};
    for backend in coplan::testing::backends() {
        let server = Server::start_with(backend, ConfigLayer::default()).await;
        server
            .seed(json!({"resourceType": "Patient", "id": "p1"}))
            .await;
        server
            .seed(json!({"resourceType": "Patient", "id": "p2"}))
            .await;
        let mut seeded = plan(SHARED_PLAN);
        seeded["id"] = json!("plan-1");
        server.seed(seeded).await;
        let mut theirs = plan(SHARED_PLAN);
        theirs["id"] = json!("plan-2");
        theirs["subject"] = json!({"reference": "Patient/p2"});
        theirs["contributor"] = json!([{"reference": "Patient/p2"}]);
        server.seed(theirs).await;
        let writer = token(
            &server,
            "portal",
            "patient/*.cruds",
            Some("p1"),
            Some("Patient/p1"),
        );
        let reader = token(
            &server,
            "viewer",
            "patient/*.rs",
            Some("p1"),
            Some("Patient/p1"),
        );
        let service = token(&server, "sync", "system/*.cruds", None, None);
        let call = |bearer: String, path: &'static str, body: Value| {
            let server = &server;
            async move {
                send(
                    "POST",
                    &server.url(&format!("/fhir/{path}")),
                    &[
                        ("authorization", bearer.as_str()),
                        ("content-type", "application/fhir+json"),
                    ],
                    Some(body.to_string()),
                )
                .await
            }
        };
        let delete = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]});
        // The patient's app: a plan is retired, not deleted.
        let answer = call(writer.clone(), "CarePlan/plan-1/$validate", delete.clone()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let found = errors(&answer.json());
        assert!(
            found.iter().any(|e| e.3.contains("no-hard-delete")),
            "{found:?}"
        );
        // A backend service may delete it.
        let answer = call(service.clone(), "CarePlan/plan-1/$validate", delete.clone()).await;
        assert!(errors(&answer.json()).is_empty(), "{}", answer.body);
        // Another patient's plan: 404, as a read would be.
        let answer = call(writer.clone(), "CarePlan/plan-2/$validate", delete.clone()).await;
        assert_eq!(answer.status, 404, "{}", answer.body);
        // A posted resource needs the scopes to write it.
        let answer = call(reader.clone(), "CarePlan/$validate", plan(SHARED_PLAN)).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        let answer = call(writer.clone(), "CarePlan/$validate", plan(SHARED_PLAN)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        // create: the patient side writes no author (plan-authorship).
        let mut authored = plan(SHARED_PLAN);
        authored["author"] = json!({"reference": "Patient/p1"});
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": authored}, {"name": "mode", "valueCode": "create"}]});
        let answer = call(writer.clone(), "CarePlan/$validate", params).await;
        assert!(
            errors(&answer.json())
                .iter()
                .any(|e| e.3.contains("plan-authorship")),
            "{}",
            answer.body
        );
        server.stop().await;
    }
}
