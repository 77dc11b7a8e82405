//! HTTP/1.1 client plumbing: parsing and loopback-checking the base URL, one
//! dedicated keep-alive hyper connection per task (reconnecting after a
//! failure), and request construction with the FHIR/auth headers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, IF_MATCH};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

pub const FHIR_JSON: &str = "application/fhir+json";

/// Where the load goes: a loopback socket, the Host header and the path
/// prefix of the FHIR base (e.g. `/fhir`, no trailing slash).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub base_path: String,
    /// The access token sent, shared by every task (a refresh replaces it for all).
    pub bearer: crate::refresh::Bearer,
}

impl Target {
    /// Parse `http://HOST:PORT/prefix`, resolve it, and refuse anything
    /// that is not a loopback address.
    pub async fn parse(base: &str, bearer: Option<&str>) -> Result<Target, String> {
        let uri: Uri = base
            .parse()
            .map_err(|e| format!("invalid --base {base:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("--base must be an http:// URL, got {base:?}"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("--base {base:?} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_for_lookup, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let addr = addrs
            .iter()
            .copied()
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| {
                format!("--base host {host} does not resolve to a loopback address; refusing")
            })?;
        if addrs.iter().any(|a| !a.ip().is_loopback()) && host != "localhost" {
            return Err(format!("--base host {host} is not loopback-only; refusing"));
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.to_string());
        let host_hdr = HeaderValue::from_str(&authority)
            .map_err(|e| format!("bad host {authority:?}: {e}"))?;
        let base_path = uri.path().trim_end_matches('/').to_string();
        let bearer = crate::refresh::Bearer::new(bearer).map_err(|e| format!("--bearer: {e}"))?;
        Ok(Target {
            addr,
            host: host_hdr,
            base_path,
            bearer,
        })
    }

    /// Same base path, Host and auth, but another loopback port.
    pub fn with_port(&self, port: u16) -> Target {
        let addr = SocketAddr::new(self.addr.ip(), port);
        let host = HeaderValue::from_str(&addr.to_string()).unwrap_or_else(|_| self.host.clone());
        Target {
            addr,
            host,
            ..self.clone()
        }
    }

    /// Build a request for `{base_path}{rel}` (rel starts with `/`); a body is FHIR JSON.
    pub fn request(
        &self,
        method: Method,
        rel: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, String> {
        self.request_as(method, rel, body, if_match, FHIR_JSON)
    }

    /// [`Target::request`] with a body of `content_type` (e.g. `application/json-patch+json`).
    pub fn request_as(
        &self,
        method: Method,
        rel: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
        content_type: &str,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base_path, rel))
            .header(HOST, self.host.clone())
            .header(ACCEPT, FHIR_JSON);
        if let Some(auth) = self.bearer.get() {
            b = b.header(AUTHORIZATION, auth);
        }
        if let Some(etag) = if_match {
            b = b.header(IF_MATCH, etag);
        }
        let body = match body {
            Some(bytes) => {
                b = b.header(CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body).map_err(|e| format!("building request: {e}"))
    }
}

/// A fully read response.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One keep-alive HTTP/1.1 connection owned by one task.
pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            addr,
            sender: None,
            timeout,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                // Ends when the sender is dropped or the peer closes.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Send and read the whole body. On any failure the connection is
    /// dropped so the next call reconnects.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Response, String> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            let sender = self.connect().await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading body: {e}"))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")));
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// Parse a weak or strong ETag `W/"12"` / `"12"` into its version number.
pub fn etag_version(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(hyper::header::ETAG)?.to_str().ok()?;
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// The id of a created resource: body `id`, else the `Location` header
/// `{base}/{type}/{id}/_history/{vid}` (or without the history suffix).
pub fn created_id(resp: &Response) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
        if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
            return Some(id.to_string());
        }
    }
    location_id(&resp.headers)
}

/// The id of a created `resource_type`: the body's `id` when the body is that resource (a
/// server may answer a create with an empty body, `Prefer: return=minimal` style, or with an
/// OperationOutcome), else the `Location` header's.
pub fn created_id_of(resp: &Response, resource_type: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
        if v.get("resourceType").and_then(|t| t.as_str()) == Some(resource_type) {
            if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
                return Some(id.to_string());
            }
        }
    }
    location_id(&resp.headers)
}

/// The id in a `Location` of `{base}/{type}/{id}/_history/{vid}`, absolute or relative,
/// with or without the history suffix.
fn location_id(headers: &HeaderMap) -> Option<String> {
    let loc = headers.get(hyper::header::LOCATION)?.to_str().ok()?;
    let loc = loc.split('?').next()?;
    let trimmed = match loc.find("/_history/") {
        Some(i) => &loc[..i],
        None => loc,
    };
    trimmed
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(etag_version(&h), None);
        h.insert(hyper::header::ETAG, HeaderValue::from_static("W/\"7\""));
        assert_eq!(etag_version(&h), Some(7));
        h.insert(hyper::header::ETAG, HeaderValue::from_static("\"12\""));
        assert_eq!(etag_version(&h), Some(12));
        h.insert(hyper::header::ETAG, HeaderValue::from_static("W/\"abc\""));
        assert_eq!(etag_version(&h), None);
    }

    #[test]
    fn created_id_from_body_or_location() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::LOCATION,
            HeaderValue::from_static("http://127.0.0.1:8080/fhir/Patient/xyz/_history/1"),
        );
        let r = Response {
            status: StatusCode::CREATED,
            headers: headers.clone(),
            body: Bytes::from_static(b"{\"resourceType\":\"Patient\",\"id\":\"abc\"}"),
        };
        assert_eq!(created_id(&r).as_deref(), Some("abc"));
        let r = Response {
            status: StatusCode::CREATED,
            headers,
            body: Bytes::new(),
        };
        assert_eq!(created_id(&r).as_deref(), Some("xyz"));
    }

    #[test]
    fn created_id_of_ignores_bodies_of_another_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::LOCATION,
            HeaderValue::from_static("Encounter/e-7/_history/3"),
        );
        let outcome = Response {
            status: StatusCode::CREATED,
            headers: headers.clone(),
            body: Bytes::from_static(b"{\"resourceType\":\"OperationOutcome\",\"id\":\"oo\"}"),
        };
        assert_eq!(created_id_of(&outcome, "Encounter").as_deref(), Some("e-7"));
        let own = Response {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"{\"resourceType\":\"Encounter\",\"id\":\"e-8\"}"),
        };
        assert_eq!(created_id_of(&own, "Encounter").as_deref(), Some("e-8"));
        let nothing = Response {
            status: StatusCode::CREATED,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert_eq!(created_id_of(&nothing, "Encounter"), None);
    }

    #[tokio::test]
    async fn refuses_non_loopback() {
        assert!(Target::parse("http://10.1.2.3:8080/fhir", None)
            .await
            .is_err());
        assert!(Target::parse("https://127.0.0.1/fhir", None).await.is_err());
        let t = Target::parse("http://127.0.0.1:8080/fhir/", Some("tok"))
            .await
            .expect("loopback ok");
        assert_eq!(t.base_path, "/fhir");
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.host, "127.0.0.1:8080");
        let req = t
            .request(Method::GET, "/Patient/1", None, None)
            .expect("request");
        assert_eq!(req.uri(), "/fhir/Patient/1");
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer tok");
    }
}
