//! The sign-in, patient picker and consent pages in a real browser: Debian's chromium driven by
//! `playwright-core` (tests/browser/signin.mjs) by label text and button names, with the
//! accessibility basics checked on every page; the code it brings back is redeemed with the
//! `oauth2` client. Skips LOUDLY when chromium, node or `npm ci --prefix tests/browser` is
//! missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "common/auth.rs"]
mod auth_common;

use auth_common::*;
use coplan::auth::clients::Client;
use oauth2::{CsrfToken, PkceCodeChallenge, Scope, TokenResponse};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn skip(reason: &str) {
    eprintln!("\n*** SKIPPING the browser test: {reason} ***\n");
}

#[tokio::test]
async fn a_practitioner_signs_in_picks_a_patient_and_consents_in_chromium() {
    let chromium = std::env::var("COPLAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new(&chromium).exists() {
        return skip(&format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return skip("playwright-core is not installed (npm ci --prefix tests/browser)");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return skip("node is missing");
    }

    let server = Server::start(coplan::testing::Backend::Sqlite).await;
    for (id, given) in [("p1", "Ann"), ("p2", "Ben")] {
        server
            .seed(json!({"resourceType": "Patient", "id": id, "name": [{"given": [given], "family": "Doe"}]}))
            .await;
        server
            .seed(
                json!({"resourceType": "CareTeam", "id": format!("ct-{id}"), "status": "active",
                         "subject": {"reference": format!("Patient/{id}")},
                         "participant": [{"member": {"reference": "Practitioner/doc1"}}]}),
            )
            .await;
    }
    let callback = server.url("/auth/demo-callback");
    server
        .register(Client {
            redirect_uris: vec![callback.clone()],
            ..public_app(
                "browser-app",
                &["launch/patient", "patient/*.rs", "openid", "fhirUser"],
            )
        })
        .await;
    server
        .add_user("dr", "pw <doctor> & \"quotes\"", Some("Practitioner/doc1"))
        .await;

    let client = smart_client(&server, "browser-app", None)
        .set_redirect_uri(oauth2::RedirectUrl::new(callback).expect("url"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(
            ["launch/patient", "patient/*.rs", "openid", "fhirUser"].map(|s| Scope::new(s.into())),
        )
        .add_extra_param("aud", server.fhir.clone())
        .set_pkce_challenge(challenge)
        .url();

    let script = dir.join("signin.mjs");
    let url = url.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("AUTHORIZE_URL", url)
            .env("USERNAME", "dr")
            .env("PASSWORD", "pw <doctor> & \"quotes\"")
            .env("PATIENT_LABEL", "Ben Doe (Patient/p2)")
            .env("UNTICK", "fhirUser")
            .env("COPLAN_CHROMIUM", chromium)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    assert!(
        output.status.success(),
        "browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let params: Value = serde_json::from_slice(&output.stdout).expect("callback parameters");
    assert_eq!(params["state"], state.secret().as_str());
    let code = params["code"].as_str().expect("code").to_string();
    let token = redeem(&client, code, verifier).await;
    assert_eq!(token.extra_fields().patient.as_deref(), Some("p2"));
    let scope: Vec<String> = token
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        scope,
        ["launch/patient", "patient/*.rs", "openid"],
        "fhirUser was unticked"
    );
    server.stop().await;
}
