//! Registered OAuth clients (SMART App Launch 2.2 "client-public", "client-confidential-
//! symmetric", "client-confidential-asymmetric") and client authentication at the token,
//! introspection and revocation endpoints: public clients by `client_id`, symmetric clients by
//! `client_secret_basic` (RFC 6749 §2.3.1), asymmetric clients by `private_key_jwt` assertions
//! (RFC 7523, SMART Backend Services: RS384 / ES384, `iss` = `sub` = client_id, `aud` = the
//! token URL, `exp` at most five minutes ahead, `jti` never reused).

use super::error::OAuthError;
use super::secrets::{constant_time_eq, hash_secret};
use super::AuthServer;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// How a client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A browser or native app that cannot keep a secret: identified by `client_id`, PKCE only.
    Public,
    /// Holds a shared secret (`client_secret_basic`).
    ConfidentialSymmetric,
    /// Holds a private key; its public keys are registered (`private_key_jwt`).
    ConfidentialAsymmetric,
}

/// A registered client.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    /// base64url SHA-256 of the client secret (symmetric clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Public keys (asymmetric clients), inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Where the client publishes its public keys (asymmetric clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Exact redirect URIs (no prefix or wildcard matching).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The scopes this client may be granted (each may cover narrower requests).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A resource server: may introspect the tokens of every client (RFC 7662 §4), not only its
    /// own. Records stored before this existed read as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub introspect_any: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret_hash", &self.secret_hash.as_ref().map(|_| "***"))
            .field("jwks", &self.jwks.as_ref().map(|k| k.keys.len()))
            .field("jwks_uri", &self.jwks_uri)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .field("introspect_any", &self.introspect_any)
            .finish()
    }
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.kind != ClientKind::Public
    }

    /// May this client learn about a token issued to `token_client_id` (RFC 7662 §4: the
    /// server decides which clients may introspect which tokens)? Its own tokens always; any
    /// client's only as a registered resource server.
    pub fn may_introspect(&self, token_client_id: &str) -> bool {
        self.introspect_any || self.client_id == token_client_id
    }
}

/// The client-authentication parts of a request.
#[derive(Default)]
pub struct ClientCredentials<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_assertion_type: Option<&'a str>,
    pub client_assertion: Option<&'a str>,
}

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Claims of a client assertion (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// Decode `Basic base64(urlencoded(id):urlencoded(secret))`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

impl AuthServer {
    /// A registered client, or `None`.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        let Some(data) = self.store.client(client_id).await? else {
            return Ok(None);
        };
        serde_json::from_str(&data)
            .map(Some)
            .map_err(|e| OAuthError::server_error(format!("corrupt client record: {e}")))
    }

    /// Every registered client, by id.
    pub async fn clients(&self) -> Result<Vec<Client>, OAuthError> {
        let mut out = Vec::new();
        for id in self.store.client_ids().await? {
            if let Some(client) = self.client(&id).await? {
                out.push(client);
            }
        }
        Ok(out)
    }

    /// Register (or replace) a client.
    pub async fn register_client(&self, client: &Client) -> Result<(), OAuthError> {
        let data =
            serde_json::to_string(client).map_err(|e| OAuthError::server_error(e.to_string()))?;
        self.store.put_client(&client.client_id, &data).await?;
        Ok(())
    }

    /// Authenticate the client of a token, introspection or revocation request.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials<'_>,
    ) -> Result<Client, OAuthError> {
        if let Some(assertion_type) = creds.client_assertion_type {
            if assertion_type != JWT_BEARER_ASSERTION {
                return Err(OAuthError::invalid_client(
                    "unsupported client_assertion_type",
                ));
            }
            let assertion = creds
                .client_assertion
                .ok_or_else(|| OAuthError::invalid_request("client_assertion is missing"))?;
            return self
                .authenticate_assertion(assertion, creds.client_id)
                .await;
        }
        if let Some(header) = creds
            .authorization
            .filter(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic "))
        {
            let challenge = |d: &str| OAuthError::invalid_client(d).with_basic_challenge(true);
            let (id, secret) =
                parse_basic(header).ok_or_else(|| challenge("malformed Basic credentials"))?;
            if creds.client_id.is_some_and(|c| c != id) {
                return Err(challenge("client_id does not match the credentials"));
            }
            let client = self
                .client(&id)
                .await?
                .ok_or_else(|| challenge("unknown client or wrong secret"))?;
            let matches = client
                .secret_hash
                .as_deref()
                .is_some_and(|h| constant_time_eq(h, &hash_secret(&secret)));
            if client.kind != ClientKind::ConfidentialSymmetric || !matches {
                return Err(challenge("unknown client or wrong secret"));
            }
            return Ok(client);
        }
        let id = creds
            .client_id
            .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
        let client = self
            .client(id)
            .await?
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        if client.is_confidential() {
            return Err(OAuthError::invalid_client(
                "this client is confidential and must authenticate",
            ));
        }
        Ok(client)
    }

    async fn authenticate_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
    ) -> Result<Client, OAuthError> {
        let bad = |d: &str| OAuthError::invalid_client(d.to_string());
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| bad("the client assertion is not a well-formed JWT"))?;
        if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
            return Err(bad("client assertions must be signed with RS384 or ES384"));
        }
        // Find the client from the (not yet verified) issuer; everything is verified below.
        let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode(assertion)
            .map(|d| d.claims)
            .map_err(|_| bad("the client assertion lacks iss, sub, exp or jti"))?;
        if client_id.is_some_and(|c| c != unverified.iss) {
            return Err(bad("client_id does not match the assertion's issuer"));
        }
        let client = self
            .client(&unverified.iss)
            .await?
            .filter(|c| c.kind == ClientKind::ConfidentialAsymmetric)
            .ok_or_else(|| bad("unknown client, or not registered for private_key_jwt"))?;
        let keys = self.client_keys(&client).await?;
        let candidates: Vec<&Jwk> = keys
            .keys
            .iter()
            .filter(|k| match (&header.kid, &k.common.key_id) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.settings.token_url]);
        validation.set_issuer(&[&client.client_id]);
        validation.sub = Some(client.client_id.clone());
        validation.validate_exp = false; // checked below against the injected clock
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "jti"]);
        let mut verified = None;
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            {
                verified = Some(data.claims);
                break;
            }
        }
        let claims = verified.ok_or_else(|| {
            bad("the client assertion's signature, audience, issuer or subject is wrong")
        })?;
        if claims.iss != claims.sub {
            return Err(bad("the client assertion's iss and sub differ"));
        }
        let now = self.now();
        if claims.exp <= now {
            return Err(bad("the client assertion has expired"));
        }
        if claims.exp > now + 300 {
            return Err(bad(
                "the client assertion's exp is more than five minutes ahead",
            ));
        }
        if claims.jti.is_empty()
            || !self
                .store
                .remember_jti(&client.client_id, &claims.jti, claims.exp)
                .await?
        {
            return Err(bad("the client assertion's jti was used before"));
        }
        Ok(client)
    }

    /// The client's public keys: inline, else fetched from its `jwks_uri`.
    async fn client_keys(&self, client: &Client) -> Result<JwkSet, OAuthError> {
        if let Some(jwks) = &client.jwks {
            return Ok(jwks.clone());
        }
        let uri = client
            .jwks_uri
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("the client has no registered keys"))?;
        let body = self.jwks_fetcher.get(uri).await.map_err(|e| {
            OAuthError::invalid_client(format!("cannot fetch the client's JWKS: {e}"))
        })?;
        serde_json::from_slice(&body)
            .map_err(|_| OAuthError::invalid_client("the client's jwks_uri is not a JWK Set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret"));
        assert_eq!(
            parse_basic(&header),
            Some(("my app".to_string(), "s:cret".to_string()))
        );
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Bearer x"), None);
    }

    fn client(id: &str, introspect_any: bool) -> Client {
        Client {
            client_id: id.into(),
            name: id.into(),
            kind: ClientKind::ConfidentialSymmetric,
            secret_hash: None,
            jwks: None,
            jwks_uri: None,
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            introspect_any,
        }
    }

    #[test]
    fn clients_introspect_their_own_tokens_and_resource_servers_any() {
        assert!(client("app", false).may_introspect("app"));
        assert!(!client("app", false).may_introspect("other"));
        assert!(!client("app", false).may_introspect("app2"));
        assert!(client("rs", true).may_introspect("other"));
        assert!(client("rs", true).may_introspect("rs"));
    }

    #[test]
    fn client_records_stored_before_the_introspection_flag_still_read() {
        let old = r#"{"client_id":"rs","name":"RS","kind":"confidential-symmetric",
                      "secret_hash":"h","redirect_uris":[],"scopes":["system/*.rs"]}"#;
        let read: Client = serde_json::from_str(old).expect("an old record reads");
        assert!(!read.introspect_any);
        // The flag round-trips, and an unflagged record is stored as before.
        let flagged = client("rs", true);
        let text = serde_json::to_string(&flagged).expect("JSON");
        assert_eq!(
            serde_json::from_str::<Client>(&text).expect("JSON"),
            flagged
        );
        let plain = serde_json::to_string(&client("app", false)).expect("JSON");
        assert!(!plain.contains("introspect_any"), "{plain}");
    }
}
