//! User accounts for the login page: argon2id password hashes, the linked FHIR user (Patient,
//! Practitioner or RelatedPerson) and login throttling per username (OWASP ASVS 2.2.1).

use super::error::OAuthError;
use super::AuthServer;
use crate::store::auth::UserRow;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password (never says which).
    BadCredentials,
    /// Too many failures recently; try again later.
    Throttled,
}

/// A FHIR user reference the server can link an account to.
pub fn valid_fhir_user(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((t, id)) => {
            matches!(t, "Patient" | "Practitioner" | "RelatedPerson")
                && super::launch::is_fhir_id(id)
        }
        None => false,
    }
}

impl AuthServer {
    fn argon2(&self) -> Result<Argon2<'static>, OAuthError> {
        let params = Params::new(
            self.settings.argon2_memory_kib,
            self.settings.argon2_iterations,
            1,
            None,
        )
        .map_err(|e| OAuthError::server_error(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// An argon2id PHC string for `password` (hashed off the async threads).
    pub async fn hash_password(&self, password: &str) -> Result<String, OAuthError> {
        // A salt is key material from the OS CSPRNG; no test expects a particular hash.
        #[allow(clippy::disallowed_methods)]
        let salt: [u8; 16] = rand::random();
        let argon2 = self.argon2()?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| OAuthError::server_error(e.to_string()))?
        .map_err(|e| OAuthError::server_error(format!("cannot hash a password: {e}")))
    }

    /// Create or replace a user account.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        fhir_user: Option<&str>,
    ) -> Result<(), OAuthError> {
        if username.trim().is_empty() || password.is_empty() {
            return Err(OAuthError::invalid_request(
                "username and password must not be empty",
            ));
        }
        if let Some(user) = fhir_user {
            if !valid_fhir_user(user) {
                return Err(OAuthError::invalid_request(
                    "the FHIR user must be Patient/id, Practitioner/id or RelatedPerson/id",
                ));
            }
        }
        let password_hash = self.hash_password(password).await?;
        self.store
            .put_user(&UserRow {
                username: username.to_string(),
                password_hash,
                fhir_user: fhir_user.map(str::to_string),
            })
            .await?;
        Ok(())
    }

    /// Check a username and password, counting failures.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Result<UserRow, LoginError>, OAuthError> {
        let now = self.now();
        let window_start = now - self.settings.login_window_seconds;
        let key = username.to_lowercase();
        if self.store.login_failures(&key, window_start).await? >= self.settings.login_max_failures
        {
            tracing::warn!(username = %key, "sign-in refused: too many recent failures");
            return Ok(Err(LoginError::Throttled));
        }
        let user = self.store.user(username).await?;
        let verified = match &user {
            Some(user) => {
                let hash = user.password_hash.clone();
                let argon2 = self.argon2()?;
                let password = password.to_string();
                tokio::task::spawn_blocking(move || {
                    argon2
                        .verify_password(password.as_bytes(), hash.as_str())
                        .is_ok()
                })
                .await
                .unwrap_or(false)
            }
            None => {
                // Spend comparable time so unknown usernames are not revealed by timing.
                let argon2 = self.argon2()?;
                let password = password.to_string();
                let _ = tokio::task::spawn_blocking(move || {
                    use argon2::password_hash::PasswordHasher;
                    argon2
                        .hash_password_with_salt(password.as_bytes(), &[0u8; 16])
                        .is_ok()
                })
                .await;
                false
            }
        };
        match user.filter(|_| verified) {
            Some(user) => {
                self.store.clear_login_failures(&key).await?;
                tracing::info!(username = %user.username, "sign-in");
                Ok(Ok(user))
            }
            None => {
                let failures = self
                    .store
                    .record_login_failure(&key, now, window_start)
                    .await?;
                tracing::warn!(username = %key, failures, "failed sign-in");
                Ok(Err(LoginError::BadCredentials))
            }
        }
    }
}
