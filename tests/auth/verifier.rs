//! The BearerVerifier for the server's own access tokens refuses forgeries: `alg: none`,
//! HS256 "signed" with the public key (algorithm confusion), another key under our kid or an
//! unknown kid, a tampered payload, the wrong issuer or audience, and expired tokens; and a
//! revocation made elsewhere takes effect within the cache's recheck interval.

use crate::common::auth::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use coplan::policy::BearerVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::Arc;

fn claims(server: &Server) -> Value {
    let now = server.clock.unix();
    json!({
        "iss": server.fhir, "sub": "amy", "aud": server.fhir, "exp": now + 600, "iat": now,
        "jti": "j-1", "client_id": "portal", "scope": "patient/*.rs", "patient": "pat1",
    })
}

fn our_kid(server: &Server) -> String {
    server.auth.keys.jwks()["keys"][0]["kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

/// Sign `claims` with the server's real key (what a valid token looks like).
fn sign_ours(server: &Server, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(our_kid(server));
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(server_key())).expect("sign")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let server = Server::start(coplan::testing::Backend::Sqlite).await;
    let verifier: Arc<dyn BearerVerifier> = server.state.verifier.clone().expect("auth on");
    let good = claims(&server);

    // The control: a token signed with our key verifies, so the refusals below mean something.
    let grant = verifier
        .verify(&sign_ours(&server, &good))
        .await
        .expect("valid");
    assert_eq!(grant.patient.as_deref(), Some("pat1"));
    assert_eq!(grant.fhir_user, None);

    let kid = our_kid(&server);
    let mut forgeries: Vec<(&str, String)> = Vec::new();
    // alg none, with and without a signature part.
    let none = format!(
        "{}.{}",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&good)
    );
    forgeries.push(("alg none", format!("{none}.")));
    forgeries.push(("alg none, signature", format!("{none}.c2ln")));
    // HS256 keyed with the public key (JWKS n) and with the DER bytes.
    let jwks = server.auth.keys.jwks();
    for secret in [
        jwks["keys"][0]["n"]
            .as_str()
            .expect("n")
            .as_bytes()
            .to_vec(),
        jwks.to_string().into_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let key = EncodingKey::from_secret(&secret).expect("HMAC key");
        forgeries.push((
            "HS256 confusion",
            jsonwebtoken::encode(&header, &good, &key).expect("sign"),
        ));
    }
    // Another RSA key under our kid, and under an unknown kid.
    let (other, _) = example_signing_key("RS384");
    for kid in [kid.clone(), "unknown".to_string()] {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        forgeries.push((
            "foreign key",
            jsonwebtoken::encode(&header, &good, &other).expect("sign"),
        ));
    }
    // A tampered payload under a valid signature.
    let valid = sign_ours(&server, &good);
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let mut widened = good.clone();
    widened["scope"] = json!("system/*.cruds");
    parts[1] = b64(&widened);
    forgeries.push(("tampered", parts.join(".")));
    // Our key, wrong claims.
    for (what, field, value) in [
        ("wrong iss", "iss", json!("http://evil.example")),
        ("wrong aud", "aud", json!("http://other.example/fhir")),
        ("expired", "exp", json!(server.clock.unix() - 1)),
    ] {
        let mut c = good.clone();
        c[field] = value;
        forgeries.push((what, sign_ours(&server, &c)));
    }
    let mut no_kid = Header::new(Algorithm::RS256);
    no_kid.kid = None;
    forgeries.push((
        "no kid",
        jsonwebtoken::encode(&no_kid, &good, &EncodingKey::from_rsa_der(server_key()))
            .expect("sign"),
    ));
    forgeries.push(("garbage", "not-a-jwt".into()));

    for (what, token) in forgeries {
        assert!(
            verifier.verify(&token).await.is_err(),
            "{what} was accepted"
        );
    }

    // A valid token expires by the injected clock (also once cached).
    assert!(verifier.verify(&valid).await.is_ok());
    server.clock.advance(601);
    assert!(
        verifier.verify(&valid).await.is_err(),
        "expired while cached"
    );
    server.stop().await;
}

#[tokio::test]
async fn revocations_made_on_another_node_apply_within_the_recheck_interval() {
    each_backend_server(|server| async move {
        let verifier = server.state.verifier.clone().expect("auth on");
        let token = sign_ours(&server, &claims(&server));
        assert!(verifier.verify(&token).await.is_ok());
        // Another node revokes it straight in the shared database.
        server
            .auth
            .store
            .revoke("j-1", server.clock.unix() + 600)
            .await
            .expect("revoke");
        assert!(
            verifier.verify(&token).await.is_ok(),
            "served from the cache for a moment"
        );
        server
            .clock
            .advance(coplan::auth::tokens::REVOCATION_RECHECK_SECONDS);
        assert!(
            verifier.verify(&token).await.is_err(),
            "rechecked and refused"
        );
        server
    })
    .await;
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Rotation publishes before it signs: every node (here the server and a second key ring on the
/// same database) lists the new key within one reload, the old key keeps signing until every
/// cached JWK Set has expired, then the new one signs; old tokens verify until the old key
/// expires.
#[tokio::test]
async fn a_rotated_key_is_published_on_every_node_before_any_node_signs_with_it() {
    each_backend_server(|server| async move {
        let verifier = server.state.verifier.clone().expect("auth on");
        let store = server.auth.store.as_ref();
        let settings = &server.auth.settings;
        let reload = settings.key_reload_seconds;
        let ahead = settings.key_publish_ahead_seconds();
        assert!(
            reload + settings.jwks_max_age_seconds < ahead,
            "a node has re-read and a client's cache has expired before the new key signs"
        );
        let t0 = server.clock.unix();
        let other_node = coplan::auth::keys::KeyRing::open(store, t0, reload)
            .await
            .expect("a second node");
        let old_kid = our_kid(&server);
        let old = sign_ours(&server, &claims(&server));

        let der = coplan::auth::keys::generate_key().await.expect("a key");
        let rotation = coplan::auth::keys::rotate(store, &der, t0, ahead, 900)
            .await
            .expect("rotate");
        let new_kid = rotation.kid.clone();
        assert_ne!(new_kid, old_kid);
        assert_eq!(rotation.signs_from, t0 + ahead);
        assert_eq!(rotation.old_keys_expire_at, t0 + ahead + 900);

        // Within one reload the JWK Set over HTTP lists both, newest first, with its max-age.
        server.clock.advance(reload);
        let jwks = send("GET", &server.url("/auth/jwks"), &[], None).await;
        assert_eq!(jwks.status, 200);
        assert_eq!(kids(&jwks.json()), [new_kid.clone(), old_kid.clone()]);
        assert_eq!(
            jwks.header("cache-control"),
            Some(format!("public, max-age={}", settings.jwks_max_age_seconds).as_str())
        );
        other_node
            .reload_if_stale(store, t0 + reload)
            .await
            .expect("reload");
        assert_eq!(kids(&other_node.jwks()), [new_kid.clone(), old_kid.clone()]);

        // Both nodes sign with the old key until the new one's time, then with the new one.
        for node in [&server.auth.keys, &other_node] {
            assert_eq!(node.signing_kid(t0 + ahead - 1).as_ref(), Some(&old_kid));
            assert_eq!(node.signing_kid(t0 + ahead).as_ref(), Some(&new_kid));
        }
        let early = server
            .auth
            .keys
            .sign(&claims(&server), t0 + reload)
            .expect("sign");
        let early_kid = jsonwebtoken::decode_header(&early).expect("JWT").kid;
        assert_eq!(early_kid.as_ref(), Some(&old_kid), "not yet the new key");
        let fresh = other_node.sign(&claims(&server), t0 + ahead).expect("sign");
        let fresh_kid = jsonwebtoken::decode_header(&fresh).expect("JWT").kid;
        assert_eq!(fresh_kid.as_ref(), Some(&new_kid));
        assert!(
            verifier.verify(&fresh).await.is_ok(),
            "a token the other node signed verifies here"
        );
        assert!(
            verifier.verify(&old).await.is_ok(),
            "the old key still verifies"
        );

        // A token issued over HTTP after the switch carries the new key id.
        server.clock.advance(ahead - reload);
        server
            .register(symmetric_client("svc", "s3cret", &["system/*.rs"]))
            .await;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("svc:s3cret")
        );
        let issued = post_form(
            &server.url("/auth/token"),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/Goal.rs"),
            ],
            &[("authorization", &basic)],
        )
        .await;
        assert_eq!(issued.status, 200, "{}", issued.body);
        let token = issued.json()["access_token"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let issued_kid = jsonwebtoken::decode_header(&token).expect("JWT").kid;
        assert_eq!(issued_kid.as_ref(), Some(&new_kid));

        // When the old key's last tokens have expired it is gone from the store and the JWKS.
        server
            .auth
            .keys
            .reload(store, rotation.old_keys_expire_at)
            .await
            .expect("reload");
        assert_eq!(kids(&server.auth.keys.jwks()), vec![new_kid]);
        server
    })
    .await;
}
