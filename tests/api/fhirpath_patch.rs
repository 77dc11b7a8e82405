//! FHIRPath Patch (fhirpatch.html) through the real router, on every backend: a patient app
//! changing one goal's note without resending the plan, each operation type, the refusals
//! (400 for a document that is not a patch, 422 for one that cannot be applied or whose
//! result is invalid, 412 for a stale If-Match), and PATCH entries in batches and
//! transactions (a Parameters resource, or a Binary holding a JSON Patch).

use crate::common::{each_backend, TestApp, TestResponse};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// One `operation` parameter: its type, path and further parts.
fn op(kind: &str, path: &str, parts: &[Value]) -> Value {
    let mut all = vec![
        json!({"name":"type","valueCode":kind}),
        json!({"name":"path","valueString":path}),
    ];
    all.extend_from_slice(parts);
    json!({"name":"operation","part":all})
}

fn parameters(ops: &[Value]) -> Value {
    json!({"resourceType":"Parameters","parameter":ops})
}

fn goal() -> Value {
    json!({"resourceType":"Goal","id":"walk","lifecycleStatus":"active",
        "description":{"text":"Walk to the park every day"},
        "subject":{"reference":"Patient/p1"},
        "target":[{"measure":{"text":"steps"},"detailQuantity":{"value":5000,"unit":"steps"}}],
        "note":[{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"}]})
}

async fn put_goal(app: &TestApp) {
    let put = app.put_json("/fhir/Goal/walk", &goal(), &[]).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
}

async fn patch(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> TestResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut all = vec![("content-type", "application/fhir+json")];
    all.extend_from_slice(headers);
    app.request(Method::PATCH, "/fhir/Goal/walk", &all, Some(&bytes))
        .await
}

/// The resource without `meta` (which every write changes).
fn content(mut resource: Value) -> Value {
    resource.as_object_mut().unwrap().remove("meta");
    resource
}

#[tokio::test]
async fn a_patient_app_changes_one_goal_note_and_nothing_else() {
    each_backend(|app| async move {
        put_goal(&app).await;
        let body = parameters(&[op(
            "replace",
            "Goal.note[1].text",
            &[json!({"name":"value","valueMarkdown":"Knee is fine now"})],
        )]);
        let patched = patch(&app, &body, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert_eq!(patched.header("etag"), Some("W/\"2\""));
        let mut expected = goal();
        expected["note"][1]["text"] = json!("Knee is fine now");
        assert_eq!(content(patched.json()), expected, "only the one note changed");
        assert_eq!(content(app.get("/fhir/Goal/walk").await.json()), expected);
        let history = app.get("/fhir/Goal/walk/_history").await.json();
        assert_eq!(history["entry"][0]["request"]["method"], "PATCH");

        // `application/json` and FHIR XML carry a Parameters resource just as well.
        let by_json = app
            .request(
                Method::PATCH,
                "/fhir/Goal/walk",
                &[("content-type", "application/json")],
                Some(&serde_json::to_vec(&parameters(&[op("replace", "Goal.lifecycleStatus", &[json!({"name":"value","valueCode":"on-hold"})])])).unwrap()),
            )
            .await;
        assert_eq!(by_json.status, StatusCode::OK, "{}", by_json.text());
        assert_eq!(by_json.json()["lifecycleStatus"], "on-hold");
        let xml = br#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="operation"/>
            <part><name value="type"/><valueCode value="replace"/></part>
            <part><name value="path"/><valueString value="Goal.lifecycleStatus"/></part>
            <part><name value="value"/><valueCode value="active"/></part></parameter></Parameters>"#;
        let by_xml = app
            .request(Method::PATCH, "/fhir/Goal/walk", &[("content-type", "application/fhir+xml")], Some(xml))
            .await;
        assert_eq!(by_xml.status, StatusCode::OK, "{}", by_xml.text());
        assert_eq!(by_xml.json()["lifecycleStatus"], "active");
        assert_eq!(by_xml.json()["meta"]["versionId"], "4");
        app
    })
    .await;
}

#[tokio::test]
async fn every_operation_type() {
    each_backend(|app| async move {
        put_goal(&app).await;
        let note = |text: &str| json!({"name":"value","valueAnnotation":{"text":text}});
        let steps: Vec<(&str, Value, Value)> = vec![
            (
                "add appends to a repeating element",
                op("add", "Goal", &[json!({"name":"name","valueString":"note"}), note("third")]),
                json!([{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"third"}]),
            ),
            (
                "insert puts an item at its index",
                op("insert", "Goal.note", &[json!({"name":"index","valueInteger":0}), note("zeroth")]),
                json!([{"text":"zeroth"},{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"third"}]),
            ),
            (
                "move takes an item elsewhere",
                op("move", "Goal.note", &[json!({"name":"source","valueInteger":0}), json!({"name":"destination","valueInteger":3})]),
                json!([{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"third"},{"text":"zeroth"}]),
            ),
            (
                "replace swaps one element",
                op("replace", "Goal.note.where(text = 'third')", &[note("3rd")]),
                json!([{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"3rd"},{"text":"zeroth"}]),
            ),
            (
                "delete removes one element",
                op("delete", "Goal.note[3]", &[]),
                json!([{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"3rd"}]),
            ),
            (
                "delete of nothing does nothing (a new version all the same)",
                op("delete", "Goal.note.where(text = 'never written')", &[]),
                json!([{"text":"Started with short walks"},{"text":"Knee hurts after 20 minutes"},{"text":"3rd"}]),
            ),
        ];
        for (version, (what, operation, notes)) in (2..).zip(steps) {
            let patched = patch(&app, &parameters(&[operation]), &[]).await;
            assert_eq!(patched.status, StatusCode::OK, "{what}: {}", patched.text());
            let got = patched.json();
            assert_eq!(got["note"], notes, "{what}");
            assert_eq!(got["meta"]["versionId"], version.to_string(), "{what}");
            assert_eq!(got["description"], goal()["description"], "{what}: the rest stays");
        }

        // Several operations apply in order, each to the result of the one before; a choice
        // element changes its type through replace, and an anonymous type is built of parts.
        let body = parameters(&[
            op("replace", "Goal.target[0].detail", &[json!({"name":"value","valueString":"most days"})]),
            op("add", "Goal", &[json!({"name":"name","valueString":"target"}), json!({"name":"value","part":[
                {"name":"measure","valueCodeableConcept":{"text":"minutes"}},
                {"name":"detail","valueQuantity":{"value":30,"unit":"min"}},
                {"name":"due","valueDate":"2026-06-01"}]})]),
            op("delete", "Goal.note.where(text.startsWith('Knee'))", &[]),
        ]);
        let patched = patch(&app, &body, &[]).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        let got = patched.json();
        assert_eq!(
            got["target"],
            json!([{"measure":{"text":"steps"},"detailString":"most days"},
                   {"measure":{"text":"minutes"},"detailQuantity":{"value":30,"unit":"min"},"dueDate":"2026-06-01"}])
        );
        assert_eq!(got["note"], json!([{"text":"Started with short walks"},{"text":"3rd"}]));
        app
    })
    .await;
}

#[tokio::test]
async fn refusals_say_which_operation_and_why_and_write_nothing() {
    each_backend(|app| async move {
        put_goal(&app).await;
        let value = |code: &str| json!({"name":"value","valueCode":code});
        let cases: Vec<(&str, Value, StatusCode, &str, Option<&str>)> = vec![
            (
                "a path that is not FHIRPath",
                parameters(&[op("delete", "Goal.note.where(", &[])]),
                StatusCode::BAD_REQUEST,
                "the path is not valid FHIRPath",
                Some("Parameters.parameter[0]"),
            ),
            (
                "an unknown operation type",
                parameters(&[op("upsert", "Goal.note", &[])]),
                StatusCode::BAD_REQUEST,
                "unknown operation type \"upsert\"",
                Some("Parameters.parameter[0]"),
            ),
            (
                "a Parameters that is not a valid resource",
                json!({"resourceType":"Parameters","parameter":[{"name":"operation","banana":true}]}),
                StatusCode::BAD_REQUEST,
                "banana",
                None,
            ),
            (
                "a FHIR resource that is not a Parameters",
                goal(),
                StatusCode::BAD_REQUEST,
                "must be a Parameters resource",
                Some("resourceType"),
            ),
            (
                "a path that matches nothing",
                parameters(&[
                    op("delete", "Goal.note[0]", &[]),
                    op("replace", "Goal.statusDate", &[json!({"name":"value","valueDate":"2026-01-01"})]),
                ]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "Parameters.parameter[1] (replace Goal.statusDate): no element matches the path",
                Some("Parameters.parameter[1]"),
            ),
            (
                "a path that matches two elements",
                parameters(&[op("replace", "Goal.note.text", &[json!({"name":"value","valueString":"x"})])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "the path matches 2 elements",
                Some("Parameters.parameter[0]"),
            ),
            (
                "an index beyond the list",
                parameters(&[op("insert", "Goal.note", &[json!({"name":"index","valueInteger":5}), json!({"name":"value","valueAnnotation":{"text":"x"}})])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "index 5 is beyond the end of the list (it has 2 item(s))",
                Some("Parameters.parameter[0]"),
            ),
            (
                "a value of the wrong type",
                parameters(&[op("replace", "Goal.description", &[json!({"name":"value","valueCoding":{"code":"x"}})])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "description holds a CodeableConcept, the value given is a Coding",
                Some("Parameters.parameter[0]"),
            ),
            (
                "a result with a code outside its required binding",
                parameters(&[op("replace", "Goal.lifecycleStatus", &[value("banana")])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "banana",
                Some("Goal.lifecycleStatus"),
            ),
            (
                "a result without a required element",
                parameters(&[op("delete", "Goal.subject", &[])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "subject",
                None,
            ),
            (
                "a result with another id",
                parameters(&[op("replace", "Goal.id", &[json!({"name":"value","valueId":"other"})])]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "must not change or remove the resource id",
                None,
            ),
        ];
        for (what, body, status, says, expression) in cases {
            let refused = patch(&app, &body, &[]).await;
            assert_eq!(refused.status, status, "{what}: {}", refused.text());
            let outcome = refused.json();
            assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
            let said: Vec<&str> = outcome["issue"].as_array().unwrap().iter().filter_map(|i| i["diagnostics"].as_str()).collect();
            assert!(said.iter().any(|d| d.contains(says)), "{what}: {outcome}");
            if let Some(expression) = expression {
                assert_eq!(outcome["issue"][0]["expression"][0], expression, "{what}: {outcome}");
            }
        }

        let good = parameters(&[op("replace", "Goal.lifecycleStatus", &[value("completed")])]);
        let stale = patch(&app, &good, &[("if-match", "W/\"7\"")]).await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.text());
        assert_eq!(stale.json()["resourceType"], "OperationOutcome");
        let plain_text = app
            .request(Method::PATCH, "/fhir/Goal/walk", &[("content-type", "text/plain")], Some(b"x"))
            .await;
        assert_eq!(plain_text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let missing = app
            .request(
                Method::PATCH,
                "/fhir/Goal/nobody",
                &[("content-type", "application/fhir+json")],
                Some(&serde_json::to_vec(&good).unwrap()),
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(content(app.get("/fhir/Goal/walk").await.json()), goal(), "nothing was written");
        // The goal's one version, its Provenance and the Device it names: nothing more.
        assert_eq!(app.version_count().await, 3);

        let current = patch(&app, &good, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(current.status, StatusCode::OK, "{}", current.text());
        app
    })
    .await;
}

#[tokio::test]
async fn patch_entries_in_transactions_and_batches() {
    each_backend(|app| async move {
        put_goal(&app).await;
        let plan = json!({"resourceType":"CarePlan","id":"plan","status":"active","intent":"plan",
            "subject":{"reference":"Patient/p1"},"goal":[{"reference":"Goal/walk"}]});
        assert_eq!(app.put_json("/fhir/CarePlan/plan", &plan, &[]).await.status, StatusCode::CREATED);
        let json_patch = br#"[{"op":"add","path":"/description","value":"Walking plan"}]"#;
        let binary = json!({"resourceType":"Binary","contentType":"application/json-patch+json",
            "data": base64_of(json_patch)});
        let note_by_new_practitioner = parameters(&[op("add", "Goal", &[
            json!({"name":"name","valueString":"note"}),
            json!({"name":"value","valueAnnotation":{"authorReference":{"reference":"urn:uuid:9b1f0c1e-0000-4000-8000-00000000000a"},"text":"Seen in clinic"}}),
        ])]);
        let bundle = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"resource":{"resourceType":"Practitioner","name":[{"family":"Careful"}]},"fullUrl":"urn:uuid:9b1f0c1e-0000-4000-8000-00000000000a",
             "request":{"method":"POST","url":"Practitioner"}},
            {"resource": note_by_new_practitioner, "request":{"method":"PATCH","url":"Goal/walk","ifMatch":"W/\"1\""}},
            {"resource": binary, "request":{"method":"PATCH","url":"CarePlan/plan"}},
            {"request":{"method":"GET","url":"Goal/walk"}}
        ]});
        let answer = app.post_json("/fhir", &bundle).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let entries = answer.json()["entry"].clone();
        assert_eq!(entries[1]["response"]["status"], "200 OK", "{entries}");
        assert_eq!(entries[1]["response"]["etag"], "W/\"2\"");
        assert_eq!(entries[2]["response"]["status"], "200 OK");
        let practitioner = entries[0]["response"]["location"].as_str().unwrap().split("/_history").next().unwrap().to_string();
        let read_back = &entries[3]["resource"];
        assert_eq!(read_back["note"][2]["text"], "Seen in clinic", "the GET sees the patch");
        assert_eq!(read_back["note"][2]["authorReference"]["reference"], practitioner.as_str(), "urn:uuid resolved inside the patch");
        assert_eq!(app.get("/fhir/CarePlan/plan").await.json()["description"], "Walking plan");
        let history = app.get("/fhir/Goal/walk/_history").await.json();
        assert_eq!(history["entry"][0]["request"]["method"], "PATCH");

        // One failing patch fails the whole transaction: nothing is written.
        let versions = app.version_count().await;
        let failing = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"resource": parameters(&[op("replace", "Goal.lifecycleStatus", &[json!({"name":"value","valueCode":"completed"})])]),
             "request":{"method":"PATCH","url":"Goal/walk"}},
            {"resource": parameters(&[op("delete", "CarePlan.activity", &[]), op("replace", "CarePlan.title", &[json!({"name":"value","valueString":"t"})])]),
             "request":{"method":"PATCH","url":"CarePlan/plan"}}
        ]});
        let refused = app.post_json("/fhir", &failing).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
        let issue = &refused.json()["issue"][0];
        assert!(issue["diagnostics"].as_str().unwrap().starts_with("Bundle.entry[1]: Parameters.parameter[1] (replace CarePlan.title)"), "{issue}");
        assert_eq!(issue["expression"][0], "Bundle.entry[1].resource.parameter[1]");
        assert_eq!(app.version_count().await, versions, "nothing written");

        // A stale ifMatch on a PATCH entry is 412, in a transaction and in a batch entry.
        let stale = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"resource": parameters(&[op("delete", "Goal.note[0]", &[])]), "request":{"method":"PATCH","url":"Goal/walk","ifMatch":"W/\"1\""}}]});
        assert_eq!(app.post_json("/fhir", &stale).await.status, StatusCode::PRECONDITION_FAILED);

        // In a batch each PATCH entry stands alone.
        let batch = json!({"resourceType":"Bundle","type":"batch","entry":[
            {"resource": parameters(&[op("delete", "Goal.note[0]", &[])]), "request":{"method":"PATCH","url":"Goal/walk","ifMatch":"W/\"1\""}},
            {"resource": parameters(&[op("delete", "Goal.note[0]", &[])]), "request":{"method":"PATCH","url":"Goal/walk"}},
            {"resource": parameters(&[op("move", "Goal.note", &[json!({"name":"source","valueInteger":9}), json!({"name":"destination","valueInteger":0})])]), "request":{"method":"PATCH","url":"Goal/walk"}},
            {"resource": {"resourceType":"Goal"}, "request":{"method":"PATCH","url":"Goal/walk"}},
            {"resource": parameters(&[op("delete", "Goal.note[0]", &[])]), "request":{"method":"PATCH","url":"Goal?subject=Patient/p1"}}
        ]});
        let answer = app.post_json("/fhir", &batch).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let statuses: Vec<String> = answer.json()["entry"].as_array().unwrap().iter()
            .map(|e| e["response"]["status"].as_str().unwrap().to_string()).collect();
        assert_eq!(statuses, ["412 Precondition Failed", "200 OK", "422 Unprocessable Entity", "400 Bad Request", "400 Bad Request"]);
        let goal_now = app.get("/fhir/Goal/walk").await.json();
        assert_eq!(goal_now["note"], json!([{"text":"Knee hurts after 20 minutes"},{"authorReference":{"reference":practitioner},"text":"Seen in clinic"}]));
        app
    })
    .await;
}

#[tokio::test]
async fn the_capability_statement_offers_both_patch_formats() {
    each_backend(|app| async move {
        let statement = app.get("/fhir/metadata").await.json();
        assert_eq!(
            statement["patchFormat"],
            json!([
                "application/json-patch+json",
                "application/fhir+json",
                "application/fhir+xml"
            ])
        );
        app
    })
    .await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
