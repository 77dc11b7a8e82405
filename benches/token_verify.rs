//! What bearer-token verification costs on the FHIR read path: a token's first verification
//! (RS256 signature, claims, one revocation lookup) against later ones served from the cache of
//! verified tokens (a SHA-256 and a map lookup). Prints figures; never gates a test.
//!
//! `cargo bench --bench token_verify` (SQLite in a temporary directory; release build).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: a panic is a failed run

use coplan::auth::secrets::RandomSecrets;
use coplan::auth::{AuthServer, AuthSettings};
use coplan::clock::SystemClock;
use coplan::config::ConfigLayer;
use coplan::policy::BearerVerifier;
use coplan::store::{SqliteStore, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("bench.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let config = ConfigLayer::default().resolve().expect("config");
    let auth = Arc::new(
        AuthServer::open(
            AuthSettings::from_config(&config),
            store.auth(),
            Arc::new(SystemClock),
            Arc::new(RandomSecrets),
        )
        .await
        .expect("authorization server"),
    );
    let now = auth.now();
    let token =
        |i: usize| {
            auth.keys
            .sign(&json!({
                "iss": auth.settings.issuer, "aud": auth.settings.fhir_base_url, "sub": "amy",
                "exp": now + 3600, "iat": now, "jti": format!("j{i}"), "client_id": "bench",
                "scope": "patient/*.rs", "patient": "p1", "grant": "g1",
            }), now)
            .expect("sign")
        };
    let n = 2000;
    let tokens: Vec<String> = (0..n).map(token).collect();

    let started = Instant::now();
    for t in &tokens {
        auth.verify(t).await.expect("valid");
    }
    let cold = started.elapsed().as_secs_f64() * 1e6 / n as f64;

    let started = Instant::now();
    let rounds = 50_000;
    for i in 0..rounds {
        auth.verify(&tokens[i % n]).await.expect("valid");
    }
    let warm = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!("first verification (RS256 + revocation lookup): {cold:8.1} µs/token");
    println!("cached verification (SHA-256 + map lookup):      {warm:8.2} µs/token");
}
