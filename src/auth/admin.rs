//! Administration behind the CLI (`coplan client add`, `coplan user add`, `coplan keys
//! rotate`): registering clients of each SMART client type and creating user accounts.

use super::clients::{Client, ClientKind};
use super::secrets::hash_secret;
use super::AuthServer;
use jsonwebtoken::jwk::JwkSet;

/// What `coplan client add` was asked for.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub client_id: String,
    pub name: Option<String>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// Space-separated scopes the client may be granted.
    pub scopes: String,
    /// A JWK Set document (asymmetric clients).
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// A resource server: may introspect every client's tokens (`--introspect`).
    pub introspect_any: bool,
}

/// Register a client; returns the generated secret of a symmetric client (shown once).
pub async fn add_client(auth: &AuthServer, spec: ClientSpec) -> Result<Option<String>, String> {
    if spec.client_id.trim().is_empty() {
        return Err("the client id must not be empty".into());
    }
    for uri in &spec.redirect_uris {
        let ok = uri.starts_with("https://") || uri.starts_with("http://");
        if !ok || uri.contains('#') {
            return Err(format!(
                "redirect URI {uri:?} must be an absolute http(s) URL without a fragment"
            ));
        }
    }
    let jwks: Option<JwkSet> = spec
        .jwks
        .as_deref()
        .map(|text| serde_json::from_str(text).map_err(|e| format!("invalid JWK Set: {e}")))
        .transpose()?;
    if let Some(set) = &jwks {
        if set.keys.iter().any(|k| {
            matches!(&k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_))
                && serde_json::to_value(k)
                    .map(|v| v.get("d").is_some())
                    .unwrap_or(false)
        }) {
            return Err("the JWK Set contains private key material".into());
        }
    }
    let secret = match spec.kind {
        ClientKind::ConfidentialSymmetric => Some(auth.new_secret()),
        _ => None,
    };
    match spec.kind {
        ClientKind::ConfidentialAsymmetric if jwks.is_none() && spec.jwks_uri.is_none() => {
            return Err("an asymmetric client needs --jwks-file or --jwks-uri".into())
        }
        ClientKind::Public if spec.redirect_uris.is_empty() => {
            return Err("a public client needs at least one --redirect-uri".into())
        }
        ClientKind::Public if spec.introspect_any => {
            return Err("a public client cannot introspect tokens (--introspect needs --type symmetric or asymmetric)".into())
        }
        _ => {}
    }
    if let Some(uri) = &spec.jwks_uri {
        auth.jwks_fetcher.check_url(uri)?;
    }
    let client = Client {
        name: spec.name.unwrap_or_else(|| spec.client_id.clone()),
        client_id: spec.client_id,
        kind: spec.kind,
        secret_hash: secret.as_deref().map(hash_secret),
        jwks,
        jwks_uri: spec.jwks_uri,
        redirect_uris: spec.redirect_uris,
        scopes: spec
            .scopes
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect(),
        introspect_any: spec.introspect_any,
    };
    auth.register_client(&client)
        .await
        .map_err(|e| e.to_string())?;
    Ok(secret)
}
