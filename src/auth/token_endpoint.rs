//! The token endpoint, `POST /auth/token` (RFC 6749 §4.1.3 authorization code, §6 refresh, §4.4
//! client credentials; RFC 7636 PKCE; SMART App Launch 2.2 "Obtain access token", "Refresh
//! access token", Backend Services): each grant type and the token response. Codes and refresh
//! tokens are single use (atomic consume); replaying either revokes the whole grant. A refresh
//! asks again whether the user still reaches the grant's patient (a practitioner who left the
//! care team gets `invalid_grant` and the grant is revoked).

use super::clients::{Client, ClientKind};
use super::error::OAuthError;
use super::grants::{credentials, field, parse, required, CodeData, Form, GrantData, RefreshData};
use super::launch::LaunchContext;
use super::picker::may_open;
use super::scopes::{self, EHR_LAUNCH_SCOPE};
use super::secrets::{hash_secret, pkce_s256, valid_code_verifier};
use super::tokens::{AccessClaims, IdClaims};
use super::AuthServer;
use crate::rest::FhirService;
use crate::store::auth::{kind, Consumed, GrantRow};
use serde_json::{json, Map, Value};

impl AuthServer {
    /// `POST /auth/token`: the token response JSON. `fhir` answers whom a refreshing user still
    /// reaches.
    pub async fn token(
        &self,
        fhir: &FhirService,
        form: &Form,
        authorization: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let grant_type = required(form, "grant_type")?;
        match grant_type {
            "authorization_code" | "refresh_token" | "client_credentials" => {}
            other => {
                return Err(OAuthError::unsupported_grant_type(format!(
                    "grant_type {other} is not supported"
                )))
            }
        }
        let client = self
            .authenticate_client(&credentials(form, authorization))
            .await?;
        match grant_type {
            "authorization_code" => self.redeem_code(&client, form).await,
            "refresh_token" => self.refresh(fhir, &client, form).await,
            _ => self.client_credentials(&client, form).await,
        }
    }

    async fn redeem_code(&self, client: &Client, form: &Form) -> Result<Value, OAuthError> {
        let code = required(form, "code")?;
        let data = match self
            .store
            .consume_ticket(kind::CODE, &hash_secret(code), self.now())
            .await?
        {
            Consumed::Fresh(data) => parse::<CodeData>(&data)?,
            Consumed::AlreadyUsed(data) => {
                let data = parse::<CodeData>(&data)?;
                self.revoke_grant(&data.grant.grant_id, 0).await?;
                tracing::warn!(
                    client_id = %data.grant.client_id,
                    "authorization code replayed; its tokens are revoked"
                );
                return Err(OAuthError::invalid_grant("the code was already used"));
            }
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant("unknown or expired code"));
            }
        };
        if data.grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if field(form, "redirect_uri") != Some(data.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        let verifier = field(form, "code_verifier")
            .ok_or_else(|| OAuthError::invalid_grant("code_verifier is missing"))?;
        if !valid_code_verifier(verifier)
            || !super::secrets::constant_time_eq(&pkce_s256(verifier), &data.code_challenge)
        {
            return Err(OAuthError::invalid_grant("PKCE verification failed"));
        }
        let refresh = self.refresh_until(&data.grant);
        // The user can now see this grant on their apps page and take it back, until its
        // last token expires.
        let now = self.now();
        let last_access = now + self.settings.access_token_seconds;
        self.store
            .put_grant(&GrantRow {
                grant_id: data.grant.grant_id.clone(),
                subject: data.grant.subject.clone(),
                client_id: data.grant.client_id.clone(),
                scope: data.grant.scope.clone(),
                patient: data.grant.context.patient.clone(),
                created_at: now,
                expires_at: refresh.map_or(last_access, |r| r.max(last_access)),
            })
            .await?;
        self.issue(&data.grant, None, refresh).await
    }

    /// Until when the refresh tokens of `grant` live, if it gets any: `offline_access` for
    /// 90 days; `online_access` while the sign-in session lasts (at most 12 h).
    fn refresh_until(&self, grant: &GrantData) -> Option<i64> {
        let now = self.now();
        if scopes::has(&grant.scope, "offline_access") {
            Some(now + self.settings.offline_seconds)
        } else if scopes::has(&grant.scope, "online_access") {
            let online = now + self.settings.online_seconds;
            Some(grant.session_expires_at.map_or(online, |s| s.min(online)))
        } else {
            None
        }
    }

    async fn refresh(
        &self,
        fhir: &FhirService,
        client: &Client,
        form: &Form,
    ) -> Result<Value, OAuthError> {
        let token = required(form, "refresh_token")?;
        let key = hash_secret(token);
        // Check ownership and the requested scope before consuming, so neither another client
        // nor a bad request burns the token.
        if let Some(data) = self.store.ticket(kind::REFRESH, &key, self.now()).await? {
            let data = parse::<RefreshData>(&data)?;
            if data.grant.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "unknown or expired refresh token",
                ));
            }
            if let Some(requested) = field(form, "scope") {
                if let Some(extra) = requested
                    .split_ascii_whitespace()
                    .find(|s| !scopes::implied_by(&data.grant.scope, s))
                {
                    return Err(OAuthError::invalid_scope(format!(
                        "{extra} is not within the scopes granted originally"
                    )));
                }
            }
            // The patient context was frozen at sign-in; the user's access to that patient may
            // have ended since (off the care team). Asked before consuming, so a store that
            // cannot answer does not burn the token.
            if !self.still_reaches(fhir, &data.grant).await? {
                self.revoke_grant(&data.grant.grant_id, data.family_expires_at)
                    .await?;
                tracing::info!(
                    client_id = %client.client_id,
                    "refresh refused: the user no longer reaches the grant's patient; the grant is revoked"
                );
                return Err(OAuthError::invalid_grant(
                    "the user no longer has access to this patient's record",
                ));
            }
        }
        let data = match self
            .store
            .consume_ticket(kind::REFRESH, &key, self.now())
            .await?
        {
            Consumed::Fresh(data) => {
                let data = parse::<RefreshData>(&data)?;
                // Checked above when the token was looked up; checked again on what was
                // consumed, so no other path ever re-issues another client's grant.
                if data.grant.client_id != client.client_id {
                    return Err(OAuthError::invalid_grant(
                        "unknown or expired refresh token",
                    ));
                }
                data
            }
            Consumed::AlreadyUsed(data) => {
                let data = parse::<RefreshData>(&data)?;
                if data.grant.client_id == client.client_id {
                    self.revoke_grant(&data.grant.grant_id, data.family_expires_at)
                        .await?;
                    tracing::warn!(
                        client_id = %client.client_id,
                        "refresh token reused; the whole grant is revoked"
                    );
                }
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used",
                ));
            }
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant(
                    "unknown or expired refresh token",
                ));
            }
        };
        let mut revocable = vec![data.grant.grant_id.as_str()];
        if !scopes::has(&data.grant.scope, "offline_access") {
            revocable.extend(data.grant.session.as_deref());
        }
        if self.store.any_revoked(&revocable).await? {
            return Err(OAuthError::invalid_grant(
                "the grant was revoked or its session ended",
            ));
        }
        // List the grant until its last token expires (and list it from now on if it was issued
        // before grants were listed).
        let now = self.now();
        self.store
            .put_grant(&GrantRow {
                grant_id: data.grant.grant_id.clone(),
                subject: data.grant.subject.clone(),
                client_id: data.grant.client_id.clone(),
                scope: data.grant.scope.clone(),
                patient: data.grant.context.patient.clone(),
                created_at: now,
                expires_at: data
                    .family_expires_at
                    .max(now + self.settings.access_token_seconds),
            })
            .await?;
        // Narrowing applies to this access token only; the rotated refresh token keeps the
        // original scope (RFC 6749 §6).
        let narrowed = field(form, "scope").map(|requested| {
            requested
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        });
        self.issue(
            &data.grant,
            narrowed.as_deref(),
            Some(data.family_expires_at),
        )
        .await
    }

    /// Does the grant's user still reach the grant's patient, as the picker and the EHR launch
    /// would answer now ([`may_open`])? Grants without a patient context have nothing to check
    /// here (`user/` scopes are re-evaluated on every FHIR request), nor has a patient's grant
    /// on their own record.
    async fn still_reaches(
        &self,
        fhir: &FhirService,
        grant: &GrantData,
    ) -> Result<bool, OAuthError> {
        let Some(patient) = grant.context.patient.as_deref() else {
            return Ok(true);
        };
        may_open(
            fhir,
            grant.fhir_user.as_deref(),
            self.settings.practitioners_see_all_patients,
            patient,
        )
        .await
        .map_err(|e| OAuthError::server_error(format!("cannot check the user's access: {e}")))
    }

    async fn client_credentials(&self, client: &Client, form: &Form) -> Result<Value, OAuthError> {
        if client.kind == ClientKind::Public {
            return Err(OAuthError::unauthorized_client(
                "client_credentials is for confidential clients",
            ));
        }
        let requested = required(form, "scope")?;
        let granted: Vec<String> = scopes::allowed_subset(requested, &client.scopes)
            .into_iter()
            .filter(|s| s.starts_with("system/") || s == EHR_LAUNCH_SCOPE)
            .collect();
        if granted.is_empty() {
            return Err(OAuthError::invalid_scope(
                "none of the requested scopes is registered for this client",
            ));
        }
        let grant = GrantData {
            grant_id: self.new_secret(),
            client_id: client.client_id.clone(),
            subject: client.client_id.clone(),
            fhir_user: None,
            scope: granted.join(" "),
            context: LaunchContext::default(),
            nonce: None,
            session: None,
            session_expires_at: None,
        };
        self.issue(&grant, None, None).await
    }

    /// Issue an access token (with `scope` narrowed if given), an id_token for `openid`, and a
    /// new refresh token expiring at `refresh_until`; render the token response.
    async fn issue(
        &self,
        grant: &GrantData,
        narrowed_scope: Option<&str>,
        refresh_until: Option<i64>,
    ) -> Result<Value, OAuthError> {
        let now = self.now();
        self.keys.reload_if_stale(self.store.as_ref(), now).await?;
        let scope = narrowed_scope.unwrap_or(&grant.scope);
        let fhir_user = grant
            .fhir_user
            .as_deref()
            .map(|u| self.absolute_fhir_user(u));
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: grant.subject.clone(),
            aud: self.settings.fhir_base_url.clone(),
            exp: now + self.settings.access_token_seconds,
            iat: now,
            jti: self.new_secret(),
            client_id: grant.client_id.clone(),
            scope: scope.to_string(),
            patient: grant.context.patient.clone(),
            fhir_user: fhir_user.clone(),
            grant: Some(grant.grant_id.clone()),
        };
        let access_token = self.keys.sign(&claims, now)?;
        let mut response = Map::new();
        response.insert("access_token".into(), json!(access_token));
        response.insert("token_type".into(), json!("Bearer"));
        response.insert(
            "expires_in".into(),
            json!(self.settings.access_token_seconds),
        );
        response.insert("scope".into(), json!(scope));
        if scopes::has(scope, "openid") {
            let id = IdClaims {
                iss: self.settings.issuer.clone(),
                sub: grant.subject.clone(),
                aud: grant.client_id.clone(),
                exp: now + self.settings.id_token_seconds,
                iat: now,
                nonce: grant.nonce.clone(),
                fhir_user: fhir_user.filter(|_| scopes::has(scope, "fhirUser")),
            };
            response.insert("id_token".into(), json!(self.keys.sign(&id, now)?));
        }
        if let Some(until) = refresh_until.filter(|u| *u > now) {
            let refresh = self.new_secret();
            let data = serde_json::to_string(&RefreshData {
                grant: grant.clone(),
                family_expires_at: until,
            })
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
            self.store
                .put_ticket(kind::REFRESH, &hash_secret(&refresh), &data, until)
                .await?;
            response.insert("refresh_token".into(), json!(refresh));
        }
        // The launch context: patient, encounter, fhirContext, need_patient_banner,
        // smart_style_url, intent (absent fields are not serialised).
        if let Ok(Value::Object(context)) = serde_json::to_value(&grant.context) {
            response.extend(context);
        }
        Ok(Value::Object(response))
    }
}
