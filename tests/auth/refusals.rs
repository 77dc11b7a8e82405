//! What the authorization and token endpoints refuse (RFC 6749, RFC 7636, SMART App Launch 2.2,
//! RFC 9700): unregistered redirect URIs (a page, never a redirect), wrong `aud`, `plain` or
//! missing PKCE, PKCE mismatch, reused and expired codes (a reused code revokes its tokens),
//! a different redirect_uri at the token endpoint, forms without the session's CSRF token,
//! wrong passwords and login throttling, and a user who denies access.

use crate::common::auth::*;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope};
use serde_json::json;

const SCOPES: &[&str] = &["launch/patient", "patient/*.rs", "openid", "fhirUser"];

async fn setup(server: &Server) {
    server
        .seed(json!({"resourceType": "Patient", "id": "pat1"}))
        .await;
    server.register(public_app("app", SCOPES)).await;
    server.add_user("amy", "pw-amy", Some("Patient/pat1")).await;
}

/// An authorization URL for `app` with S256 PKCE, plus its verifier.
fn authorize_url(server: &Server) -> (String, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = smart_client(server, "app", None)
        .authorize_url(|| CsrfToken::new("st-1".into()))
        .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
        .add_extra_param("aud", server.fhir.clone())
        .set_pkce_challenge(challenge)
        .url();
    (url.to_string(), verifier)
}

/// A hand-built authorization URL from `pairs`.
fn raw_authorize(server: &Server, pairs: &[(&str, &str)]) -> String {
    format!("{}?{}", server.auth.settings.authorize_url, form(pairs))
}

fn base_pairs(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "app".into()),
        ("redirect_uri", "http://app.example/app/callback".into()),
        ("scope", SCOPES.join(" ")),
        ("state", "st-2".into()),
        ("aud", server.fhir.clone()),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        ("code_challenge_method", "S256".into()),
    ]
}

fn with(
    pairs: &[(&'static str, String)],
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<_> = pairs.iter().filter(|(k, _)| *k != name).cloned().collect();
    if !value.is_empty() {
        out.push((name, value.to_string()));
    }
    out
}

async fn get_authorize(server: &Server, pairs: &[(&'static str, String)]) -> Reply {
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Browser::default().get(&raw_authorize(server, &refs)).await
}

#[tokio::test]
async fn untrusted_redirects_get_a_page_and_bad_requests_go_back_with_an_error() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let good = base_pairs(&server);
        assert_eq!(get_authorize(&server, &good).await.status, 200);
        // authorize-post: the same request as a form POST.
        let posted = Browser::default()
            .post(
                &server.auth.settings.authorize_url,
                &good
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect::<Vec<_>>(),
            )
            .await;
        assert_eq!(posted.status, 200, "{}", posted.body);
        assert!(posted.body.contains("Sign in"));

        // Before the redirect URI is trusted: a page, never a redirect.
        for (name, value) in [
            ("redirect_uri", "http://evil.example/app/callback"),
            ("redirect_uri", "http://app.example/app/callback/extra"),
            ("redirect_uri", "http://app.example/app/"),
            ("client_id", "nobody"),
        ] {
            let reply = get_authorize(&server, &with(&good, name, value)).await;
            assert_eq!(reply.status, 400, "{name}={value}: {}", reply.body);
            assert!(reply.header("location").is_none());
            assert!(reply.body.contains("<h1>"), "{}", reply.body);
        }

        // A client misregistered with backend scopes still cannot get them through a user's
        // sign-in.
        server
            .register(public_app("misregistered", &["system/*.rs", "ehr-launch"]))
            .await;
        let mut odd = with(&good, "client_id", "misregistered");
        odd = with(
            &odd,
            "redirect_uri",
            "http://app.example/misregistered/callback",
        );
        let reply = get_authorize(&server, &with(&odd, "scope", "system/*.rs ehr-launch")).await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(
            reply.location_param("error").as_deref(),
            Some("invalid_scope")
        );

        // After: back to the app with error and state.
        for (name, value, error) in [
            ("aud", "http://other.example/fhir", "invalid_request"),
            ("aud", "", "invalid_request"),
            ("code_challenge_method", "plain", "invalid_request"),
            ("code_challenge_method", "", "invalid_request"),
            ("code_challenge", "", "invalid_request"),
            ("response_type", "token", "unsupported_response_type"),
            ("scope", "system/*.rs", "invalid_scope"),
            ("scope", "ehr-launch", "invalid_scope"),
        ] {
            let reply = get_authorize(&server, &with(&good, name, value)).await;
            assert_eq!(reply.status, 303, "{name}={value}: {}", reply.body);
            assert_eq!(
                reply.location_param("error").as_deref(),
                Some(error),
                "{name}={value}"
            );
            assert_eq!(reply.location_param("state").as_deref(), Some("st-2"));
            // RFC 9207 §2: every authorization response names the issuer, errors too (the
            // discovery documents promise it).
            assert_eq!(
                reply.location_param("iss").as_deref(),
                Some(server.fhir.as_str()),
                "{name}={value}"
            );
            assert!(reply.location_param("code").is_none());
        }
        server
    })
    .await;
}

async fn code_for(server: &Server) -> (String, PkceCodeVerifier) {
    let (url, verifier) = authorize_url(server);
    let mut browser = Browser::default();
    let redirect = sign_in_and_approve(server, &mut browser, &url, "amy", "pw-amy").await;
    (redirect.location_param("code").expect("code"), verifier)
}

#[tokio::test]
async fn codes_are_single_use_short_lived_and_bound_to_pkce_and_redirect_uri() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let client = smart_client(&server, "app", None);
        let token_error = |reply: Reply| {
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            reply.json()["error"].as_str().unwrap_or("").to_string()
        };
        let redeem = |code: String, verifier: String, redirect: &'static str| {
            let token_url = server.auth.settings.token_url.clone();
            async move {
                post_form(
                    &token_url,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("code_verifier", &verifier),
                        ("redirect_uri", redirect),
                        ("client_id", "app"),
                    ],
                    &[],
                )
                .await
            }
        };
        const REDIRECT: &str = "http://app.example/app/callback";

        // PKCE mismatch.
        let (code, _) = code_for(&server).await;
        let wrong = PkceCodeChallenge::new_random_sha256().1;
        assert_eq!(
            token_error(redeem(code, wrong.secret().clone(), REDIRECT).await),
            "invalid_grant"
        );

        // A different redirect_uri than in the authorization request.
        let (code, verifier) = code_for(&server).await;
        assert_eq!(
            token_error(redeem(code, verifier.secret().clone(), "http://app.example/other").await),
            "invalid_grant"
        );

        // Expired after 60 s.
        let (code, verifier) = code_for(&server).await;
        server.clock.advance(61);
        assert_eq!(
            token_error(redeem(code, verifier.secret().clone(), REDIRECT).await),
            "invalid_grant"
        );

        // Reused: refused, and the tokens the first use issued are revoked.
        let (code, verifier) = code_for(&server).await;
        let first = redeem(code.clone(), verifier.secret().clone(), REDIRECT).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.header("cache-control"), Some("no-store"));
        assert_eq!(first.header("pragma"), Some("no-cache"));
        let access = first.json()["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        let verifier_api = server.state.verifier.clone().expect("auth on");
        assert!(verifier_api.verify(&access).await.is_ok());
        assert_eq!(
            token_error(redeem(code, verifier.secret().clone(), REDIRECT).await),
            "invalid_grant"
        );
        let revoked = verifier_api.verify(&access).await;
        assert!(
            revoked.is_err(),
            "tokens of a replayed code are revoked: {revoked:?}"
        );

        // The oauth2 client sees the same refusal as an error response.
        let (code, _) = code_for(&server).await;
        let result = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
            .request_async(&http_client)
            .await;
        assert!(result.is_err());
        server
    })
    .await;
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_logins_are_throttled() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let (url, _) = authorize_url(&server);
        let mut browser = Browser::default();
        let login = browser.get(&url).await;
        assert!(login
            .header("set-cookie")
            .is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")));
        assert_eq!(login.header("x-frame-options"), Some("DENY"));

        // Without the CSRF token, or with another one: refused.
        let mut fields: Vec<(String, String)> = form_fields(&login.body)
            .into_iter()
            .filter(|(k, _)| k != "csrf")
            .collect();
        fields.push(("username".into(), "amy".into()));
        fields.push(("password".into(), "pw-amy".into()));
        let no_csrf = browser.post(&server.url("/auth/authorize"), &fields).await;
        assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
        fields.push(("csrf".into(), "forged".into()));
        let forged = browser.post(&server.url("/auth/authorize"), &fields).await;
        assert_eq!(forged.status, 403, "{}", forged.body);
        // A valid token from another browser's session does not help either.
        let mut other = Browser::default();
        let other_login = other.get(&url).await;
        let stolen = browser
            .submit(
                &server.origin,
                &other_login,
                &[("username", "amy"), ("password", "pw-amy")],
            )
            .await;
        assert_eq!(stolen.status, 403, "{}", stolen.body);

        // Wrong password: the login page again, with an alert.
        let wrong = browser.sign_in(&server.origin, &url, "amy", "nope").await;
        assert_eq!(wrong.status, 200);
        assert!(wrong.body.contains("role=\"alert\""), "{}", wrong.body);
        assert!(wrong.body.contains("Sign in"));

        // After five failures even the right password is refused for a while.
        for _ in 0..4 {
            browser.sign_in(&server.origin, &url, "amy", "nope").await;
        }
        let throttled = browser.sign_in(&server.origin, &url, "amy", "pw-amy").await;
        assert!(
            throttled.body.contains("Too many failed attempts"),
            "{}",
            throttled.body
        );
        server.clock.advance(16 * 60);
        let consent = browser.sign_in(&server.origin, &url, "amy", "pw-amy").await;
        assert!(consent.body.contains("Allow"), "{}", consent.body);

        // Denying sends the user back with access_denied.
        let denied = browser
            .submit(&server.origin, &consent, &[("action", "deny")])
            .await;
        assert_eq!(denied.status, 303);
        assert_eq!(
            denied.location_param("error").as_deref(),
            Some("access_denied")
        );
        assert_eq!(denied.location_param("state").as_deref(), Some("st-1"));
        server
    })
    .await;
}

#[tokio::test]
async fn unticked_optional_scopes_are_not_granted() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let (url, verifier) = authorize_url(&server);
        let mut browser = Browser::default();
        let consent = browser.sign_in(&server.origin, &url, "amy", "pw-amy").await;
        // Untick fhirUser: submit every field but that one.
        let fields: Vec<(String, String)> = form_fields(&consent.body)
            .into_iter()
            .filter(|(k, v)| !(k == "grant" && v == "fhirUser"))
            .chain([("action".to_string(), "approve".to_string())])
            .collect();
        let redirect = browser.post(&server.url("/auth/authorize"), &fields).await;
        let code = redirect.location_param("code").expect("code");
        let reply = post_form(
            &server.auth.settings.token_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", verifier.secret()),
                ("redirect_uri", "http://app.example/app/callback"),
                ("client_id", "app"),
            ],
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["scope"], "launch/patient patient/*.rs openid");
        server
    })
    .await;
}
