//! The limits by address: more sign-in and token-less requests than allowed are 429s with
//! `Retry-After`; NUL characters in the authorization server's forms are refused.

use super::wire::*;
use std::time::Duration;

/// More sign-in and token-less requests from one address than the limits allow (sign-in:
/// burst 3, 1/s — one used by the token request; anonymous: burst 5, 1/s).
pub fn limits_by_address(server: &Server) {
    // NUL characters in the authorization server's forms: refused, never looked up.
    let form = "grant_type=client_credentials&client_id=a%00b&client_secret=x";
    let answer = exchange(
        server,
        format!(
            "POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .expect("answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["error"], "invalid_request", "{answer:?}");
    let form = "step=login&username=a%00&password=x";
    let answer = exchange(
        server,
        format!(
            "POST /auth/authorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .expect("answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    std::thread::sleep(Duration::from_secs(2)); // the sign-in burst refills (1/s, 3)

    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..8 {
        let answer = exchange(
            server,
            b"POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
              Authorization: Basic YWJ1c2VyOndyb25n\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\n\
              grant_type=client_credentials",
        )
        .expect("answer");
        statuses.push(answer.status);
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
    }
    let throttled = throttled.unwrap_or_else(|| panic!("no 429 from /auth/token: {statuses:?}"));
    assert!(
        statuses.contains(&401),
        "wrong secrets were refused first: {statuses:?}"
    );
    let error = throttled.json();
    assert_eq!(error["error"], "temporarily_unavailable", "{error}");
    let retry: u64 = throttled
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");

    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..12 {
        let answer = get(server, "/fhir/Patient", false).expect("answer");
        statuses.push(answer.status);
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
    }
    let throttled = throttled.unwrap_or_else(|| panic!("no 429 without a token: {statuses:?}"));
    assert_eq!(statuses[0], 401);
    let outcome = throttled.refused("token-less requests");
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    assert!(throttled.header("retry-after").is_some());
    // A valid token is not held back by its address's token-less requests.
    assert_eq!(api_get(server, "/fhir/Patient?_count=1").status, 200);
}
