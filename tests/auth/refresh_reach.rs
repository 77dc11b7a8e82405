//! A refresh asks again whether the user still reaches the grant's patient (RFC 6749 §6
//! `invalid_grant`): a practitioner taken off the care team (or whose team ended), or a related
//! person no longer linked to the patient, gets no new tokens, and the grant is revoked so none
//! of its tokens works again; a patient's own grant and an organisation-wide clinician's grant
//! refresh as before.

use crate::common::auth::*;
use oauth2::{RefreshToken, TokenResponse};
use serde_json::{json, Value};

const SCOPES: [&str; 3] = ["launch/patient", "patient/*.rs", "offline_access"];

/// Sign `user` in through the portal, pick `patient` when the picker asks, approve, redeem.
async fn tokens_for(
    server: &Server,
    user: &str,
    password: &str,
    patient: &str,
) -> SmartTokenResponse {
    let client = smart_client(server, "portal", None);
    let (url, verifier) = authorize_request(&client, server, &SCOPES, &[]);
    let mut browser = Browser::default();
    let mut page = browser.sign_in(&server.origin, &url, user, password).await;
    assert_eq!(page.status, 200, "{}", page.body);
    if page.body.contains("Choose a patient") {
        page = browser
            .submit(&server.origin, &page, &[("patient", patient)])
            .await;
    }
    assert!(page.body.contains("Allow"), "{}", page.body);
    let redirect = browser
        .submit(&server.origin, &page, &[("action", "approve")])
        .await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let tokens = redeem(
        &client,
        redirect.location_param("code").expect("code"),
        verifier,
    )
    .await;
    assert_eq!(tokens.extra_fields().patient.as_deref(), Some(patient));
    tokens
}

/// A refresh as a form post: the reply (status and JSON body).
async fn refresh(server: &Server, token: &RefreshToken) -> Reply {
    post_form(
        &server.auth.settings.token_url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.secret()),
            ("client_id", "portal"),
        ],
        &[],
    )
    .await
}

/// A successful refresh: the rotated refresh token.
async fn refreshes(server: &Server, token: &RefreshToken, patient: &str) -> RefreshToken {
    let reply = refresh(server, token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["patient"], patient, "{body}");
    RefreshToken::new(body["refresh_token"].as_str().expect("rotated").to_string())
}

/// A refused refresh: 400 `invalid_grant`.
async fn refused(server: &Server, token: &RefreshToken) -> Value {
    let reply = refresh(server, token).await;
    // (Only the error fields: a success's body holds tokens.)
    assert_eq!(reply.status, 400, "the refresh was not refused");
    let body = reply.json();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    body
}

/// The status of reading `Patient/{patient}` with `access_token`.
async fn read_patient(server: &Server, access_token: &str, patient: &str) -> u16 {
    send(
        "GET",
        &server.url(&format!("/fhir/Patient/{patient}")),
        &[("authorization", &format!("Bearer {access_token}"))],
        None,
    )
    .await
    .status
}

fn care_team(id: &str, status: &str, patient: &str, members: &[&str]) -> Value {
    let participant: Vec<Value> = members
        .iter()
        .map(|m| json!({"member": {"reference": m}}))
        .collect();
    let mut team = json!({"resourceType": "CareTeam", "id": id, "status": status,
                          "subject": {"reference": format!("Patient/{patient}")}});
    if !participant.is_empty() {
        team["participant"] = json!(participant);
    }
    team
}

async fn setup(server: &Server) {
    for id in ["p1", "p2", "p3", "p4"] {
        server
            .seed(json!({"resourceType": "Patient", "id": id}))
            .await;
    }
    server
        .seed(care_team("ct1", "active", "p1", &["Practitioner/doc1"]))
        .await;
    server
        .seed(care_team("ct2", "active", "p2", &["Practitioner/doc1"]))
        .await;
    server
        .seed(json!({"resourceType": "RelatedPerson", "id": "rp1",
                     "patient": {"reference": "Patient/p3"}}))
        .await;
    server.register(public_app("portal", &SCOPES)).await;
    server
        .add_user("dr", "pw-doctor", Some("Practitioner/doc1"))
        .await;
    server
        .add_user("aunt", "pw-aunt", Some("RelatedPerson/rp1"))
        .await;
    server.add_user("amy", "pw-amy", Some("Patient/p1")).await;
}

#[tokio::test]
async fn a_refresh_is_refused_and_the_grant_revoked_once_the_user_no_longer_reaches_the_patient() {
    each_backend_server(|server| async move {
        setup(&server).await;
        let doc_p1 = tokens_for(&server, "dr", "pw-doctor", "p1").await;
        let doc_p2 = tokens_for(&server, "dr", "pw-doctor", "p2").await;
        let aunt = tokens_for(&server, "aunt", "pw-aunt", "p3").await;
        let amy = tokens_for(&server, "amy", "pw-amy", "p1").await;

        // While on the care team (and linked), refreshing works, again and again.
        let doc_p1_rt = refreshes(&server, doc_p1.refresh_token().expect("rt"), "p1").await;
        let doc_p1_rt = refreshes(&server, &doc_p1_rt, "p1").await;
        let doc_p2_rt = refreshes(&server, doc_p2.refresh_token().expect("rt"), "p2").await;
        let aunt_rt = refreshes(&server, aunt.refresh_token().expect("rt"), "p3").await;
        let amy_rt = refreshes(&server, amy.refresh_token().expect("rt"), "p1").await;
        assert_eq!(
            read_patient(&server, doc_p1.access_token().secret(), "p1").await,
            200
        );

        // The practitioner leaves p1's care team; p2's team ends; the related person's link
        // moves to another patient.
        server
            .seed(care_team("ct1", "active", "p1", &["Practitioner/doc2"]))
            .await;
        server
            .seed(care_team("ct2", "inactive", "p2", &["Practitioner/doc1"]))
            .await;
        server
            .seed(json!({"resourceType": "RelatedPerson", "id": "rp1",
                         "patient": {"reference": "Patient/p4"}}))
            .await;

        let body = refused(&server, &doc_p1_rt).await;
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("no longer has access")),
            "{body}"
        );
        refused(&server, &doc_p2_rt).await;
        refused(&server, &aunt_rt).await;
        // The whole grant is revoked: the access token issued before stops working too.
        assert_eq!(
            read_patient(&server, doc_p1.access_token().secret(), "p1").await,
            401
        );

        // A further refresh fails too, even once the practitioner is back on the team: the
        // grant is gone, a new sign-in is needed.
        refused(&server, &doc_p1_rt).await;
        server
            .seed(care_team("ct1", "active", "p1", &["Practitioner/doc1"]))
            .await;
        refused(&server, &doc_p1_rt).await;
        // … and a new sign-in works.
        let again = tokens_for(&server, "dr", "pw-doctor", "p1").await;
        refreshes(&server, again.refresh_token().expect("rt"), "p1").await;

        // The patient's own grant is untouched by care-team changes.
        let amy_rt = refreshes(&server, &amy_rt, "p1").await;
        refreshes(&server, &amy_rt, "p1").await;
        server
    })
    .await;
}

#[tokio::test]
async fn organisation_wide_clinicians_keep_refreshing_without_a_care_team() {
    for backend in coplan::testing::backends() {
        let server = Server::start_with(
            backend,
            coplan::config::ConfigLayer::default().set("practitioners_see_all_patients", true),
        )
        .await;
        setup(&server).await;
        server
            .add_user("ward", "pw-ward", Some("Practitioner/no-teams"))
            .await;
        let tokens = tokens_for(&server, "ward", "pw-ward", "p4").await;
        let rt = refreshes(&server, tokens.refresh_token().expect("rt"), "p4").await;
        refreshes(&server, &rt, "p4").await;
        server.stop().await;
    }
}
