//! Token refreshes during a run (issue 17 §5: the soak's workload includes them): the bearer
//! token every task sends is shared ([`Bearer`]), and one background task exchanges the
//! refresh token at the token endpoint every `--refresh-every` seconds (RFC 6749 §6; Coplan
//! rotates refresh tokens, so each answer's new one is used next), then swaps the access
//! token it got in for every task's next request. Each exchange is tallied ([`RefreshLog`]):
//! a failed one is an error of the run, as a failed request is.

use crate::client::{Conn, Target};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The `Authorization` value every task sends, replaced when a refresh brings a new token.
#[derive(Debug, Clone, Default)]
pub struct Bearer(Arc<RwLock<Option<HeaderValue>>>);

impl Bearer {
    /// `Bearer {token}`, or none.
    pub fn new(token: Option<&str>) -> Result<Bearer, String> {
        let bearer = Bearer::default();
        if let Some(token) = token {
            bearer.set(token)?;
        }
        Ok(bearer)
    }

    pub fn get(&self) -> Option<HeaderValue> {
        self.0.read().ok()?.clone()
    }

    pub fn set(&self, token: &str) -> Result<(), String> {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| format!("bad bearer token: {e}"))?;
        if let Ok(mut current) = self.0.write() {
            *current = Some(value);
        }
        Ok(())
    }
}

/// How to refresh: the token endpoint's path on the server, the client, its refresh token.
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// e.g. `/auth/token`.
    pub token_path: String,
    pub client_id: String,
    /// A confidential client's secret (HTTP Basic); a public client sends only its id.
    pub client_secret: Option<String>,
    pub refresh_token: String,
    pub every: Duration,
}

/// What the refresher did, read by the soak after each window and by the final report.
#[derive(Debug, Default, Clone)]
pub struct RefreshLog {
    pub refreshes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latencies_us: Vec<u64>,
}

impl RefreshLog {
    fn record(&mut self, outcome: Result<Duration, String>) {
        match outcome {
            Ok(took) => {
                self.refreshes += 1;
                self.latencies_us
                    .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// One line for the report: exchanges, errors and the slowest.
    pub fn summary(&self) -> String {
        let slowest = self.latencies_us.iter().max().copied().unwrap_or(0);
        let mut line = format!(
            "token refreshes: {} ok, {} failed, slowest {:.1} ms",
            self.refreshes,
            self.errors,
            slowest as f64 / 1000.0
        );
        if let Some(e) = &self.first_error {
            line.push_str(&format!(" (first failure: {e})"));
        }
        line
    }
}

/// The refresh request: `grant_type=refresh_token`, the token, and the client (HTTP Basic for
/// a confidential one, `client_id` in the form for a public one).
pub fn refresh_request(
    target: &Target,
    config: &RefreshConfig,
    refresh_token: &str,
) -> Result<Request<Full<Bytes>>, String> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token);
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(config.token_path.as_str())
        .header(HOST, target.host.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    match &config.client_secret {
        Some(secret) => {
            let pair = format!(
                "{}:{}",
                form_urlencoded::byte_serialize(config.client_id.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
            );
            builder = builder.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
        }
        None => {
            form.append_pair("client_id", &config.client_id);
        }
    }
    builder
        .body(Full::new(Bytes::from(form.finish())))
        .map_err(|e| format!("building the refresh request: {e}"))
}

/// The access and refresh tokens of a token response.
pub fn tokens_of(status: StatusCode, body: &[u8]) -> Result<(String, String), String> {
    let text = String::from_utf8_lossy(body);
    if status != StatusCode::OK {
        return Err(format!("token endpoint answered {status}: {text}"));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("token response: {e}: {text}"))?;
    let access = json["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access_token in {text}"))?;
    let refresh = json["refresh_token"]
        .as_str()
        .ok_or_else(|| format!("no refresh_token in {text}"))?;
    Ok((access.to_string(), refresh.to_string()))
}

/// Refresh every `config.every` until `end`, swapping each new access token into `bearer`.
pub async fn run(
    target: Arc<Target>,
    bearer: Bearer,
    config: RefreshConfig,
    log: Arc<Mutex<RefreshLog>>,
    end: Instant,
    timeout: Duration,
) {
    let mut refresh_token = config.refresh_token.clone();
    loop {
        let next = Instant::now() + config.every;
        if next >= end {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        let started = Instant::now();
        // A connection of its own each time: one kept between refreshes idles for the whole
        // period, and where that is the server's idle limit (`header_read_timeout_seconds`,
        // 10 s) the server closes it just as the next refresh is sent on it ("operation was
        // canceled").
        let mut conn = Conn::new(target.addr, timeout);
        let outcome = async {
            let request = refresh_request(&target, &config, &refresh_token)?;
            let response = conn.send(request).await?;
            let (access, refresh) = tokens_of(response.status, &response.body)?;
            bearer.set(&access)?;
            refresh_token = refresh;
            Ok(started.elapsed())
        }
        .await;
        if let Ok(mut log) = log.lock() {
            log.record(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_gives_both_tokens_and_anything_else_is_an_error() {
        let ok = br#"{"access_token":"a1","token_type":"Bearer","refresh_token":"r2"}"#;
        assert_eq!(
            tokens_of(StatusCode::OK, ok),
            Ok(("a1".into(), "r2".into()))
        );
        let refused = br#"{"error":"invalid_grant"}"#;
        assert!(tokens_of(StatusCode::BAD_REQUEST, refused)
            .unwrap_err()
            .contains("invalid_grant"));
        assert!(tokens_of(StatusCode::OK, br#"{"access_token":"a1"}"#)
            .unwrap_err()
            .contains("no refresh_token"));
    }

    #[tokio::test]
    async fn the_request_names_the_client_as_its_kind_does() {
        let target = Target::parse("http://127.0.0.1:8080/fhir", None)
            .await
            .expect("target");
        let mut config = RefreshConfig {
            token_path: "/auth/token".into(),
            client_id: "portal".into(),
            client_secret: None,
            refresh_token: "r1".into(),
            every: Duration::from_secs(60),
        };
        let public = refresh_request(&target, &config, "r 1").expect("request");
        assert_eq!(public.uri(), "/auth/token");
        assert!(public.headers().get(AUTHORIZATION).is_none());
        let body = http_body_util::BodyExt::collect(public.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(
            &body[..],
            b"grant_type=refresh_token&refresh_token=r+1&client_id=portal"
        );
        config.client_secret = Some("s3cret".into());
        config.client_id = "bench".into();
        let confidential = refresh_request(&target, &config, "r1").expect("request");
        assert_eq!(
            confidential.headers()[AUTHORIZATION],
            "Basic YmVuY2g6czNjcmV0"
        );
    }

    /// Whether `bytes` hold a request's head and its whole body.
    fn whole_request(bytes: &[u8]) -> bool {
        let text = String::from_utf8_lossy(bytes);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= length
    }

    /// A token endpoint that answers one request on each connection and then closes the
    /// connection when the next request arrives on it, unanswered: as a server does with a
    /// keep-alive connection that idled past its limit just as a request was sent.
    async fn one_answer_a_connection() -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut read = 0;
                    // The whole request: its head, then as many bytes as its content-length says.
                    while !whole_request(&buf[..read]) {
                        match stream.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                    }
                    let body =
                        r#"{"access_token":"a2","token_type":"Bearer","refresh_token":"r2"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    // The next request on this connection is read and dropped with it.
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn every_refresh_gets_an_answer_where_the_server_closes_idle_connections() {
        let addr = one_answer_a_connection().await;
        let target = Target::parse(&format!("http://{addr}/fhir"), Some("a1"))
            .await
            .expect("target");
        let config = RefreshConfig {
            token_path: "/auth/token".into(),
            client_id: "portal".into(),
            client_secret: None,
            refresh_token: "r1".into(),
            every: Duration::from_millis(40),
        };
        let log = Arc::new(Mutex::new(RefreshLog::default()));
        let end = Instant::now() + Duration::from_millis(400);
        run(
            Arc::new(target.clone()),
            target.bearer.clone(),
            config,
            log.clone(),
            end,
            Duration::from_secs(5),
        )
        .await;
        let log = log.lock().expect("log").clone();
        assert_eq!(log.errors, 0, "{:?}", log.first_error);
        assert!(log.refreshes >= 3, "{} refreshes", log.refreshes);
        assert_eq!(target.bearer.get().expect("a token"), "Bearer a2");
    }

    #[test]
    fn a_new_token_replaces_the_old_for_every_holder() {
        let bearer = Bearer::new(Some("t1")).expect("bearer");
        let held = bearer.clone();
        bearer.set("t2").expect("set");
        assert_eq!(held.get().expect("a token"), "Bearer t2");
    }
}
