//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, SMART App Launch 2.2 "Obtain
//! authorization code", GET and POST): checks the request, signs the user in, picks the patient
//! for a standalone `launch/patient`, asks for consent and redirects back with a code.
//!
//! Until the client and its exact redirect URI are known, errors are shown as a page and never
//! redirected; after that they go back to the app (`error`, `state`). Every form carries the
//! whole request (re-checked on every step) and the session's CSRF token.

use super::clients::Client;
use super::error::OAuthError;
use super::grants::{CodeData, GrantData};
use super::launch::LaunchContext;
use super::pages::{self, Consent, ScopeLine};
use super::picker::{patient_name, patients_for, picker_labels};
use super::scopes;
use super::secrets::constant_time_eq;
use super::session::Session;
use super::wording::{self, Wording};
use super::AuthServer;
use crate::rest::FhirService;

/// What the endpoint answers.
#[derive(Debug)]
pub enum Outcome {
    Page {
        status: u16,
        html: String,
        set_cookie: Option<String>,
    },
    Redirect {
        location: String,
        set_cookie: Option<String>,
    },
    /// A sign-in refused by the limit per account: a 429 page with `Retry-After`.
    Throttled(crate::throttle::Throttled),
}

/// The OAuth parameters of an authorization request.
#[derive(Debug, Clone, Default)]
struct AuthRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    aud: String,
    code_challenge: String,
    code_challenge_method: String,
    launch: Option<String>,
    nonce: Option<String>,
}

const OAUTH_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
];

impl AuthRequest {
    fn hidden_fields(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("response_type", self.response_type.as_str()),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("aud", &self.aud),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ];
        for (name, value) in [
            ("state", &self.state),
            ("launch", &self.launch),
            ("nonce", &self.nonce),
        ] {
            if let Some(v) = value {
                out.push((name, v.as_str()));
            }
        }
        out
    }
}

/// The request's parameters (query or form).
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub(crate) fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = name.to_string();
        self.0
            .iter()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn one(&self, name: &str) -> Option<&str> {
        self.all(name).next().filter(|v| !v.is_empty())
    }
}

/// An error page.
pub(crate) fn page(status: u16, title: &str, message: &str) -> Outcome {
    Outcome::Page {
        status,
        html: pages::error(title, message),
        set_cookie: None,
    }
}

/// `redirect_uri` with `pairs` appended to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(k, v)
            .finish();
        out.push(sep);
        out.push_str(&encoded);
        sep = '&';
    }
    out
}

/// An error response to the app (RFC 6749 §4.1.2.1), with `iss` as in every authorization
/// response (RFC 9207 §2: errors too).
fn redirect_error(req: &AuthRequest, issuer: &str, code: &str, description: &str) -> Outcome {
    let mut pairs = vec![("error", code), ("error_description", description)];
    if let Some(state) = &req.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    Outcome::Redirect {
        location: with_query(&req.redirect_uri, &pairs),
        set_cookie: None,
    }
}

/// A PKCE S256 challenge: base64url of 32 bytes.
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A checked authorization request.
struct Checked {
    client: Client,
    req: AuthRequest,
    /// The requested scopes the client is registered for.
    requested: Vec<String>,
    /// The EHR launch context named by `launch`, if any (not yet consumed).
    ehr_context: Option<LaunchContext>,
}

impl AuthServer {
    /// Steps 1 and 2: the client and its exact redirect URI (errors before both are known are
    /// pages), then the rest of the request (errors go back to the app).
    async fn check_request(&self, params: &Params) -> Result<Result<Checked, Outcome>, OAuthError> {
        for name in OAUTH_PARAMS {
            if params.all(name).count() > 1 {
                return Ok(Err(page(
                    400,
                    "Invalid request",
                    &format!("{name} is repeated."),
                )));
            }
        }
        // 1. The client and its exact redirect URI: until both are known, errors are pages.
        let Some(client_id) = params.one("client_id") else {
            return Ok(Err(page(
                400,
                "Invalid request",
                "The request names no application (client_id).",
            )));
        };
        let Some(client) = self.client(client_id).await? else {
            return Ok(Err(page(
                400,
                "Unknown application",
                "This application is not registered with Coplan.",
            )));
        };
        let Some(redirect_uri) = params.one("redirect_uri") else {
            return Ok(Err(page(
                400,
                "Invalid request",
                "The request has no redirect_uri.",
            )));
        };
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Ok(Err(page(
                400,
                "Invalid redirect",
                "The redirect_uri is not registered for this application.",
            )));
        }
        let req = AuthRequest {
            response_type: params.one("response_type").unwrap_or("").into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: params.one("scope").unwrap_or("").into(),
            state: params.one("state").map(str::to_string),
            aud: params.one("aud").unwrap_or("").into(),
            code_challenge: params.one("code_challenge").unwrap_or("").into(),
            code_challenge_method: params.one("code_challenge_method").unwrap_or("").into(),
            launch: params.one("launch").map(str::to_string),
            nonce: params.one("nonce").map(str::to_string),
        };
        // 2. Errors from here on go back to the app.
        if req.response_type != "code" {
            return Ok(Err(redirect_error(
                &req,
                &self.settings.issuer,
                "unsupported_response_type",
                "response_type must be code",
            )));
        }
        if req.code_challenge_method != "S256" {
            return Ok(Err(redirect_error(
                &req,
                &self.settings.issuer,
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            )));
        }
        if !valid_challenge(&req.code_challenge) {
            return Ok(Err(redirect_error(
                &req,
                &self.settings.issuer,
                "invalid_request",
                "code_challenge is missing or malformed",
            )));
        }
        if req.aud.trim_end_matches('/') != self.settings.fhir_base_url {
            return Ok(Err(redirect_error(
                &req,
                &self.settings.issuer,
                "invalid_request",
                "aud is not this server's FHIR base URL",
            )));
        }
        let mut requested = scopes::allowed_subset(&req.scope, &client.scopes);
        // A user's sign-in never grants backend-service or EHR-administration scopes, however
        // the client was registered.
        requested.retain(|s| !s.starts_with("system/") && s != "ehr-launch");
        if requested.is_empty() {
            return Ok(Err(redirect_error(
                &req,
                &self.settings.issuer,
                "invalid_scope",
                "none of the requested scopes is registered for this application",
            )));
        }
        let ehr_context = match (&req.launch, requested.iter().any(|s| s == "launch")) {
            (Some(launch), true) => match self.peek_launch(launch).await? {
                Some(ctx) => Some(ctx),
                None => {
                    return Ok(Err(redirect_error(
                        &req,
                        &self.settings.issuer,
                        "invalid_request",
                        "the launch is unknown, used or expired",
                    )))
                }
            },
            (None, true) => {
                return Ok(Err(redirect_error(
                    &req,
                    &self.settings.issuer,
                    "invalid_request",
                    "scope launch needs a launch parameter",
                )))
            }
            (Some(_), false) => {
                return Ok(Err(redirect_error(
                    &req,
                    &self.settings.issuer,
                    "invalid_scope",
                    "a launch parameter needs the launch scope",
                )))
            }
            (None, false) => None,
        };

        Ok(Ok(Checked {
            client,
            req,
            requested,
            ehr_context,
        }))
    }

    /// Handle one request to the authorization endpoint.
    pub async fn authorize(
        &self,
        fhir: &FhirService,
        params: &Params,
        cookie: Option<&str>,
        account_limit: super::session::AccountLimit<'_>,
    ) -> Result<Outcome, OAuthError> {
        let Checked {
            client,
            req,
            requested,
            ehr_context,
        } = match self.check_request(params).await? {
            Ok(checked) => checked,
            Err(outcome) => return Ok(outcome),
        };

        // 3. The session, and the step the form says we are at.
        let mut session = self.session(cookie).await?;
        let step = params.one("step");
        if step.is_some() {
            let csrf_ok = params
                .one("csrf")
                .is_some_and(|c| constant_time_eq(c, &session.data.csrf));
            if !csrf_ok || session.fresh {
                return Ok(page(403, "Form expired", "This form has expired or did not come from Coplan. Please start again from the app."));
            }
        }
        let mut login_error = None;
        if step == Some("login") && params.one("action") == Some("cancel") {
            return Ok(redirect_error(
                &req,
                &self.settings.issuer,
                "access_denied",
                "the user cancelled signing in",
            ));
        }
        if step == Some("login") {
            match self
                .sign_in_step(params, &mut session, account_limit)
                .await?
            {
                Ok(error) => login_error = error,
                Err(throttled) => return Ok(Outcome::Throttled(throttled)),
            }
        }
        let set_cookie = session.fresh.then(|| self.session_cookie(&session.id));
        let action = "/auth/authorize";
        let hidden = pages::hidden(&req.hidden_fields(), &session.data.csrf);
        let Some(username) = session.data.username.clone() else {
            return Ok(Outcome::Page {
                status: 200,
                html: pages::login(action, &client.name, &hidden, login_error, &self.site()),
                set_cookie,
            });
        };

        // 4. The patient context. An EHR launch's patient must be one the signed-in user may
        // open (the launch value travels in a URL; holding it is not enough).
        if let Some(patient) = ehr_context.as_ref().and_then(|c| c.patient.as_deref()) {
            // The policy's own answer, not the picker's list (which stops at its length).
            let may = super::picker::may_open(
                fhir,
                session.data.fhir_user.as_deref(),
                self.settings.practitioners_see_all_patients,
                patient,
            )
            .await
            .map_err(|e| {
                OAuthError::server_error(format!("cannot check the user's access: {e}"))
            })?;
            if !may {
                return Ok(Outcome::Page {
                    status: 403,
                    html: pages::error(
                        "Not your patient",
                        "The record this launch opens is not one your account may open.",
                    ),
                    set_cookie,
                });
            }
        }
        let mut context = ehr_context.clone().unwrap_or_default();
        let wants_patient = requested.iter().any(|s| s == "launch/patient");
        if ehr_context.is_none() && wants_patient {
            let candidates = patients_for(
                fhir,
                session.data.fhir_user.as_deref(),
                self.settings.practitioners_see_all_patients,
            )
            .await;
            let mut chosen = None;
            if let Some(p) = params.one("patient") {
                if candidates.allows(fhir, p).await {
                    chosen = Some(p.to_string());
                }
            }
            if chosen.is_none() && candidates.listed.len() == 1 && !candidates.anyone {
                chosen = Some(candidates.listed[0].clone());
            }
            match chosen {
                Some(p) => context.patient = Some(p),
                None if candidates.listed.is_empty() => {
                    return Ok(Outcome::Page {
                        status: 403,
                        html: pages::error(
                            "No patient available",
                            "Your account is not linked to any patient record this app could open.",
                        ),
                        set_cookie,
                    })
                }
                None => {
                    let labelled = picker_labels(fhir, &candidates.listed).await;
                    return Ok(Outcome::Page {
                        status: 200,
                        html: pages::picker(action, &client.name, &hidden, &labelled, &self.site()),
                        set_cookie,
                    });
                }
            }
        }

        // 5. Consent. Unticking every data permission is allowed, but only after a warning
        // that the app then cannot use the record.
        let ticked: Vec<&str> = params.all("grant").collect();
        let wants_data = requested.iter().any(|s| wording::is_data_scope(s));
        let mut warn_no_data = false;
        if step == Some("consent") {
            if params.one("action") != Some("approve") {
                return Ok(redirect_error(
                    &req,
                    &self.settings.issuer,
                    "access_denied",
                    "the user denied access",
                ));
            }
            let granted: Vec<&str> = requested
                .iter()
                .map(String::as_str)
                .filter(|s| scopes::is_required(s) || ticked.contains(s))
                .collect();
            let no_data = wants_data && !granted.iter().any(|s| wording::is_data_scope(s));
            if !no_data || params.one("no_data") == Some("confirmed") {
                return self
                    .issue_redirect(&req, &client, username, session, context, granted)
                    .await;
            }
            warn_no_data = true;
        }
        let mut fields = req.hidden_fields();
        if let Some(p) = context.patient.as_deref().filter(|_| ehr_context.is_none()) {
            fields.push(("patient", p));
        }
        let hidden = pages::hidden(&fields, &session.data.csrf);
        let fhir_user = session.data.fhir_user.as_deref();
        let user_records =
            Wording::user_records(fhir_user, self.settings.practitioners_see_all_patients);
        let (record, patient_record, heading) = match context.patient.as_deref() {
            Some(p) => {
                let name = patient_name(fhir, p).await;
                if fhir_user == Some(format!("Patient/{p}").as_str()) {
                    let own = match &name.name {
                        Some(n) => format!("Your own record ({n})"),
                        None => "Your own record".to_string(),
                    };
                    let mine = "your record".to_string();
                    (Some(own), mine, "your Coplan care record".to_string())
                } else {
                    (Some(name.label()), name.record(), name.record())
                }
            }
            None => (
                None,
                "the patient's record".to_string(),
                user_records.clone(),
            ),
        };
        let words = Wording {
            patient_record,
            user_records,
            offline_days: self.settings.offline_seconds / 86_400,
            online_hours: self.online_hours(),
        };
        let data_scopes = requested
            .iter()
            .filter(|s| wording::is_data_scope(s))
            .count();
        let lines: Vec<ScopeLine> = requested
            .iter()
            .map(|s| {
                let data = wording::is_data_scope(s);
                ScopeLine {
                    scope: s.clone(),
                    description: wording::describe(s, &words),
                    required: scopes::is_required(s),
                    ticked: !warn_no_data || ticked.contains(&s.as_str()),
                    hints: wording::note(s)
                        .into_iter()
                        .chain((data && data_scopes == 1).then(|| {
                            "The app needs this to work: without it, it cannot use anything in \
                             the record."
                                .to_string()
                        }))
                        .collect(),
                }
            })
            .collect();
        Ok(Outcome::Page {
            status: 200,
            html: pages::consent(
                &Consent {
                    action,
                    app: &client.name,
                    hidden_fields: &hidden,
                    csrf: &session.data.csrf,
                    user: &username,
                    record: record.as_deref(),
                    heading: &heading,
                    scopes: &lines,
                    warn_no_data,
                },
                &self.site(),
            ),
            set_cookie,
        })
    }

    async fn issue_redirect(
        &self,
        req: &AuthRequest,
        client: &Client,
        username: String,
        session: Session,
        mut context: LaunchContext,
        granted: Vec<&str>,
    ) -> Result<Outcome, OAuthError> {
        if let Some(launch) = &req.launch {
            match self.consume_launch(launch).await? {
                Some(ctx) => context = ctx,
                None => {
                    return Ok(redirect_error(
                        req,
                        &self.settings.issuer,
                        "invalid_request",
                        "the launch is unknown, used or expired",
                    ))
                }
            }
        }
        let grant = GrantData {
            grant_id: self.new_secret(),
            client_id: client.client_id.clone(),
            subject: username,
            fhir_user: session.data.fhir_user.clone(),
            scope: granted.join(" "),
            context,
            nonce: req.nonce.clone(),
            session: Some(super::session::revocation_id(&session.id)),
            session_expires_at: Some(session.data.expires_at),
        };
        let code = self
            .issue_code(&CodeData {
                grant,
                redirect_uri: req.redirect_uri.clone(),
                code_challenge: req.code_challenge.clone(),
            })
            .await?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &req.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.settings.issuer));
        Ok(Outcome::Redirect {
            location: with_query(&req.redirect_uri, &pairs),
            set_cookie: session.fresh.then(|| self.session_cookie(&session.id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query(
                "https://app.example/cb",
                &[("code", "a b"), ("state", "x&y")]
            ),
            "https://app.example/cb?code=a+b&state=x%26y"
        );
        assert_eq!(
            with_query("https://app.example/cb?tenant=1", &[("code", "c")]),
            "https://app.example/cb?tenant=1&code=c"
        );
    }

    #[test]
    fn challenges_must_look_like_s256() {
        assert!(valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
