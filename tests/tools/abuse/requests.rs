//! Hostile requests: oversized, deep, huge and malformed bodies (JSON and XML), malformed URLs
//! and header floods.

use super::wire::*;
use serde_json::json;

/// Oversized, deep, huge and malformed bodies.
pub fn bodies(server: &Server) {
    // Larger than max_body_bytes (8 MiB here): 413, without reading it all.
    let big = vec![b' '; 9 * 1024 * 1024];
    let answer = post(server, "/fhir/Patient", "application/fhir+json", &big);
    assert_eq!(answer.status, 413, "{answer:?}");
    answer.refused("oversized body");

    // 10,000 levels of nesting: refused before any parser recurses into them.
    let deep = format!(
        "{{\"resourceType\":\"Patient\",\"extension\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        deep.as_bytes(),
    );
    answer.refused("deep JSON");
    assert!(
        answer.diagnostics().contains("deeper than 64"),
        "{answer:?}"
    );
    let patch = format!("[{}]", "{\"a\":".repeat(10_000));
    let answer = exchange(
        server,
        &request(
            server,
            "PATCH",
            "/fhir/Patient/x",
            "application/json-patch+json",
            patch.as_bytes(),
        ),
    )
    .expect("answer");
    answer.refused("deep JSON Patch");

    // A million array elements within the body limit: numbers where strings belong, empty
    // objects, and a million (valid) given names.
    for (case, item) in [
        ("numbers", "0"),
        ("empty objects", "{}"),
        ("names", "\"a\""),
    ] {
        let items = vec![item; 1_000_000].join(",");
        let body = format!(
            "{{\"resourceType\":\"Patient\",\"name\":[{{\"family\":\"F\",\"given\":[{items}]}}]}}"
        );
        let answer = post(
            server,
            "/fhir/Patient",
            "application/fhir+json",
            body.as_bytes(),
        );
        answer.refused(&format!("a million {case}"));
    }

    // Not UTF-8, not JSON, NUL characters.
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        b"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}",
    );
    answer.refused("invalid UTF-8 body");
    let nul = json!({"resourceType": "Patient", "name": [{"family": "a\u{0}b"}]}).to_string();
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        nul.as_bytes(),
    );
    answer.refused("NUL in a string");
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        b"\x00\x00\x00",
    );
    answer.refused("NUL bytes");
    // A form body of 10,000 parameters to POST _search.
    let form: Vec<String> = (0..10_000).map(|n| format!("p{n}=1")).collect();
    let answer = post(
        server,
        "/fhir/Patient/_search",
        "application/x-www-form-urlencoded",
        form.join("&").as_bytes(),
    );
    answer.refused("10,000 form parameters");
    assert!(
        answer.diagnostics().contains("at most 100 parameters"),
        "{answer:?}"
    );
}

/// Malformed URLs and header floods.
pub fn urls_and_headers(server: &Server) {
    // 10,000 query parameters: a 400 within the 64 KiB head; a longer URL is a 431.
    let answer = api_get(
        server,
        &format!("/fhir/Patient?{}", vec!["a=1"; 10_000].join("&")),
    );
    answer.refused("10,000 query parameters");
    assert!(
        answer.diagnostics().contains("at most 100 parameters"),
        "{answer:?}"
    );
    let params: Vec<String> = (0..10_000).map(|n| format!("a{n}=1")).collect();
    let answer = get(server, &format!("/fhir/Patient?{}", params.join("&")), true);
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    for target in [
        "/fhir/Patient/%FF%FE",
        "/fhir/Patient?name=%C3",
        "/fhir/Patient?name=%zz",
        "/fhir/Patient?name=100%",
        "/fhir/Patient/%",
        "/fhir/Pat%ient",
    ] {
        api_get(server, target).refused(target);
    }
    // Raw bytes outside ASCII in the request line: hyper refuses the request itself.
    let raw = exchange(
        server,
        b"GET /fhir/Patient/\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        raw.as_ref().is_none_or(|a| (400..500).contains(&a.status)),
        "{raw:?}"
    );

    // Many headers, and one huge one: 431 (or closed) before any handler runs.
    let mut many = String::from("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n");
    for n in 0..500 {
        many.push_str(&format!("X-Flood-{n}: {n}\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(server, many.as_bytes());
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    let huge = format!(
        "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let answer = exchange(server, huge.as_bytes());
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    // A huge bearer token (under the header limit) is just an invalid token.
    let answer = exchange(
        server,
        format!(
            "GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
            "x".repeat(60_000)
        )
        .as_bytes(),
    )
    .expect("answer");
    assert!(answer.status == 401 || answer.status == 429, "{answer:?}");
}

/// XML bodies: entity expansion and deep nesting.
pub fn xml(server: &Server) {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"#;
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        laughs.as_bytes(),
    );
    answer.refused("billion laughs");
    // An undeclared entity without a DOCTYPE, and 10,000 nested elements.
    let undeclared =
        r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"#;
    post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        undeclared.as_bytes(),
    )
    .refused("undeclared entity");
    let deep = format!(
        "<Questionnaire xmlns=\"http://hl7.org/fhir\"><status value=\"draft\"/>{}{}</Questionnaire>",
        "<item>".repeat(10_000),
        "</item>".repeat(10_000)
    );
    post(
        server,
        "/fhir/Questionnaire",
        "application/fhir+xml",
        deep.as_bytes(),
    )
    .refused("deep XML");
    post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        b"\xff\xfe<Patient/>",
    )
    .refused("XML, not UTF-8");
}
