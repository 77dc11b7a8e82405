//! Target `bearer_token`: the `Authorization` header of a FHIR API request (RFC 6750;
//! `http::bearer_token`) and the verification of the JWT it carries (`AuthServer` as the API's
//! `BearerVerifier`: RS256 signature by a published key, issuer, audience, expiry by the
//! injected clock, revocation), against SQLite with a fixed test key and a fixed clock.
//!
//! Input: the header value. To let the fuzzer splice genuine tokens, the placeholders
//! `{valid}`, `{expired}`, `{other-audience}`, `{other-issuer}` and `{revoked}` are replaced
//! by tokens this server signed with those defects (the committed corpus also holds such tokens
//! literally, so their bytes are mutated too).
//!
//! Invariant: never accept a forged token. A token is accepted only if what it signs (header
//! and claims, everything before the last `.`) is exactly that of the one valid token signed
//! here — whatever the fuzzer does, not one that is expired, revoked, for another audience or
//! issuer, unsigned, HMAC-signed with the public key, or altered in any byte it signs — and the
//! grant is that token's.

use super::BASE;
use coplan::auth::keys::add_key;
use coplan::auth::secrets::RandomSecrets;
use coplan::auth::tokens::AccessClaims;
use coplan::auth::{AuthServer, AuthSettings};
use coplan::clock::Clock;
use coplan::config::ConfigLayer;
use coplan::http::bearer_token;
use coplan::policy::{BearerVerifier, Grant};
use coplan::store::{SqliteStore, Store};
use std::sync::Arc;

/// "Now" for the whole target: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

/// The fixed RS256 signing key (PKCS#1 DER, base64): a test key, generated for the fuzz target
/// only, never used anywhere else.
const TEST_KEY: &str = include_str!("bearer_token_key.b64");

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(NOW).expect("a valid instant")
    }
}

/// The verifier, the one valid token and the genuine tokens it must refuse.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    auth: Arc<AuthServer>,
    valid_signing_input: String,
    valid_grant: Grant,
    placeholders: Vec<(&'static [u8], String)>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = super::scratch_directory();
        let path = dir.path().join("auth.db");
        let (auth, tokens) = runtime.block_on(async move {
            let store = SqliteStore::open(&path).await.expect("open SQLite");
            store.migrate().await.expect("migrate");
            let der = coplan::auth::secrets::b64_decode(TEST_KEY.trim()).expect("the test key");
            add_key(store.auth().as_ref(), &der, NOW - 60)
                .await
                .expect("install the test key");
            let config = ConfigLayer::default()
                .set("base_url", BASE)
                .resolve()
                .expect("config");
            let auth = AuthServer::open(
                AuthSettings::from_config(&config),
                store.auth(),
                Arc::new(FixedClock),
                Arc::new(RandomSecrets),
            )
            .await
            .expect("authorization server");
            let claims = |jti: &str, exp: i64| AccessClaims {
                iss: BASE.into(),
                sub: "amy".into(),
                aud: BASE.into(),
                exp,
                iat: NOW - 10,
                jti: jti.into(),
                client_id: "fuzz-app".into(),
                scope: "launch/patient patient/*.rs".into(),
                patient: Some("p1".into()),
                fhir_user: Some(format!("{BASE}/Patient/p1")),
                grant: Some(format!("grant-{jti}")),
            };
            let valid = claims("valid", NOW + 3600);
            let other_audience = AccessClaims {
                aud: "https://elsewhere.example/fhir".into(),
                ..claims("aud", NOW + 3600)
            };
            let other_issuer = AccessClaims {
                iss: "https://elsewhere.example/fhir".into(),
                ..claims("iss", NOW + 3600)
            };
            store
                .auth()
                .revoke("revoked", NOW + 3600)
                .await
                .expect("revoke");
            let sign = |c: &AccessClaims| auth.keys.sign(c, NOW).expect("sign");
            let tokens = vec![
                (b"{valid}".as_slice(), sign(&valid)),
                (b"{expired}".as_slice(), sign(&claims("expired", NOW))),
                (b"{other-audience}".as_slice(), sign(&other_audience)),
                (b"{other-issuer}".as_slice(), sign(&other_issuer)),
                (
                    b"{revoked}".as_slice(),
                    sign(&claims("revoked", NOW + 3600)),
                ),
            ];
            (Arc::new(auth), tokens)
        });
        let valid = &tokens[0].1;
        let valid_signing_input = valid
            .rsplit_once('.')
            .map(|(signed, _)| signed.to_string())
            .expect("a JWT");
        let valid_grant = runtime
            .block_on(auth.verify(valid))
            .expect("the valid token verifies");
        for (name, token) in &tokens[1..] {
            let refused = runtime.block_on(auth.verify(token));
            assert!(
                refused.is_err(),
                "the {} token was accepted",
                String::from_utf8_lossy(name)
            );
        }
        Harness {
            runtime,
            dir,
            auth,
            valid_signing_input,
            valid_grant,
            placeholders: tokens,
        }
    }

    /// Where the database lives (removed when the harness is dropped).
    pub fn directory(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn check(&self, data: &[u8]) {
        let header = self.expand(data);
        let Ok(header) = axum::http::HeaderValue::from_bytes(&header) else {
            return;
        };
        let token = match bearer_token(Some(&header)) {
            Ok(Some(token)) => token,
            Ok(None) => panic!("a header without a token"),
            Err(_) => return,
        };
        assert_eq!(token.trim(), token, "the token keeps surrounding blanks");
        let Ok(grant) = self.runtime.block_on(self.auth.verify(&token)) else {
            return;
        };
        let signed = token.rsplit_once('.').map(|(signed, _)| signed);
        assert_eq!(
            signed,
            Some(self.valid_signing_input.as_str()),
            "accepted a token this server did not issue as valid: {token}"
        );
        assert_eq!(grant, self.valid_grant);
    }

    fn expand(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        for (name, token) in &self.placeholders {
            out = replace(&out, name, token.as_bytes());
        }
        out
    }
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
