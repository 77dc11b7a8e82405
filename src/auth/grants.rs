//! What a grant (one authorization) is and what the OAuth endpoints share about it: the data
//! authorization codes and refresh tokens stand for, the form helpers of the token,
//! introspection and revocation endpoints, issuing a code, and revoking a grant whole. The
//! endpoints themselves: `token_endpoint.rs` (RFC 6749, SMART "Obtain access token"),
//! `introspection.rs` (RFC 7662), `revocation.rs` (RFC 7009).

use super::clients::ClientCredentials;
use super::error::OAuthError;
use super::launch::LaunchContext;
use super::secrets::hash_secret;
use super::AuthServer;
use crate::store::auth::kind;
use serde::{Deserialize, Serialize};

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

pub(super) fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

pub(super) fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, OAuthError> {
    field(form, name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
}

pub(super) fn credentials<'a>(
    form: &'a Form,
    authorization: Option<&'a str>,
) -> ClientCredentials<'a> {
    ClientCredentials {
        authorization,
        client_id: field(form, "client_id"),
        client_assertion_type: field(form, "client_assertion_type"),
        client_assertion: field(form, "client_assertion"),
    }
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(data: &str) -> Result<T, OAuthError> {
    serde_json::from_str(data).map_err(|e| OAuthError::server_error(format!("corrupt ticket: {e}")))
}

impl AuthServer {
    /// Revoke a grant and every token issued under it (and stop listing it on the user's apps
    /// page), for as long as any of its tokens could live: the longest refresh lifetime from
    /// now, or the grant's own last token if that is later (`offline_access_days` may have
    /// been shortened since it was issued).
    pub(super) async fn revoke_grant(
        &self,
        grant_id: &str,
        last_token: i64,
    ) -> Result<(), OAuthError> {
        let until = (self.now() + self.settings.offline_seconds).max(last_token);
        self.store.revoke_grant(grant_id, until).await?;
        self.token_cache
            .forget(|c| c.grant.as_deref() == Some(grant_id));
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
