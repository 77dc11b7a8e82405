//! Discovery (SMART App Launch 2.2 "Conformance"): the smart-configuration contract snapshot,
//! served as JSON whatever the Accept and open to any origin; the OpenID configuration and JWKS
//! agree with it; the CapabilityStatement's `rest.security` names the same endpoints.

use crate::common::auth::*;
use coplan::auth::discovery;
use coplan::auth::AuthSettings;
use coplan::config::ConfigLayer;

const SNAPSHOT: &str = "conformance/smart-configuration.json";

#[test]
fn smart_configuration_matches_its_snapshot() {
    let config = ConfigLayer::default()
        .set("base_url", "http://coplan.test/fhir")
        .resolve()
        .expect("config");
    let document = discovery::smart_configuration(&AuthSettings::from_config(&config));
    let pretty = serde_json::to_string_pretty(&document).expect("JSON") + "\n";
    let path = format!("{}/{SNAPSHOT}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &pretty).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == pretty,
        "{SNAPSHOT} is out of date: run `UPDATE_SNAPSHOTS=1 cargo test --test auth discovery::` and commit it"
    );
    for capability in [
        "launch-ehr",
        "launch-standalone",
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-v2",
        "sso-openid-connect",
        "authorize-post",
    ] {
        assert!(
            document["capabilities"]
                .as_array()
                .expect("list")
                .iter()
                .any(|c| c == capability),
            "{capability}"
        );
    }
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}

#[tokio::test]
async fn discovery_is_served_as_json_to_anyone_and_agrees_everywhere() {
    let server = Server::start(coplan::testing::Backend::Sqlite).await;
    let smart = send(
        "GET",
        &server.url("/fhir/.well-known/smart-configuration"),
        &[
            ("accept", "text/html"),
            ("origin", "http://anywhere.example"),
        ],
        None,
    )
    .await;
    assert_eq!(smart.status, 200);
    assert_eq!(smart.header("content-type"), Some("application/json"));
    assert!(
        matches!(
            smart.header("access-control-allow-origin"),
            Some("*" | "http://anywhere.example")
        ),
        "discovery is open to any origin: {:?}",
        smart.headers
    );
    let smart = smart.json();
    assert_eq!(smart, discovery::smart_configuration(&server.auth.settings));
    // The issuer is the FHIR base, so RFC 9207's `iss` on the redirect names the FHIR server
    // just as SMART's launch `iss` does.
    assert_eq!(smart["issuer"], server.fhir);
    assert_eq!(
        smart["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        smart["token_endpoint"],
        format!("{}/auth/token", server.origin)
    );

    // OpenID Connect Discovery §4: at the issuer + /.well-known/openid-configuration (and, for
    // clients configured with the server's root, there too).
    for path in [
        "/fhir/.well-known/openid-configuration",
        "/.well-known/openid-configuration",
    ] {
        let oidc = send("GET", &server.url(path), &[], None).await;
        assert_eq!(oidc.status, 200, "{path}");
        let oidc = oidc.json();
        for key in [
            "issuer",
            "jwks_uri",
            "authorization_endpoint",
            "token_endpoint",
        ] {
            assert_eq!(oidc[key], smart[key], "{path} {key}");
        }
        assert_eq!(
            format!(
                "{}/.well-known/openid-configuration",
                smart["issuer"].as_str().unwrap_or("")
            ),
            server.url("/fhir/.well-known/openid-configuration")
        );
    }

    let jwks = send(
        "GET",
        smart["jwks_uri"].as_str().expect("jwks_uri"),
        &[],
        None,
    )
    .await
    .json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(
        key.get("d").is_none() && key.get("p").is_none(),
        "no private parts: {key}"
    );

    let metadata = send(
        "GET",
        &server.url("/fhir/metadata"),
        &[("accept", "application/fhir+json")],
        None,
    )
    .await
    .json();
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = &security["extension"][0];
    assert_eq!(
        uris["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    let uri = |name: &str| {
        uris["extension"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["url"] == name))
            .map(|x| x["valueUri"].clone())
    };
    assert_eq!(uri("token"), Some(smart["token_endpoint"].clone()));
    assert_eq!(
        uri("authorize"),
        Some(smart["authorization_endpoint"].clone())
    );
    server.stop().await;
}
