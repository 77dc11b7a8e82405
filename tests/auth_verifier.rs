//! The BearerVerifier for the server's own access tokens refuses forgeries: `alg: none`,
//! HS256 "signed" with the public key (algorithm confusion), another key under our kid or an
//! unknown kid, a tampered payload, the wrong issuer or audience, and expired tokens; and a
//! revocation made elsewhere takes effect within the cache's recheck interval.

#[path = "common/auth.rs"]
mod auth_common;

use auth_common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use coplan::policy::BearerVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::Arc;

fn claims(server: &Server) -> Value {
    let now = server.clock.unix();
    json!({
        "iss": server.origin, "sub": "amy", "aud": server.fhir, "exp": now + 600, "iat": now,
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

#[tokio::test]
async fn rotated_keys_sign_new_tokens_while_old_tokens_stay_valid_until_the_old_key_retires() {
    each_backend_server(|server| async move {
        let verifier = server.state.verifier.clone().expect("auth on");
        let old_kid = our_kid(&server);
        let old = sign_ours(&server, &claims(&server));
        let now = server.clock.unix();
        let new_kid = coplan::auth::keys::rotate(server.auth.store.as_ref(), now, 900)
            .await
            .expect("rotate");
        assert_ne!(new_kid, old_kid);
        server
            .auth
            .keys
            .reload(server.auth.store.as_ref(), now)
            .await
            .expect("reload");
        let kids: Vec<String> = server.auth.keys.jwks()["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            kids,
            [new_kid.clone(), old_kid.clone()],
            "both published, newest first"
        );
        let fresh = server.auth.keys.sign(&claims(&server)).expect("sign");
        // (A running node picks the rotation up by itself within RELOAD_SECONDS.)
        let header = jsonwebtoken::decode_header(&fresh).expect("JWT");
        assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
        assert!(verifier.verify(&fresh).await.is_ok());
        assert!(
            verifier.verify(&old).await.is_ok(),
            "the old key still verifies"
        );
        // After the retention period the old key is gone from the store and the JWKS.
        server
            .auth
            .keys
            .reload(server.auth.store.as_ref(), now + 901)
            .await
            .expect("reload");
        assert_eq!(
            server.auth.keys.jwks()["keys"].as_array().map(Vec::len),
            Some(1)
        );
        server
    })
    .await;
}
