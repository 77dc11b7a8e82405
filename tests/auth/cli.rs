//! The authorization server's command line: `client add` of each type (and `--introspect`),
//! `client list`, `user add` with the password on standard input, `keys rotate`, `demo`, and
//! the loud warning of `--insecure-no-auth`.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn coplan(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coplan"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run coplan");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("stdin");
    }
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "coplan {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn clients_users_keys_and_demo_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    let public = coplan(
        path,
        &[
            "client",
            "add",
            "portal",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "openid patient/*.rs",
        ],
        None,
    );
    assert!(stdout(&public).contains("registered client portal"));
    assert!(stdout(&public).contains("Device/app-portal"));
    assert!(!stdout(&public).contains("secret"));

    let symmetric = coplan(
        path,
        &[
            "client",
            "add",
            "svc",
            "--type",
            "symmetric",
            "--scope",
            "system/*.rs",
        ],
        None,
    );
    let text = stdout(&symmetric);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown only now): "))
        .expect("the secret is printed once");
    assert!(secret.len() >= 43, "{secret}");

    let jwks = format!(
        "{}/tests/fixtures/smart-example-jwks-ES384.public.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let asymmetric = coplan(
        path,
        &[
            "client",
            "add",
            "backend",
            "--type",
            "asymmetric",
            "--jwks-file",
            &jwks,
            "--scope",
            "system/*.rs",
        ],
        None,
    );
    assert!(stdout(&asymmetric).contains("registered client backend"));
    // A resource server may introspect every client's tokens.
    coplan(
        path,
        &["client", "add", "rs", "--type", "symmetric", "--introspect"],
        None,
    );
    let listed = stdout(&coplan(path, &["client", "list"], None));
    for line in [
        "backend\tasymmetric\tbackend\tDevice/app-backend\tsystem/*.rs",
        "portal\tpublic\tportal\tDevice/app-portal\topenid patient/*.rs",
        "svc\tsymmetric\tsvc\tDevice/app-svc\tsystem/*.rs",
        "rs\tsymmetric\trs\tDevice/app-rs\t\tintrospect-any",
    ] {
        assert!(listed.lines().any(|l| l == line), "{line:?} in {listed}");
    }
    // An asymmetric client without keys is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_coplan"))
        .current_dir(path)
        .args(["client", "add", "nokeys", "--type", "asymmetric"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    // So is a public client that asks to introspect.
    let refused = Command::new(env!("CARGO_BIN_EXE_coplan"))
        .current_dir(path)
        .args([
            "client",
            "add",
            "pub-rs",
            "--redirect-uri",
            "https://app.example/cb",
            "--introspect",
        ])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("introspect"));

    let user = coplan(
        path,
        &["user", "add", "amy", "--fhir-user", "Patient/p1"],
        Some("pw of amy\n"),
    );
    assert!(stdout(&user).contains("created user amy"));
    assert!(
        !String::from_utf8_lossy(&user.stderr).contains("pw of amy"),
        "the password is never logged"
    );

    let rotated = coplan(path, &["keys", "rotate"], None);
    assert!(stdout(&rotated).contains("new signing key"));

    let demo = coplan(path, &["demo", "--listen", "127.0.0.1:18089"], None);
    let text = stdout(&demo);
    for expected in [
        "alex",
        "drlee",
        "jordan",
        "demo-portal",
        "demo-ehr",
        "http://127.0.0.1:18089/auth/authorize?",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
}

#[test]
fn insecure_no_auth_warns_loudly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_coplan"))
        .current_dir(dir.path())
        .args([
            "--insecure-no-auth",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Serving (not just listening) means the state, and its warning, are done.
    let healthy = || -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200")
    };
    while !healthy() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    let _ = server.wait();
    let mut log = String::new();
    if let Some(mut stderr) = server.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    assert!(
        log.contains("insecure-no-auth") && log.contains("WARN"),
        "{log}"
    );
}
