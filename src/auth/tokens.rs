//! Access tokens and id_tokens (SMART App Launch 2.2 "Access token response"; OpenID Connect
//! Core §2): what they carry, how they are issued, and the [`BearerVerifier`] for our own
//! access tokens. Verification accepts only RS256 signatures by a published key, with this
//! server as `iss` and the FHIR base URL as `aud`, unexpired by the injected clock, and not
//! revoked (by `jti` or by grant). Verified tokens are cached by SHA-256 of the token until they
//! expire; revocation is re-checked at most every [`REVOCATION_RECHECK_SECONDS`].

use super::keys::ALG;
use super::secrets::sha256;
use super::AuthServer;
use crate::policy::{Grant, InvalidToken};
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// How stale a cached "not revoked" may be: revocations on other nodes take effect within this.
pub const REVOCATION_RECHECK_SECONDS: i64 = 10;
/// Cached verified tokens at most.
const CACHE_CAPACITY: usize = 50_000;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The grant (authorization) this token came from: revoking it revokes every token of the
    /// grant (a replayed code or refresh token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// The claims of an id_token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
}

/// A verified token in the cache.
#[derive(Clone)]
struct Cached {
    claims: AccessClaims,
    revocation_checked_at: i64,
}

/// Verified tokens by SHA-256 of the token text.
///
/// A revocation on this node forgets the tokens it covers and starts a new epoch; a
/// verification that checked revocation before it carries the old epoch and is not cached, so
/// a token revoked here stops working at once (other nodes see it within
/// `REVOCATION_RECHECK_SECONDS`).
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    epoch: u64,
    tokens: HashMap<[u8; 32], Cached>,
}

impl TokenCache {
    fn get(&self, key: &[u8; 32]) -> Option<Cached> {
        self.entries.lock().ok()?.tokens.get(key).cloned()
    }

    /// The current epoch; read it before checking revocation and pass it to [`Self::put`].
    fn epoch(&self) -> u64 {
        self.entries.lock().map(|e| e.epoch).unwrap_or(u64::MAX)
    }

    fn put(&self, key: [u8; 32], value: Cached, now: i64, checked_in_epoch: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.epoch != checked_in_epoch {
            return;
        }
        if entries.tokens.len() >= CACHE_CAPACITY {
            entries.tokens.retain(|_, v| v.claims.exp > now);
            if entries.tokens.len() >= CACHE_CAPACITY {
                entries.tokens.clear();
            }
        }
        entries.tokens.insert(key, value);
    }

    fn remove(&self, key: &[u8; 32]) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.tokens.remove(key);
        }
    }

    /// Forget the tokens a revocation on this node `covers` and start a new epoch (so no
    /// check made before it is cached after it). Only those: every other user's verified
    /// token stays cached, where clearing the whole cache made each revocation — an app's
    /// sign-out — cost every active user a signature check and a revocation look-up. (A
    /// poisoned cache serves nothing: `get` and `put` fail alike.)
    pub fn forget(&self, covers: impl Fn(&AccessClaims) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.tokens.retain(|_, cached| !covers(&cached.claims));
            entries.epoch = entries.epoch.wrapping_add(1);
        }
    }

    /// Forget one token (by its text) and start a new epoch: a revocation repeated (already
    /// stored, so every check since has seen it) needs no scan of the cache, only this token
    /// gone in case the first revocation's own forgetting never ran (its request dropped).
    pub fn forget_token(&self, token: &str) {
        let key = sha256(token.as_bytes());
        if let Ok(mut entries) = self.entries.lock() {
            entries.tokens.remove(&key);
            entries.epoch = entries.epoch.wrapping_add(1);
        }
    }
}

/// A relative FHIR reference for an absolute `fhirUser` URL under our base.
pub fn relative_fhir_user(base_url: &str, fhir_user: &str) -> String {
    fhir_user
        .strip_prefix(base_url)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(fhir_user)
        .to_string()
}

impl AuthServer {
    /// Check a token's signature, issuer, audience and expiry (not revocation).
    pub(crate) async fn decode_access_token(
        &self,
        token: &str,
        check_expiry: bool,
    ) -> Result<AccessClaims, InvalidToken> {
        let invalid = |d: &str| InvalidToken(d.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if header.alg != ALG {
            return Err(invalid("unexpected signing algorithm"));
        }
        let kid = header.kid.ok_or_else(|| invalid("token has no key id"))?;
        let key = match self.keys.decoding_key(&kid) {
            Some(key) => key,
            None => {
                // Another node may have rotated keys since we loaded them.
                self.keys
                    .reload_for_unknown_kid(self.store.as_ref(), self.now())
                    .await
                    .map_err(|_| invalid("signing keys unavailable"))?;
                self.keys
                    .decoding_key(&kid)
                    .ok_or_else(|| invalid("unknown signing key"))?
            }
        };
        let mut validation = Validation::new(ALG);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.fhir_base_url]);
        validation.validate_exp = false; // against the injected clock, below
        validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| InvalidToken(format!("token rejected: {e}")))?
            .claims;
        if check_expiry && claims.exp <= self.now() {
            return Err(invalid("token expired"));
        }
        Ok(claims)
    }

    /// Is this token (or its grant) revoked?
    async fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, InvalidToken> {
        let mut ids = vec![claims.jti.as_str()];
        if let Some(grant) = &claims.grant {
            ids.push(grant.as_str());
        }
        self.store
            .any_revoked(&ids)
            .await
            .map_err(|_| InvalidToken("revocation status unavailable".into()))
    }

    /// Verify one of our access tokens.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        if let Some(cached) = self.cached_access_token(token).await {
            return cached;
        }
        let key = sha256(token.as_bytes());
        let now = self.now();
        let claims = self.decode_access_token(token, true).await?;
        let epoch = self.token_cache.epoch();
        if self.is_revoked(&claims).await? {
            return Err(InvalidToken("token revoked".into()));
        }
        self.token_cache.put(
            key,
            Cached {
                claims: claims.clone(),
                revocation_checked_at: now,
            },
            now,
            epoch,
        );
        Ok(claims)
    }

    /// The answer for a token in the cache of verified tokens, without a signature check
    /// (expiry checked, revocation re-checked when due); `None` when it is not there.
    pub async fn cached_access_token(
        &self,
        token: &str,
    ) -> Option<Result<AccessClaims, InvalidToken>> {
        let key = sha256(token.as_bytes());
        let now = self.now();
        let hit = self.token_cache.get(&key)?;
        if hit.claims.exp <= now {
            self.token_cache.remove(&key);
            return Some(Err(InvalidToken("token expired".into())));
        }
        if now - hit.revocation_checked_at < REVOCATION_RECHECK_SECONDS {
            return Some(Ok(hit.claims));
        }
        let epoch = self.token_cache.epoch();
        match self.is_revoked(&hit.claims).await {
            Err(e) => return Some(Err(e)),
            Ok(true) => {
                self.token_cache.remove(&key);
                return Some(Err(InvalidToken("token revoked".into())));
            }
            Ok(false) => {}
        }
        self.token_cache.put(
            key,
            Cached {
                claims: hit.claims.clone(),
                revocation_checked_at: now,
            },
            now,
            epoch,
        );
        Some(Ok(hit.claims))
    }

    /// The policy's view of verified claims.
    pub fn grant_of(&self, claims: &AccessClaims) -> Grant {
        Grant {
            client_id: claims.client_id.clone(),
            subject: claims.sub.clone(),
            scope: claims.scope.clone(),
            patient: claims.patient.clone(),
            fhir_user: claims
                .fhir_user
                .as_deref()
                .map(|u| relative_fhir_user(&self.settings.fhir_base_url, u)),
            expires_at: claims.exp,
        }
    }
}

/// The verifier the FHIR API uses for our own tokens.
#[async_trait::async_trait]
impl crate::policy::BearerVerifier for AuthServer {
    async fn verify(&self, token: &str) -> Result<Grant, InvalidToken> {
        let claims = self.verify_access_token(token).await?;
        Ok(self.grant_of(&claims))
    }

    async fn verify_cached(&self, token: &str) -> Option<Result<Grant, InvalidToken>> {
        let cached = self.cached_access_token(token).await?;
        Some(cached.map(|claims| self.grant_of(&claims)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cached(exp: i64) -> Cached {
        Cached {
            claims: AccessClaims {
                iss: "https://coplan.example/fhir".into(),
                sub: "amy".into(),
                aud: "https://coplan.example/fhir".into(),
                exp,
                iat: 0,
                jti: "t1".into(),
                client_id: "portal".into(),
                scope: "patient/Goal.rs".into(),
                patient: None,
                fhir_user: None,
                grant: Some("g1".into()),
            },
            revocation_checked_at: 0,
        }
    }

    #[test]
    fn a_check_made_before_a_revocation_on_this_node_is_not_cached() {
        let cache = TokenCache::default();
        let before = cache.epoch();
        // A verification read "not revoked", then a revocation (of any token) on this node...
        cache.forget(|c| c.jti == "another");
        cache.put([1; 32], cached(100), 0, before);
        assert!(
            cache.get(&[1; 32]).is_none(),
            "a stale check must not be cached"
        );
        // ...while a check made after the revocation is.
        cache.put([1; 32], cached(100), 0, cache.epoch());
        assert!(cache.get(&[1; 32]).is_some());
        cache.forget(|c| c.jti == "t1");
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_repeated_revocation_forgets_its_token_and_no_other() {
        let cache = TokenCache::default();
        let key = sha256(b"the-token");
        cache.put(key, cached(100), 0, cache.epoch());
        cache.put([2; 32], cached(100), 0, cache.epoch());
        let before = cache.epoch();
        cache.forget_token("the-token");
        assert!(cache.get(&key).is_none());
        assert!(cache.get(&[2; 32]).is_some(), "another token stays cached");
        cache.put(key, cached(100), 0, before);
        assert!(
            cache.get(&key).is_none(),
            "a check from before is not cached"
        );
    }

    #[test]
    fn a_revocation_forgets_the_tokens_it_covers_and_no_other() {
        let cache = TokenCache::default();
        let mut other = cached(100);
        other.claims.jti = "t2".into();
        other.claims.grant = Some("g2".into());
        other.claims.client_id = "clinic".into();
        cache.put([1; 32], cached(100), 0, cache.epoch());
        cache.put([2; 32], other, 0, cache.epoch());
        cache.forget(|c| c.jti == "t1");
        assert!(cache.get(&[1; 32]).is_none(), "the revoked token");
        assert!(cache.get(&[2; 32]).is_some(), "another user's token stays");
        cache.put([1; 32], cached(100), 0, cache.epoch());
        cache.forget(|c| c.grant.as_deref() == Some("g2"));
        assert!(cache.get(&[2; 32]).is_none(), "the revoked grant's token");
        assert!(cache.get(&[1; 32]).is_some());
        cache.forget(|c| c.client_id == "portal" && c.sub == "amy");
        assert!(cache.get(&[1; 32]).is_none(), "the app the user took back");
    }
}
