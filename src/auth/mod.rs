//! The built-in SMART App Launch 2.2 authorization server: discovery, the authorization
//! endpoint (login, patient picker, consent), the token endpoint (authorization_code + PKCE,
//! refresh_token, client_credentials), introspection (RFC 7662), revocation (RFC 7009), EHR
//! launch registration, signing keys and the [`crate::policy::BearerVerifier`] for the access
//! tokens it issues. No HTTP here: its axum routes are `http/smart.rs`; this is plain async Rust over
//! an [`AuthStore`], an injected clock and an injected secret generator.

pub mod admin;
mod apps;
pub mod authorize;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod external;
pub mod fetch;
pub mod grants;
mod introspection;
pub mod keys;
pub mod launch;
pub mod pages;
mod picker;
mod revocation;
pub mod scopes;
pub mod secrets;
pub(crate) mod session;
mod token_endpoint;
pub mod tokens;
pub mod users;
pub mod wording;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::auth::AuthStore;
use crate::store::StoreError;
use secrets::SecretGenerator;
use std::sync::Arc;

/// Lifetimes, limits and the URLs the server publishes, derived from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The issuer (`iss` of tokens, discovery's `issuer`, RFC 9207's `iss` on the redirect): the
    /// FHIR base URL itself, so the one `iss` a SMART app ever sees names the FHIR server (an
    /// app that mistakes the redirect's `iss` for a launch's `iss` still reaches this server).
    pub issuer: String,
    /// The FHIR base URL: the `aud` of access tokens and of authorization requests.
    pub fhir_base_url: String,
    /// The server's root (the FHIR base without `/fhir`): the `/auth/…` endpoints live under it.
    pub origin: String,
    pub authorize_url: String,
    pub token_url: String,
    pub introspect_url: String,
    pub revoke_url: String,
    pub jwks_url: String,
    pub launch_url: String,
    /// The page where a signed-in user sees the apps they allowed and takes access back.
    pub apps_url: String,
    /// Who runs the service (configuration `operator`), for the sign-in page.
    pub operator: Option<String>,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    pub code_seconds: i64,
    pub launch_seconds: i64,
    /// Refresh tokens of `offline_access` grants.
    pub offline_seconds: i64,
    /// Refresh tokens of `online_access` grants: about one sign-in session.
    pub online_seconds: i64,
    pub session_seconds: i64,
    /// Failed logins allowed per username in `login_window_seconds`.
    pub login_max_failures: i64,
    pub login_window_seconds: i64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Seconds between re-reads of the signing keys (see [`keys::KeyRing`]).
    pub key_reload_seconds: i64,
    /// `Cache-Control: max-age` of the JWK Set.
    pub jwks_max_age_seconds: i64,
    /// Practitioners reach every patient (and may pick any in a standalone launch).
    pub practitioners_see_all_patients: bool,
    /// Cookies are `Secure` when the server is reached over https.
    pub secure_cookies: bool,
    /// Extra trusted roots (PEM) for fetching key sets by `jwks_uri`.
    pub jwks_ca_file: Option<std::path::PathBuf>,
    /// Key sets may also be fetched over plain http (tests, local development).
    pub jwks_allow_http: bool,
}

impl AuthSettings {
    /// How long a rotated key is published before any node signs with it: every node has
    /// re-read the keys within one reload, then every client's cached JWK Set has expired within
    /// max-age; one more reload is the margin.
    pub fn key_publish_ahead_seconds(&self) -> i64 {
        self.jwks_max_age_seconds + 2 * self.key_reload_seconds
    }

    pub fn from_config(config: &Config) -> Self {
        let base = config.base_url.trim_end_matches('/').to_string();
        let origin = base
            .strip_suffix("/fhir")
            .map(str::to_string)
            .unwrap_or_else(|| base.clone());
        let at = |path: &str| format!("{origin}{path}");
        AuthSettings {
            authorize_url: at("/auth/authorize"),
            token_url: at("/auth/token"),
            introspect_url: at("/auth/introspect"),
            revoke_url: at("/auth/revoke"),
            jwks_url: at("/auth/jwks"),
            launch_url: at("/auth/launch"),
            apps_url: at("/auth/apps"),
            operator: config.operator.clone(),
            secure_cookies: base.starts_with("https://"),
            issuer: base.clone(),
            fhir_base_url: base,
            origin,
            access_token_seconds: 3600,
            id_token_seconds: 3600,
            code_seconds: 60,
            launch_seconds: 300,
            offline_seconds: i64::from(config.offline_access_days) * 24 * 3600,
            online_seconds: 12 * 3600,
            session_seconds: 8 * 3600,
            login_max_failures: 5,
            login_window_seconds: 15 * 60,
            argon2_memory_kib: config.argon2_memory_kib,
            argon2_iterations: config.argon2_iterations,
            key_reload_seconds: i64::from(config.key_reload_seconds),
            jwks_max_age_seconds: i64::from(config.jwks_max_age_seconds),
            practitioners_see_all_patients: config.practitioners_see_all_patients,
            jwks_ca_file: config.jwks_ca_file.clone(),
            jwks_allow_http: config.jwks_allow_http,
        }
    }
}

/// The authorization server.
pub struct AuthServer {
    pub settings: AuthSettings,
    pub store: Arc<dyn AuthStore>,
    pub keys: keys::KeyRing,
    /// Fetches clients' key sets by `jwks_uri` (https, certificates checked).
    pub jwks_fetcher: Arc<fetch::JwksFetcher>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretGenerator>,
    token_cache: tokens::TokenCache,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Start the authorization server over `store` (loading, or creating, its signing key).
    pub async fn open(
        settings: AuthSettings,
        store: Arc<dyn AuthStore>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
    ) -> Result<Self, StoreError> {
        let now = clock.now().unix_timestamp();
        store.purge_expired(now).await?;
        let keys = keys::KeyRing::open(store.as_ref(), now, settings.key_reload_seconds).await?;
        let jwks_fetcher =
            fetch::JwksFetcher::new(settings.jwks_ca_file.as_deref(), settings.jwks_allow_http)
                .map(Arc::new)
                .map_err(StoreError::Internal)?;
        Ok(AuthServer {
            jwks_fetcher,
            settings,
            store,
            keys,
            clock,
            secrets,
            token_cache: tokens::TokenCache::default(),
        })
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// A fresh opaque secret.
    pub fn new_secret(&self) -> String {
        self.secrets.secret()
    }

    /// Drop expired codes, sessions, refresh tokens, revocations, seen `jti`s and retired keys
    /// every ten minutes, for as long as the server runs.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let auth = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                let Some(auth) = auth.upgrade() else { break };
                if let Err(e) = auth.store.purge_expired(auth.now()).await {
                    tracing::warn!(error = %e, "purging expired authorization state failed");
                }
            }
        });
    }

    /// Who runs the service, for the pages' footers.
    pub fn site(&self) -> pages::Site<'_> {
        let origin = &self.settings.origin;
        pages::Site {
            host: origin
                .split_once("://")
                .map_or(origin.as_str(), |(_, host)| host),
            operator: self.settings.operator.as_deref(),
            apps_url: &self.settings.apps_url,
        }
    }

    /// How long `online_access` lasts at most, in whole hours: its refresh tokens end with the
    /// sign-in session.
    pub fn online_hours(&self) -> i64 {
        self.settings
            .online_seconds
            .min(self.settings.session_seconds)
            / 3600
    }

    /// An absolute `fhirUser` URL for a relative reference.
    pub fn absolute_fhir_user(&self, reference: &str) -> String {
        format!("{}/{reference}", self.settings.fhir_base_url)
    }
}
