//! Hostile input over real TCP (issue 17 §3): the `coplan` binary on 127.0.0.1 with small
//! limits and timeouts, fed oversized, deep, huge, malformed, slow and flooding requests,
//! searches built to cost (`_count`, `:iterate` cycles, deep chains, pattern characters), XML
//! with entities, and more sign-in or token-less requests than the limits allow. Every answer
//! must be a 4xx with an OperationOutcome (an OAuth error on `/auth`), or the connection closed
//! for abuse of the protocol itself — never a 5xx — and the process's memory must stay bounded
//! (VmHWM and VmRSS from /proc). On SQLite, and on PostgreSQL when configured.

use coplan::testing::{backends, Backend, TestDatabase};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The limits the server runs with here: small enough to reach in a test.
const ENV: [(&str, &str); 12] = [
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
const MAX_PEAK_KIB: u64 = 256 * 1024;
const MAX_GROWTH_KIB: u64 = 128 * 1024;

struct Server {
    port: u16,
    child: Child,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as read off the wire.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(2_000).collect();
        write!(f, "{}\n\n{shown}", self.head)
    }
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// A 4xx OperationOutcome (the case named for the failure message).
    fn refused(&self, case: &str) -> Value {
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

    fn diagnostics(&self) -> String {
        self.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn command(dir: &std::path::Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coplan"));
    command.current_dir(dir).envs(ENV).env("COPLAN_LOG", "warn");
    if let Some(url) = database_url {
        command.env("COPLAN_DATABASE_URL", url);
    }
    command
}

fn start(db: &TestDatabase) -> Server {
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

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn try_connect(server: &Server) -> Option<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    Some(stream)
}

fn connect(server: &Server) -> TcpStream {
    try_connect(server).expect("connect")
}

/// Send `request` whole, read the answer until the server closes; `None` when the server
/// closed without answering (or is not listening yet).
fn exchange(server: &Server, request: &[u8]) -> Option<Answer> {
    let mut stream = try_connect(server)?;
    // The server may answer (413) and close before taking everything: not a failure here.
    let _ = stream.write_all(request);
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
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

fn request(
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

fn get(server: &Server, target: &str, with_token: bool) -> Option<Answer> {
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

fn api_get(server: &Server, target: &str) -> Answer {
    get(server, target, true).unwrap_or_else(|| panic!("GET {target}: no answer"))
}

fn post(server: &Server, target: &str, content_type: &str, body: &[u8]) -> Answer {
    exchange(server, &request(server, "POST", target, content_type, body))
        .unwrap_or_else(|| panic!("POST {target}: no answer"))
}

fn create(server: &Server, resource: Value) -> Value {
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
fn memory(server: &Server) -> (u64, u64) {
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

fn assert_alive(server: &mut Server) {
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server process died"
    );
    assert_eq!(api_get(server, "/readyz").status, 200);
}

#[test]
fn hostile_requests_are_refused_and_memory_stays_bounded() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in backends() {
        let db = runtime.block_on(TestDatabase::new(backend));
        let mut server = start(&db);
        let (rss_before, _) = memory(&server);
        bodies(&server);
        urls_and_headers(&server);
        slow_clients(&server);
        costly_searches(&server, backend);
        xml(&server);
        limits_by_address(&server);
        in_progress_per_client(&server);
        assert_alive(&mut server);
        let (rss_after, peak) = memory(&server);
        eprintln!(
            "{backend:?}: VmRSS {rss_before} KiB before, {rss_after} KiB after, VmHWM {peak} KiB"
        );
        assert!(peak < MAX_PEAK_KIB, "{backend:?}: VmHWM {peak} KiB");
        assert!(
            rss_after < rss_before + MAX_GROWTH_KIB,
            "{backend:?}: VmRSS grew from {rss_before} to {rss_after} KiB"
        );
        drop(server);
        runtime.block_on(db.cleanup());
    }
}

/// Oversized, deep, huge and malformed bodies.
fn bodies(server: &Server) {
    // Larger than max_body_bytes (8 MiB here): 413, without reading it all.
    let big = vec![b' '; 9 * 1024 * 1024];
    let answer = post(server, "/fhir/Patient", "application/fhir+json", &big);
    assert_eq!(answer.status, 413, "{answer:?}");
    answer.refused("oversized body");

    // 10,000 levels of nesting: refused before any parser recurses into them.
    let deep = format!(
        "{{\"resourceType\":\"Patient\",\"extension\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        deep.as_bytes(),
    );
    answer.refused("deep JSON");
    assert!(
        answer.diagnostics().contains("deeper than 64"),
        "{answer:?}"
    );
    let patch = format!("[{}]", "{\"a\":".repeat(10_000));
    let answer = exchange(
        server,
        &request(
            server,
            "PATCH",
            "/fhir/Patient/x",
            "application/json-patch+json",
            patch.as_bytes(),
        ),
    )
    .expect("answer");
    answer.refused("deep JSON Patch");

    // A million array elements within the body limit: numbers where strings belong, empty
    // objects, and a million (valid) given names.
    for (case, item) in [
        ("numbers", "0"),
        ("empty objects", "{}"),
        ("names", "\"a\""),
    ] {
        let items = vec![item; 1_000_000].join(",");
        let body = format!(
            "{{\"resourceType\":\"Patient\",\"name\":[{{\"family\":\"F\",\"given\":[{items}]}}]}}"
        );
        let answer = post(
            server,
            "/fhir/Patient",
            "application/fhir+json",
            body.as_bytes(),
        );
        answer.refused(&format!("a million {case}"));
    }

    // Not UTF-8, not JSON, NUL characters.
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        b"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}",
    );
    answer.refused("invalid UTF-8 body");
    let nul = json!({"resourceType": "Patient", "name": [{"family": "a\u{0}b"}]}).to_string();
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        nul.as_bytes(),
    );
    answer.refused("NUL in a string");
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+json",
        b"\x00\x00\x00",
    );
    answer.refused("NUL bytes");
    // A form body of 10,000 parameters to POST _search.
    let form: Vec<String> = (0..10_000).map(|n| format!("p{n}=1")).collect();
    let answer = post(
        server,
        "/fhir/Patient/_search",
        "application/x-www-form-urlencoded",
        form.join("&").as_bytes(),
    );
    answer.refused("10,000 form parameters");
    assert!(
        answer.diagnostics().contains("at most 100 parameters"),
        "{answer:?}"
    );
}

/// Malformed URLs and header floods.
fn urls_and_headers(server: &Server) {
    // 10,000 query parameters: a 400 within the 64 KiB head; a longer URL is a 431.
    let answer = api_get(
        server,
        &format!("/fhir/Patient?{}", vec!["a=1"; 10_000].join("&")),
    );
    answer.refused("10,000 query parameters");
    assert!(
        answer.diagnostics().contains("at most 100 parameters"),
        "{answer:?}"
    );
    let params: Vec<String> = (0..10_000).map(|n| format!("a{n}=1")).collect();
    let answer = get(server, &format!("/fhir/Patient?{}", params.join("&")), true);
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    for target in [
        "/fhir/Patient/%FF%FE",
        "/fhir/Patient?name=%C3",
        "/fhir/Patient?name=%zz",
        "/fhir/Patient?name=100%",
        "/fhir/Patient/%",
        "/fhir/Pat%ient",
    ] {
        api_get(server, target).refused(target);
    }
    // Raw bytes outside ASCII in the request line: hyper refuses the request itself.
    let raw = exchange(
        server,
        b"GET /fhir/Patient/\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        raw.as_ref().is_none_or(|a| (400..500).contains(&a.status)),
        "{raw:?}"
    );

    // Many headers, and one huge one: 431 (or closed) before any handler runs.
    let mut many = String::from("GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n");
    for n in 0..500 {
        many.push_str(&format!("X-Flood-{n}: {n}\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(server, many.as_bytes());
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    let huge = format!(
        "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let answer = exchange(server, huge.as_bytes());
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 431),
        "{answer:?}"
    );
    // A huge bearer token (under the header limit) is just an invalid token.
    let answer = exchange(
        server,
        format!(
            "GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
            "x".repeat(60_000)
        )
        .as_bytes(),
    )
    .expect("answer");
    assert!(answer.status == 401 || answer.status == 429, "{answer:?}");
}

/// Slowloris: headers or a body trickled in; the server gives up after its timeouts (1 s for
/// headers, 2 s for a body here).
fn slow_clients(server: &Server) {
    let mut stream = connect(server);
    stream
        .write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n")
        .expect("start");
    let started = Instant::now();
    let closed = loop {
        std::thread::sleep(Duration::from_millis(200));
        if stream.write_all(b"X-Slow: 1\r\n").is_err() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break false;
        }
        // A closed connection shows on reading too.
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => break true,
            Ok(_) => {} // an answer (408) before closing
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
    };
    assert!(closed, "slow headers were not cut off");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let mut stream = connect(server);
    let head = request(
        server,
        "POST",
        "/fhir/Patient",
        "application/fhir+json",
        b"",
    );
    let head = String::from_utf8(head)
        .expect("text")
        .replace("Content-Length: 0", "Content-Length: 100");
    stream.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    let trickle = stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut trickle = trickle;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            if trickle.write_all(b" ").is_err() {
                break;
            }
        }
    });
    let answer = read_answer(&mut stream);
    let took = started.elapsed();
    drop(stream);
    let _ = writer.join();
    if let Some(answer) = answer {
        assert_eq!(answer.status, 408, "{answer:?}");
        answer.refused("slow body");
    }
    assert!(
        took < Duration::from_secs(6),
        "a slow body was read for {took:?}"
    );
}

/// Searches built to cost: huge pages, include cycles, deep chains, pattern characters.
fn costly_searches(server: &Server, backend: Backend) {
    let alice = create(
        server,
        json!({"resourceType": "Patient", "name": [{"family": "Alice"}]}),
    );
    let alice_id = alice["id"].as_str().expect("id").to_string();
    // Two patients that link to each other, and observations on Alice that have each other
    // as members: every `:iterate` round finds the cycle again.
    let bob = create(
        server,
        json!({"resourceType": "Patient", "name": [{"family": "Bob"}],
               "link": [{"other": {"reference": format!("Patient/{alice_id}")}, "type": "seealso"}]}),
    );
    let bob_id = bob["id"].as_str().expect("id").to_string();
    let mut observations = Vec::new();
    for n in 0..25 {
        let mut obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": format!("o{n}")},
            "subject": {"reference": format!("Patient/{alice_id}")}});
        if let Some(previous) = observations.last() {
            obs["hasMember"] = json!([{"reference": format!("Observation/{previous}")}]);
        }
        let made = create(server, obs);
        observations.push(made["id"].as_str().expect("id").to_string());
    }

    let answer = api_get(server, "/fhir/Observation?_count=1000000");
    assert_eq!(
        answer.status, 200,
        "a page size above the maximum is capped: {answer:?}"
    );
    let bundle = answer.json();
    assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(25));

    // A cycle of links: a finite answer.
    let answer = api_get(
        server,
        &format!("/fhir/Patient?_id={bob_id}&_include:iterate=*"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["entry"].as_array().map(Vec::len), Some(2));
    // Everything reachable backwards from Alice: 25 observations and Bob, more than the 20
    // includes allowed here — a 400, not a silently shortened page.
    for target in [
        format!("/fhir/Patient?_id={alice_id}&_revinclude:iterate=*"),
        format!("/fhir/Patient?_id={alice_id}&_revinclude:iterate=*&_include:iterate=*"),
        "/fhir/Observation?_include:iterate=*&_revinclude:iterate=*".to_string(),
    ] {
        let answer = api_get(server, &target);
        answer.refused(&target);
        assert!(answer.diagnostics().contains("more than 20"), "{answer:?}");
    }

    // A chain ten levels deep.
    let chain = format!(
        "/fhir/Observation?patient.{}name=x",
        "link:Patient.".repeat(9)
    );
    api_get(server, &chain).refused("a 10-level chain");
    let has = format!("/fhir/Patient?{}name=x", "_has:Patient:link:".repeat(10));
    api_get(server, &has).refused("a 10-level _has");

    // Pattern characters are text: they match only themselves.
    for value in [
        ".*",
        "(a%2B)%2B%24",
        "%25",
        "_",
        "A%25",
        "%5C",
        "%27%20OR%201%3D1--",
    ] {
        for param in [
            "name",
            "name:contains",
            "name:exact",
            "family",
            "identifier",
        ] {
            let target = format!("/fhir/Patient?{param}={value}");
            let answer = api_get(server, &target);
            assert_eq!(answer.status, 200, "{backend:?} {target}: {answer:?}");
            assert_eq!(
                answer.json()["total"],
                0,
                "{backend:?} {target} matched something"
            );
        }
    }
    // NUL characters anywhere a search or an id is read: no FHIR string holds one, and
    // PostgreSQL text cannot (a 500 there before).
    for target in [
        "/fhir/Patient?name=%00",
        "/fhir/Patient?identifier=a%00b",
        "/fhir/Patient/%00",
        "/fhir/Patient?_page=1.%00",
    ] {
        api_get(server, target).refused(&format!("{backend:?} {target}"));
    }
    let answer = post(
        server,
        "/fhir/Patient/_search",
        "application/x-www-form-urlencoded",
        b"name=a%00",
    );
    answer.refused(&format!("{backend:?} NUL in a _search form"));
    let conditional = exchange(
        server,
        &request(
            server,
            "POST",
            "/fhir/Patient",
            "application/fhir+json",
            br#"{"resourceType":"Patient"}"#,
        )
        .splitn(2, |&b| b == b'\n')
        .collect::<Vec<_>>()
        .join(&b"\nIf-None-Exist: identifier=a%00\r\n"[..]),
    )
    .expect("answer");
    conditional.refused(&format!("{backend:?} NUL in If-None-Exist"));
}

/// XML bodies: entity expansion and deep nesting.
fn xml(server: &Server) {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"#;
    let answer = post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        laughs.as_bytes(),
    );
    answer.refused("billion laughs");
    // An undeclared entity without a DOCTYPE, and 10,000 nested elements.
    let undeclared =
        r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"#;
    post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        undeclared.as_bytes(),
    )
    .refused("undeclared entity");
    let deep = format!(
        "<Questionnaire xmlns=\"http://hl7.org/fhir\"><status value=\"draft\"/>{}{}</Questionnaire>",
        "<item>".repeat(10_000),
        "</item>".repeat(10_000)
    );
    post(
        server,
        "/fhir/Questionnaire",
        "application/fhir+xml",
        deep.as_bytes(),
    )
    .refused("deep XML");
    post(
        server,
        "/fhir/Patient",
        "application/fhir+xml",
        b"\xff\xfe<Patient/>",
    )
    .refused("XML, not UTF-8");
}

/// More sign-in and token-less requests from one address than the limits allow (sign-in:
/// burst 3, 1/s — one used by the token request; anonymous: burst 5, 1/s).
fn limits_by_address(server: &Server) {
    // NUL characters in the authorization server's forms: refused, never looked up.
    let form = "grant_type=client_credentials&client_id=a%00b&client_secret=x";
    let answer = exchange(
        server,
        format!(
            "POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .expect("answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["error"], "invalid_request", "{answer:?}");
    let form = "step=login&username=a%00&password=x";
    let answer = exchange(
        server,
        format!(
            "POST /auth/authorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .expect("answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    std::thread::sleep(Duration::from_secs(2)); // the sign-in burst refills (1/s, 3)

    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..8 {
        let answer = exchange(
            server,
            b"POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
              Authorization: Basic YWJ1c2VyOndyb25n\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\n\
              grant_type=client_credentials",
        )
        .expect("answer");
        statuses.push(answer.status);
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
    }
    let throttled = throttled.unwrap_or_else(|| panic!("no 429 from /auth/token: {statuses:?}"));
    assert!(
        statuses.contains(&401),
        "wrong secrets were refused first: {statuses:?}"
    );
    let error = throttled.json();
    assert_eq!(error["error"], "temporarily_unavailable", "{error}");
    let retry: u64 = throttled
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");

    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..12 {
        let answer = get(server, "/fhir/Patient", false).expect("answer");
        statuses.push(answer.status);
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
    }
    let throttled = throttled.unwrap_or_else(|| panic!("no 429 without a token: {statuses:?}"));
    assert_eq!(statuses[0], 401);
    let outcome = throttled.refused("token-less requests");
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    assert!(throttled.header("retry-after").is_some());
    // A valid token is not held back by its address's token-less requests.
    assert_eq!(api_get(server, "/fhir/Patient?_count=1").status, 200);
}

/// Two requests of one client stalled in their bodies fill its cap of 2: a third is a 429
/// while they last, and room comes back when they end (408). Each stalled request asks
/// `Expect: 100-continue`, so the server's `100 Continue` says it is in progress (its handler
/// reads the body) before the third is sent.
fn in_progress_per_client(server: &Server) {
    let head = request(
        server,
        "POST",
        "/fhir/Patient",
        "application/fhir+json",
        b"",
    );
    let head = String::from_utf8(head).expect("text").replace(
        "Content-Length: 0",
        "Content-Length: 10\r\nExpect: 100-continue",
    );
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(server);
            stream.write_all(head.as_bytes()).expect("head");
            let mut interim = [0u8; 25];
            stream.read_exact(&mut interim).expect("100 Continue");
            assert!(
                interim.starts_with(b"HTTP/1.1 100 Continue"),
                "{}",
                String::from_utf8_lossy(&interim)
            );
            stream
        })
        .collect();
    let third = api_get(server, "/fhir/Patient?_count=1");
    let outcome = third.refused("a third request in progress");
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_some());
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("in progress")),
        "{outcome}"
    );
    for mut stream in stalled {
        let answer = read_answer(&mut stream).expect("the stalled request is answered");
        assert_eq!(answer.status, 408, "{answer:?}");
    }
    assert_eq!(api_get(server, "/fhir/Patient?_count=1").status, 200);
}
