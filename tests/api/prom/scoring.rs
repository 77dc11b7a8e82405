//! PROMs scored on arrival: the shipped instruments, published examples, a user's own form,
//! refused responses, SDC `$validate`/`$extract`/`$populate`, and a response in a transaction.

use super::*;

#[tokio::test]
async fn the_shipped_instruments_load_once_and_a_local_edit_stays() {
    each_backend(|app| async move {
        with_library(&app).await;
        let again = app.state.fhir.load_questionnaire_library().await.unwrap();
        assert!(again.is_empty(), "{again:?}");
        let found = app
            .get("/fhir/Questionnaire?url=http://coplan.dev/fhir/Questionnaire/phq-9&version=1.0.0")
            .await
            .json();
        assert_eq!(found["total"], 1, "{found}");
        let q = &found["entry"][0]["resource"];
        assert_eq!(q["code"][0]["code"], "44249-1");
        // A local edit of the same url and version is never overwritten by a restart.
        let mut edited = q.clone();
        edited["title"] = json!("PHQ-9 (our clinic's wording)");
        let put = app
            .put_json("/fhir/Questionnaire/phq-9", &edited, &[])
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        assert!(app
            .state
            .fhir
            .load_questionnaire_library()
            .await
            .unwrap()
            .is_empty());
        let now = app.get("/fhir/Questionnaire/phq-9").await.json();
        assert_eq!(now["title"], "PHQ-9 (our clinic's wording)");
        assert_eq!(now["meta"]["versionId"], "2");
        app
    })
    .await;
}

#[tokio::test]
async fn the_published_phq9_is_scored_on_arrival_like_its_published_total() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "example").await;
        let mut response = published("uscore-QuestionnaireResponse-phq-9-example.json");
        response["questionnaire"] = json!(PHQ9);
        response.as_object_mut().unwrap().remove("id");
        response.as_object_mut().unwrap().remove("author");
        let created = app
            .post_json("/fhir/QuestionnaireResponse", &response)
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let qr_id = created.json()["id"].as_str().unwrap().to_string();

        let scores = scores_of(&app, &qr_id).await;
        assert_eq!(scores.len(), 1, "{scores:?}");
        let score = &scores[0];
        // The published total (the response's own 44261-6 answer and the US Core total
        // Observation example) is 12.
        assert_eq!(score["valueQuantity"]["value"], 12, "{score}");
        assert_eq!(score["valueQuantity"]["code"], "{score}");
        assert_eq!(score["status"], "final");
        assert_eq!(score["category"][0]["coding"][0]["code"], "survey");
        assert_eq!(score["code"]["coding"][0]["code"], "44261-6");
        assert_eq!(score["subject"]["reference"], "Patient/example");
        assert_eq!(score["effectiveDateTime"], response["authored"]);
        assert_eq!(
            score["derivedFrom"][0]["reference"],
            format!("QuestionnaireResponse/{qr_id}")
        );
        assert_eq!(
            score["interpretation"][0]["text"], "Moderate depression",
            "{score}"
        );
        // The nine answers, extracted as the score's members.
        let members = score["hasMember"].as_array().unwrap();
        assert_eq!(members.len(), 9, "{score}");
        let first = app
            .get(&format!(
                "/fhir/{}",
                members[0]["reference"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(first["code"]["coding"][0]["code"], "44250-9");
        assert_eq!(
            first["valueCodeableConcept"]["coding"][0]["code"],
            "LA6570-1"
        );

        // The server says it derived them, from this response.
        let provenance = app
            .get(&format!(
                "/fhir/Provenance?target=Observation/{}",
                score["id"].as_str().unwrap()
            ))
            .await
            .json();
        let record = &provenance["entry"][0]["resource"];
        assert_eq!(
            record["agent"][0]["who"]["reference"], "Device/coplan",
            "{record}"
        );
        assert_eq!(record["entity"][0]["role"], "source");
        assert_eq!(
            record["entity"][0]["what"]["reference"],
            format!("QuestionnaireResponse/{qr_id}/_history/1")
        );
        assert_eq!(record["target"].as_array().unwrap().len(), 10, "{record}");

        // An amendment supersedes the score: a new version of the same Observation.
        amend_published_phq9(&app, &qr_id).await;
        let scores = scores_of(&app, &qr_id).await;
        assert_eq!(scores.len(), 1, "never a duplicate: {scores:?}");
        assert_eq!(scores[0]["id"], score["id"]);
        assert_eq!(scores[0]["valueQuantity"]["value"], 13);
        assert_eq!(scores[0]["meta"]["versionId"], "2");
        app
    })
    .await;
}

#[tokio::test]
async fn the_published_gad7_and_a_users_own_questionnaire_are_scored_without_code_for_them() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "PGHDPatientExample").await;
        let mut gad7 = published("phr-QuestionnaireResponse-GAD7.json");
        gad7["questionnaire"] = json!(GAD7);
        gad7.as_object_mut().unwrap().remove("id");
        gad7.as_object_mut().unwrap().remove("source");
        let created = app.post_json("/fhir/QuestionnaireResponse", &gad7).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let scores = scores_of(&app, created.json()["id"].as_str().unwrap()).await;
        // 0+0+1+1+0+1+0, the published answers' LOINC ordinals.
        assert_eq!(scores[0]["valueQuantity"]["value"], 3, "{scores:?}");
        assert_eq!(scores[0]["code"]["coding"][0]["code"], "70274-6");
        assert_eq!(scores[0]["interpretation"][0]["text"], "Minimal anxiety");

        // A questionnaire a user loads: item weights and a calculated total of their own.
        let own = json!({"resourceType": "Questionnaire", "url": "http://clinic.example/q/sleep",
            "version": "2", "status": "active",
            "item": [
                {"linkId": "nights", "type": "choice", "required": true, "text": "Bad nights this week",
                 "answerOption": [
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "none"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 0}]},
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "some"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 2}]},
                    {"valueCoding": {"system": "http://clinic.example/cs", "code": "most"},
                     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 5}]}]},
                {"linkId": "total", "type": "decimal", "readOnly": true,
                 "code": [{"system": "http://clinic.example/cs", "code": "sleep-score"}],
                 "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
                    "valueExpression": {"language": "text/fhirpath",
                        "expression": "%resource.item.where(linkId = 'nights').answer.value.weight().sum() * 10"}}]}]});
        let loaded = app.post_json("/fhir/Questionnaire", &own).await;
        assert_eq!(loaded.status, 201, "{}", loaded.text());
        let answered = json!({"resourceType": "QuestionnaireResponse",
            "questionnaire": "http://clinic.example/q/sleep|2", "status": "completed",
            "subject": {"reference": "Patient/PGHDPatientExample"}, "authored": "2026-02-01T08:00:00Z",
            "item": [{"linkId": "nights", "answer": [{"valueCoding": {"system": "http://clinic.example/cs", "code": "most"}}]}]});
        let created = app.post_json("/fhir/QuestionnaireResponse", &answered).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().unwrap().to_string();
        let found = app
            .get(&format!("/fhir/Observation?derived-from=QuestionnaireResponse/{id}"))
            .await
            .json();
        let score = &found["entry"][0]["resource"];
        assert_eq!(score["code"]["coding"][0]["code"], "sleep-score", "{found}");
        assert_eq!(score["valueQuantity"]["value"], 50, "{score}");
        app
    })
    .await;
}

#[tokio::test]
async fn bad_responses_are_refused_naming_the_item_and_unknown_forms_are_taken_unscored() {
    each_backend(|app| async move {
        with_library(&app).await;
        patient(&app, "p1").await;
        let good = phq9("p1", [1; 9], "2026-03-01T10:00:00Z");
        let mut unknown_item = good.clone();
        unknown_item["item"][2]["linkId"] = json!("/99999-9");
        let mut not_an_option = good.clone();
        not_an_option["item"][4]["answer"][0]["valueCoding"]["code"] = json!("LA9999-9");
        let mut wrong_type = good.clone();
        wrong_type["item"][1]["answer"][0] = json!({"valueString": "a lot"});
        let mut missing = good.clone();
        missing["item"].as_array_mut().unwrap().remove(8);
        let mut twice = good.clone();
        let answer = twice["item"][0]["answer"][0].clone();
        twice["item"][0]["answer"]
            .as_array_mut()
            .unwrap()
            .push(answer);
        for (bad, link_id, expression) in [
            (unknown_item, "/99999-9", "QuestionnaireResponse.item[2]"),
            (
                not_an_option,
                "/44251-7",
                "QuestionnaireResponse.item[4].answer[0]",
            ),
            (
                wrong_type,
                "/44255-8",
                "QuestionnaireResponse.item[1].answer[0]",
            ),
            (missing, "/44260-8", "QuestionnaireResponse"),
            (twice, "/44250-9", "QuestionnaireResponse.item[0]"),
        ] {
            let refused = app.post_json("/fhir/QuestionnaireResponse", &bad).await;
            assert_eq!(refused.status, 422, "{link_id}: {}", refused.text());
            let outcome = refused.json();
            let issue = outcome["issue"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["diagnostics"].as_str().unwrap().contains(link_id))
                .unwrap_or_else(|| panic!("{link_id}: {outcome}"))
                .clone();
            assert_eq!(issue["severity"], "error");
            assert!(
                issue["expression"][0]
                    .as_str()
                    .unwrap()
                    .starts_with(expression),
                "{link_id}: {issue}"
            );
        }
        // Nothing of a refused response is stored.
        let none = app
            .get("/fhir/QuestionnaireResponse?patient=p1")
            .await
            .json();
        assert_eq!(none["total"], 0, "{none}");
        // In progress: only the structure is checked (missing answers are fine).
        let mut draft = phq9("p1", [0; 9], "2026-03-01T10:00:00Z");
        draft["status"] = json!("in-progress");
        draft["item"].as_array_mut().unwrap().truncate(3);
        let saved = app.post_json("/fhir/QuestionnaireResponse", &draft).await;
        assert_eq!(saved.status, 201, "{}", saved.text());
        assert!(scores_of(&app, saved.json()["id"].as_str().unwrap())
            .await
            .is_empty());
        // A form the server does not know: accepted, not scored.
        let mut external = phq9("p1", [3; 9], "2026-03-01T10:00:00Z");
        external["questionnaire"] = json!("http://elsewhere.example/Questionnaire/mood|1");
        let taken = app
            .post_json("/fhir/QuestionnaireResponse", &external)
            .await;
        assert_eq!(taken.status, 201, "{}", taken.text());
        assert!(scores_of(&app, taken.json()["id"].as_str().unwrap())
            .await
            .is_empty());
        // ... with a warning, for a client that asks for the outcome.
        let told = app
            .request(
                axum::http::Method::POST,
                "/fhir/QuestionnaireResponse",
                &[
                    ("content-type", "application/fhir+json"),
                    ("prefer", "return=OperationOutcome"),
                ],
                Some(external.to_string().as_bytes()),
            )
            .await;
        assert_eq!(told.status, 201, "{}", told.text());
        let outcome = told.json();
        assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
        assert_eq!(outcome["issue"][1]["severity"], "warning", "{outcome}");
        assert!(
            outcome["issue"][1]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("elsewhere.example"),
            "{outcome}"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn a_strict_server_refuses_responses_to_unknown_forms() {
    for backend in coplan::testing::backends() {
        let app = TestApp::with_config(
            backend,
            coplan::config::ConfigLayer::default().set("require_known_questionnaire", true),
        )
        .await;
        with_library(&app).await;
        patient(&app, "p1").await;
        let mut external = phq9("p1", [3; 9], "2026-03-01T10:00:00Z");
        external["questionnaire"] = json!("http://elsewhere.example/Questionnaire/mood|1");
        let refused = app
            .post_json("/fhir/QuestionnaireResponse", &external)
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        assert!(refused
            .diagnostics()
            .contains("require_known_questionnaire"));
        let known = app
            .post_json(
                "/fhir/QuestionnaireResponse",
                &phq9("p1", [3; 9], "2026-03-01T10:00:00Z"),
            )
            .await;
        assert_eq!(known.status, 201, "{}", known.text());
        app.cleanup().await;
    }
}

#[tokio::test]
async fn sdc_validate_extract_and_populate() {
    each_backend(|app| async move {
        with_library(&app).await;
        let person = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-04-02",
            "name": [{"given": ["Amy"], "family": "Shaw"}]});
        assert_eq!(app.put_json("/fhir/Patient/p1", &person, &[]).await.status, 201);

        // $validate: the write's checks, nothing stored.
        let mut bad = phq9("p1", [1; 9], "2026-03-01T10:00:00Z");
        bad["item"].as_array_mut().unwrap().remove(0);
        let checked = app
            .post_json("/fhir/QuestionnaireResponse/$validate", &bad)
            .await;
        assert_eq!(checked.status, 200, "{}", checked.text());
        let outcome = checked.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert!(outcome.to_string().contains("/44250-9"), "{outcome}");
        assert_eq!(outcome["issue"][0]["severity"], "error");
        let fine = app
            .post_json(
                "/fhir/QuestionnaireResponse/$validate",
                &json!({"resourceType": "Parameters", "parameter": [
                    {"name": "resource", "resource": phq9("p1", [1; 9], "2026-03-01T10:00:00Z")}]}),
            )
            .await
            .json();
        assert_eq!(fine["issue"][0]["severity"], "information", "{fine}");
        let stored = app.get("/fhir/QuestionnaireResponse").await.json();
        assert_eq!(stored["total"], 0);

        // $extract of a stored response: a transaction Bundle, not stored.
        let created = app
            .post_json("/fhir/QuestionnaireResponse", &phq9("p1", [2; 9], "2026-03-01T10:00:00Z"))
            .await;
        let id = created.json()["id"].as_str().unwrap().to_string();
        let before = app.get("/fhir/Observation").await.json()["total"].clone();
        let extracted = app
            .get(&format!("/fhir/QuestionnaireResponse/{id}/$extract"))
            .await;
        assert_eq!(extracted.status, 200, "{}", extracted.text());
        let bundle = extracted.json();
        assert_eq!(bundle["type"], "transaction");
        let entries = bundle["entry"].as_array().unwrap();
        assert!(entries.len() >= 9, "{bundle}");
        assert!(entries.iter().all(|e| e["request"]["method"] == "POST"
            && e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:")));
        assert!(entries.iter().any(|e| e["resource"]["code"]["coding"][0]["code"] == "44250-9"
            && e["resource"]["derivedFrom"][0]["reference"] == format!("QuestionnaireResponse/{id}")));
        assert_eq!(app.get("/fhir/Observation").await.json()["total"], before);
        let unknown = app
            .post_json("/fhir/QuestionnaireResponse/$extract", &json!({"resourceType": "QuestionnaireResponse",
                "status": "completed", "questionnaire": "http://elsewhere.example/q"}))
            .await;
        assert_eq!(unknown.status, 422, "{}", unknown.text());

        // $populate for the subject, from initialExpression.
        let form = json!({"resourceType": "Questionnaire", "id": "intake", "url": "http://clinic.example/q/intake",
            "version": "1", "status": "active", "item": [
                {"linkId": "name", "type": "string", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%patient.name.first().given.first()"}}]},
                {"linkId": "born", "type": "date", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%patient.birthDate"}}]},
                {"linkId": "visit", "type": "string", "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%encounter.id"}}]}]});
        assert_eq!(app.put_json("/fhir/Questionnaire/intake", &form, &[]).await.status, 201);
        let populated = app
            .get("/fhir/Questionnaire/intake/$populate?subject=Patient/p1")
            .await;
        assert_eq!(populated.status, 200, "{}", populated.text());
        let out = populated.json();
        let response = &out["parameter"][0]["resource"];
        assert_eq!(out["parameter"][0]["name"], "response");
        assert_eq!(response["subject"]["reference"], "Patient/p1");
        assert_eq!(response["item"][0]["answer"][0]["valueString"], "Amy", "{out}");
        assert_eq!(response["item"][1]["answer"][0]["valueDate"], "1980-04-02");
        assert_eq!(out["parameter"][1]["name"], "issues");
        assert!(out["parameter"][1]["resource"].to_string().contains("visit"), "{out}");
        let by_canonical = app
            .post_json("/fhir/Questionnaire/$populate", &json!({"resourceType": "Parameters", "parameter": [
                {"name": "questionnaire", "valueCanonical": "http://clinic.example/q/intake|1"},
                {"name": "subject", "valueReference": {"reference": "Patient/p1"}}]}))
            .await;
        assert_eq!(by_canonical.status, 200, "{}", by_canonical.text());
        let missing = app.get("/fhir/Questionnaire/intake/$populate?subject=Patient/nobody").await;
        assert_eq!(missing.status, 404, "{}", missing.text());
        app
    })
    .await;
}

#[tokio::test]
async fn a_transaction_with_a_response_stores_its_score_in_the_same_commit() {
    each_backend(|app| async move {
        with_library(&app).await;
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
             "resource": {"resourceType": "Patient", "name": [{"family": "Okafor"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": phq9("X", [3; 9], "2026-03-01T10:00:00Z"),
             "request": {"method": "POST", "url": "QuestionnaireResponse"}}]});
        let mut bundle = bundle;
        bundle["entry"][1]["resource"]["subject"]["reference"] =
            json!("urn:uuid:11111111-1111-4111-8111-111111111111");
        bundle["entry"][1]["resource"]["author"]["reference"] =
            json!("urn:uuid:11111111-1111-4111-8111-111111111111");
        let done = app.post_json("/fhir", &bundle).await;
        assert_eq!(done.status, 200, "{}", done.text());
        let location = done.json()["entry"][1]["response"]["location"]
            .as_str()
            .unwrap()
            .to_string();
        let id = location.split('/').nth(1).unwrap().to_string();
        let scores = scores_of(&app, &id).await;
        assert_eq!(scores[0]["valueQuantity"]["value"], 27, "{scores:?}");
        assert_eq!(scores[0]["interpretation"][0]["text"], "Severe depression");
        // A failing transaction leaves neither response nor score.
        let mut failing = bundle.clone();
        failing["entry"][0]["request"] =
            json!({"method": "PUT", "url": "Patient/p9", "ifMatch": "W/\"7\""});
        failing["entry"][0]["resource"]["id"] = json!("p9");
        let before = app.get("/fhir/Observation").await.json()["total"].clone();
        let refused = app.post_json("/fhir", &failing).await;
        assert!(refused.status.is_client_error(), "{}", refused.text());
        assert_eq!(app.get("/fhir/Observation").await.json()["total"], before);
        app
    })
    .await;
}
