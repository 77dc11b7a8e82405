//! Fetching JSON Web Key Sets published at a `jwks_uri` — a backend service's client keys
//! (SMART App Launch 2.2 "Backend Services", RFC 7591 `jwks_uri`) and a trusted issuer's
//! signing keys — over HTTPS with certificate checks: hyper with rustls (ring), the operating
//! system's trusted roots, plus the roots of an optional `jwks_ca_file` (a private CA).
//! Plain `http://` is refused unless `jwks_allow_http` is set (tests and local development
//! only): keys fetched in the clear could be swapped by anyone on the path.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Largest key set accepted.
const MAX_BYTES: usize = 256 * 1024;

/// How long one fetch may take, connection and TLS handshake included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches key sets by URL, with the server's TLS trust settings.
pub struct JwksFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    allow_http: bool,
}

impl std::fmt::Debug for JwksFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksFetcher")
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl JwksFetcher {
    /// A fetcher trusting the system's roots and those in `ca_file` (PEM), if given;
    /// `allow_http`: also fetch plain `http://` URLs.
    pub fn new(ca_file: Option<&Path>, allow_http: bool) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped (each is reported in `errors`), as
        // browsers do; with none at all only `ca_file` roots are trusted.
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "a system root certificate could not be loaded");
        }
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("jwks_ca_file {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("jwks_ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "jwks_ca_file {} holds no certificate",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("jwks_ca_file {}: {e}", path.display()))?;
            }
        } else if added == 0 {
            tracing::warn!("no system root certificates: https:// key sets cannot be fetched");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(JwksFetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
            allow_http,
        })
    }

    /// Whether `url` may be fetched at all (https, or http where allowed): checked when a key
    /// set URL is configured or registered, so a bad one is refused then, not at first use.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let uri: hyper::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("https") if uri.host().is_some() => Ok(()),
            Some("http") if uri.host().is_some() && self.allow_http => Ok(()),
            Some("http") => Err(format!(
                "key set URLs must be https:// ({url:?} is plain http, refused unless jwks_allow_http is set)"
            )),
            _ => Err(format!("{url:?} is not an https:// URL")),
        }
    }

    /// GET `url` and return the body of a 200 response.
    pub async fn get(&self, url: &str) -> Result<Bytes, String> {
        self.check_url(url)?;
        let uri: hyper::Uri = url.parse().map_err(|_| "invalid URL".to_string())?;
        let request = hyper::Request::get(uri)
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| describe(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = tokio::time::timeout(
            TIMEOUT,
            Limited::new(response.into_body(), MAX_BYTES).collect(),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
        Ok(body.to_bytes())
    }
}

/// A connection error with its causes (a certificate failure is a cause of the client error).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_unless_http_is_allowed() {
        let strict = JwksFetcher::new(None, false).unwrap();
        assert!(strict
            .check_url("https://keys.example.org/jwks.json")
            .is_ok());
        for refused in [
            "http://keys.example.org/jwks.json",
            "ftp://keys.example.org/jwks.json",
            "file:///etc/passwd",
            "https:///nohost",
            "not a url",
        ] {
            assert!(strict.check_url(refused).is_err(), "{refused}");
        }
        let lax = JwksFetcher::new(None, true).unwrap();
        assert!(lax.check_url("http://127.0.0.1:9/jwks.json").is_ok());
        assert!(lax.check_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("coplan-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(JwksFetcher::new(Some(&empty), false)
            .unwrap_err()
            .contains("no certificate"));
        assert!(JwksFetcher::new(Some(&dir.join("missing.pem")), false).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
