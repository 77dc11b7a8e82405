//! Browser sessions of the authorization endpoint: an opaque id in an `HttpOnly`,
//! `SameSite=Lax` cookie scoped to `/auth`, stored hashed; the signed-in user and the CSRF token
//! every form must echo. A successful login replaces the session (no fixation).

use super::error::OAuthError;
use super::secrets::hash_secret;
use super::AuthServer;
use crate::store::auth::kind;
use serde::{Deserialize, Serialize};

pub const COOKIE: &str = "coplan_session";

/// What a session holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub fhir_user: Option<String>,
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionData")
            .field("csrf", &"***")
            .field("username", &self.username)
            .field("fhir_user", &self.fhir_user)
            .finish()
    }
}

/// A live session and its id.
pub struct Session {
    pub id: String,
    pub data: SessionData,
    /// Newly created: the response must set the cookie.
    pub fresh: bool,
}

/// The session id in a `Cookie` header.
pub fn cookie_value(cookie_header: Option<&str>) -> Option<&str> {
    cookie_header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

impl AuthServer {
    /// The session a cookie names, or a new anonymous one.
    pub async fn session(&self, cookie: Option<&str>) -> Result<Session, OAuthError> {
        if let Some(id) = cookie {
            if let Some(data) = self
                .store
                .ticket(kind::SESSION, &hash_secret(id), self.now())
                .await?
            {
                if let Ok(data) = serde_json::from_str(&data) {
                    return Ok(Session {
                        id: id.to_string(),
                        data,
                        fresh: false,
                    });
                }
            }
        }
        self.new_session(None, None).await
    }

    /// Start a session (signed in when `username` is given).
    pub async fn new_session(
        &self,
        username: Option<String>,
        fhir_user: Option<String>,
    ) -> Result<Session, OAuthError> {
        let id = self.new_secret();
        let data = SessionData {
            csrf: self.new_secret(),
            username,
            fhir_user,
        };
        let text =
            serde_json::to_string(&data).map_err(|e| OAuthError::server_error(e.to_string()))?;
        self.store
            .put_ticket(
                kind::SESSION,
                &hash_secret(&id),
                &text,
                self.now() + self.settings.session_seconds,
            )
            .await?;
        Ok(Session {
            id,
            data,
            fresh: true,
        })
    }

    /// End a session.
    pub async fn end_session(&self, id: &str) -> Result<(), OAuthError> {
        self.store
            .delete_ticket(kind::SESSION, &hash_secret(id))
            .await?;
        Ok(())
    }

    /// The `Set-Cookie` value for a session.
    pub fn session_cookie(&self, id: &str) -> String {
        let secure = if self.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{COOKIE}={id}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.settings.session_seconds
        )
    }
}
