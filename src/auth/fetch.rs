//! A minimal outbound HTTP GET (hyper) for JSON Web Key Sets published at a `jwks_uri`.
//! Plain `http://` only: no TLS stack is linked, so `https://` key sets must be registered inline
//! or as files (a documented limitation).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Largest key set accepted.
const MAX_BYTES: usize = 256 * 1024;

/// GET `url` and return the body of a 200 response.
pub async fn get(url: &str) -> Result<Bytes, String> {
    if !url.starts_with("http://") {
        return Err("only http:// key set URLs can be fetched (no TLS support)".into());
    }
    let uri: hyper::Uri = url.parse().map_err(|_| "invalid URL".to_string())?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = hyper::Request::get(uri)
        .header("accept", "application/json")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.to_bytes())
}
