//! Trusted external issuers (resource-server mode, issue 4): access tokens signed by another
//! authorization server (an EHR's), named in the configuration by issuer URL and JWK Set (file
//! or http URL) with a claim mapping. [`Verifiers`] sends each bearer token to the built-in
//! server or to the external issuer its (unverified) `iss` names; the chosen verifier then
//! checks everything: an allowed asymmetric algorithm (never `none` or HS*), a published key,
//! the exact issuer and audience, and expiry by the injected clock. External tokens cannot be
//! revoked here; they are cached until they expire.

use super::fetch::JwksFetcher;
use super::secrets::sha256;
use super::AuthServer;
use crate::clock::Clock;
use crate::config::TrustedIssuer;
use crate::policy::{BearerVerifier, Grant, InvalidToken};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// One external issuer and its keys.
pub struct ExternalIssuer {
    config: TrustedIssuer,
    audience: String,
    algorithms: Vec<Algorithm>,
    keys: RwLock<JwkSet>,
    fhir_base_url: String,
    fetcher: Arc<JwksFetcher>,
    /// When the key set was last fetched again for an unknown key (seconds): one request at a
    /// time, at most every [`REFETCH_INTERVAL_SECONDS`], so forged tokens cannot make this
    /// server hammer the issuer.
    last_refetch: tokio::sync::Mutex<Option<i64>>,
}

/// The least time between two fetches of an issuer's key set for an unknown key.
pub const REFETCH_INTERVAL_SECONDS: i64 = 60;

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "PS384" => Some(Algorithm::PS384),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        _ => None, // HS* and none are never accepted from another issuer
    }
}

impl ExternalIssuer {
    /// Load the issuer's keys (reading the file, or fetching the URL once with `fetcher`).
    pub async fn load(
        config: TrustedIssuer,
        fhir_base_url: &str,
        fetcher: Arc<JwksFetcher>,
    ) -> Result<Self, String> {
        let names = if config.algorithms.is_empty() {
            vec![
                "RS256".into(),
                "RS384".into(),
                "ES256".into(),
                "ES384".into(),
            ]
        } else {
            config.algorithms.clone()
        };
        let algorithms = names
            .iter()
            .map(|n| {
                algorithm(n).ok_or_else(|| {
                    format!(
                        "trusted issuer {}: algorithm {n} is not accepted",
                        config.issuer
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let issuer = ExternalIssuer {
            audience: config
                .audience
                .clone()
                .unwrap_or_else(|| fhir_base_url.to_string()),
            algorithms,
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
            fhir_base_url: fhir_base_url.to_string(),
            fetcher,
            config,
            last_refetch: tokio::sync::Mutex::new(None),
        };
        issuer.refresh_keys().await?;
        Ok(issuer)
    }

    async fn refresh_keys(&self) -> Result<(), String> {
        let bytes = match (&self.config.jwks_file, &self.config.jwks_uri) {
            (Some(path), _) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            (None, Some(uri)) => self
                .fetcher
                .get(uri)
                .await
                .map_err(|e| format!("trusted issuer {}: {uri}: {e}", self.config.issuer))?
                .to_vec(),
            (None, None) => return Err("no JWK Set configured".into()),
        };
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "trusted issuer {}: invalid JWK Set: {e}",
                self.config.issuer
            )
        })?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = set;
        }
        Ok(())
    }

    /// Fetch the key set again after a token was signed by a key it does not hold (the issuer
    /// may have rotated), unless that was tried less than [`REFETCH_INTERVAL_SECONDS`] ago;
    /// concurrent callers wait for one fetch. Whether the keys may have changed. A failure is
    /// logged; the caller's token is then simply not accepted.
    async fn refetch_keys(&self, now: i64) -> bool {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|at| now - at < REFETCH_INTERVAL_SECONDS) {
            return false;
        }
        *last = Some(now);
        match self.refresh_keys().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch a trusted issuer's keys again");
                false
            }
        }
    }

    fn claim<'a>(claims: &'a Value, mapped: &Option<String>, default: &str) -> &'a Value {
        &claims[mapped.as_deref().unwrap_or(default)]
    }

    /// Verify a token of this issuer.
    pub fn verify(&self, token: &str, now: i64) -> Result<Grant, InvalidToken> {
        let invalid = |d: &str| InvalidToken(d.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid("signing algorithm not accepted for this issuer"));
        }
        let keys = self
            .keys
            .read()
            .map_err(|_| invalid("issuer keys unavailable"))?
            .clone();
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
        let mut verified = None;
        for jwk in keys
            .keys
            .iter()
            .filter(|k| match (&header.kid, &k.common.key_id) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
        {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Ok(data) = jsonwebtoken::decode::<Value>(token, &key, &validation) {
                verified = Some(data.claims);
                break;
            }
        }
        let claims =
            verified.ok_or_else(|| invalid("token rejected by the trusted issuer's keys"))?;
        let exp = claims["exp"]
            .as_i64()
            .ok_or_else(|| invalid("exp is not a number"))?;
        if exp <= now {
            return Err(invalid("token expired"));
        }
        let map = &self.config.claims;
        let scope = match Self::claim(&claims, &map.scope, "scope") {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let text = |v: &Value| v.as_str().map(str::to_string);
        let client_id = text(Self::claim(&claims, &map.client_id, "client_id"))
            .or_else(|| text(&claims["azp"]))
            .unwrap_or_default();
        let fhir_user = text(Self::claim(&claims, &map.fhir_user, "fhirUser")).map(|u| {
            let relative = super::tokens::relative_fhir_user(&self.fhir_base_url, &u);
            // Another server's absolute URL: keep its last `Type/id`.
            let parts: Vec<&str> = relative.rsplitn(3, '/').collect();
            match parts.as_slice() {
                [id, kind, _] => format!("{kind}/{id}"),
                _ => relative,
            }
        });
        Ok(Grant {
            client_id,
            subject: text(&claims["sub"]).unwrap_or_default(),
            scope,
            patient: text(Self::claim(&claims, &map.patient, "patient")),
            fhir_user,
            expires_at: exp,
        })
    }
}

/// The FHIR API's verifier: the built-in server's tokens and the trusted issuers'.
pub struct Verifiers {
    local: Arc<AuthServer>,
    external: Vec<ExternalIssuer>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<[u8; 32], Grant>>,
}

impl Verifiers {
    pub fn new(
        local: Arc<AuthServer>,
        external: Vec<ExternalIssuer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Verifiers {
            local,
            external,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A trusted issuer's token verified before and not yet expired.
    fn cached_external(&self, token: &str) -> Option<Grant> {
        let now = self.clock.now().unix_timestamp();
        let cache = self.cache.lock().ok()?;
        cache
            .get(&sha256(token.as_bytes()))
            .filter(|grant| grant.expires_at > now)
            .cloned()
    }
}

#[async_trait::async_trait]
impl BearerVerifier for Verifiers {
    async fn verify_cached(&self, token: &str) -> Option<Result<Grant, InvalidToken>> {
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token)
            .ok()
            .and_then(|c| c["iss"].as_str().map(str::to_string));
        if iss.as_deref() == Some(self.local.settings.issuer.as_str()) {
            return self.local.verify_cached(token).await;
        }
        self.cached_external(token).map(Ok)
    }

    async fn verify(&self, token: &str) -> Result<Grant, InvalidToken> {
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token)
            .ok()
            .and_then(|c| c["iss"].as_str().map(str::to_string))
            .ok_or_else(|| InvalidToken("malformed token".into()))?;
        if iss == self.local.settings.issuer {
            return self.local.verify(token).await;
        }
        let issuer = self
            .external
            .iter()
            .find(|e| e.config.issuer == iss)
            .ok_or_else(|| InvalidToken("unknown issuer".into()))?;
        let now = self.clock.now().unix_timestamp();
        let key = sha256(token.as_bytes());
        if let Some(grant) = self.cached_external(token) {
            return Ok(grant);
        }
        let result = match issuer.verify(token, now) {
            Err(e) if e.0.contains("rejected") && issuer.config.jwks_uri.is_some() => {
                // The issuer may have rotated its keys: fetch them again (rate-limited).
                if issuer.refetch_keys(now).await {
                    issuer.verify(token, now)
                } else {
                    Err(e)
                }
            }
            other => other,
        };
        let grant = result?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 50_000 {
                cache.retain(|_, g| g.expires_at > now);
            }
            cache.insert(key, grant.clone());
        }
        Ok(grant)
    }
}
