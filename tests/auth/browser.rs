//! The sign-in, patient picker, consent and "apps you have allowed" pages in a real browser:
//! Debian's chromium driven by `playwright-core` by label text and button names, with
//! accessibility checked on every page (the basics and axe-core: no serious or critical
//! violation). `signin.mjs` walks a practitioner's launch and the `oauth2` crate redeems the
//! code; `smartjs.mjs` runs a real SMART app on the SMART JS client (`fhirclient` on npm)
//! through an EHR launch, a relaunch from the page its redirect left it at (RFC 9207 `iss` on the
//! URL), and taking its access back. Skips LOUDLY when chromium, node or
//! `npm ci --prefix tests/browser` is missing.

use crate::common::auth::*;
use coplan::auth::clients::Client;
use oauth2::{CsrfToken, PkceCodeChallenge, Scope, TokenResponse};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(reason: &str) {
    eprintln!("\n*** SKIPPING the browser test: {reason} ***\n");
}

/// Chromium and the browser test's npm packages, or why the test must skip.
fn browser_tools() -> Result<(String, PathBuf), String> {
    let chromium = std::env::var("COPLAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing (apt-get install chromium)"));
    }
    for package in ["playwright-core", "axe-core", "fhirclient"] {
        if !dir.join("node_modules").join(package).exists() {
            return Err(format!(
                "{package} is not installed (npm ci --prefix tests/browser)"
            ));
        }
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is missing".into());
    }
    Ok((chromium, dir))
}

/// Run one of the browser scripts with `env`; its stdout as JSON.
async fn run_script(script: PathBuf, env: Vec<(&'static str, String)>) -> Value {
    let output =
        tokio::task::spawn_blocking(move || Command::new("node").arg(script).envs(env).output())
            .await
            .expect("join")
            .expect("run node");
    assert!(
        output.status.success(),
        "browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the script's JSON")
}

#[tokio::test]
async fn a_practitioner_signs_in_picks_a_patient_and_consents_in_chromium() {
    let (chromium, dir) = match browser_tools() {
        Ok(tools) => tools,
        Err(reason) => return skip(&reason),
    };

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

    let params = run_script(
        dir.join("signin.mjs"),
        vec![
            ("AUTHORIZE_URL", url.to_string()),
            ("USERNAME", "dr".into()),
            ("PASSWORD", "pw <doctor> & \"quotes\"".into()),
            ("PATIENT_LABEL", "Ben Doe".into()),
            ("UNTICK", "fhirUser".into()),
            ("COPLAN_CHROMIUM", chromium),
        ],
    )
    .await;
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

/// The test app's pages (tests/browser/app) and the SMART JS client's browser build, served
/// from their own origin on 127.0.0.1, as an app's web server would.
async fn serve_app(dir: PathBuf) -> String {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let dir = dir.clone();
        async move {
            let (file, content_type) = match uri.path() {
                "/index.html" => (dir.join("app/index.html"), "text/html; charset=utf-8"),
                "/fhir-client.js" => (
                    dir.join("node_modules/fhirclient/build/fhir-client.js"),
                    "text/javascript",
                ),
                _ => return StatusCode::NOT_FOUND.into_response(),
            };
            match tokio::fs::read(file).await {
                Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test]
async fn the_smart_js_client_launches_relaunches_from_its_redirect_page_and_loses_access_when_taken_back(
) {
    let (chromium, dir) = match browser_tools() {
        Ok(tools) => tools,
        Err(reason) => return skip(&reason),
    };
    let app_origin = serve_app(dir.clone()).await;
    let server = Server::start_with(
        coplan::testing::Backend::Sqlite,
        coplan::config::ConfigLayer::default().set("allowed_origins", [&app_origin]),
    )
    .await;
    server
        .seed(json!({"resourceType": "Patient", "id": "pat1",
                     "name": [{"given": ["Alex"], "family": "Smith"}]}))
        .await;
    server
        .register(Client {
            name: "JS test app".into(),
            redirect_uris: vec![format!("{app_origin}/index.html")],
            ..public_app(
                "js-app",
                &[
                    "launch",
                    "launch/patient",
                    "patient/*.rs",
                    "openid",
                    "fhirUser",
                ],
            )
        })
        .await;
    server
        .add_user("alex", "pw-alex", Some("Patient/pat1"))
        .await;
    let launch = server
        .auth
        .register_launch(&coplan::auth::launch::LaunchContext {
            patient: Some("pat1".into()),
            ..Default::default()
        })
        .await
        .expect("launch");
    let launch_url = format!(
        "{app_origin}/index.html?{}",
        form(&[("iss", server.fhir.as_str()), ("launch", launch.as_str())])
    );
    let seen = run_script(
        dir.join("smartjs.mjs"),
        vec![
            ("LAUNCH_URL", launch_url),
            ("USERNAME", "alex".into()),
            ("PASSWORD", "pw-alex".into()),
            ("APPS_URL", server.url("/auth/apps")),
            ("APP_NAME", "JS test app".into()),
            ("COPLAN_CHROMIUM", chromium),
        ],
    )
    .await;

    // The EHR launch worked.
    assert_eq!(seen["launch"]["status"], "ready", "{seen}");
    let out: Value =
        serde_json::from_str(seen["launch"]["out"].as_str().unwrap_or("")).expect("app output");
    assert_eq!(out["patient"], "pat1");
    assert_eq!(out["serverUrl"], server.fhir.as_str());

    // Opened afresh at the address the redirect left it at (a bookmark, a new tab), the client
    // takes that `iss` for a launch's `iss`: since it names the FHIR server, that is a working
    // standalone launch. (With the bare origin as issuer, the client looked for discovery there
    // and failed before any sign-in page.)
    assert_eq!(seen["relaunch"]["status"], "ready", "{seen}");
    assert!(
        seen["relaunch"]["out"]
            .as_str()
            .unwrap_or("")
            .contains("\"patient\":\"pat1\""),
        "{seen}"
    );
    // The client left only the redirect's `iss` on the URL: the issuer, which is the FHIR base,
    // as discovery says.
    let left = seen["launch"]["url"].as_str().expect("url");
    let query: Vec<(String, String)> =
        form_urlencoded::parse(left.split_once('?').map_or("", |(_, q)| q).as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    assert_eq!(query, [("iss".to_string(), server.fhir.clone())], "{left}");
    let smart = send(
        "GET",
        &server.url("/fhir/.well-known/smart-configuration"),
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(smart["issuer"], server.fhir.as_str());
    assert_eq!(seen["reload"]["status"], "ready", "{seen}");

    // Taking access back on Coplan's page ends the app's access at once.
    assert_eq!(seen["listed"], true, "{seen}");
    assert!(
        seen["notice"]
            .as_str()
            .unwrap_or("")
            .contains("JS test app can no longer use Coplan on your behalf"),
        "{seen}"
    );
    assert_eq!(seen["afterRevoke"]["status"], "error", "{seen}");
    assert!(
        seen["afterRevoke"]["out"]
            .as_str()
            .unwrap_or("")
            .contains("401"),
        "{seen}"
    );
    server.stop().await;
}
