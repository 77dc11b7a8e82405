//! Content negotiation and FHIR XML at the edge (http.html#mime-type, xml.html).

use crate::common::each_backend;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn xml_in_and_out_with_json_storage() {
    each_backend(|app| async move {
        let xml = br#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/><name><family value="Chalmers"/></name><birthDate value="1974-12-25"/></Patient>"#;
        let created = app
            .request(Method::POST, "/fhir/Patient", &[("content-type", "application/fhir+xml"), ("accept", "application/fhir+xml")], Some(xml))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        assert_eq!(created.header("content-type"), Some("application/fhir+xml; charset=utf-8"));
        let text = created.text();
        assert!(text.contains("<Patient xmlns=\"http://hl7.org/fhir\">"), "{text}");
        assert!(text.contains("<family value=\"Chalmers\"/>"), "{text}");
        assert!(text.contains("<versionId value=\"1\"/>"), "{text}");

        let id = "id-1";
        let as_json = app.get(&format!("/fhir/Patient/{id}")).await;
        assert_eq!(as_json.json()["name"][0]["family"], "Chalmers", "stored as JSON");
        let via_format = app.request(Method::GET, &format!("/fhir/Patient/{id}?_format=xml"), &[("accept", "application/fhir+json")], None).await;
        assert_eq!(via_format.header("content-type"), Some("application/fhir+xml; charset=utf-8"));
        let json_over_accept = app.request(Method::GET, &format!("/fhir/Patient/{id}?_format=json"), &[("accept", "application/fhir+xml")], None).await;
        assert_eq!(json_over_accept.header("content-type"), Some("application/fhir+json; charset=utf-8"));

        let not_acceptable = app.request(Method::GET, &format!("/fhir/Patient/{id}"), &[("accept", "text/html")], None).await;
        assert_eq!(not_acceptable.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(not_acceptable.json()["resourceType"], "OperationOutcome");
        let bad_format = app.get(&format!("/fhir/Patient/{id}?_format=html")).await;
        assert_eq!(bad_format.status, StatusCode::NOT_ACCEPTABLE);

        let history_xml = app.get("/fhir/Patient/_history?_format=xml").await;
        assert_eq!(history_xml.status, StatusCode::OK);
        assert!(history_xml.text().contains("<Bundle xmlns=\"http://hl7.org/fhir\">"), "{}", history_xml.text());

        let error_xml = app.request(Method::GET, "/fhir/Patient/none", &[("accept", "application/fhir+xml")], None).await;
        assert_eq!(error_xml.status, StatusCode::NOT_FOUND);
        assert!(error_xml.text().contains("<OperationOutcome"), "{}", error_xml.text());

        let metadata_xml = app.get("/fhir/metadata?_format=application/fhir%2Bxml").await;
        assert!(metadata_xml.text().contains("<CapabilityStatement"));
        app
    })
    .await;
}

#[tokio::test]
async fn plain_application_json_is_accepted() {
    each_backend(|app| async move {
        let body = serde_json::to_vec(&json!({"resourceType":"Patient"})).unwrap();
        let created = app
            .request(
                Method::POST,
                "/fhir/Patient",
                &[
                    ("content-type", "application/json; charset=utf-8"),
                    ("accept", "application/json"),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(
            created.header("content-type"),
            Some("application/fhir+json; charset=utf-8")
        );
        app
    })
    .await;
}

/// Every kind of empty Bundle, in XML and JSON: no panic, no `"entry":[]` (json.html forbids
/// empty arrays; fhirbolt's XML writer panicked on them), and `_count=0` carries the total.
#[tokio::test]
async fn empty_bundles_of_every_kind_in_both_formats() {
    each_backend(|app| async move {
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(app.put_json("/fhir/Patient/p1", &patient, &[]).await.status, StatusCode::CREATED);
        let empty = [
            "/fhir/CarePlan",
            "/fhir/CarePlan?_summary=count",
            "/fhir/CarePlan?_count=0",
            "/fhir/CarePlan/_history",
            "/fhir/_history?_since=2999-01-01T00:00:00Z",
            "/fhir/Patient/p1/CarePlan",
            "/fhir/Patient/p1/$everything?_type=CarePlan",
        ];
        for uri in empty {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let xml = app.get(&format!("{uri}{sep}_format=xml")).await;
            assert_eq!(xml.status, StatusCode::OK, "{uri}: {}", xml.text());
            assert!(xml.text().contains("<Bundle xmlns=\"http://hl7.org/fhir\">"), "{uri}: {}", xml.text());
            let by_accept = app.request(Method::GET, uri, &[("accept", "application/fhir+xml")], None).await;
            assert_eq!(by_accept.status, StatusCode::OK, "{uri}: {}", by_accept.text());
            let json = app.get(uri).await;
            assert_eq!(json.status, StatusCode::OK, "{uri}");
            assert!(!json.text().contains("[]"), "{uri}: {}", json.text());
            assert!(json.json().get("entry").is_none(), "{uri}: {}", json.text());
        }
        // Empty batch and transaction Bundles answer empty response Bundles, in XML too.
        for kind in ["batch", "transaction"] {
            let bundle = serde_json::to_vec(&json!({"resourceType": "Bundle", "type": kind})).expect("json");
            let answer = app
                .request(Method::POST, "/fhir?_format=xml", &[("content-type", "application/fhir+json")], Some(&bundle))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{kind}: {}", answer.text());
            assert!(answer.text().contains(&format!("<type value=\"{kind}-response\"/>")), "{}", answer.text());
            let json = app.post_json("/fhir", &json!({"resourceType": "Bundle", "type": kind})).await;
            assert_eq!(json.status, StatusCode::OK, "{kind}: {}", json.text());
            assert!(json.json().get("entry").is_none(), "{}", json.text());
        }
        let goal = json!({"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "walk"}, "subject": {"reference": "Patient/p1"}});
        for _ in 0..3 {
            assert_eq!(app.post_json("/fhir/Goal", &goal).await.status, StatusCode::CREATED);
        }
        let counted = app.get("/fhir/Goal?patient=p1&_count=0").await.json();
        assert_eq!(counted["total"], 3, "{counted}");
        assert!(counted.get("entry").is_none(), "{counted}");
        let counted_xml = app.get("/fhir/Goal?patient=p1&_count=0&_format=xml").await;
        assert!(counted_xml.text().contains("<total value=\"3\"/>"), "{}", counted_xml.text());
        app
    })
    .await;
}
