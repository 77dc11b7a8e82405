//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6; RFC 7636; SMART App Launch 2.2
//! "Obtain access token", "Refresh access token", Backend Services), token introspection
//! (RFC 7662) and revocation (RFC 7009). Codes and refresh tokens are single use (atomic
//! consume); replaying either revokes the whole grant it belongs to.

use super::clients::{Client, ClientCredentials, ClientKind};
use super::error::OAuthError;
use super::launch::LaunchContext;
use super::scopes::{self, EHR_LAUNCH_SCOPE};
use super::secrets::{hash_secret, pkce_s256, valid_code_verifier};
use super::tokens::{AccessClaims, IdClaims};
use super::AuthServer;
use crate::store::auth::{kind, Consumed, GrantRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One authorization: who, which client, what scope and context. Codes and refresh tokens carry
/// it; access tokens name it (`grant`) so it can be revoked as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantData {
    pub grant_id: String,
    pub client_id: String,
    /// The user's account name (or the client's id for backend services).
    pub subject: String,
    /// The user's FHIR identity, relative (`Patient/1`).
    #[serde(default)]
    pub fhir_user: Option<String>,
    /// The granted scopes, space separated.
    pub scope: String,
    #[serde(default)]
    pub context: LaunchContext,
    #[serde(default)]
    pub nonce: Option<String>,
    /// The revocation id of the browser session the user approved in (`session:…`):
    /// `online_access` refresh tokens end with it (sign-out or expiry).
    #[serde(default)]
    pub session: Option<String>,
    /// When that session expires.
    #[serde(default)]
    pub session_expires_at: Option<i64>,
}

/// What an authorization code stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeData {
    pub grant: GrantData,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// What a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshData {
    pub grant: GrantData,
    /// The grant's refresh tokens end here however often they are rotated.
    pub family_expires_at: i64,
}

/// A token request's form fields.
pub type Form = std::collections::HashMap<String, String>;

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, OAuthError> {
    field(form, name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
}

fn credentials<'a>(form: &'a Form, authorization: Option<&'a str>) -> ClientCredentials<'a> {
    ClientCredentials {
        authorization,
        client_id: field(form, "client_id"),
        client_assertion_type: field(form, "client_assertion_type"),
        client_assertion: field(form, "client_assertion"),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(data: &str) -> Result<T, OAuthError> {
    serde_json::from_str(data).map_err(|e| OAuthError::server_error(format!("corrupt ticket: {e}")))
}

impl AuthServer {
    /// `POST /auth/token`: the token response JSON.
    pub async fn token(
        &self,
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
            "refresh_token" => self.refresh(&client, form).await,
            _ => self.client_credentials(&client, form).await,
        }
    }

    /// Revoke a grant and every token issued under it (and stop listing it on the user's apps
    /// page), for as long as any of its tokens could live: the longest refresh lifetime from
    /// now, or the grant's own last token if that is later (`offline_access_days` may have
    /// been shortened since it was issued).
    async fn revoke_grant(&self, grant_id: &str, last_token: i64) -> Result<(), OAuthError> {
        let until = (self.now() + self.settings.offline_seconds).max(last_token);
        self.store.revoke_grant(grant_id, until).await?;
        self.token_cache.clear();
        Ok(())
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

    async fn refresh(&self, client: &Client, form: &Form) -> Result<Value, OAuthError> {
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
        }
        let data = match self
            .store
            .consume_ticket(kind::REFRESH, &key, self.now())
            .await?
        {
            Consumed::Fresh(data) => parse::<RefreshData>(&data)?,
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

    /// `POST /auth/introspect` (RFC 7662): `{"active": false}` for anything not currently valid.
    pub async fn introspect(
        &self,
        form: &Form,
        authorization: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let client = self
            .authenticate_client(&credentials(form, authorization))
            .await?;
        if client.kind == ClientKind::Public {
            return Err(OAuthError::invalid_client(
                "introspection requires a confidential client",
            ));
        }
        let token = required(form, "token")?;
        let Ok(claims) = self.verify_access_token(token).await else {
            return Ok(json!({"active": false}));
        };
        let mut out = json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "token_type": "Bearer",
        });
        if let Some(patient) = &claims.patient {
            out["patient"] = json!(patient);
        }
        if let Some(user) = &claims.fhir_user {
            out["fhirUser"] = json!(user);
        }
        Ok(out)
    }

    /// `POST /auth/revoke` (RFC 7009): revoke an access token (by `jti`) or a refresh token (and
    /// its grant). Unknown tokens are not an error.
    pub async fn revoke(&self, form: &Form, authorization: Option<&str>) -> Result<(), OAuthError> {
        let client = self
            .authenticate_client(&credentials(form, authorization))
            .await?;
        let token = required(form, "token")?;
        if let Ok(claims) = self.decode_access_token(token, false).await {
            if claims.client_id == client.client_id {
                self.store.revoke(&claims.jti, claims.exp).await?;
                self.token_cache.clear();
            }
            return Ok(());
        }
        let key = hash_secret(token);
        if let Some(data) = self.store.ticket(kind::REFRESH, &key, self.now()).await? {
            let data = parse::<RefreshData>(&data)?;
            if data.grant.client_id == client.client_id {
                self.store.delete_ticket(kind::REFRESH, &key).await?;
                self.revoke_grant(&data.grant.grant_id).await?;
            }
        }
        Ok(())
    }

    /// Store an authorization code for `data`; returns the code.
    pub async fn issue_code(&self, data: &CodeData) -> Result<String, OAuthError> {
        let code = self.new_secret();
        let text =
            serde_json::to_string(data).map_err(|e| OAuthError::server_error(e.to_string()))?;
        self.store
            .put_ticket(
                kind::CODE,
                &hash_secret(&code),
                &text,
                self.now() + self.settings.code_seconds,
            )
            .await?;
        Ok(code)
    }
}
