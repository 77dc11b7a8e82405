//! Slow clients and a client with too much in progress: slowloris headers and bodies are cut
//! off after their timeouts; a client's stalled requests fill its cap.

use super::wire::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Slowloris: headers or a body trickled in; the server gives up after its timeouts (1 s for
/// headers, 2 s for a body here).
pub fn slow_clients(server: &Server) {
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

/// Two requests of one client stalled in their bodies fill its cap of 2: a third is a 429
/// while they last, and room comes back when they end (408). Each stalled request asks
/// `Expect: 100-continue`, so the server's `100 Continue` says it is in progress (its handler
/// reads the body) before the third is sent.
pub fn in_progress_per_client(server: &Server) {
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
