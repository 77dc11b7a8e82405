//! The `coplan` binary itself: `migrate`, `serve` on the embedded default with a config file and
//! environment layered over it, readiness, and a clean exit on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn migrate_then_serve_then_stop_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = env!("CARGO_BIN_EXE_coplan");

    let migrate = Command::new(binary)
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .expect("run migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(
        dir.path().join("data/coplan.db").exists(),
        "the default SQLite file is created under ./data"
    );

    // The file sets one port, the environment overrides it: the environment must win.
    let port = free_port();
    std::fs::write(
        dir.path().join("coplan.toml"),
        "listen = \"127.0.0.1:1\"\nlog_filter = \"info\"\n",
    )
    .expect("config");
    let mut server = Command::new(binary)
        .current_dir(dir.path())
        .env("COPLAN_LISTEN", format!("127.0.0.1:{port}"))
        // Colour is off because stderr is a pipe, not because the environment says so.
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Some(response) = http_get(port, "/readyz") {
            break response;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("\"database\":\"sqlite\""), "{ready}");
    let metadata = http_get(port, "/fhir/metadata").expect("metadata");
    assert!(
        metadata.contains(&format!("\"url\":\"http://127.0.0.1:{port}/fhir\"")),
        "{metadata}"
    );

    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .expect("kill");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    if let Some(mut stderr) = server.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    assert!(status.success(), "exit {status:?}: {log}");
    assert!(log.contains("shut down cleanly"), "{log}");
    // Written to a pipe, not a terminal: plain text, no colour escapes.
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_coplan"))
        .current_dir(dir.path())
        .args(["--listen", "not-an-address", "migrate"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen address"));
}
