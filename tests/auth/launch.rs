//! End to end over real HTTP with the `oauth2` crate as the SMART client: standalone patient
//! launch, EHR launch, and the patient picker for practitioners and related persons.

use crate::common::auth::*;
use coplan::policy::Grant;
use oauth2::{CsrfToken, PkceCodeChallenge, Scope, TokenResponse};
use serde_json::json;

fn scopes(list: &[&str]) -> Vec<Scope> {
    list.iter().map(|s| Scope::new(s.to_string())).collect()
}

#[tokio::test]
async fn standalone_patient_launch_issues_tokens_with_the_patients_context() {
    each_backend_server(|server| async move {
        server
            .seed(json!({"resourceType": "Patient", "id": "pat1",
                         "name": [{"given": ["Amy"], "family": "Shaw"}]}))
            .await;
        server
            .register(public_app(
                "portal",
                &[
                    "openid",
                    "fhirUser",
                    "launch/patient",
                    "offline_access",
                    "patient/*.rs",
                ],
            ))
            .await;
        server
            .add_user("amy", "correct horse", Some("Patient/pat1"))
            .await;
        let client = smart_client(&server, "portal", None);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes(&[
                "openid",
                "fhirUser",
                "launch/patient",
                "offline_access",
                "patient/Observation.rs",
            ]))
            .add_extra_param("aud", server.fhir.clone())
            .add_extra_param("nonce", "n-0S6_WzA2Mj")
            .set_pkce_challenge(challenge)
            .url();

        let mut browser = Browser::default();
        let redirect =
            sign_in_and_approve(&server, &mut browser, url.as_str(), "amy", "correct horse").await;
        let location = redirect.header("location").expect("location");
        assert!(
            location.starts_with("http://app.example/portal/callback?"),
            "{location}"
        );
        assert_eq!(
            redirect.location_param("state").as_deref(),
            Some(state.secret().as_str())
        );
        // RFC 9207's iss is the issuer, and the issuer is the FHIR base: the one `iss` a SMART
        // app sees always names this FHIR server.
        assert_eq!(
            redirect.location_param("iss").as_deref(),
            Some(server.fhir.as_str())
        );
        let code = redirect.location_param("code").expect("code");

        let token = redeem(&client, code, verifier).await;
        assert_eq!(token.extra_fields().patient.as_deref(), Some("pat1"));
        let granted: Vec<String> = token
            .scopes()
            .expect("scope")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            granted,
            [
                "openid",
                "fhirUser",
                "launch/patient",
                "offline_access",
                "patient/Observation.rs"
            ]
        );
        assert!(
            token.refresh_token().is_some(),
            "offline_access gives a refresh token"
        );
        assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(3600));

        // The access token is a JWT the server's verifier accepts, with the launch context.
        let access = token.access_token().secret();
        let claims = jwt_claims(access);
        assert_eq!(claims["iss"], server.fhir);
        assert_eq!(claims["aud"], server.fhir);
        assert_eq!(claims["client_id"], "portal");
        assert_eq!(claims["fhirUser"], format!("{}/Patient/pat1", server.fhir));
        let verifier = server.state.verifier.clone().expect("auth is on");
        let grant = verifier.verify(access).await.expect("valid token");
        assert_eq!(
            grant,
            Grant {
                client_id: "portal".into(),
                subject: "amy".into(),
                scope: "openid fhirUser launch/patient offline_access patient/Observation.rs"
                    .into(),
                patient: Some("pat1".into()),
                fhir_user: Some("Patient/pat1".into()),
                expires_at: server.clock.unix() + 3600,
            }
        );

        // The id_token: RS256, aud = client_id, the nonce, fhirUser.
        let id_token = token
            .extra_fields()
            .id_token
            .clone()
            .expect("id_token for openid");
        let header = jsonwebtoken::decode_header(&id_token).expect("JWT");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        // It verifies with the key published at jwks_uri.
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(
            &send("GET", &server.auth.settings.jwks_url, &[], None)
                .await
                .body,
        )
        .expect("JWK Set");
        let jwk = jwks
            .find(header.kid.as_deref().expect("kid"))
            .expect("the signing key is published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["portal"]);
        validation.set_issuer(&[&server.fhir]);
        jsonwebtoken::decode::<serde_json::Value>(
            &id_token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
            &validation,
        )
        .expect("the id_token verifies with the published JWKS");
        let id = jwt_claims(&id_token);
        assert_eq!(id["aud"], "portal");
        assert_eq!(id["sub"], "amy");
        assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(id["fhirUser"], format!("{}/Patient/pat1", server.fhir));
        server
    })
    .await;
}

#[tokio::test]
async fn ehr_launch_carries_the_registered_context_once() {
    each_backend_server(|server| async move {
        server
            .seed(json!({"resourceType": "Patient", "id": "pat7"}))
            .await;
        server
            .seed(json!({"resourceType": "Patient", "id": "pat8"}))
            .await;
        // doc1 is on pat7's care team (not on pat8's).
        server
            .seed(
                json!({"resourceType": "CareTeam", "id": "ct7", "status": "active",
                         "subject": {"reference": "Patient/pat7"},
                         "participant": [{"member": {"reference": "Practitioner/doc1"}}]}),
            )
            .await;
        server
            .register(symmetric_client("ehr", "ehr-secret", &["ehr-launch"]))
            .await;
        server
            .register(public_app(
                "chart",
                &["launch", "openid", "fhirUser", "patient/*.rs", "user/*.rs"],
            ))
            .await;
        server
            .add_user("dr", "pw-doctor", Some("Practitioner/doc1"))
            .await;

        // The EHR registers the context with its client credentials and gets `launch`.
        let basic = format!("Basic {}", base64_encode("ehr:ehr-secret"));
        let registered = send(
            "POST",
            &server.url("/auth/launch"),
            &[
                ("authorization", &basic),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"patient": "pat7", "encounter": "enc1", "need_patient_banner": false,
                       "smart_style_url": "https://ehr.example/style.json",
                       "fhirContext": [{"reference": "CarePlan/cp1"}]})
                .to_string(),
            ),
        )
        .await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        assert_eq!(registered.header("cache-control"), Some("no-store"));
        let launch = registered.json()["launch"]
            .as_str()
            .expect("launch")
            .to_string();

        // Wrong credentials are refused.
        let refused = send(
            "POST",
            &server.url("/auth/launch"),
            &[
                (
                    "authorization",
                    &format!("Basic {}", base64_encode("ehr:nope")),
                ),
                ("content-type", "application/json"),
            ],
            Some(json!({"patient": "pat7"}).to_string()),
        )
        .await;
        assert_eq!(refused.status, 401, "{}", refused.body);

        let client = smart_client(&server, "chart", None);
        let authorize = |launch: &str| {
            authorize_request(
                &client,
                &server,
                &["launch", "openid", "fhirUser", "patient/*.rs"],
                &[("launch", launch)],
            )
        };
        let (url, verifier) = authorize(&launch);
        let mut browser = Browser::default();
        let redirect = sign_in_and_approve(&server, &mut browser, &url, "dr", "pw-doctor").await;
        let code = redirect.location_param("code").expect("code");
        let token = redeem(&client, code, verifier).await;
        let extra = token.extra_fields();
        assert_eq!(extra.patient.as_deref(), Some("pat7"));
        assert_eq!(extra.encounter.as_deref(), Some("enc1"));
        assert_eq!(extra.need_patient_banner, Some(false));
        assert_eq!(
            extra.smart_style_url.as_deref(),
            Some("https://ehr.example/style.json")
        );
        assert_eq!(
            extra.fhir_context,
            Some(json!([{"reference": "CarePlan/cp1"}]))
        );
        assert!(
            token.refresh_token().is_none(),
            "no offline/online access requested"
        );
        let claims = jwt_claims(token.access_token().secret());
        assert_eq!(claims["patient"], "pat7");
        assert_eq!(
            claims["fhirUser"],
            format!("{}/Practitioner/doc1", server.fhir)
        );

        // The launch is single use: a second authorization with it goes back with an error.
        let (again, _) = authorize(&launch);
        let reply = browser.get(&again).await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(
            reply.location_param("error").as_deref(),
            Some("invalid_request")
        );

        // A launch for a patient outside the signed-in clinician's care teams opens nothing:
        // holding a launch value is not enough.
        let foreign = send(
            "POST",
            &server.url("/auth/launch"),
            &[
                ("authorization", &basic),
                ("content-type", "application/json"),
            ],
            Some(json!({"patient": "pat8"}).to_string()),
        )
        .await;
        assert_eq!(foreign.status, 201, "{}", foreign.body);
        let foreign_launch = foreign.json()["launch"]
            .as_str()
            .expect("launch")
            .to_string();
        let (url, _) = authorize(&foreign_launch);
        let mut other_browser = Browser::default();
        let login = other_browser.get(&url).await;
        assert_eq!(login.status, 200, "{}", login.body);
        let refused = other_browser
            .submit(
                &server.origin,
                &login,
                &[("username", "dr"), ("password", "pw-doctor")],
            )
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(
            refused.body.contains("Not your patient"),
            "{}",
            refused.body
        );
        server
    })
    .await;
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn practitioners_pick_among_their_care_teams_patients_and_related_persons_get_theirs() {
    each_backend_server(|server| async move {
        for (id, given) in [("p1", "Ann"), ("p2", "Ben"), ("p3", "Cat")] {
            server
                .seed(json!({"resourceType": "Patient", "id": id, "name": [{"given": [given], "family": "Doe"}]}))
                .await;
        }
        for (id, patient) in [("ct1", "p1"), ("ct2", "p2")] {
            server
                .seed(json!({"resourceType": "CareTeam", "id": id, "status": "active",
                             "subject": {"reference": format!("Patient/{patient}")},
                             "participant": [{"member": {"reference": "Practitioner/doc1"}}]}))
                .await;
        }
        server
            .seed(json!({"resourceType": "RelatedPerson", "id": "rp1",
                         "patient": {"reference": "Patient/p3"}}))
            .await;
        server
            .register(public_app("picker", &["launch/patient", "patient/*.rs"]))
            .await;
        server.add_user("dr", "pw-doctor", Some("Practitioner/doc1")).await;
        server.add_user("aunt", "pw-aunt", Some("RelatedPerson/rp1")).await;
        let client = smart_client(&server, "picker", None);
        let url = || authorize_request(&client, &server, &["launch/patient", "patient/*.rs"], &[]);

        // The practitioner sees exactly the patients of their care teams.
        let (authorize_url, verifier) = url();
        let mut browser = Browser::default();
        let picker = browser
            .sign_in(&server.origin, &authorize_url, "dr", "pw-doctor")
            .await;
        assert_eq!(picker.status, 200, "{}", picker.body);
        assert!(picker.body.contains("Choose a patient"), "{}", picker.body);
        assert_eq!(radio_values(&picker.body, "patient"), ["p1", "p2"]);
        // Patients are shown by name, not by their technical id.
        assert!(picker.body.contains(">Ben Doe</label>"), "{}", picker.body);
        assert!(!picker.body.contains("Patient/p2"), "{}", picker.body);

        // A patient outside the list is not accepted: the picker comes back.
        let tampered = browser
            .submit(&server.origin, &picker, &[("patient", "p3")])
            .await;
        assert!(tampered.body.contains("Choose a patient"), "{}", tampered.body);

        let consent = browser
            .submit(&server.origin, &picker, &[("patient", "p2")])
            .await;
        assert!(
            consent.body.contains("Record: <strong>Ben Doe</strong>")
                && consent.body.contains("Know that it is working with Ben Doe&#39;s record"),
            "{}",
            consent.body
        );
        assert!(!consent.body.contains("Patient/p2"), "{}", consent.body);
        let redirect = browser
            .submit(&server.origin, &consent, &[("action", "approve")])
            .await;
        let code = redirect.location_param("code").expect("code");
        let token = redeem(&client, code, verifier).await;
        assert_eq!(token.extra_fields().patient.as_deref(), Some("p2"));

        // The related person goes straight to consent for the one patient they are linked to.
        let (authorize_url, verifier) = url();
        let mut browser = Browser::default();
        let redirect =
            sign_in_and_approve(&server, &mut browser, &authorize_url, "aunt", "pw-aunt").await;
        let code = redirect.location_param("code").expect("code");
        let token = redeem(&client, code, verifier).await;
        assert_eq!(token.extra_fields().patient.as_deref(), Some("p3"));
        server
    })
    .await;
}

#[tokio::test]
async fn tokens_from_a_launch_open_the_fhir_api_for_that_patient_only() {
    each_backend_server(|server| async move {
        for id in ["pat1", "pat2"] {
            server
                .seed(json!({"resourceType": "Patient", "id": id}))
                .await;
        }
        server
            .register(public_app("portal", &["launch/patient", "patient/*.rs"]))
            .await;
        server.add_user("amy", "pw-amy", Some("Patient/pat1")).await;
        let client = smart_client(&server, "portal", None);
        let (url, verifier) =
            authorize_request(&client, &server, &["launch/patient", "patient/*.rs"], &[]);
        let mut browser = Browser::default();
        let redirect = sign_in_and_approve(&server, &mut browser, &url, "amy", "pw-amy").await;
        let token = redeem(
            &client,
            redirect.location_param("code").expect("code"),
            verifier,
        )
        .await;
        let bearer = format!("Bearer {}", token.access_token().secret());
        let read = |id: &str, auth: Option<&str>| {
            let url = format!("{}/Patient/{id}", server.fhir);
            let auth = auth.map(str::to_string);
            async move {
                let mut headers = vec![("accept", "application/fhir+json")];
                if let Some(a) = &auth {
                    headers.push(("authorization", a.as_str()));
                }
                send("GET", &url, &headers, None).await
            }
        };
        assert_eq!(read("pat1", Some(&bearer)).await.status, 200);
        assert_eq!(read("pat2", Some(&bearer)).await.status, 404);
        let anonymous = read("pat1", None).await;
        assert_eq!(anonymous.status, 401);
        assert!(anonymous
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")));
        assert_eq!(
            read("pat1", Some("Bearer forged.token.x")).await.status,
            401
        );
        server
    })
    .await;
}

#[tokio::test]
async fn organisation_wide_clinicians_may_pick_any_existing_patient() {
    for backend in coplan::testing::backends() {
        let server = Server::start_with(
            backend,
            coplan::config::ConfigLayer::default().set("practitioners_see_all_patients", true),
        )
        .await;
        for id in ["a1", "b2"] {
            server
                .seed(json!({"resourceType": "Patient", "id": id}))
                .await;
        }
        server
            .register(public_app("picker", &["launch/patient", "patient/*.rs"]))
            .await;
        server
            .add_user("dr", "pw-doctor", Some("Practitioner/no-teams"))
            .await;
        let client = smart_client(&server, "picker", None);
        let (url, _verifier) =
            authorize_request(&client, &server, &["launch/patient", "patient/*.rs"], &[]);
        let mut browser = Browser::default();
        let picker = browser
            .sign_in(&server.origin, &url, "dr", "pw-doctor")
            .await;
        assert_eq!(
            radio_values(&picker.body, "patient"),
            ["a1", "b2"],
            "{}",
            picker.body
        );
        let missing = browser
            .submit(&server.origin, &picker, &[("patient", "nobody")])
            .await;
        assert!(
            missing.body.contains("Choose a patient"),
            "a patient that does not exist"
        );
        let consent = browser
            .submit(&server.origin, &picker, &[("patient", "b2")])
            .await;
        assert!(
            form_fields(&consent.body).contains(&("patient".to_string(), "b2".to_string())),
            "{}",
            consent.body
        );
        server.stop().await;
    }
}

/// The text a reader sees without opening the page's `<details>` element: no tags, no
/// attribute values, no style sheet.
fn visible(html: &str) -> String {
    let html = match (html.split_once("<details>"), html.split_once("</details>")) {
        (Some((before, _)), Some((_, after))) => format!("{before}{after}"),
        _ => html.to_string(),
    };
    let html = match (html.split_once("<style>"), html.split_once("</style>")) {
        (Some((before, _)), Some((_, after))) => format!("{before}{after}"),
        _ => html,
    };
    let mut text = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    text.replace("&#39;", "'").replace("&amp;", "&")
}

#[tokio::test]
async fn sign_in_and_consent_speak_plainly_to_a_patient() {
    let server = Server::start_with(
        coplan::testing::Backend::Sqlite,
        coplan::config::ConfigLayer::default()
            .set("offline_access_days", 30)
            .set("operator", "Example Health Trust"),
    )
    .await;
    server
        .seed(
            json!({"resourceType": "Patient", "id": "pat1", "birthDate": "1970-03-02",
                     "name": [{"given": ["Amy"], "family": "Shaw"}]}),
        )
        .await;
    let app = [
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/*.rs",
    ];
    server
        .register(coplan::auth::clients::Client {
            name: "Care diary".into(),
            ..public_app("portal", &app)
        })
        .await;
    server.add_user("amy", "pw-amy", Some("Patient/pat1")).await;
    let client = smart_client(&server, "portal", None);

    // The sign-in page says who runs the service and offers a way back to the app.
    let (url, _) = authorize_request(&client, &server, &app, &[]);
    let mut browser = Browser::default();
    let login = browser.get(&url).await;
    for text in [
        "run by Example Health Trust",
        "Cancel and go back to Care diary",
        "never to Care diary",
    ] {
        assert!(login.body.contains(text), "{text}: {}", login.body);
    }
    let cancelled = browser
        .submit(&server.origin, &login, &[("action", "cancel")])
        .await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(
        cancelled.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(cancelled.location_param("iss"), Some(server.fhir.clone()));
    assert!(cancelled.location_param("state").is_some());
    assert!(cancelled.location_param("code").is_none());

    // The consent page: the patient's own record, in plain words, with the configured
    // duration and where to take access back; technical names only in the details.
    let (url, verifier) = authorize_request(&client, &server, &app, &[]);
    let consent = browser.sign_in(&server.origin, &url, "amy", "pw-amy").await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let shown = visible(&consent.body);
    for text in [
        "Your own record (Amy Shaw)",
        "Know that it is working with your record",
        "See everything in your record: care plans, goals",
        "Keep access for up to 30 days",
        "take access back at any time",
        "Apps you have allowed",
        "The app needs this to work",
        "Tell the app who you are in the care records",
        "Confirm to the app that it is you who signed in",
    ] {
        assert!(shown.contains(text), "{text}: {shown}");
    }
    for technical in [
        "patient/*.rs",
        "Patient/pat1",
        "fhirUser",
        "openid",
        "selected patient",
        "all kinds of data",
        "Create, read, update, delete",
        "90 days",
    ] {
        assert!(!shown.contains(technical), "{technical}: {shown}");
    }
    assert!(consent.body.contains("<code>patient/*.rs</code>"));
    assert!(consent
        .body
        .contains(&format!("href=\"{}/auth/apps\"", server.origin)));

    // Unticking the only data permission is possible, after a warning.
    let mut fields = form_fields(&consent.body);
    fields.retain(|(k, v)| !(k == "grant" && v == "patient/*.rs"));
    fields.push(("action".into(), "approve".into()));
    let warned = browser.post(&server.url("/auth/authorize"), &fields).await;
    assert_eq!(warned.status, 200, "{}", warned.body);
    assert!(
        warned.body.contains("role=\"alert\"")
            && warned
                .body
                .contains("You unticked every permission to see or change the record")
            && warned.body.contains("Allow anyway"),
        "{}",
        warned.body
    );
    assert!(
        !form_fields(&warned.body).contains(&("grant".to_string(), "patient/*.rs".to_string())),
        "the box stays unticked"
    );
    let redirect = browser
        .submit(&server.origin, &warned, &[("action", "approve")])
        .await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let token = redeem(
        &client,
        redirect.location_param("code").expect("code"),
        verifier,
    )
    .await;
    let scope: Vec<String> = token
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        scope,
        ["openid", "fhirUser", "launch/patient", "offline_access"]
    );
    server.stop().await;
}
