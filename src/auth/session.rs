//! Browser sessions of the authorization endpoint: an opaque id in an `HttpOnly`,
//! `SameSite=Lax` cookie scoped to `/auth`, stored hashed; the signed-in user and the CSRF token
//! every form must echo. A successful login replaces the session (no fixation).

use super::error::OAuthError;
use super::secrets::hash_secret;
use super::AuthServer;
use crate::store::auth::kind;
use crate::throttle::Throttled;
use serde::{Deserialize, Serialize};

pub const COOKIE: &str = "coplan_session";

/// The limit on sign-in attempts at one username from any address (`throttle::AccountLimit`,
/// which the HTTP layer holds): takes one attempt, or says how long until one is allowed.
pub type AccountLimit<'a> = &'a (dyn Fn(&str) -> Result<(), Throttled> + Send + Sync);

/// What a session holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub fhir_user: Option<String>,
    /// Seconds since the epoch.
    #[serde(default)]
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionData")
            .field("csrf", &"***")
            .field("username", &self.username)
            .field("fhir_user", &self.fhir_user)
            .field("expires_at", &self.expires_at)
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

/// The id under which a session's end is recorded as a revocation.
pub fn revocation_id(session_id: &str) -> String {
    format!("session:{}", hash_secret(session_id))
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

    /// A sign-in form's step (the authorization and apps pages share it, after they checked the
    /// form's CSRF token and that it was not cancelled): the attempt is counted against the
    /// username (`account_limit`; refused before the password is looked at); on the right
    /// credentials `session` becomes a new, signed-in session (the old one ends); otherwise the
    /// words the page shows.
    pub(crate) async fn sign_in_step(
        &self,
        params: &super::authorize::Params,
        session: &mut Session,
        account_limit: AccountLimit<'_>,
    ) -> Result<Result<Option<&'static str>, Throttled>, OAuthError> {
        let username = params.one("username").unwrap_or("");
        let password = params.one("password").unwrap_or("");
        if let Err(throttled) = account_limit(username) {
            return Ok(Err(throttled));
        }
        Ok(Ok(match self.login(username, password).await? {
            Ok(user) => {
                self.end_session(&session.id).await?;
                *session = self
                    .new_session(Some(user.username), user.fhir_user)
                    .await?;
                None
            }
            Err(super::users::LoginError::BadCredentials) => {
                Some("The username or password is not right.")
            }
            Err(super::users::LoginError::Throttled) => {
                Some("Too many failed attempts. Please wait 15 minutes and try again.")
            }
        }))
    }

    /// Start a session (signed in when `username` is given).
    pub async fn new_session(
        &self,
        username: Option<String>,
        fhir_user: Option<String>,
    ) -> Result<Session, OAuthError> {
        let id = self.new_secret();
        let expires_at = self.now() + self.settings.session_seconds;
        let data = SessionData {
            csrf: self.new_secret(),
            username,
            fhir_user,
            expires_at,
        };
        let text =
            serde_json::to_string(&data).map_err(|e| OAuthError::server_error(e.to_string()))?;
        self.store
            .put_ticket(kind::SESSION, &hash_secret(&id), &text, expires_at)
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

    /// Sign out: end the session and the `online_access` refresh tokens approved in it. `false`
    /// when the CSRF token does not belong to the session.
    pub async fn sign_out(&self, id: &str, csrf: &str) -> Result<bool, OAuthError> {
        let Some(data) = self
            .store
            .ticket(kind::SESSION, &hash_secret(id), self.now())
            .await?
        else {
            return Ok(true); // already gone
        };
        let data: SessionData =
            serde_json::from_str(&data).map_err(|e| OAuthError::server_error(e.to_string()))?;
        if !super::secrets::constant_time_eq(csrf, &data.csrf) {
            return Ok(false);
        }
        self.end_session(id).await?;
        self.store
            .revoke(
                &revocation_id(id),
                self.now() + self.settings.online_seconds,
            )
            .await?;
        Ok(true)
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
