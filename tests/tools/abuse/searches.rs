//! Searches built to cost: a huge `_count`, `:iterate` cycles and include floods, deep chains,
//! pattern and NUL characters.

use super::wire::*;
use coplan::testing::Backend;
use serde_json::json;

/// Searches built to cost: huge pages, include cycles, deep chains, pattern characters.
pub fn costly_searches(server: &Server, backend: Backend) {
    let alice = create(
        server,
        json!({"resourceType": "Patient", "name": [{"family": "Alice"}]}),
    );
    let alice_id = alice["id"].as_str().expect("id").to_string();
    // Two patients that link to each other, and observations on Alice that have each other
    // as members: every `:iterate` round finds the cycle again.
    let bob = create(
        server,
        json!({"resourceType": "Patient", "name": [{"family": "Bob"}],
               "link": [{"other": {"reference": format!("Patient/{alice_id}")}, "type": "seealso"}]}),
    );
    let bob_id = bob["id"].as_str().expect("id").to_string();
    let mut observations = Vec::new();
    for n in 0..25 {
        let mut obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": format!("o{n}")},
            "subject": {"reference": format!("Patient/{alice_id}")}});
        if let Some(previous) = observations.last() {
            obs["hasMember"] = json!([{"reference": format!("Observation/{previous}")}]);
        }
        let made = create(server, obs);
        observations.push(made["id"].as_str().expect("id").to_string());
    }

    let answer = api_get(server, "/fhir/Observation?_count=1000000");
    assert_eq!(
        answer.status, 200,
        "a page size above the maximum is capped: {answer:?}"
    );
    let bundle = answer.json();
    assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(25));

    // A cycle of links: a finite answer.
    let answer = api_get(
        server,
        &format!("/fhir/Patient?_id={bob_id}&_include:iterate=*"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["entry"].as_array().map(Vec::len), Some(2));
    // Everything reachable backwards from Alice: 25 observations and Bob, more than the 20
    // includes allowed here — a 400, not a silently shortened page.
    for target in [
        format!("/fhir/Patient?_id={alice_id}&_revinclude:iterate=*"),
        format!("/fhir/Patient?_id={alice_id}&_revinclude:iterate=*&_include:iterate=*"),
        "/fhir/Observation?_include:iterate=*&_revinclude:iterate=*".to_string(),
    ] {
        let answer = api_get(server, &target);
        answer.refused(&target);
        assert!(answer.diagnostics().contains("more than 20"), "{answer:?}");
    }

    // A chain ten levels deep.
    let chain = format!(
        "/fhir/Observation?patient.{}name=x",
        "link:Patient.".repeat(9)
    );
    api_get(server, &chain).refused("a 10-level chain");
    let has = format!("/fhir/Patient?{}name=x", "_has:Patient:link:".repeat(10));
    api_get(server, &has).refused("a 10-level _has");

    // Pattern characters are text: they match only themselves.
    for value in [
        ".*",
        "(a%2B)%2B%24",
        "%25",
        "_",
        "A%25",
        "%5C",
        "%27%20OR%201%3D1--",
    ] {
        for param in [
            "name",
            "name:contains",
            "name:exact",
            "family",
            "identifier",
        ] {
            let target = format!("/fhir/Patient?{param}={value}");
            let answer = api_get(server, &target);
            assert_eq!(answer.status, 200, "{backend:?} {target}: {answer:?}");
            assert_eq!(
                answer.json()["total"],
                0,
                "{backend:?} {target} matched something"
            );
        }
    }
    // NUL characters anywhere a search or an id is read: no FHIR string holds one, and
    // PostgreSQL text cannot (a 500 there before).
    for target in [
        "/fhir/Patient?name=%00",
        "/fhir/Patient?identifier=a%00b",
        "/fhir/Patient/%00",
        "/fhir/Patient?_page=1.%00",
    ] {
        api_get(server, target).refused(&format!("{backend:?} {target}"));
    }
    let answer = post(
        server,
        "/fhir/Patient/_search",
        "application/x-www-form-urlencoded",
        b"name=a%00",
    );
    answer.refused(&format!("{backend:?} NUL in a _search form"));
    let conditional = exchange(
        server,
        &request(
            server,
            "POST",
            "/fhir/Patient",
            "application/fhir+json",
            br#"{"resourceType":"Patient"}"#,
        )
        .splitn(2, |&b| b == b'\n')
        .collect::<Vec<_>>()
        .join(&b"\nIf-None-Exist: identifier=a%00\r\n"[..]),
    )
    .expect("answer");
    conditional.refused(&format!("{backend:?} NUL in If-None-Exist"));
}
