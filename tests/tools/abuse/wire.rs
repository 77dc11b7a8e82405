//! The harness of the abuse test: the `coplan` binary spawned on a fresh database with small
//! limits, a client registered and its token, and raw HTTP/1.1 over `TcpStream` (the test must
//! send what no well-behaved client library would: bad bytes, floods, trickles).

use coplan::testing::TestDatabase;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The limits the server runs with here: small enough to reach in a test.
pub const ENV: [(&str, &str); 12] = [
    ("COPLAN_HEADER_READ_TIMEOUT_SECONDS", "1"),
    ("COPLAN_BODY_READ_TIMEOUT_SECONDS", "2"),
    ("COPLAN_MAX_BODY_BYTES", "8388608"),
    ("COPLAN_MAX_INCLUDE_RESULTS", "20"),
    ("COPLAN_MAX_CONCURRENT_REQUESTS_PER_CLIENT", "2"),
    ("COPLAN_SIGN_IN_REQUESTS_PER_SECOND", "1"),
    ("COPLAN_SIGN_IN_BURST", "3"),
    ("COPLAN_ANONYMOUS_REQUESTS_PER_SECOND", "1"),
    ("COPLAN_ANONYMOUS_BURST", "5"),
    ("COPLAN_AUDIT_EVENTS", "false"),
    ("COPLAN_ARGON2_MEMORY_KIB", "64"),
    ("COPLAN_ARGON2_ITERATIONS", "1"),
];

/// The memory the server may reach over the whole test (its peak), and grow by between the
/// first measurement and the last.
pub const MAX_PEAK_KIB: u64 = 256 * 1024;
pub const MAX_GROWTH_KIB: u64 = 128 * 1024;

pub struct Server {
    pub port: u16,
    pub child: Child,
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as read off the wire.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(2_000).collect();
        write!(f, "{}\n\n{shown}", self.head)
    }
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// A 4xx OperationOutcome (the case named for the failure message).
    pub fn refused(&self, case: &str) -> Value {
        assert!(
            (400..500).contains(&self.status),
            "{case}: expected a 4xx, got {self:?}"
        );
        let outcome = self.json();
        assert_eq!(
            outcome["resourceType"], "OperationOutcome",
            "{case}: {outcome}"
        );
        outcome
    }

    pub fn diagnostics(&self) -> String {
        self.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub fn command(dir: &std::path::Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coplan"));
    command.current_dir(dir).envs(ENV).env("COPLAN_LOG", "warn");
    if let Some(url) = database_url {
        command.env("COPLAN_DATABASE_URL", url);
    }
    command
}

pub fn start(db: &TestDatabase) -> Server {
    start_with(db, &[])
}

/// [`start`] with some settings of [`ENV`] changed or added.
pub fn start_with(db: &TestDatabase, env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.database_url();
    let added = command(dir.path(), url.as_deref())
        .args(["client", "add", "abuser", "--type", "symmetric"])
        .args(["--scope", "system/*.cruds"])
        .stdin(Stdio::null())
        .output()
        .expect("client add");
    assert!(added.status.success(), "{added:?}");
    let secret = String::from_utf8_lossy(&added.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown only now): "))
        .expect("secret")
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = command(dir.path(), url.as_deref())
        .envs(env.iter().copied())
        .env("COPLAN_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve");
    let mut server = Server {
        port,
        child,
        token: String::new(),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&server, "/readyz", false).is_none_or(|a| a.status != 200) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let basic = base64_basic("abuser", &secret);
    let form = "grant_type=client_credentials&scope=system%2F*.cruds";
    let answer = exchange(
        &server,
        format!(
            "POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {basic}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .expect("token");
    assert_eq!(answer.status, 200, "{answer:?}");
    server.token = answer.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    server
}

pub fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

pub fn try_connect(server: &Server) -> Option<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    Some(stream)
}

pub fn connect(server: &Server) -> TcpStream {
    try_connect(server).expect("connect")
}

/// Send `request` whole, read the answer until the server closes; `None` when the server
/// closed without answering (or is not listening yet).
pub fn exchange(server: &Server, request: &[u8]) -> Option<Answer> {
    let mut stream = try_connect(server)?;
    // The server may answer (413) and close before taking everything: not a failure here.
    let _ = stream.write_all(request);
    read_answer(&mut stream)
}

pub fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            // A reset after the answer (the server closed with unread input) ends it too.
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !bytes.is_empty() => break,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head,
        body: bytes[split + 4..].to_vec(),
    })
}

pub fn request(
    server: &Server,
    method: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nAccept: application/fhir+json\r\n",
        server.token
    )
    .into_bytes();
    if !body.is_empty() || method == "POST" || method == "PUT" {
        request.extend(
            format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            )
            .into_bytes(),
        );
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    request
}

pub fn get(server: &Server, target: &str, with_token: bool) -> Option<Answer> {
    let auth = if with_token {
        format!("Authorization: Bearer {}\r\n", server.token)
    } else {
        String::new()
    };
    exchange(
        server,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n").as_bytes(),
    )
}

pub fn api_get(server: &Server, target: &str) -> Answer {
    get(server, target, true).unwrap_or_else(|| panic!("GET {target}: no answer"))
}

pub fn post(server: &Server, target: &str, content_type: &str, body: &[u8]) -> Answer {
    exchange(server, &request(server, "POST", target, content_type, body))
        .unwrap_or_else(|| panic!("POST {target}: no answer"))
}

pub fn create(server: &Server, resource: Value) -> Value {
    let ty = resource["resourceType"].as_str().expect("type").to_string();
    let answer = post(
        server,
        &format!("/fhir/{ty}"),
        "application/fhir+json",
        resource.to_string().as_bytes(),
    );
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// VmRSS and VmHWM of the server process, in KiB.
pub fn memory(server: &Server) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn assert_alive(server: &mut Server) {
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server process died"
    );
    assert_eq!(api_get(server, "/readyz").status, 200);
}
