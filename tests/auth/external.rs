//! Trusted external issuers (resource-server mode): tokens of a configured issuer, verified
//! with its JWK Set and mapped to a Grant through the claim mapping; the built-in server's
//! tokens still verify; anything else (unknown issuer, wrong audience, expired, an algorithm not
//! configured, HS256) is refused.

use crate::common::auth::*;
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
    let issuer = ExternalIssuer::load(
        config.trusted_issuers[0].clone(),
        &server.fhir,
        server.auth.jwks_fetcher.clone(),
    )
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
                "iss": server.fhir, "aud": server.fhir, "sub": "amy", "exp": now + 60, "iat": now,
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

/// A JWK Set host on loopback over TLS, with the test server certificate
/// (`tests/fixtures/tls/`, issued by the test CA for 127.0.0.1): answers every request with
/// `body`. Returns its https URL.
async fn https_jwks_host(body: String) -> String {
    https_jwks_host_counting(body, Default::default()).await
}

/// [`https_jwks_host`], counting the requests it answers in `served`.
async fn https_jwks_host_counting(
    body: String,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = format!("{}/tests/fixtures/tls", env!("CARGO_MANIFEST_DIR"));
    let certs = CertificateDer::pem_file_iter(format!("{dir}/server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/server.key")).expect("server.key");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            let served = served.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_issuers_keys_are_fetched_over_https_with_the_certificate_checked() {
    use coplan::auth::fetch::JwksFetcher;
    use std::sync::Arc;
    let jwks = std::fs::read_to_string(format!(
        "{}/tests/fixtures/smart-example-jwks-RS384.public.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("jwks");
    let url = https_jwks_host(jwks).await;
    let toml = format!(
        "[[trusted_issuers]]\nissuer = \"{EHR}\"\njwks_uri = \"{url}\"\n\
         audience = \"https://coplan.example/fhir\"\nalgorithms = [\"RS384\"]\n"
    );
    let config = ConfigLayer::from_toml(&toml)
        .expect("toml")
        .resolve()
        .expect("an https jwks_uri is accepted");
    let issuer_config = config.trusted_issuers[0].clone();
    let ca = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));

    // Trusting the CA that issued the host's certificate: the keys load and verify tokens.
    let trusting =
        Arc::new(JwksFetcher::new(Some(std::path::Path::new(&ca)), false).expect("fetcher"));
    let issuer = ExternalIssuer::load(
        issuer_config.clone(),
        "https://coplan.example/fhir",
        trusting,
    )
    .await
    .expect("keys fetched over https");
    let now = 1_900_000_000;
    let token = sign(
        &json!({"iss": EHR, "aud": "https://coplan.example/fhir", "sub": "u-1", "exp": now + 60, "scp": "patient/*.rs"}),
        "RS384",
    );
    assert_eq!(issuer.verify(&token, now).expect("verified").subject, "u-1");

    // Without that CA the certificate is not trusted: nothing is loaded.
    let system_roots_only = Arc::new(JwksFetcher::new(None, false).expect("fetcher"));
    let refused = ExternalIssuer::load(
        issuer_config,
        "https://coplan.example/fhir",
        system_roots_only,
    )
    .await
    .err()
    .expect("an untrusted certificate is refused");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");

    // Plain http is refused unless explicitly allowed (tests, local development).
    let http = toml.replace("https://", "http://");
    let err = ConfigLayer::from_toml(&http)
        .expect("toml")
        .resolve()
        .unwrap_err();
    assert!(err.contains("https"), "{err}");
    let allowed = ConfigLayer::from_toml(&format!("jwks_allow_http = true\n{http}"))
        .expect("toml")
        .resolve();
    assert!(allowed.is_ok(), "{allowed:?}");
    let strict = JwksFetcher::new(None, false).expect("fetcher");
    assert!(strict
        .get(&url.replace("https://", "http://"))
        .await
        .unwrap_err()
        .contains("https"));
}

#[tokio::test]
async fn forged_tokens_cannot_make_the_server_fetch_an_issuers_keys_more_than_once_a_minute() {
    use coplan::auth::external::REFETCH_INTERVAL_SECONDS;
    use coplan::auth::fetch::JwksFetcher;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let server = Server::start(coplan::testing::Backend::Sqlite).await;
    // The issuer publishes only its ES384 key; tokens signed with the RS384 key are not its.
    let jwks = std::fs::read_to_string(format!(
        "{}/tests/fixtures/smart-example-jwks-ES384.public.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("jwks");
    let served = Arc::new(AtomicUsize::new(0));
    let url = https_jwks_host_counting(jwks, served.clone()).await;
    let config = ConfigLayer::from_toml(&format!(
        "[[trusted_issuers]]\nissuer = \"{EHR}\"\njwks_uri = \"{url}\"\n\
         audience = \"https://coplan.example/fhir\"\nalgorithms = [\"RS384\", \"ES384\"]\n"
    ))
    .expect("toml")
    .resolve()
    .expect("config");
    let ca = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let fetcher =
        Arc::new(JwksFetcher::new(Some(std::path::Path::new(&ca)), false).expect("fetcher"));
    let issuer = ExternalIssuer::load(
        config.trusted_issuers[0].clone(),
        "https://coplan.example/fhir",
        fetcher,
    )
    .await
    .expect("keys load");
    assert_eq!(served.load(Ordering::SeqCst), 1, "loaded once");
    let verifiers = Verifiers::new(server.auth.clone(), vec![issuer], server.clock.clone());
    let now = server.clock.unix();
    let forged = |n: i64| {
        sign(
            &json!({"iss": EHR, "aud": "https://coplan.example/fhir", "sub": "u-1",
                    "exp": now + 600 + n, "scp": "patient/*.rs"}),
            "RS384",
        )
    };
    for n in 0..5 {
        let refused = verifiers.verify(&forged(n)).await.unwrap_err();
        assert!(refused.0.contains("rejected"), "{refused}");
        assert!(
            !refused.0.contains(&url),
            "no fetch detail in the answer: {refused}"
        );
    }
    assert_eq!(
        served.load(Ordering::SeqCst),
        2,
        "one fetch again, not five"
    );
    server.clock.advance(REFETCH_INTERVAL_SECONDS);
    verifiers.verify(&forged(9)).await.unwrap_err();
    assert_eq!(served.load(Ordering::SeqCst), 3, "again after a minute");
    server.stop().await;
}
