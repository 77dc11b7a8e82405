//! A `coplan serve` child process for the reliability tests (crash, outage): started on a free
//! port over a data directory or a database URL, awaited until `/readyz` answers 200, killed
//! with SIGKILL; and a small HTTP/1.1 client (hyper) that tells "no answer" (connection refused
//! or reset: the process is gone) from an HTTP answer, with a bound on every request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A resource without what the server stamps (`id`, `meta`): what the client wrote.
pub fn content(resource: &Value) -> Value {
    let mut content = resource.clone();
    if let Some(fields) = content.as_object_mut() {
        fields.remove("id");
        fields.remove("meta");
    }
    content
}

/// How to start a server: which binary, in which directory (its `./data`), on which database.
#[derive(Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub database_url: Option<String>,
    pub env: Vec<(String, String)>,
}

/// A running server; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub port: u16,
    child: Child,
}

impl ServerSpec {
    /// The binary `cargo test` built, or `COPLAN_TEST_BINARY` (e.g. a release build) when set.
    pub fn new(dir: PathBuf, database_url: Option<String>) -> ServerSpec {
        let binary = std::env::var("COPLAN_TEST_BINARY")
            .ok()
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_coplan")));
        ServerSpec {
            binary,
            dir,
            database_url,
            env: vec![("COPLAN_INSECURE_NO_AUTH".into(), "true".into())],
        }
    }

    /// Start a server on a fresh port and wait (at most `within`) until it is ready; the time
    /// it took. Panics when it does not become ready: a server that needs a manual step after
    /// a crash fails the test here.
    pub async fn start(&self, within: Duration) -> (ServerProcess, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(&self.binary);
        command
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("COPLAN_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // The server's log is noise in a passing run: `COPLAN_TEST_SERVER_LOG=warn` shows it.
        match std::env::var("COPLAN_TEST_SERVER_LOG") {
            Ok(filter) if !filter.is_empty() => {
                command.env("COPLAN_LOG", filter).stderr(Stdio::inherit())
            }
            _ => command.stderr(Stdio::null()),
        };
        if let Some(url) = &self.database_url {
            command.env("COPLAN_DATABASE_URL", url);
        }
        let started = Instant::now();
        let child = command.spawn().expect("spawn coplan serve");
        let mut server = ServerProcess { port, child };
        let http = Http::new(port);
        loop {
            if let Ok(reply) = http.get("/readyz").await {
                if reply.status == 200 {
                    return (server, started.elapsed());
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited before it was ready: {status}");
            }
            assert!(
                started.elapsed() < within,
                "the server did not become ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl ServerProcess {
    /// SIGKILL: no shutdown hook, no flush, no goodbye.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered with a body that is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The version id in the `ETag` (`W/"3"` → 3).
    pub fn etag_version(&self) -> Option<u64> {
        self.header("etag")?
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .ok()
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum NoAnswer {
    /// Refused, reset or closed: the server is not there (or died mid-request).
    Connection(String),
    /// No answer within the bound.
    TimedOut(Duration),
}

/// A keep-alive HTTP/1.1 client for one server port.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    origin: String,
    pub timeout: Duration,
}

impl Http {
    pub fn new(port: u16) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            origin: format!("http://127.0.0.1:{port}"),
            timeout: Duration::from_secs(60),
        }
    }

    /// `path` is relative to the server (`/fhir/Patient/1`) or absolute (a `next` link).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, NoAnswer> {
        let uri = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.origin)
        };
        let mut request = hyper::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a well-formed request");
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| NoAnswer::Connection(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| NoAnswer::Connection(e.to_string()))?
                .to_bytes();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(NoAnswer::TimedOut(self.timeout)))
    }

    pub async fn get(&self, path: &str) -> Result<Reply, NoAnswer> {
        self.send("GET", path, &[("accept", "application/fhir+json")], None)
            .await
    }

    /// Send a FHIR JSON body.
    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> Result<Reply, NoAnswer> {
        let mut headers = vec![
            ("content-type", "application/fhir+json"),
            ("accept", "application/fhir+json"),
        ];
        headers.extend_from_slice(extra);
        self.send(method, path, &headers, Some(body.to_string().into_bytes()))
            .await
    }
}
