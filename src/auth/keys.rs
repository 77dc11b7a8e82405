//! The server's token signing keys (SMART App Launch 2.2: access tokens and RS256 id_tokens;
//! RFC 7517 JWK Set at `jwks_uri`). Keys live in the database so restarts and several nodes
//! share them.
//!
//! Rotation publishes before it signs. `coplan keys rotate` stores a new key and sets the
//! current ones' `retired_at` to a moment in the future (now + the publish-ahead time, see
//! [`crate::auth::AuthSettings::key_publish_ahead_seconds`]): until then the old key still
//! signs while the new one is already in every node's JWK Set (each node re-reads the keys at
//! least every `key_reload_seconds`, on demand: before signing and before serving the JWK Set)
//! and so, once clients' cached copies (`max-age`) have expired, in theirs. From `retired_at` on
//! the new key signs; the old one stays published until `expires_at`, when no token it signed
//! is still valid.

use super::secrets::{b64_decode, b64_encode};
use crate::store::auth::{AuthStore, SigningKeyRow};
use crate::store::StoreError;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

/// The one algorithm the server signs with (id_tokens must be RS256).
pub const ALG: Algorithm = Algorithm::RS256;

/// A usable key.
struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_jwk: Value,
    /// When the key stops signing (a newer one takes over); `None` while it is the newest.
    retired_at: Option<i64>,
}

/// The current keys, loaded from the store.
pub struct KeyRing {
    keys: RwLock<Vec<std::sync::Arc<LoadedKey>>>,
    /// When the keys were last read from the store (seconds since the epoch).
    loaded_at: AtomicI64,
    /// Re-read the keys when they are older than this (seconds).
    reload_seconds: i64,
}

/// Least time between reloads caused by unknown key ids.
pub const UNKNOWN_KID_RELOAD_SECONDS: i64 = 5;

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing { .. }")
    }
}

/// The operating system's CSPRNG (via `rand`'s thread RNG, seeded from it) in the `rand_core`
/// version `rsa` expects.
struct CryptoRandom;

// Key material comes from the OS CSPRNG; no test expects a particular key (tests install
// fixed keys with `add_key` instead).
#[allow(clippy::disallowed_methods)]
impl rsa::rand_core::TryRng for CryptoRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(rand::random())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(rand::random())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand::RngCore::fill_bytes(&mut rand::rng(), dst);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for CryptoRandom {}

/// Generate a fresh 2048-bit RSA key (PKCS#1 DER).
pub fn generate_rsa_der() -> Result<Vec<u8>, StoreError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::PrivateKey::new(&mut CryptoRandom, 2048)
        .map_err(|e| StoreError::Internal(format!("cannot generate an RSA key: {e}")))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| StoreError::Internal(format!("cannot encode an RSA key: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

fn load(row: &SigningKeyRow) -> Result<LoadedKey, StoreError> {
    let corrupt = |what: &str| StoreError::Internal(format!("signing key {}: {what}", row.kid));
    let der = b64_decode(&row.private_der).ok_or_else(|| corrupt("not base64"))?;
    let encoding = EncodingKey::from_rsa_der(&der);
    let jwk = Jwk::from_encoding_key(&encoding, ALG).map_err(|_| corrupt("not an RSA key"))?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| corrupt("no public key"))?;
    let mut public_jwk = serde_json::to_value(&jwk).map_err(|_| corrupt("not serialisable"))?;
    public_jwk["kid"] = json!(row.kid);
    public_jwk["use"] = json!("sig");
    public_jwk["alg"] = json!("RS256");
    Ok(LoadedKey {
        kid: row.kid.clone(),
        encoding,
        decoding,
        public_jwk,
        retired_at: row.retired_at,
    })
}

/// The key id of a key: its RFC 7638 thumbprint.
pub fn kid_of(der: &[u8]) -> Result<String, StoreError> {
    let encoding = EncodingKey::from_rsa_der(der);
    Jwk::from_encoding_key(&encoding, ALG)
        .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
        .map_err(|e| StoreError::Internal(format!("not an RSA key: {e}")))
}

impl KeyRing {
    /// Load the keys from `store`, generating and storing the first one if there is none (no
    /// token exists yet, so it signs at once); re-read them every `reload_seconds`.
    pub async fn open(
        store: &dyn AuthStore,
        now: i64,
        reload_seconds: i64,
    ) -> Result<KeyRing, StoreError> {
        let ring = KeyRing {
            keys: RwLock::new(Vec::new()),
            loaded_at: AtomicI64::new(i64::MIN),
            reload_seconds,
        };
        ring.reload(store, now).await?;
        if ring.is_empty() {
            let der = generate_key().await?;
            add_key(store, &der, now).await?;
            ring.reload(store, now).await?;
        }
        Ok(ring)
    }

    fn is_empty(&self) -> bool {
        self.keys.read().map(|k| k.is_empty()).unwrap_or(true)
    }

    /// Re-read the keys (another node may have rotated).
    pub async fn reload(&self, store: &dyn AuthStore, now: i64) -> Result<(), StoreError> {
        let rows = store.signing_keys(now).await?;
        let mut loaded = rows
            .iter()
            .map(|r| load(r).map(std::sync::Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        // Newest first in signing order: the key that never retires, then by when each stops
        // signing. Creation times have one-second resolution, so two keys created in the same
        // second (a rotation right after the first key) are told apart by this, not by them.
        loaded.sort_by_key(|k| std::cmp::Reverse(k.retired_at.unwrap_or(i64::MAX)));
        if let Ok(mut keys) = self.keys.write() {
            *keys = loaded;
        }
        self.loaded_at.store(now, Ordering::SeqCst);
        Ok(())
    }

    /// Reload for a token signed with a key id this node does not know (another node may have
    /// rotated), but at most once per [`UNKNOWN_KID_RELOAD_SECONDS`]: tokens with made-up key
    /// ids must not cost a database read each.
    pub async fn reload_for_unknown_kid(
        &self,
        store: &dyn AuthStore,
        now: i64,
    ) -> Result<(), StoreError> {
        if now.saturating_sub(self.loaded_at.load(Ordering::SeqCst)) >= UNKNOWN_KID_RELOAD_SECONDS {
            self.reload(store, now).await?;
        }
        Ok(())
    }

    /// Reload when the keys were read `reload_seconds` ago or longer.
    pub async fn reload_if_stale(&self, store: &dyn AuthStore, now: i64) -> Result<(), StoreError> {
        if now.saturating_sub(self.loaded_at.load(Ordering::SeqCst)) >= self.reload_seconds {
            self.reload(store, now).await?;
        }
        Ok(())
    }

    /// The key that signs at `now`: of those not yet retired, the one retiring soonest (a
    /// rotated key waits, published, until the one before it retires); the newest if every one
    /// is retired.
    fn signing_at(&self, now: i64) -> Option<std::sync::Arc<LoadedKey>> {
        let keys = self.keys.read().ok()?;
        keys.iter()
            .rev()
            .find(|k| k.retired_at.is_none_or(|at| at > now))
            .or(keys.first())
            .cloned()
    }

    /// The id of the key that signs at `now`.
    pub fn signing_kid(&self, now: i64) -> Option<String> {
        self.signing_at(now).map(|k| k.kid.clone())
    }

    /// Sign `claims` as a JWT with the key that signs at `now`.
    pub fn sign<T: Serialize>(&self, claims: &T, now: i64) -> Result<String, StoreError> {
        let key = self
            .signing_at(now)
            .ok_or_else(|| StoreError::Internal("no signing key".into()))?;
        let mut header = Header::new(ALG);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| StoreError::Internal(format!("cannot sign a token: {e}")))
    }

    /// The verification key with id `kid`.
    pub fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().ok()?;
        keys.iter()
            .find(|k| k.kid == kid)
            .map(|k| k.decoding.clone())
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> Value {
        let keys = self
            .keys
            .read()
            .map(|k| k.iter().map(|k| k.public_jwk.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        json!({ "keys": keys })
    }
}

/// Store `der` as a new signing key; returns its kid.
pub async fn add_key(store: &dyn AuthStore, der: &[u8], now: i64) -> Result<String, StoreError> {
    let kid = kid_of(der)?;
    store
        .add_signing_key(&SigningKeyRow {
            kid: kid.clone(),
            alg: "RS256".into(),
            private_der: b64_encode(der),
            created_at: now,
            retired_at: None,
            expires_at: None,
        })
        .await?;
    Ok(kid)
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub kid: String,
    /// When the new key starts signing (it is published from now on).
    pub signs_from: i64,
    /// When the keys it replaces stop being published.
    pub old_keys_expire_at: i64,
}

/// Generate a new signing key off the async threads (it takes a moment). Generate before
/// reading the clock for [`rotate`], so the publish-ahead time is not eaten by key generation.
pub async fn generate_key() -> Result<Vec<u8>, StoreError> {
    tokio::task::spawn_blocking(generate_rsa_der)
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
}

/// Rotate to `der` (from [`generate_key`]): publish it at `now`; it signs from
/// `now + publish_ahead_seconds`, and the keys before it stay published `keep_seconds` longer
/// (the life of the last token they sign).
pub async fn rotate(
    store: &dyn AuthStore,
    der: &[u8],
    now: i64,
    publish_ahead_seconds: i64,
    keep_seconds: i64,
) -> Result<Rotation, StoreError> {
    let kid = add_key(store, der, now).await?;
    let signs_from = now + publish_ahead_seconds.max(0);
    let old_keys_expire_at = signs_from + keep_seconds;
    store
        .retire_signing_keys(&kid, signs_from, old_keys_expire_at)
        .await?;
    Ok(Rotation {
        kid,
        signs_from,
        old_keys_expire_at,
    })
}
