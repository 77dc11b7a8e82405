//! Key rotation across real processes: two `coplan serve` nodes on one database and
//! `coplan keys rotate` run beside them. Both nodes publish the new key (SMART App Launch 2.2
//! `jwks_uri`, RFC 7517) before either signs with it; tokens either node signs verify on the
//! other. On SQLite (a shared file) and on PostgreSQL when configured.

use coplan::testing::{backends, Backend, TestDatabase};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BASE_URL: &str = "http://coplan.test/fhir";
/// Small reload and cache times so the rotation plays out in seconds: publish ahead is
/// max-age + 2 reloads = 5 s. No limits by address: the story asks for tokens and key sets
/// from 127.0.0.1 faster than a sign-in limit allows (tests/tools/abuse.rs checks those).
const ENV: [(&str, &str); 5] = [
    ("COPLAN_KEY_RELOAD_SECONDS", "1"),
    ("COPLAN_JWKS_MAX_AGE_SECONDS", "3"),
    ("COPLAN_BASE_URL", BASE_URL),
    ("COPLAN_SIGN_IN_REQUESTS_PER_SECOND", "0"),
    ("COPLAN_ANONYMOUS_REQUESTS_PER_SECOND", "0"),
];

struct Node {
    port: u16,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &std::path::Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coplan"));
    command.current_dir(dir).envs(ENV);
    if let Some(url) = database_url {
        command.env("COPLAN_DATABASE_URL", url);
    }
    command
}

fn run(dir: &std::path::Path, database_url: Option<&str>, args: &[&str]) -> Output {
    let output = command(dir, database_url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run coplan");
    assert!(
        output.status.success(),
        "coplan {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn serve(dir: &std::path::Path, database_url: Option<&str>) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = command(dir, database_url)
        .env("COPLAN_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let node = Node { port, child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while request(port, "GET /readyz", &[], "").map(|r| r.status) != Some(200) {
        assert!(Instant::now() < deadline, "node did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    node
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`; bodies here are small).
fn request(port: u16, line: &str, headers: &[(&str, &str)], body: &str) -> Option<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut text = format!("{line} HTTP/1.1\r\nHost: coplan.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

fn jwks_kids(node: &Node) -> (Vec<String>, String) {
    let reply = request(node.port, "GET /auth/jwks", &[], "").expect("jwks");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let jwks: Value = serde_json::from_str(&reply.body).expect("JSON");
    let kids = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("").to_string())
        .collect();
    (kids, reply.head)
}

/// A client_credentials access token from `node`, and the key id it was signed with.
fn token(node: &Node, basic: &str) -> (String, String) {
    let reply = request(
        node.port,
        "POST /auth/token",
        &[
            ("Authorization", basic),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials&scope=system%2FGoal.rs",
    )
    .expect("token");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body: Value = serde_json::from_str(&reply.body).expect("JSON");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let kid = jsonwebtoken::decode_header(&token)
        .expect("a JWT")
        .kid
        .expect("a kid");
    (token, kid)
}

fn search_status(node: &Node, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    request(
        node.port,
        "GET /fhir/Goal",
        &[("Authorization", &bearer)],
        "",
    )
    .expect("search")
    .status
}

fn rotation_story(dir: &std::path::Path, database_url: Option<&str>) {
    let added = run(
        dir,
        database_url,
        &[
            "client",
            "add",
            "svc",
            "--type",
            "symmetric",
            "--scope",
            "system/*.rs",
        ],
    );
    let secret = String::from_utf8_lossy(&added.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown only now): "))
        .expect("the secret is printed")
        .to_string();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("svc:{secret}")
        )
    );
    let a = serve(dir, database_url);
    let b = serve(dir, database_url);
    let (before, head) = jwks_kids(&a);
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(head.contains("cache-control: public, max-age=3"), "{head}");
    assert_eq!(jwks_kids(&b).0, before, "both nodes share one key");
    let old_kid = before[0].clone();

    let rotated = run(dir, database_url, &["keys", "rotate"]);
    let rotated_at = Instant::now();
    let text = String::from_utf8_lossy(&rotated.stdout).into_owned();
    let new_kid = text
        .strip_prefix("new signing key ")
        .and_then(|t| t.split(':').next())
        .expect("the new kid is printed")
        .to_string();
    assert!(text.contains("signing in 5 s"), "{text}");

    // Right after the rotation both nodes still sign with the old key.
    let (old_token, kid) = token(&b, &basic);
    assert_eq!(
        kid, old_kid,
        "the new key does not sign before it is published"
    );

    // Within a reload both nodes publish the new key (and still the old one).
    let deadline = rotated_at + Duration::from_secs(3);
    let mut published = [false, false];
    while published != [true, true] {
        assert_eq!(
            token(&b, &basic).1,
            old_kid,
            "no token is signed with the new key before every node publishes it"
        );
        for (i, node) in [&a, &b].into_iter().enumerate() {
            let (kids, _) = jwks_kids(node);
            if kids.contains(&new_kid) {
                assert!(
                    kids.contains(&old_kid),
                    "the old key stays published: {kids:?}"
                );
                published[i] = true;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new key was not published on both nodes within 3 s: {published:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Then, once cached copies have expired, the new key signs, on either node.
    let deadline = rotated_at + Duration::from_secs(15);
    let new_token = loop {
        let (token, kid) = token(&b, &basic);
        if kid == new_kid {
            break token;
        }
        assert_eq!(kid, old_kid);
        assert!(
            Instant::now() < deadline,
            "the new key never started signing"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        token(&a, &basic).1,
        new_kid,
        "every node signs with the new key"
    );

    // Tokens of either key, signed by one node, verify on the other.
    assert_eq!(search_status(&a, &new_token), 200);
    assert_eq!(search_status(&a, &old_token), 200);
    assert_eq!(search_status(&b, &old_token), 200);
}

#[test]
fn a_rotated_key_is_published_by_every_node_before_any_signs_with_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => rotation_story(dir.path(), None),
            Backend::Postgres => {
                let db = runtime.block_on(TestDatabase::new(Backend::Postgres));
                let url = db.database_url().expect("a PostgreSQL URL");
                rotation_story(dir.path(), Some(&url));
                runtime.block_on(db.cleanup());
            }
        }
    }
}
