//! `coplan demo`: a ready-to-try SMART setup. Seeds a demo patient with a care plan and a goal,
//! a practitioner on the patient's care team and a related person, user accounts for all three,
//! and registered demo apps (a public portal app and an EHR system client), then describes how
//! to complete a standalone launch in a browser and an EHR launch with curl.

use crate::app::AppState;
use crate::auth::clients::{Client, ClientKind};
use crate::auth::scopes::EHR_LAUNCH_SCOPE;
use crate::auth::secrets::{hash_secret, pkce_s256};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The demo's FHIR resources.
fn resources() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "demo-patient", "active": true,
               "name": [{"given": ["Alex"], "family": "Morgan"}], "gender": "other",
               "birthDate": "1970-04-01"}),
        json!({"resourceType": "Practitioner", "id": "demo-practitioner", "active": true,
               "name": [{"prefix": ["Dr"], "given": ["Sam"], "family": "Lee"}]}),
        json!({"resourceType": "RelatedPerson", "id": "demo-related", "active": true,
               "patient": {"reference": "Patient/demo-patient"},
               "name": [{"given": ["Jordan"], "family": "Morgan"}]}),
        json!({"resourceType": "CareTeam", "id": "demo-careteam", "status": "active",
               "name": "Alex's care team",
               "subject": {"reference": "Patient/demo-patient"},
               "participant": [
                   {"member": {"reference": "Practitioner/demo-practitioner"}},
                   {"member": {"reference": "RelatedPerson/demo-related"}},
                   {"member": {"reference": "Patient/demo-patient"}}]}),
        json!({"resourceType": "Goal", "id": "demo-goal", "lifecycleStatus": "active",
               "description": {"text": "Walk to the park and back without stopping"},
               "subject": {"reference": "Patient/demo-patient"},
               "expressedBy": {"reference": "Patient/demo-patient"}}),
        json!({"resourceType": "CarePlan", "id": "demo-careplan", "status": "active",
               "intent": "plan", "title": "Alex's shared care plan",
               "subject": {"reference": "Patient/demo-patient"},
               "careTeam": [{"reference": "CareTeam/demo-careteam"}],
               "goal": [{"reference": "Goal/demo-goal"}],
               "activity": [{"detail": {"status": "in-progress",
                   "description": "Short daily walks, a little longer each week"}}]}),
    ]
}

/// Seed everything and return the text to print (credentials appear only here).
pub async fn run(state: &AppState) -> Result<String, String> {
    let auth = state
        .auth
        .clone()
        .ok_or("the authorization server is not running")?;
    // Write the resources through the API without access control, in-process.
    let open = state.clone().without_verifier();
    for resource in resources() {
        let path = format!(
            "/fhir/{}/{}",
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        let request = axum::http::Request::put(&path)
            .header("content-type", "application/fhir+json")
            .body(axum::body::Body::from(resource.to_string()))
            .map_err(|e| e.to_string())?;
        let response = crate::app::router(open.clone())
            .oneshot(request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("seeding {path} failed: {}", response.status()));
        }
    }
    let password = || auth.new_secret()[..12].to_string();
    let users = [
        ("alex", "Patient/demo-patient", password()),
        ("drlee", "Practitioner/demo-practitioner", password()),
        ("jordan", "RelatedPerson/demo-related", password()),
    ];
    for (username, fhir_user, pw) in &users {
        auth.add_user(username, pw, Some(fhir_user))
            .await
            .map_err(|e| e.to_string())?;
    }
    let s = &auth.settings;
    let callback = format!("{}/auth/demo-callback", s.origin);
    let app_scopes = [
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "offline_access",
        "online_access",
        "patient/*.cruds",
        "user/*.cruds",
    ];
    let portal = Client {
        client_id: "demo-portal".into(),
        name: "Coplan demo portal".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        jwks: None,
        jwks_uri: None,
        redirect_uris: vec![callback.clone()],
        scopes: app_scopes.iter().map(|s| s.to_string()).collect(),
        introspect_any: false,
    };
    auth.register_client(&portal)
        .await
        .map_err(|e| e.to_string())?;
    let ehr_secret = auth.new_secret();
    let ehr = Client {
        client_id: "demo-ehr".into(),
        name: "Coplan demo EHR".into(),
        kind: ClientKind::ConfidentialSymmetric,
        secret_hash: Some(hash_secret(&ehr_secret)),
        redirect_uris: Vec::new(),
        scopes: vec![EHR_LAUNCH_SCOPE.into(), "system/*.rs".into()],
        ..portal.clone()
    };
    auth.register_client(&ehr)
        .await
        .map_err(|e| e.to_string())?;
    for app in [&portal, &ehr] {
        state
            .fhir
            .register_app_device(&app.client_id, &app.name)
            .await
            .map_err(|e| e.to_string())?;
    }

    let verifier = auth.new_secret();
    let challenge = pkce_s256(&verifier);
    let url = |scope: &str| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", "demo-portal")
            .append_pair("redirect_uri", &callback)
            .append_pair("scope", scope)
            .append_pair("state", "demo")
            .append_pair("aud", &s.fhir_base_url)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", s.authorize_url)
    };
    let mut out = String::new();
    out.push_str("Coplan demo is ready.\n\nUsers (passwords are shown only now):\n");
    for (username, fhir_user, pw) in &users {
        out.push_str(&format!("  {username:<8} {pw}   ({fhir_user})\n"));
    }
    out.push_str(&format!(
        "\nApps:\n  demo-portal  public app, redirect URI {callback}\n  \
         demo-ehr     EHR system client, secret {ehr_secret}\n\n\
         1. Start the server (`coplan serve`), open this URL and sign in as alex:\n\n  {}\n\n\
         2. The callback page shows the code; exchange it within 60 seconds:\n\n  \
         curl -s {token} -d grant_type=authorization_code -d client_id=demo-portal \\\n    \
         -d redirect_uri={callback} -d code_verifier={verifier} -d code=CODE\n\n\
         3. Call the API: curl -H \"Authorization: Bearer ACCESS_TOKEN\" {base}/CarePlan\n\n\
         4. See the apps alex allowed, and take access back: {apps}\n\n\
         EHR launch: register a context, then open the app's authorize URL with launch=LAUNCH \
         and scope launch:\n\n  \
         curl -s -u demo-ehr:{ehr_secret} -H 'content-type: application/json' \\\n    \
         -d '{{\"patient\":\"demo-patient\",\"need_patient_banner\":true}}' {launch}\n",
        url("openid fhirUser launch/patient patient/*.cruds offline_access"),
        token = s.token_url,
        base = s.fhir_base_url,
        launch = s.launch_url,
        apps = s.apps_url,
    ));
    Ok(out)
}
