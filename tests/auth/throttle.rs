//! The limits that spread-out guessing meets (issue 17 §3, M3 and M4), through the real router
//! with the peer address (`ConnectInfo`) set by hand, so one test speaks from many addresses:
//! sign-in attempts at one username are limited per account whatever
//! the address (only genuine forms' attempts: a forged form or a cancel costs nothing), and a right password is held back no longer than the `Retry-After`; bearer
//! tokens that fail their signature check count against their address's anonymous limit, an
//! address over it is refused before anything is verified while a token verified before
//! still passes, and valid tokens are never charged.

use crate::common::auth::*;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use coplan::app::AppState;
use coplan::clock::ManualTicker;
use coplan::config::ConfigLayer;
use coplan::policy::{BearerVerifier, Grant, InvalidToken};
use coplan::throttle::Throttle;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An answer of the router: status, `Retry-After`, body.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

async fn send(state: &AppState, request: Request<Body>, peer: &str) -> Answer {
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("address");
    let (status, retry_after, body) = crate::common::send_from_peer(state, request, peer).await;
    Answer {
        status: status.as_u16(),
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn post_form(
    state: &AppState,
    path: &str,
    form: &str,
    basic: Option<&str>,
    peer: &str,
) -> Answer {
    let mut request =
        Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(credentials) = basic {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        request = request.header("authorization", format!("Basic {encoded}"));
    }
    send(
        state,
        request.body(Body::from(form.to_string())).expect("request"),
        peer,
    )
    .await
}

/// A sign-in form as a browser gets it: the authorization page of the public app `portal`,
/// its session cookie and hidden fields (the CSRF token among them).
struct LoginForm {
    cookie: String,
    fields: Vec<(String, String)>,
}

async fn login_form(server: &Server, state: &AppState, peer: &str) -> LoginForm {
    let client = smart_client(server, "portal", None);
    let (url, _verifier) = authorize_request(&client, server, &["openid"], &[]);
    let path = url.strip_prefix(&server.origin).expect("the server's URL");
    let request = Request::get(path).body(Body::empty()).expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("address");
    let response = crate::common::respond_to_peer(state, request, peer).await;
    assert_eq!(response.status(), 200, "the sign-in page");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let fields = form_fields(&String::from_utf8_lossy(&body));
    assert!(fields.iter().any(|(k, _)| k == "csrf"), "{fields:?}");
    LoginForm { cookie, fields }
}

/// The form submitted with `extra` (a username and a wrong password, or a cancel) from `peer`.
async fn submit(state: &AppState, form: &LoginForm, extra: &[(&str, &str)], peer: &str) -> Answer {
    let mut pairs = form.fields.clone();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let request = Request::post("/auth/authorize")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &form.cookie)
        .body(Body::from(body))
        .expect("request");
    send(state, request, peer).await
}

/// A wrong guess at `username`'s password on the genuine form.
async fn sign_in(state: &AppState, form: &LoginForm, username: &str, peer: &str) -> Answer {
    submit(
        state,
        form,
        &[("username", username), ("password", "guess")],
        peer,
    )
    .await
}

async fn client_credentials(state: &AppState, secret: &str, peer: &str) -> Answer {
    let credentials = format!("backend:{secret}");
    let form = "grant_type=client_credentials&scope=system%2FPatient.rs";
    post_form(state, "/auth/token", form, Some(&credentials), peer).await
}

fn limited(server: &Server, ticker: &Arc<ManualTicker>) -> AppState {
    server
        .state
        .clone()
        .with_throttle(Throttle::with_ticker(&server.state.config, ticker.clone()))
}

fn account_limit() -> ConfigLayer {
    ConfigLayer::default()
        .set("sign_in_account_interval_seconds", 10)
        .set("sign_in_account_burst", 3)
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account_from_any_address() {
    for backend in coplan::testing::backends() {
        let server = Server::start_with(backend, account_limit()).await;
        server
            .register(symmetric_client(
                "backend",
                "right-secret",
                &["system/Patient.rs"],
            ))
            .await;
        server
            .register(public_app("portal", &["openid", "launch/patient"]))
            .await;
        let ticker = Arc::new(ManualTicker::default());
        let state = limited(&server, &ticker);
        let form = login_form(&server, &state, "192.0.2.100").await;

        // Forms that are not genuine (no session, so no CSRF token to match) and a cancel
        // cost the account nothing: they are refused or end before the attempt is counted.
        let forged = LoginForm {
            cookie: "coplan_session=not-a-session".into(),
            fields: form
                .fields
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "csrf" => (k.clone(), "forged".to_string()),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        };
        for n in 1..=5 {
            let refused = sign_in(&state, &forged, "amy", &format!("198.18.0.{n}")).await;
            assert_eq!(refused.status, 403, "{}", refused.body);
            assert!(refused.body.contains("Form expired"), "{}", refused.body);
        }
        let cancelled = submit(
            &state,
            &form,
            &[("username", "amy"), ("action", "cancel")],
            "198.18.0.9",
        )
        .await;
        assert_eq!(cancelled.status, 303, "{}", cancelled.body);

        // Three guesses at amy's password, each from its own address, then a fourth is refused
        // before it is looked at — with the same page the limits by address show.
        for n in 1..=3 {
            let answer = sign_in(&state, &form, "amy", &format!("192.0.2.{n}")).await;
            assert_eq!(answer.status, 200, "within the burst: {}", answer.body);
            assert!(answer.body.contains("not right"), "{}", answer.body);
        }
        let refused = sign_in(&state, &form, "amy", "192.0.2.4").await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.retry_after.as_deref(), Some("10"));
        assert!(
            refused.body.contains("Too many attempts"),
            "{}",
            refused.body
        );
        assert_eq!(
            sign_in(&state, &form, " AMY", "192.0.2.5").await.status,
            429
        );
        // Another account is not held back.
        assert_ne!(
            sign_in(&state, &form, "jordan", "192.0.2.6").await.status,
            429
        );
        // Never longer than the Retry-After said.
        ticker.advance(Duration::from_secs(9));
        assert_eq!(sign_in(&state, &form, "amy", "192.0.2.7").await.status, 429);
        ticker.advance(Duration::from_secs(1));
        assert_ne!(sign_in(&state, &form, "amy", "192.0.2.8").await.status, 429);

        // No limit per client: its id is public, so wrong secrets sent in its name from many
        // addresses must not lock the app out (they are limited per address only, and a
        // secret of 256 bits is not guessed online).
        for n in 1..=12 {
            let answer = client_credentials(&state, "guess", &format!("198.51.100.{n}")).await;
            assert_eq!(answer.status, 401, "{}", answer.body);
        }
        let right = client_credentials(&state, "right-secret", "198.51.100.13").await;
        assert_eq!(right.status, 200, "{}", right.body);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_right_password_waits_no_longer_than_the_retry_after() {
    let layer = ConfigLayer::default()
        .set("sign_in_account_interval_seconds", 1)
        .set("sign_in_account_burst", 2);
    let server = Server::start_with(coplan::testing::Backend::Sqlite, layer).await;
    server.add_user("amy", "amy-password", None).await;
    server
        .register(public_app("portal", &["openid", "launch/patient"]))
        .await;
    // Guesses from elsewhere (the server's own limits, on the real clock) use the burst up.
    let form = login_form(&server, &server.state, "203.0.113.100").await;
    for n in 1..=2 {
        assert_ne!(
            sign_in(&server.state, &form, "amy", &format!("203.0.113.{n}"))
                .await
                .status,
            429
        );
    }
    let client = smart_client(&server, "portal", None);
    let (url, _verifier) = authorize_request(&client, &server, &["openid"], &[]);
    let mut browser = Browser::default();
    let refused = browser
        .sign_in(&server.origin, &url, "amy", "amy-password")
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let wait: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert_eq!(wait, 1);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let consent = browser
        .sign_in(&server.origin, &url, "amy", "amy-password")
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Allow"), "{}", consent.body);
    server.stop().await;
}

/// The server's verifier, counting the verifications that check a signature.
struct Counting {
    inner: Arc<dyn BearerVerifier>,
    checked: AtomicUsize,
}

#[async_trait]
impl BearerVerifier for Counting {
    async fn verify(&self, token: &str) -> Result<Grant, InvalidToken> {
        self.checked.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(token).await
    }

    async fn verify_cached(&self, token: &str) -> Option<Result<Grant, InvalidToken>> {
        self.inner.verify_cached(token).await
    }
}

async fn read_with(state: &AppState, bearer: &str, peer: &str) -> u16 {
    let request = Request::get("/fhir/Patient?_count=1")
        .header("authorization", bearer)
        .body(Body::empty())
        .expect("request");
    send(state, request, peer).await.status
}

/// A token signed by the server with its payload changed: checking it costs a signature check.
fn forged(bearer: &str, n: usize) -> String {
    let mut parts: Vec<String> = bearer.split('.').map(str::to_string).collect();
    let mut claims = jwt_claims(bearer.trim_start_matches("Bearer "));
    claims["jti"] = serde_json::json!(format!("forged-{n}"));
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    parts.join(".")
}

#[tokio::test]
async fn failed_tokens_count_against_their_address_which_is_then_refused_before_a_check() {
    for backend in coplan::testing::backends() {
        let layer = ConfigLayer::default()
            .set("anonymous_requests_per_second", 1)
            .set("anonymous_burst", 2);
        let server = Server::start_with(backend, layer).await;
        let counting = Arc::new(Counting {
            inner: server.state.verifier.clone().expect("auth on"),
            checked: AtomicUsize::new(0),
        });
        let ticker = Arc::new(ManualTicker::default());
        let state = limited(&server, &ticker).with_verifier(counting.clone());
        let valid = token(&server, "backend", "system/Patient.rs", None, None);
        let fresh = token(&server, "backend2", "system/Patient.rs", None, None);
        // The valid token is verified once (from another address) and cached.
        assert_eq!(read_with(&state, &valid, "192.0.2.100").await, 200);
        assert_eq!(counting.checked.load(Ordering::SeqCst), 1);

        // Valid tokens never seen before (cache misses) are never charged to the anonymous
        // limit: users behind one address (a NAT) are not refused for each other's.
        let nat = "192.0.2.50";
        for scope in [
            "system/Patient.s",
            "system/*.rs",
            "system/*.s",
            "system/Patient.cruds",
        ] {
            let new_user = token(&server, "backend", scope, None, None);
            assert_eq!(read_with(&state, &new_user, nat).await, 200, "{scope}");
        }
        assert_eq!(counting.checked.load(Ordering::SeqCst), 5);

        // Forged tokens from one address: each checked and refused (401) within the burst...
        let attacker = "192.0.2.66";
        for n in 0..2 {
            assert_eq!(read_with(&state, &forged(&valid, n), attacker).await, 401);
        }
        // ...the next is checked, fails and meets the limit (429)...
        assert_eq!(read_with(&state, &forged(&valid, 2), attacker).await, 429);
        assert_eq!(counting.checked.load(Ordering::SeqCst), 8);
        // ...and then the address's tokens are refused before any signature is checked.
        for n in 3..50 {
            assert_eq!(read_with(&state, &forged(&valid, n), attacker).await, 429);
        }
        assert_eq!(
            counting.checked.load(Ordering::SeqCst),
            8,
            "no signature checked for an address over its limit"
        );
        // A token verified before still passes from there; one never seen waits its turn.
        assert_eq!(read_with(&state, &valid, attacker).await, 200);
        assert_eq!(read_with(&state, &fresh, attacker).await, 429);
        ticker.advance(Duration::from_secs(1));
        assert_eq!(read_with(&state, &fresh, attacker).await, 200);
        assert_eq!(counting.checked.load(Ordering::SeqCst), 9);
        // Other addresses are not held back by this one.
        assert_eq!(
            read_with(&state, &forged(&valid, 99), "192.0.2.67").await,
            401
        );
        server.stop().await;
    }
}
