//! Trusted external issuers (resource-server mode): tokens of a configured issuer, verified
//! with its JWK Set and mapped to a Grant through the claim mapping; the built-in server's
//! tokens still verify; anything else (unknown issuer, wrong audience, expired, an algorithm not
//! configured, HS256) is refused.

#[path = "common/auth.rs"]
mod auth_common;

use auth_common::*;
use coplan::auth::external::{ExternalIssuer, Verifiers};
use coplan::config::ConfigLayer;
use coplan::policy::{BearerVerifier, Grant};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const EHR: &str = "https://ehr.example/oauth";

fn config_toml() -> String {
    format!(
        "[[trusted_issuers]]\nissuer = \"{EHR}\"\njwks_file = \"{}/tests/fixtures/smart-example-jwks-RS384.public.json\"\n\
         audience = \"https://coplan.example/fhir\"\nalgorithms = [\"RS384\"]\n\
         [trusted_issuers.claims]\nscope = \"scp\"\npatient = \"launch_patient\"\n",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn sign(claims: &Value, alg: &str) -> String {
    let (key, kid) = example_signing_key("RS384");
    let mut header = Header::new(if alg == "RS384" {
        Algorithm::RS384
    } else {
        Algorithm::RS256
    });
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

#[tokio::test]
async fn tokens_of_a_trusted_issuer_are_verified_with_its_keys_and_mapped() {
    let server = Server::start(coplan::testing::Backend::Sqlite).await;
    let layer = ConfigLayer::from_toml(&config_toml()).expect("toml");
    let config = layer.resolve().expect("config");
    assert_eq!(config.trusted_issuers.len(), 1);
    let issuer = ExternalIssuer::load(config.trusted_issuers[0].clone(), &server.fhir)
        .await
        .expect("keys load");
    let verifiers = Verifiers::new(server.auth.clone(), vec![issuer], server.clock.clone());
    let now = server.clock.unix();
    let good = json!({
        "iss": EHR, "aud": "https://coplan.example/fhir", "sub": "u-42", "exp": now + 300,
        "scp": ["patient/Observation.rs", "launch/patient"], "launch_patient": "pat9",
        "fhirUser": "https://ehr.example/fhir/Practitioner/dr-1", "azp": "ehr-app",
    });
    let grant = verifiers
        .verify(&sign(&good, "RS384"))
        .await
        .expect("trusted");
    assert_eq!(
        grant,
        Grant {
            client_id: "ehr-app".into(),
            subject: "u-42".into(),
            scope: "patient/Observation.rs launch/patient".into(),
            patient: Some("pat9".into()),
            fhir_user: Some("Practitioner/dr-1".into()),
            expires_at: now + 300,
        }
    );

    let mut refusals: Vec<(&str, String)> = Vec::new();
    for (what, field, value) in [
        ("unknown issuer", "iss", json!("https://other.example")),
        (
            "wrong audience",
            "aud",
            json!("https://elsewhere.example/fhir"),
        ),
        ("expired", "exp", json!(now - 1)),
    ] {
        let mut c = good.clone();
        c[field] = value;
        refusals.push((what, sign(&c, "RS384")));
    }
    refusals.push(("algorithm not configured", sign(&good, "RS256")));
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"public key bytes").expect("key"),
    )
    .expect("sign");
    refusals.push(("HS256", hs));
    for (what, token) in refusals {
        assert!(
            verifiers.verify(&token).await.is_err(),
            "{what} was accepted"
        );
    }

    // The built-in server's own tokens still go to it.
    let local = server
        .auth
        .keys
        .sign(
            &json!({
                "iss": server.origin, "aud": server.fhir, "sub": "amy", "exp": now + 60, "iat": now,
                "jti": "j", "client_id": "portal", "scope": "patient/*.rs",
            }),
            now,
        )
        .expect("sign");
    assert_eq!(
        verifiers.verify(&local).await.expect("local").subject,
        "amy"
    );
    server.stop().await;
}

#[test]
fn a_trusted_issuer_needs_exactly_one_key_source() {
    let bad = ConfigLayer::from_toml(&format!("[[trusted_issuers]]\nissuer = \"{EHR}\"\n"))
        .expect("toml");
    assert!(bad.resolve().is_err());
}
