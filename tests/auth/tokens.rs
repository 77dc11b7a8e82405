//! The token endpoint beyond the code grant, end to end over HTTP: refresh (rotation, reuse
//! detection, narrowing), backend services with signed assertions (RS384 and ES384 SMART
//! example keys; replayed `jti`, far `exp`, wrong `aud` refused), `client_secret_basic`,
//! introspection (RFC 7662: own tokens, or any client's for a resource server) and revocation
//! (RFC 7009).

use crate::common::auth::*;
use oauth2::{RefreshToken, Scope, TokenIntrospectionResponse, TokenResponse};
use serde_json::{json, Value};

/// A patient's tokens for `scopes` through the full browser flow.
async fn patient_tokens(server: &Server, scopes: &[&str]) -> SmartTokenResponse {
    let client = smart_client(server, "portal", None);
    let (url, verifier) = authorize_request(&client, server, scopes, &[]);
    let mut browser = Browser::default();
    let redirect = sign_in_and_approve(server, &mut browser, &url, "amy", "pw-amy").await;
    redeem(
        &client,
        redirect.location_param("code").expect("code"),
        verifier,
    )
    .await
}

async fn setup(server: &Server) {
    server
        .seed(json!({"resourceType": "Patient", "id": "pat1"}))
        .await;
    server
        .register(public_app(
            "portal",
            &[
                "launch/patient",
                "patient/*.rs",
                "offline_access",
                "online_access",
                "openid",
            ],
        ))
        .await;
    server.add_user("amy", "pw-amy", Some("Patient/pat1")).await;
}

#[tokio::test]
async fn refresh_tokens_rotate_narrow_and_a_reused_one_revokes_the_grant() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let client = smart_client(&server, "portal", None);
        let first = patient_tokens(
            &server,
            &[
                "launch/patient",
                "patient/Observation.rs",
                "patient/Goal.rs",
                "offline_access",
            ],
        )
        .await;
        let refresh1 = first.refresh_token().expect("refresh token").clone();

        // Rotation: a new refresh token each time, and the launch context again.
        let second = client
            .exchange_refresh_token(&refresh1)
            .request_async(&http_client)
            .await
            .expect("refresh");
        let refresh2 = second.refresh_token().expect("rotated").clone();
        assert_ne!(refresh1.secret(), refresh2.secret());
        assert_eq!(second.extra_fields().patient.as_deref(), Some("pat1"));

        // Narrowing is allowed; widening is not.
        let narrowed = client
            .exchange_refresh_token(&refresh2)
            .add_scope(Scope::new("patient/Goal.rs".into()))
            .request_async(&http_client)
            .await
            .expect("narrowed refresh");
        assert_eq!(
            jwt_claims(narrowed.access_token().secret())["scope"],
            "patient/Goal.rs"
        );
        let refresh3 = narrowed.refresh_token().expect("rotated").clone();
        let widened = post_form(
            &server.auth.settings.token_url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh3.secret()),
                ("scope", "patient/*.rs"),
                ("client_id", "portal"),
            ],
            &[],
        )
        .await;
        assert_eq!(widened.json()["error"], "invalid_scope", "{}", widened.body);

        // The refused request did not use up refresh3, and its successor carries the original
        // scope (narrowing applies to one access token only).
        let fourth = client
            .exchange_refresh_token(&refresh3)
            .request_async(&http_client)
            .await
            .expect("refresh3 is still valid");
        assert_eq!(
            jwt_claims(fourth.access_token().secret())["scope"],
            "launch/patient patient/Observation.rs patient/Goal.rs offline_access"
        );

        // Narrowing means any scope the granted ones imply, not only the granted strings.
        let survey = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey";
        let implied = client
            .exchange_refresh_token(fourth.refresh_token().expect("rotated"))
            .add_scope(Scope::new("patient/Goal.r".into()))
            .add_scope(Scope::new(survey.into()))
            .request_async(&http_client)
            .await
            .expect("a narrower scope the grant implies");
        assert_eq!(
            jwt_claims(implied.access_token().secret())["scope"],
            format!("patient/Goal.r {survey}")
        );
        let fourth = implied;

        // Reusing an already rotated refresh token is refused and revokes the whole grant.
        let verifier = server.state.verifier.clone().expect("auth on");
        assert!(verifier
            .verify(fourth.access_token().secret())
            .await
            .is_ok());
        let reuse = client
            .exchange_refresh_token(&refresh1)
            .request_async(&http_client)
            .await;
        assert!(reuse.is_err(), "a rotated refresh token is single use");
        for token in [&first, &second, &narrowed, &fourth] {
            assert!(verifier
                .verify(token.access_token().secret())
                .await
                .is_err());
        }
        let latest = fourth.refresh_token().expect("rotated").clone();
        assert!(
            client
                .exchange_refresh_token(&latest)
                .request_async(&http_client)
                .await
                .is_err(),
            "the newest refresh token of a revoked grant is dead too"
        );
        server
    })
    .await;
}

#[tokio::test]
async fn refresh_tokens_only_for_offline_or_online_access_and_online_ones_expire_sooner() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let none = patient_tokens(&server, &["launch/patient", "patient/*.rs"]).await;
        assert!(none.refresh_token().is_none());
        let online = patient_tokens(
            &server,
            &["launch/patient", "patient/*.rs", "online_access"],
        )
        .await;
        let refresh = online.refresh_token().expect("online refresh").clone();
        server.clock.advance(13 * 3600);
        let late = smart_client(&server, "portal", None)
            .exchange_refresh_token(&refresh)
            .request_async(&http_client)
            .await;
        assert!(
            late.is_err(),
            "online_access refresh tokens end with the session"
        );
        server
    })
    .await;
}

#[tokio::test]
async fn backend_services_authenticate_with_rs384_and_es384_assertions() {
    each_backend_server(|server| async move {
        for alg in ["RS384", "ES384"] {
            let id = format!("backend-{alg}");
            server
                .register(asymmetric_client(&id, alg, &["system/*.rs", "ehr-launch"]))
                .await;
            let token_url = server.auth.settings.token_url.clone();
            let now = server.clock.unix();
            let assertion =
                client_assertion(alg, &id, &token_url, now + 300, &format!("jti-{alg}-1"));
            let client = smart_client(&server, &id, None);
            let token = client
                .exchange_client_credentials()
                .add_scope(Scope::new("system/Observation.rs".into()))
                .add_scope(Scope::new("user/Patient.rs".into()))
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion.clone())
                .request_async(&http_client)
                .await
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            let claims = jwt_claims(token.access_token().secret());
            assert_eq!(
                claims["scope"], "system/Observation.rs",
                "user/ scopes are not for backends"
            );
            assert_eq!(claims["sub"], id);
            assert!(token.refresh_token().is_none());
            assert!(server
                .state
                .verifier
                .clone()
                .expect("on")
                .verify(token.access_token().secret())
                .await
                .is_ok());

            let attempt = |assertion: String, scope: &'static str| {
                let token_url = token_url.clone();
                async move {
                    post_form(
                        &token_url,
                        &[
                            ("grant_type", "client_credentials"),
                            ("scope", scope),
                            (
                                "client_assertion_type",
                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                            ),
                            ("client_assertion", &assertion),
                        ],
                        &[],
                    )
                    .await
                }
            };
            // The same jti again: a replay.
            let replay = attempt(assertion, "system/Observation.rs").await;
            assert_eq!(replay.status, 401, "{alg}: {}", replay.body);
            assert_eq!(replay.json()["error"], "invalid_client");
            // exp more than five minutes ahead, already past, the wrong audience, iss != sub.
            for (exp, aud, jti) in [
                (now + 301, token_url.as_str(), "far"),
                (now - 1, token_url.as_str(), "past"),
                (now + 60, "http://elsewhere.example/token", "aud"),
            ] {
                let bad = client_assertion(alg, &id, aud, exp, &format!("{alg}-{jti}"));
                let reply = attempt(bad, "system/Observation.rs").await;
                assert_eq!(reply.status, 401, "{alg} {jti}: {}", reply.body);
            }
            // Signed by the other example key (registered to another client): refused.
            let other = if alg == "RS384" { "ES384" } else { "RS384" };
            let forged =
                client_assertion(other, &id, &token_url, now + 60, &format!("{alg}-forged"));
            assert_eq!(attempt(forged, "system/Observation.rs").await.status, 401);
            // A scope the client is not registered for.
            let fresh = client_assertion(alg, &id, &token_url, now + 60, &format!("{alg}-scope"));
            let reply = attempt(fresh, "system/*.cruds").await;
            assert_eq!(reply.json()["error"], "invalid_scope", "{}", reply.body);
        }
        server
    })
    .await;
}

#[tokio::test]
async fn symmetric_clients_use_basic_auth_and_wrong_secrets_get_a_challenge() {
    each_backend_server(|server| async move {
        server
            .register(symmetric_client(
                "svc",
                "s3cret:with/odd chars",
                &["system/*.rs"],
            ))
            .await;
        let client = smart_client(&server, "svc", Some("s3cret:with/odd chars"));
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("system/CarePlan.rs".into()))
            .request_async(&http_client)
            .await
            .expect("client_secret_basic works");
        assert_eq!(
            jwt_claims(token.access_token().secret())["client_id"],
            "svc"
        );

        let wrong = smart_client(&server, "svc", Some("guess"))
            .exchange_client_credentials()
            .add_scope(Scope::new("system/CarePlan.rs".into()))
            .request_async(&http_client)
            .await;
        assert!(wrong.is_err());
        let raw = post_form(
            &server.auth.settings.token_url,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/CarePlan.rs"),
            ],
            &[("authorization", "Basic c3ZjOmd1ZXNz")],
        )
        .await;
        assert_eq!(raw.status, 401);
        assert_eq!(raw.json()["error"], "invalid_client");
        assert!(raw
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")));

        // A confidential client cannot pose as public, and unknown grant types are named.
        let posing = post_form(
            &server.auth.settings.token_url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("scope", "system/CarePlan.rs"),
            ],
            &[],
        )
        .await;
        assert_eq!(posing.json()["error"], "invalid_client");
        let password = post_form(
            &server.auth.settings.token_url,
            &[("grant_type", "password"), ("client_id", "svc")],
            &[],
        )
        .await;
        assert_eq!(password.json()["error"], "unsupported_grant_type");
        let repeated = send(
            "POST",
            &server.auth.settings.token_url,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("grant_type=client_credentials&grant_type=password".into()),
        )
        .await;
        assert_eq!(repeated.json()["error"], "invalid_request");
        server
    })
    .await;
}

#[tokio::test]
async fn introspection_and_revocation() {
    each_backend_server(|server| async move {
        setup(&server).await;
        server
            .register(coplan::auth::clients::Client {
                introspect_any: true,
                ..symmetric_client("rs", "rs-secret", &["system/*.rs"])
            })
            .await;
        let tokens = patient_tokens(
            &server,
            &["launch/patient", "patient/*.rs", "offline_access"],
        )
        .await;
        let resource_server = smart_client(&server, "rs", Some("rs-secret"));

        let active = resource_server
            .introspect(tokens.access_token())
            .request_async(&http_client)
            .await
            .expect("introspection");
        assert!(active.active());
        assert_eq!(active.client_id().map(|c| c.as_str()), Some("portal"));
        assert_eq!(active.username(), None);
        let raw = post_form(
            &server.auth.settings.introspect_url,
            &[("token", tokens.access_token().secret())],
            &[("authorization", "Basic cnM6cnMtc2VjcmV0")],
        )
        .await;
        let body = raw.json();
        assert_eq!(body["active"], true);
        assert_eq!(body["patient"], "pat1");
        assert_eq!(body["sub"], "amy");

        // Anything not valid: exactly {"active": false}.
        for bad in [
            "garbage",
            "a.b.c",
            tokens.refresh_token().expect("rt").secret(),
        ] {
            let reply = post_form(
                &server.auth.settings.introspect_url,
                &[("token", bad)],
                &[("authorization", "Basic cnM6cnMtc2VjcmV0")],
            )
            .await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json(), json!({"active": false}));
        }
        // Introspection needs a confidential client.
        let public = post_form(
            &server.auth.settings.introspect_url,
            &[
                ("token", tokens.access_token().secret()),
                ("client_id", "portal"),
            ],
            &[],
        )
        .await;
        assert_eq!(public.status, 401);

        // Revoking the access token: introspection and the verifier both see it.
        let portal = smart_client(&server, "portal", None);
        // (oauth2 refuses non-https revocation URLs, so these are plain form posts.)
        let revoke = |token: String| {
            let url = server.auth.settings.revoke_url.clone();
            async move { post_form(&url, &[("token", &token), ("client_id", "portal")], &[]).await }
        };
        assert_eq!(
            revoke(tokens.access_token().secret().clone()).await.status,
            200
        );
        let after = resource_server
            .introspect(tokens.access_token())
            .request_async(&http_client)
            .await
            .expect("introspection");
        assert!(!after.active());
        assert!(server
            .state
            .verifier
            .clone()
            .expect("on")
            .verify(tokens.access_token().secret())
            .await
            .is_err());

        // Revoking the refresh token ends it (and the grant).
        let refresh = tokens.refresh_token().expect("refresh").secret().clone();
        assert_eq!(revoke(refresh.clone()).await.status, 200);
        assert!(portal
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request_async(&http_client)
            .await
            .is_err());
        // Unknown tokens revoke "successfully" (RFC 7009 §2.2).
        let unknown = post_form(
            &server.auth.settings.revoke_url,
            &[("token", "never-issued"), ("client_id", "portal")],
            &[],
        )
        .await;
        assert_eq!(unknown.status, 200);
        server
    })
    .await;
}

/// `Authorization: Basic …` for `id` and `secret`.
fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Introspect `token` as the symmetric client `id`: status and body.
async fn introspect_as(server: &Server, id: &str, secret: &str, token: &str) -> (u16, Value) {
    let reply = post_form(
        &server.auth.settings.introspect_url,
        &[("token", token)],
        &[("authorization", &basic(id, secret))],
    )
    .await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn clients_introspect_their_own_tokens_and_only_resource_servers_any_clients() {
    each_backend_server(|server| async move {
        setup(&server).await;
        server
            .register(symmetric_client("svc", "svc-secret", &["system/*.rs"]))
            .await;
        server
            .register(symmetric_client("other", "other-secret", &["system/*.rs"]))
            .await;
        server
            .register(coplan::auth::clients::Client {
                introspect_any: true,
                ..symmetric_client("rs", "rs-secret", &[])
            })
            .await;
        let portal = patient_tokens(&server, &["launch/patient", "patient/*.rs"]).await;
        let portal = portal.access_token().secret().clone();
        let svc = post_form(
            &server.auth.settings.token_url,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/*.rs"),
            ],
            &[("authorization", &basic("svc", "svc-secret"))],
        )
        .await;
        assert_eq!(svc.status, 200, "{}", svc.body);
        let svc = svc.json()["access_token"]
            .as_str()
            .expect("access token")
            .to_string();

        // A client's own token: active, with what it grants.
        let (status, own) = introspect_as(&server, "svc", "svc-secret", &svc).await;
        assert_eq!(status, 200);
        assert_eq!(own["active"], true, "{own}");
        assert_eq!(own["client_id"], "svc");
        assert_eq!(own["scope"], "system/*.rs");

        // Another client's token, to a client not registered as a resource server: exactly
        // what an unknown token gets, so its existence is not revealed.
        for token in [&svc, &portal] {
            let (status, body) = introspect_as(&server, "other", "other-secret", token).await;
            assert_eq!(status, 200);
            assert_eq!(body, json!({"active": false}));
        }
        let (_, body) = introspect_as(&server, "svc", "svc-secret", &portal).await;
        assert_eq!(body, json!({"active": false}));

        // A resource server learns about every client's tokens.
        let (_, body) = introspect_as(&server, "rs", "rs-secret", &svc).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["client_id"], "svc");
        let (_, body) = introspect_as(&server, "rs", "rs-secret", &portal).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["client_id"], "portal");
        assert_eq!(body["patient"], "pat1");

        // A public client may not introspect, not even its own token.
        let public = post_form(
            &server.auth.settings.introspect_url,
            &[("token", &portal), ("client_id", "portal")],
            &[],
        )
        .await;
        assert_eq!(public.status, 401, "{}", public.body);
        assert_eq!(public.json()["error"], "invalid_client");
        server
    })
    .await;
}

#[tokio::test]
async fn backend_keys_can_be_registered_by_jwks_uri() {
    // A tiny JWKS host on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let jwks_uri = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let jwks = fixture("smart-example-jwks-ES384.public.json").to_string();
    let host = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { jwks }
        }),
    );
    let hosting = tokio::spawn(async move { axum::serve(listener, host).await });

    // Key sets are fetched over https only, unless plain http is explicitly allowed (tests).
    let strict = Server::start(coplan::testing::Backend::Sqlite).await;
    let mut client = asymmetric_client("by-uri", "ES384", &["system/*.rs"]);
    client.jwks = None;
    client.jwks_uri = Some(jwks_uri.clone());
    strict.register(client.clone()).await;
    let token_url = strict.auth.settings.token_url.clone();
    let assertion = client_assertion(
        "ES384",
        "by-uri",
        &token_url,
        strict.clock.unix() + 60,
        "u-0",
    );
    let refused = post_form(
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Goal.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_client");
    assert!(refused.body.contains("https"), "{}", refused.body);
    strict.stop().await;

    let allow_http = coplan::config::ConfigLayer::default().set("jwks_allow_http", true);
    let server = Server::start_with(coplan::testing::Backend::Sqlite, allow_http).await;
    server.register(client).await;
    let token_url = server.auth.settings.token_url.clone();
    let assertion = client_assertion(
        "ES384",
        "by-uri",
        &token_url,
        server.clock.unix() + 60,
        "u-1",
    );
    let reply = post_form(
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Goal.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["scope"], "system/Goal.rs");
    server.stop().await;
    hosting.abort();
}

#[tokio::test]
async fn online_access_ends_when_the_user_signs_out() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let client = smart_client(&server, "portal", None);
        let (url, verifier) = authorize_request(
            &client,
            &server,
            &["launch/patient", "patient/*.rs", "online_access"],
            &[],
        );
        let mut browser = Browser::default();
        let consent = browser.sign_in(&server.origin, &url, "amy", "pw-amy").await;
        assert!(consent.body.contains("Sign out"), "{}", consent.body);
        let csrf = form_fields(&consent.body)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v)
            .expect("csrf");
        let redirect = browser
            .submit(&server.origin, &consent, &[("action", "approve")])
            .await;
        let token = redeem(
            &client,
            redirect.location_param("code").expect("code"),
            verifier,
        )
        .await;
        let refreshed = client
            .exchange_refresh_token(token.refresh_token().expect("online refresh token"))
            .request_async(&http_client)
            .await
            .expect("refresh while signed in");

        // Sign-out needs the session's CSRF token; then online refresh tokens stop working.
        let forged = browser
            .post(
                &server.url("/auth/logout"),
                &[("csrf".into(), "forged".into())],
            )
            .await;
        assert_eq!(forged.status, 403);
        let out = browser
            .post(&server.url("/auth/logout"), &[("csrf".into(), csrf)])
            .await;
        assert_eq!(out.status, 200, "{}", out.body);
        assert!(out
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")));
        let after = client
            .exchange_refresh_token(refreshed.refresh_token().expect("rotated"))
            .request_async(&http_client)
            .await;
        assert!(after.is_err(), "online access ends with the session");
        server
    })
    .await;
}

/// The value of the page's hidden `csrf` field.
fn csrf_of(page: &Reply) -> String {
    form_fields(&page.body)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("a csrf field")
}

/// Open `/auth/apps` and sign in there; returns the page listing the user's apps.
async fn apps_page(server: &Server, browser: &mut Browser, user: &str, password: &str) -> Reply {
    let login = browser.get(&server.url("/auth/apps")).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(
        login.body.contains("Sign in to see which apps"),
        "{}",
        login.body
    );
    let mut fields = form_fields(&login.body);
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), password.into()));
    let page = browser.post(&server.url("/auth/apps"), &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Apps you have allowed"), "{}", page.body);
    page
}

/// A FHIR search of the patient's goals with `token`: its status.
async fn read_with(server: &Server, token: &str) -> u16 {
    send(
        "GET",
        &server.url("/fhir/Goal?patient=pat1"),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await
    .status
}

#[tokio::test]
async fn a_user_sees_the_apps_they_allowed_and_taking_one_back_revokes_its_tokens() {
    each_backend_server(|server| async move {
        setup(&server).await;
        server
            .register(coplan::auth::clients::Client {
                name: "Goal diary".into(),
                ..public_app("diary", &["launch/patient", "patient/Goal.cruds"])
            })
            .await;
        server.add_user("bob", "pw-bob", None).await;
        let portal = patient_tokens(
            &server,
            &["launch/patient", "patient/*.rs", "offline_access"],
        )
        .await;
        let diary_client = smart_client(&server, "diary", None);
        let (url, verifier) = authorize_request(
            &diary_client,
            &server,
            &["launch/patient", "patient/Goal.cruds"],
            &[],
        );
        let redirect =
            sign_in_and_approve(&server, &mut Browser::default(), &url, "amy", "pw-amy").await;
        let diary = redeem(
            &diary_client,
            redirect.location_param("code").expect("code"),
            verifier,
        )
        .await;
        let portal_access = portal.access_token().secret().clone();
        let diary_access = diary.access_token().secret().clone();
        assert_eq!(read_with(&server, &portal_access).await, 200);

        // Amy sees both apps, in plain words, with how long each keeps access.
        let mut amy = Browser::default();
        let page = apps_page(&server, &mut amy, "amy", "pw-amy").await;
        for text in [
            "App portal",
            "Goal diary",
            "See everything in your record",
            "See, add, change and delete goals in your record",
            "unless you take it back",
            "Take back access for App portal",
            "Take back access for Goal diary",
        ] {
            assert!(page.body.contains(text), "{text}: {}", page.body);
        }
        for technical in ["patient/*.rs", "Patient/pat1", "offline_access", "cruds"] {
            assert!(!page.body.contains(technical), "{technical}: {}", page.body);
        }
        let csrf = csrf_of(&page);
        let revoke = |client: &str, csrf: &str| {
            vec![
                ("step".to_string(), "revoke".to_string()),
                ("client_id".to_string(), client.to_string()),
                ("csrf".to_string(), csrf.to_string()),
            ]
        };

        // Nothing changes without the session's CSRF token, without the session, by GET, or
        // for another user.
        let forged = amy
            .post(&server.url("/auth/apps"), &revoke("portal", "forged"))
            .await;
        assert_eq!(forged.status, 403, "{}", forged.body);
        let cookieless = Browser::default()
            .post(&server.url("/auth/apps"), &revoke("portal", &csrf))
            .await;
        assert_eq!(cookieless.status, 403, "{}", cookieless.body);
        let by_get = amy
            .get(&server.url(&format!(
                "/auth/apps?step=revoke&client_id=portal&csrf={csrf}"
            )))
            .await;
        assert!(by_get.body.contains("Take back access for App portal"));
        let mut bob = Browser::default();
        let bobs = apps_page(&server, &mut bob, "bob", "pw-bob").await;
        assert!(
            bobs.body.contains("No app can use Coplan on your behalf"),
            "{}",
            bobs.body
        );
        assert!(!bobs.body.contains("App portal"), "{}", bobs.body);
        let bob_csrf = csrf_of(&bobs);
        let bob_tries = bob
            .post(&server.url("/auth/apps"), &revoke("portal", &bob_csrf))
            .await;
        assert!(
            bob_tries
                .body
                .contains("App portal had no access to take back"),
            "{}",
            bob_tries.body
        );
        assert_eq!(read_with(&server, &portal_access).await, 200);

        // Amy takes back the portal's access: its access token and refresh token stop working
        // at once; the diary keeps its access.
        let done = amy
            .post(&server.url("/auth/apps"), &revoke("portal", &csrf))
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(
            done.body
                .contains("App portal can no longer use Coplan on your behalf"),
            "{}",
            done.body
        );
        assert!(!done.body.contains("Take back access for App portal"));
        assert!(done.body.contains("Take back access for Goal diary"));
        assert_eq!(read_with(&server, &portal_access).await, 401);
        let client = smart_client(&server, "portal", None);
        let refreshed = client
            .exchange_refresh_token(portal.refresh_token().expect("refresh token"))
            .request_async(&http_client)
            .await;
        assert!(refreshed.is_err(), "the refresh token is revoked too");
        assert_eq!(read_with(&server, &diary_access).await, 200);

        // The listing ends with the grant's last token.
        server.clock.advance(3601);
        let later = amy.get(&server.url("/auth/apps")).await;
        assert!(
            later.body.contains("No app can use Coplan on your behalf"),
            "{}",
            later.body
        );
        server
    })
    .await;
}

#[tokio::test]
async fn a_grant_issued_before_grants_were_listed_is_listed_from_its_next_refresh_and_can_be_taken_back(
) {
    each_backend_server(|server| async move {
        setup(&server).await;
        let portal = patient_tokens(
            &server,
            &["launch/patient", "patient/*.rs", "offline_access"],
        )
        .await;
        // As a release before the apps page left it: tokens, but no listed grant.
        assert_eq!(server.execute_sql("DELETE FROM auth_grant").await, 1);
        let mut amy = Browser::default();
        let page = apps_page(&server, &mut amy, "amy", "pw-amy").await;
        assert!(
            page.body.contains("No app can use Coplan on your behalf"),
            "{}",
            page.body
        );

        let client = smart_client(&server, "portal", None);
        let refreshed = client
            .exchange_refresh_token(portal.refresh_token().expect("refresh token"))
            .request_async(&http_client)
            .await
            .expect("refresh");
        let page = amy.get(&server.url("/auth/apps")).await;
        assert!(
            page.body.contains("Take back access for App portal"),
            "{}",
            page.body
        );
        let csrf = csrf_of(&page);
        let fields = vec![
            ("step".to_string(), "revoke".to_string()),
            ("client_id".to_string(), "portal".to_string()),
            ("csrf".to_string(), csrf),
        ];
        let done = amy.post(&server.url("/auth/apps"), &fields).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let access = refreshed.access_token().secret().clone();
        assert_eq!(read_with(&server, &access).await, 401);
        let again = client
            .exchange_refresh_token(refreshed.refresh_token().expect("rotated refresh token"))
            .request_async(&http_client)
            .await;
        assert!(again.is_err(), "the rotated refresh token is revoked too");

        // The revocation outlives the refresh tokens even after a day (not only the hour of
        // an access token).
        server.clock.advance(86_400);
        server
            .auth
            .store
            .purge_expired(server.clock.unix())
            .await
            .expect("purge");
        let again = client
            .exchange_refresh_token(refreshed.refresh_token().expect("rotated refresh token"))
            .request_async(&http_client)
            .await;
        assert!(again.is_err(), "still revoked after purging expired rows");
        server
    })
    .await;
}
