//! Search through the real router on every backend (search.html): the US Core searches,
//! modifiers and prefixes, chains and `_has`, compartment search, POST `_search`, paging,
//! unknown parameters and malformed values.

use crate::common::{each_backend, TestApp, BASE};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == "match")
                .map(|x| x["resource"]["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn found(app: &TestApp, url: &str) -> Vec<String> {
    let response = app.get(url).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{url}: {}",
        response.text()
    );
    let mut got = ids(&response.json());
    got.sort();
    got
}

async fn seed(app: &TestApp) {
    let put = |rt: &str, body: Value| {
        let id = body["id"].as_str().unwrap().to_string();
        let url = format!("/fhir/{rt}/{id}");
        async move {
            let r = app.put_json(&url, &body, &[]).await;
            assert!(r.status.is_success(), "{url}: {}", r.text());
        }
    };
    put("Patient", json!({"resourceType":"Patient","id":"p1","identifier":[{"system":"http://hospital.example/mrn","value":"1032702"}],"name":[{"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25"})).await;
    put("Patient", json!({"resourceType":"Patient","id":"p2","name":[{"family":"Müller","given":["Zoë"]}],"gender":"female","birthDate":"1980-06-01"})).await;
    put("Practitioner", json!({"resourceType":"Practitioner","id":"dr1","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"9941339108"}],"name":[{"family":"Adams","given":["Ann"]}]})).await;
    let category = json!([{"coding":[{"system":"http://hl7.org/fhir/us/core/CodeSystem/careplan-category","code":"assess-plan"}]}]);
    put("CarePlan", json!({"resourceType":"CarePlan","id":"cp1","status":"active","intent":"plan","category":category,"subject":{"reference":"Patient/p1"},"period":{"start":"2026-01-10","end":"2026-06-30"},"goal":[{"reference":"Goal/g1"}]})).await;
    put("CarePlan", json!({"resourceType":"CarePlan","id":"cp2","status":"draft","intent":"plan","category":category,"subject":{"reference":"Patient/p1"},"period":{"start":"2025-03-01"}})).await;
    put("CarePlan", json!({"resourceType":"CarePlan","id":"cp3","status":"active","intent":"plan","subject":{"reference":"Patient/p2"}})).await;
    put("Goal", json!({"resourceType":"Goal","id":"g1","lifecycleStatus":"active","description":{"text":"Walk to the park with my grandchildren"},"subject":{"reference":"Patient/p1"},"expressedBy":{"reference":"Patient/p1"},"target":[{"dueDate":"2026-05-01"}]})).await;
    put("Goal", json!({"resourceType":"Goal","id":"g2","lifecycleStatus":"completed","description":{"text":"Sleep through the night"},"subject":{"reference":"Patient/p2"}})).await;
    put("QuestionnaireResponse", json!({"resourceType":"QuestionnaireResponse","id":"qr1","questionnaire":"http://loinc.org/q/44249-1","status":"completed","subject":{"reference":"Patient/p1"},"authored":"2026-02-01T09:30:00Z","basedOn":[{"reference":"CarePlan/cp1"}]})).await;
    put("Provenance", json!({"resourceType":"Provenance","id":"prov1","target":[{"reference":"CarePlan/cp1"}],"recorded":"2026-01-10T10:00:00Z","agent":[{"who":{"reference":"Practitioner/dr1"}}]})).await;
    put("CareTeam", json!({"resourceType":"CareTeam","id":"ct1","status":"active","subject":{"reference":"Patient/p1"},"participant":[{"role":[{"coding":[{"system":"http://snomed.info/sct","code":"116154003"}]}],"member":{"reference":"Practitioner/dr1"}}]})).await;
}

#[tokio::test]
async fn us_core_searches() {
    each_backend(|app| async move {
        seed(&app).await;
        let cat = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan";
        assert_eq!(found(&app, &format!("/fhir/CarePlan?patient=p1&category={cat}")).await, ["cp1", "cp2"]);
        assert_eq!(found(&app, &format!("/fhir/CarePlan?patient=Patient/p1&category={cat}&status=active")).await, ["cp1"]);
        assert_eq!(found(&app, &format!("/fhir/CarePlan?patient=p1&category={cat}&date=ge2026-01-01")).await, ["cp1", "cp2"], "an open-ended period overlaps");
        assert_eq!(found(&app, &format!("/fhir/CarePlan?patient=p1&category={cat}&status=active&date=lt2026-01-01")).await, Vec::<String>::new());
        assert_eq!(found(&app, "/fhir/CarePlan?patient=p1&status=active,draft").await, ["cp1", "cp2"]);
        assert_eq!(found(&app, "/fhir/Goal?patient=p1").await, ["g1"]);
        assert_eq!(found(&app, "/fhir/Goal?patient=p2&lifecycle-status=completed").await, ["g2"]);
        assert_eq!(found(&app, "/fhir/Goal?patient=p1&target-date=gt2026-04-01").await, ["g1"]);
        assert_eq!(found(&app, "/fhir/QuestionnaireResponse?_id=qr1,nope").await, ["qr1"]);
        assert_eq!(found(&app, "/fhir/QuestionnaireResponse?patient=p1&authored=ge2026-02&questionnaire=http://loinc.org/q/44249-1&status=completed").await, ["qr1"]);
        assert_eq!(found(&app, "/fhir/CareTeam?patient=p1&status=active").await, ["ct1"]);
        assert_eq!(found(&app, "/fhir/CareTeam?patient=p1&role=http://snomed.info/sct|116154003").await, ["ct1"]);
        assert_eq!(found(&app, "/fhir/Patient?identifier=http://hospital.example/mrn|1032702").await, ["p1"]);
        assert_eq!(found(&app, "/fhir/Patient?name=peter").await, ["p1"]);
        assert_eq!(found(&app, "/fhir/Patient?birthdate=1974-12-25&name=chalmers").await, ["p1"]);
        assert_eq!(found(&app, "/fhir/Patient?family=chalmers&gender=male").await, ["p1"]);
        assert_eq!(found(&app, "/fhir/Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9941339108").await, ["dr1"]);
        assert_eq!(found(&app, "/fhir/Practitioner?name=adams").await, ["dr1"]);
        app
    })
    .await;
}

#[tokio::test]
async fn modifiers_chains_and_compartments() {
    each_backend(|app| async move {
        seed(&app).await;
        assert_eq!(
            found(&app, "/fhir/Patient?name=muller").await,
            ["p2"],
            "accent-insensitive"
        );
        assert_eq!(
            found(&app, "/fhir/Patient?name=ZOE").await,
            ["p2"],
            "case-insensitive"
        );
        assert_eq!(
            found(&app, "/fhir/Patient?family:exact=Müller").await,
            ["p2"]
        );
        assert_eq!(
            found(&app, "/fhir/Patient?family:exact=müller").await,
            Vec::<String>::new()
        );
        assert_eq!(
            found(&app, "/fhir/Patient?name:contains=alme").await,
            ["p1"]
        );
        assert_eq!(found(&app, "/fhir/Patient?gender:not=male").await, ["p2"]);
        assert_eq!(
            found(&app, "/fhir/Patient?birthdate:missing=false").await,
            ["p1", "p2"]
        );
        assert_eq!(
            found(&app, "/fhir/CarePlan?category:missing=true").await,
            ["cp3"]
        );
        assert_eq!(
            found(&app, "/fhir/CarePlan?subject:Patient.name=chalmers").await,
            ["cp1", "cp2"]
        );
        assert_eq!(
            found(&app, "/fhir/Patient?_has:CarePlan:patient:status=draft").await,
            ["p1"]
        );
        assert_eq!(
            found(&app, &format!("/fhir/CarePlan?subject={BASE}/Patient/p2")).await,
            ["cp3"]
        );
        assert_eq!(
            found(&app, "/fhir/Patient/p1/CarePlan").await,
            ["cp1", "cp2"]
        );
        assert_eq!(
            found(&app, "/fhir/Patient/p1/CarePlan?status=draft").await,
            ["cp2"]
        );
        assert_eq!(found(&app, "/fhir/Patient/p1/Goal").await, ["g1"]);
        assert_eq!(
            found(&app, "/fhir/Patient/p2/QuestionnaireResponse").await,
            Vec::<String>::new()
        );
        assert_eq!(
            app.get("/fhir/Patient/p1/Questionnaire").await.status,
            StatusCode::NOT_FOUND
        );

        let form = app
            .request(
                Method::POST,
                "/fhir/CarePlan/_search",
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(b"patient=p1&status=active"),
            )
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        assert_eq!(ids(&form.json()), ["cp1"]);
        app
    })
    .await;
}

#[tokio::test]
async fn bundles_paging_and_errors() {
    each_backend(|app| async move {
        seed(&app).await;
        let bundle = app
            .get("/fhir/CarePlan?patient=p1&_count=1&_total=accurate")
            .await
            .json();
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 2);
        assert_eq!(
            bundle["link"][0]["url"],
            format!("{BASE}/CarePlan?patient=p1&_count=1&_total=accurate")
        );
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            format!(
                "{BASE}/CarePlan/{}",
                bundle["entry"][0]["resource"]["id"].as_str().unwrap()
            )
        );
        let next = bundle["link"][1]["url"]
            .as_str()
            .expect("next link")
            .trim_start_matches("http://coplan.test")
            .to_string();
        let page2 = app.get(&next).await.json();
        let mut both = ids(&bundle);
        both.extend(ids(&page2));
        both.sort();
        assert_eq!(both, ["cp1", "cp2"]);
        assert!(page2["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next"));

        // `total` comes free when the whole result is on the first page; not on a partial page
        // (unless asked for), never under `_total=none`; `_count=0` counts (fhirpy's count()).
        let whole = app.get("/fhir/CarePlan?patient=p1").await.json();
        assert_eq!(whole["total"], 2, "{whole}");
        let partial = app.get("/fhir/CarePlan?patient=p1&_count=1").await.json();
        assert!(partial.get("total").is_none(), "{partial}");
        let declined = app
            .get("/fhir/CarePlan?patient=p1&_total=none")
            .await
            .json();
        assert!(declined.get("total").is_none(), "{declined}");
        let counted = app.get("/fhir/CarePlan?patient=p1&_count=0").await.json();
        assert_eq!(counted["total"], 2, "{counted}");
        assert!(counted.get("entry").is_none(), "{counted}");

        let count_only = app.get("/fhir/CarePlan?_summary=count").await.json();
        assert_eq!(count_only["total"], 3);
        assert!(
            count_only.get("entry").is_none(),
            "R4 JSON never carries an empty array: {count_only}"
        );

        // unknown parameters: ignored and reported by default, refused under handling=strict
        let lenient = app
            .get("/fhir/CarePlan?patient=p1&colour=blue")
            .await
            .json();
        assert_eq!(ids(&lenient).len(), 2);
        let outcome = lenient["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["search"]["mode"] == "outcome")
            .expect("outcome entry")
            .clone();
        assert_eq!(outcome["resource"]["issue"][0]["expression"][0], "colour");
        assert!(
            !lenient["link"][0]["url"]
                .as_str()
                .unwrap()
                .contains("colour"),
            "self link shows only applied parameters"
        );
        let strict = app
            .request(
                Method::GET,
                "/fhir/CarePlan?patient=p1&colour=blue",
                &[("prefer", "handling=strict")],
                None,
            )
            .await;
        assert_eq!(strict.status, StatusCode::BAD_REQUEST);

        for bad in [
            "/fhir/CarePlan?date=2026-13-01",
            "/fhir/CarePlan?date=zz2026",
            "/fhir/CarePlan?_count=-1",
            "/fhir/CarePlan?status:missing=maybe",
            "/fhir/CarePlan?_page=garbage",
        ] {
            let response = app.get(bad).await;
            assert_eq!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{bad}: {}",
                response.text()
            );
            assert_eq!(response.json()["resourceType"], "OperationOutcome");
        }
        let injection = app.get("/fhir/Patient?name=x'%20OR%20'1'='1").await;
        assert_eq!(injection.status, StatusCode::OK);
        assert!(ids(&injection.json()).is_empty());
        let elements = app
            .get("/fhir/CarePlan?_id=cp1&_elements=status")
            .await
            .json();
        let plan = &elements["entry"][0]["resource"];
        assert_eq!(
            (plan["status"].clone(), plan.get("intent")),
            (json!("active"), None)
        );
        assert_eq!(plan["meta"]["tag"][0]["code"], "SUBSETTED");
        let text = app.get("/fhir/CarePlan?_id=cp1&_summary=text").await.json();
        let plan = &text["entry"][0]["resource"];
        assert!(
            plan.get("status").is_some()
                && plan.get("intent").is_some()
                && plan.get("subject").is_some()
        );
        assert!(plan.get("category").is_none() && plan.get("goal").is_none());
        assert_eq!(plan["meta"]["tag"][0]["code"], "SUBSETTED");
        let summary = app.get("/fhir/CarePlan?_id=cp1&_summary=true").await.json();
        let plan = &summary["entry"][0]["resource"];
        assert!(
            ["status", "intent", "subject", "category"]
                .iter()
                .all(|k| plan.get(*k).is_some()),
            "isSummary elements kept: {plan}"
        );
        assert!(plan.get("goal").is_none() && plan.get("text").is_none());
        assert_eq!(plan["meta"]["tag"][0]["code"], "SUBSETTED");
        let contained = app.get("/fhir/CarePlan?_contained=true").await;
        assert_eq!(
            contained.status,
            StatusCode::BAD_REQUEST,
            "not silently ignored: {}",
            contained.text()
        );
        app
    })
    .await;
}

fn by_mode(bundle: &Value, mode: &str) -> Vec<String> {
    let mut got: Vec<String> = bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == mode)
                .map(|x| {
                    format!(
                        "{}/{}",
                        x["resource"]["resourceType"].as_str().unwrap_or(""),
                        x["resource"]["id"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    got.sort();
    got
}

#[tokio::test]
async fn includes_and_revincludes() {
    each_backend(|app| async move {
        seed(&app).await;
        let plan_with_goals = app.get("/fhir/CarePlan?_id=cp1&_include=CarePlan:goal").await.json();
        assert_eq!(by_mode(&plan_with_goals, "match"), ["CarePlan/cp1"]);
        assert_eq!(by_mode(&plan_with_goals, "include"), ["Goal/g1"]);
        let everything = app
            .get("/fhir/CarePlan?_id=cp1&_include=CarePlan:goal&_include=CarePlan:subject&_revinclude=QuestionnaireResponse:based-on&_revinclude=Provenance:target")
            .await
            .json();
        // The client's Provenance of the plan, and the one the server recorded when it was
        // written: its id derived from the plan's first version and that version's instant.
        let written = app.get("/fhir/CarePlan/cp1/_history/1").await.json();
        let written_us = fhir_primitives::parse_instant_or_date(written["meta"]["lastUpdated"].as_str().unwrap()).unwrap();
        let recorded = coplan::rest::provenance::provenance_id(
            &coplan::rest::provenance::Target {
                resource_type: "CarePlan".into(),
                id: "cp1".into(),
                version_id: 1,
                activity: coplan::rest::provenance::Activity::Create,
            },
            written_us,
        );
        let mut expected = vec!["Goal/g1".to_string(), "Patient/p1".into(), format!("Provenance/{recorded}"), "Provenance/prov1".into(), "QuestionnaireResponse/qr1".into()];
        expected.sort();
        assert_eq!(by_mode(&everything, "include"), expected);
        let star = app.get("/fhir/CarePlan?_id=cp1&_include=*").await.json();
        assert_eq!(by_mode(&star, "include"), ["Goal/g1", "Patient/p1"]);
        // Everything that references the plan, whatever its type and parameter.
        let rev_star = app.get("/fhir/CarePlan?_id=cp1&_revinclude=*").await.json();
        let recorded = format!("Provenance/{recorded}");
        assert_eq!(by_mode(&rev_star, "include"), [recorded.as_str(), "Provenance/prov1", "QuestionnaireResponse/qr1"]);
        let rev_type_star = app.get("/fhir/CarePlan?_id=cp1&_revinclude=Provenance:*").await.json();
        assert_eq!(by_mode(&rev_type_star, "include"), [recorded.as_str(), "Provenance/prov1"]);
        let iterate = app
            .get("/fhir/QuestionnaireResponse?_id=qr1&_include=QuestionnaireResponse:based-on&_include:iterate=CarePlan:goal")
            .await
            .json();
        assert_eq!(by_mode(&iterate, "include"), ["CarePlan/cp1", "Goal/g1"]);
        let no_iterate = app.get("/fhir/QuestionnaireResponse?_id=qr1&_include=QuestionnaireResponse:based-on&_include=CarePlan:goal").await;
        assert_eq!(no_iterate.status, StatusCode::BAD_REQUEST, "a non-iterate include must start from the searched type: {}", no_iterate.text());
        let no_duplicates = app.get("/fhir/CarePlan?patient=p1&_include=CarePlan:subject").await.json();
        assert_eq!(by_mode(&no_duplicates, "include"), ["Patient/p1"], "each included resource once");
        app
    })
    .await;
}

#[tokio::test]
async fn patient_everything() {
    each_backend(|app| async move {
        seed(&app).await;
        let all = app.get("/fhir/Patient/p1/$everything").await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.text());
        let everything = by_mode(&all.json(), "match");
        for expected in [
            "Patient/p1",
            "CarePlan/cp1",
            "CarePlan/cp2",
            "Goal/g1",
            "QuestionnaireResponse/qr1",
            "CareTeam/ct1",
            "Practitioner/dr1",
        ] {
            assert!(
                everything.contains(&expected.to_string()),
                "{expected} missing from {everything:?}"
            );
        }
        assert!(
            !everything
                .iter()
                .any(|r| r.ends_with("/p2") || r == "CarePlan/cp3" || r == "Goal/g2"),
            "nothing of another patient: {everything:?}"
        );
        let typed = by_mode(
            &app.get("/fhir/Patient/p1/$everything?_type=Goal,CarePlan")
                .await
                .json(),
            "match",
        );
        assert_eq!(typed, ["CarePlan/cp1", "CarePlan/cp2", "Goal/g1"]);
        // paging two at a time visits everything exactly once
        let mut paged = Vec::new();
        let mut url = "/fhir/Patient/p1/$everything?_count=2".to_string();
        loop {
            let page = app.get(&url).await.json();
            paged.extend(by_mode(&page, "match"));
            match page["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == "next")
            {
                Some(next) => {
                    url = next["url"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("http://coplan.test")
                        .to_string()
                }
                None => break,
            }
        }
        paged.sort();
        assert_eq!(paged, everything);
        assert_eq!(
            app.get("/fhir/Patient/nobody/$everything").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get("/fhir/Patient/p1/$everything?_since=yesterday")
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        app
    })
    .await;
}

#[tokio::test]
async fn updates_and_deletes_keep_the_index_current() {
    each_backend(|app| async move {
        seed(&app).await;
        let plan = json!({"resourceType":"CarePlan","id":"cp1","status":"completed","intent":"plan","subject":{"reference":"Patient/p2"}});
        assert_eq!(app.put_json("/fhir/CarePlan/cp1", &plan, &[]).await.status, StatusCode::OK);
        assert_eq!(found(&app, "/fhir/CarePlan?patient=p1").await, ["cp2"]);
        assert_eq!(found(&app, "/fhir/CarePlan?patient=p2&status=completed").await, ["cp1"]);
        app.request(Method::DELETE, "/fhir/CarePlan/cp2", &[], None).await;
        assert_eq!(found(&app, "/fhir/CarePlan?patient=p1").await, Vec::<String>::new());
        app
    })
    .await;
}

#[tokio::test]
async fn sort_by_parameters_with_stable_paging() {
    each_backend(|app| async move {
        for (id, family, birth) in [
            ("pA", Some("Zeta"), Some("1990-05-01")),
            ("pB", Some("alpha"), Some("1980-01-01")),
            ("pC", Some("Beta"), None),
            ("pD", Some("Beta"), Some("1970-03-03")),
            ("pE", None, Some("2000-12-12")),
        ] {
            let mut patient = json!({"resourceType": "Patient", "id": id});
            if let Some(f) = family {
                patient["name"] = json!([{"family": f}]);
            }
            if let Some(b) = birth {
                patient["birthDate"] = json!(b);
            }
            let r = app
                .put_json(&format!("/fhir/Patient/{id}"), &patient, &[])
                .await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let order = |bundle: &Value| -> Vec<String> {
            bundle["entry"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|x| x["resource"]["id"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let by_family = app.get("/fhir/Patient?_sort=family").await.json();
        assert_eq!(
            order(&by_family),
            ["pB", "pC", "pD", "pA", "pE"],
            "case-insensitive, missing last, ties by id"
        );
        let by_birth_desc = app.get("/fhir/Patient?_sort=-birthdate").await.json();
        assert_eq!(order(&by_birth_desc), ["pE", "pA", "pB", "pD", "pC"]);
        let two_keys = app
            .get("/fhir/Patient?_sort=family,-birthdate")
            .await
            .json();
        assert_eq!(order(&two_keys), ["pB", "pD", "pC", "pA", "pE"]);
        // Paging two at a time follows the same order with no duplicates or gaps.
        let mut seen = Vec::new();
        let mut next = Some("/fhir/Patient?_sort=family,-birthdate&_count=2".to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            let page = app.get(&url).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text());
            let page = page.json();
            seen.extend(order(&page));
            pages += 1;
            next = page["link"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["relation"] == "next")
                    .and_then(|l| l["url"].as_str())
                    .map(|u| u.trim_start_matches("http://coplan.test").to_string())
            });
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(seen, ["pB", "pD", "pC", "pA", "pE"]);
        assert_eq!(pages, 3);
        // A page cursor of another sort order is refused, not misread.
        let first = app.get("/fhir/Patient?_sort=family&_count=2").await.json();
        let next_url = first["link"][1]["url"].as_str().unwrap_or("").to_string();
        let page = next_url.split("_page=").nth(1).unwrap_or("").to_string();
        let mismatched = app
            .get(&format!(
                "/fhir/Patient?_sort=family,-birthdate&_page={page}"
            ))
            .await;
        assert_eq!(mismatched.status, StatusCode::BAD_REQUEST);
        let bad = app.get("/fhir/Patient?_sort=nonsense").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        app
    })
    .await;
}

#[tokio::test]
async fn identifier_of_type() {
    each_backend(|app| async move {
        let v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
        for (id, type_code, value) in [
            ("mr1", "MR", "446053"),
            ("dl1", "DL", "446053"),
            ("mr2", "MR", "999"),
        ] {
            let patient = json!({"resourceType": "Patient", "id": id, "identifier": [{
                "type": {"coding": [{"system": v2, "code": type_code}]},
                "system": "urn:oid:1.2.36.146.595.217.0.1", "value": value}]});
            let r = app
                .put_json(&format!("/fhir/Patient/{id}"), &patient, &[])
                .await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let found = app
            .get(&format!("/fhir/Patient?identifier:of-type={v2}|MR|446053"))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text());
        assert_eq!(ids(&found.json()), ["mr1"]);
        let none = app
            .get(&format!("/fhir/Patient?identifier:of-type={v2}|SS|446053"))
            .await
            .json();
        assert!(ids(&none).is_empty());
        let plain = app.get("/fhir/Patient?identifier=446053").await.json();
        assert_eq!(ids(&plain).len(), 2);
        let malformed = app.get("/fhir/Patient?identifier:of-type=MR|446053").await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        app
    })
    .await;
}

#[tokio::test]
async fn composite_parameters() {
    each_backend(|app| async move {
        let loinc = "http://loinc.org";
        for (id, score) in [("phq-low", 4), ("phq-high", 17)] {
            let obs = json!({"resourceType": "Observation", "id": id, "status": "final",
                "code": {"coding": [{"system": loinc, "code": "44261-6"}]},
                "valueQuantity": {"value": score, "system": "http://unitsofmeasure.org", "code": "{score}"}});
            let r = app.put_json(&format!("/fhir/Observation/{id}"), &obs, &[]).await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let gad = json!({"resourceType": "Observation", "id": "gad", "status": "final",
            "code": {"coding": [{"system": loinc, "code": "70274-6"}]},
            "valueQuantity": {"value": 15}});
        app.put_json("/fhir/Observation/gad", &gad, &[]).await;
        let bp = json!({"resourceType": "Observation", "id": "bp", "status": "final",
            "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
            "component": [
                {"code": {"coding": [{"system": loinc, "code": "8480-6"}]}, "valueQuantity": {"value": 150}},
                {"code": {"coding": [{"system": loinc, "code": "8462-4"}]}, "valueQuantity": {"value": 95}}]});
        app.put_json("/fhir/Observation/bp", &bp, &[]).await;

        let high = app.get(&format!("/fhir/Observation?code-value-quantity={loinc}|44261-6$gt10")).await;
        assert_eq!(high.status, StatusCode::OK, "{}", high.text());
        assert_eq!(ids(&high.json()), ["phq-high"]);
        let any_system = app.get("/fhir/Observation?code-value-quantity=44261-6$le10").await.json();
        assert_eq!(ids(&any_system), ["phq-low"]);
        // The value must belong to the same code: GAD-7's 15 is not a PHQ-9 score.
        let mut both = ids(&app.get("/fhir/Observation?code-value-quantity=44261-6$gt10,70274-6$gt10").await.json());
        both.sort();
        assert_eq!(both, ["gad", "phq-high"]);
        let systolic = app.get(&format!("/fhir/Observation?component-code-value-quantity={loinc}|8480-6$ge140")).await.json();
        assert_eq!(ids(&systolic), ["bp"]);
        let diastolic_high = app.get(&format!("/fhir/Observation?component-code-value-quantity={loinc}|8462-4$ge140")).await.json();
        assert!(ids(&diastolic_high).is_empty(), "150 belongs to the systolic component");
        let wrong_parts = app.get("/fhir/Observation?code-value-quantity=44261-6").await;
        assert_eq!(wrong_parts.status, StatusCode::BAD_REQUEST);

        // A composite whose token comes second: relationship = relatesto $ relation.
        for (id, relates) in [("letter-2", vec![("replaces", "letter-1")]),
                              ("letter-3", vec![("appends", "letter-1"), ("replaces", "letter-2")])] {
            let relates_to: Vec<Value> = relates.iter().map(|(code, target)| json!({"code": code,
                "target": {"reference": format!("DocumentReference/{target}")}})).collect();
            let doc = json!({"resourceType": "DocumentReference", "id": id, "status": "current",
                "relatesTo": relates_to, "content": [{"attachment": {"url": "http://example.org/x"}}]});
            let r = app.put_json(&format!("/fhir/DocumentReference/{id}"), &doc, &[]).await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let replaces_1 = app.get("/fhir/DocumentReference?relationship=DocumentReference/letter-1$replaces").await;
        assert_eq!(replaces_1.status, StatusCode::OK, "{}", replaces_1.text());
        assert_eq!(ids(&replaces_1.json()), ["letter-2"]);
        // letter-3 appends letter-1 and replaces letter-2: the pairs do not cross.
        let appends_1 = app.get("/fhir/DocumentReference?relationship=DocumentReference/letter-1$appends").await.json();
        assert_eq!(ids(&appends_1), ["letter-3"]);
        let appends_2 = app.get("/fhir/DocumentReference?relationship=DocumentReference/letter-2$appends").await.json();
        assert!(ids(&appends_2).is_empty());
        app
    })
    .await;
}

#[tokio::test]
async fn reference_identifier_modifier() {
    each_backend(|app| async move {
        for (id, mrn) in [("by-mrn-1", "123"), ("by-mrn-2", "456")] {
            let obs = json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
                "subject": {"identifier": {"system": "urn:example:mrn", "value": mrn}}});
            let r = app.put_json(&format!("/fhir/Observation/{id}"), &obs, &[]).await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let typed = json!({"resourceType": "Observation", "id": "typed", "status": "final", "code": {"text": "x"},
            "subject": {"type": "Group", "identifier": {"system": "urn:example:mrn", "value": "123"}}});
        app.put_json("/fhir/Observation/typed", &typed, &[]).await;
        let found = app.get("/fhir/Observation?subject:identifier=urn:example:mrn|123").await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text());
        let mut got = ids(&found.json());
        got.sort();
        assert_eq!(got, ["by-mrn-1", "typed"]);
        // `patient` is subject.where(resolve() is Patient): a reference typed Group is not one.
        let patient = app.get("/fhir/Observation?patient:identifier=urn:example:mrn|123").await.json();
        assert_eq!(ids(&patient), ["by-mrn-1"]);
        let value_only = app.get("/fhir/Observation?subject:identifier=456").await.json();
        assert_eq!(ids(&value_only), ["by-mrn-2"]);
        app
    })
    .await;
}

/// Every prefix against stored ranges, in the SQL of every backend (search.html#prefix): the
/// stored day, the days either side, a coarser stored year, coarser search values, and `ap` on
/// numbers (which compares the stored value with the search value widened by 10%).
#[tokio::test]
async fn every_prefix_compares_ranges_on_every_backend() {
    each_backend(|app| async move {
        for (id, birth_date) in [("a", "1974-12-24"), ("b", "1974-12-25"), ("c", "1974-12-26"), ("d", "1975")] {
            let patient = json!({"resourceType": "Patient", "id": id, "birthDate": birth_date});
            let r = app.put_json(&format!("/fhir/Patient/{id}"), &patient, &[]).await;
            assert!(r.status.is_success(), "{}", r.text());
        }
        let cases: &[(&str, &[&str])] = &[
            ("eq1974-12-25", &["b"]),
            ("ne1974-12-25", &["a", "c", "d"]),
            ("gt1974-12-25", &["c", "d"]),
            ("lt1974-12-25", &["a"]),
            ("ge1974-12-25", &["b", "c", "d"]),
            ("le1974-12-25", &["a", "b"]),
            ("sa1974-12-25", &["c", "d"]),
            ("eb1974-12-25", &["a"]),
            ("ap1974-12-25", &["b"]),
            ("eq1974-12", &["a", "b", "c"]),
            ("ap1974-12", &["a", "b", "c"]),
            ("gt1974-12", &["d"]),
            ("eq1975-01", &[]),
            ("ap1975-01", &["d"]),
            ("ne1975-01", &["a", "b", "c", "d"]),
        ];
        for (value, expected) in cases {
            assert_eq!(found(&app, &format!("/fhir/Patient?birthdate={value}")).await, *expected, "birthdate={value}");
        }
        let obs = json!({"resourceType": "Observation", "id": "o95", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 95, "system": "http://unitsofmeasure.org", "code": "kg"}});
        assert!(app.put_json("/fhir/Observation/o95", &obs, &[]).await.status.is_success());
        assert_eq!(found(&app, "/fhir/Observation?value-quantity=ap100").await, ["o95"]);
        assert_eq!(found(&app, "/fhir/Observation?value-quantity=ap110").await, Vec::<String>::new());
        app
    })
    .await;
}
