//! Connections themselves (issue 17 §3, H1): one address opening more than its cap gets the
//! extra ones closed at once, and its places back when it closes some; a client that sends
//! requests and never reads the answers has its connection closed after the write timeout,
//! while another client is served meanwhile.

use super::wire::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The settings of this server: a small cap per address, a short write timeout, and headers
/// given long enough that idle connections stay open while they are counted.
pub const ENV: [(&str, &str); 4] = [
    ("COPLAN_MAX_CONNECTIONS_PER_ADDRESS", "8"),
    ("COPLAN_RESPONSE_WRITE_TIMEOUT_SECONDS", "2"),
    ("COPLAN_HEADER_READ_TIMEOUT_SECONDS", "20"),
    ("COPLAN_ANONYMOUS_REQUESTS_PER_SECOND", "0"),
];
const CAP: usize = 8;

/// Has the server closed `stream` (EOF or reset), rather than kept it open and silent? Asked
/// without waiting: the connections have had their time to be accepted.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let closed = match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server sent something unasked"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// A request on a held connection is answered.
fn served(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let answer = read_answer(&mut stream).expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Open `count` connections and sort them into those the server keeps and those it closed.
fn open(server: &Server, count: usize) -> (Vec<TcpStream>, usize) {
    let streams: Vec<TcpStream> = (0..count).map(|_| connect(server)).collect();
    std::thread::sleep(Duration::from_millis(500)); // the server accepts them all
    let mut kept = Vec::new();
    let mut closed = 0;
    for mut stream in streams {
        if closed_by_server(&mut stream) {
            closed += 1;
        } else {
            kept.push(stream);
        }
    }
    (kept, closed)
}

/// Open `count` connections of which the server should keep `keep`; tried again (the new ones
/// closed first) while connections that just ended may still hold their places — the server
/// gives a place back a moment after the client sees the close.
fn open_expecting(server: &Server, count: usize, keep: usize) -> Vec<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (kept, closed) = open(server, count);
        if (kept.len(), closed) == (keep, count - keep) {
            return kept;
        }
        assert!(
            Instant::now() < deadline,
            "{count} connections from one address: {} kept, {closed} closed; expected {keep} kept",
            kept.len()
        );
        drop(kept);
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn capped_per_address(server: &Server) {
    let mut kept = open_expecting(server, CAP + 5, CAP);
    // Every kept connection is served; one ending gives its place back.
    served(kept.pop().expect("one"));
    kept.extend(open_expecting(server, 2, 1));
    for stream in kept {
        served(stream);
    }
    drop(open_expecting(server, CAP, CAP));
}

/// Pipelines far more answers than the sockets' buffers hold and never reads: after the write
/// timeout (2 s) the server closes the connection, so reading afterwards ends early (at EOF,
/// or a reset: the server had unread requests); meanwhile another client is served. The
/// buffers fill within a fraction of a second on an idle machine (an answer takes ~20 ms in a
/// debug build), but a loaded one may take longer to fill them: a second try waits longer.
pub fn stalled_reader(server: &Server, runtime: &tokio::runtime::Runtime) {
    // The connections of the test before may still hold their places for a moment after
    // they closed: ask until there is room.
    let deadline = Instant::now() + Duration::from_secs(15);
    let one = loop {
        let answer = exchange(
            server,
            b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        match answer {
            Some(answer) => break answer,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            None => panic!("no room for one connection after 15 s"),
        }
    };
    assert_eq!(one.status, 200, "{one:?}");
    let size = one.body.len().max(1);
    // 64 MiB of answers: far beyond the socket buffers of both ends.
    let count = (64 << 20) / size + 1;
    let wanted = count * size;
    let mut tries = Vec::new();
    for wait in [5, 20] {
        let read = stall(server, runtime, count, Duration::from_secs(wait));
        // A connection refused at accept reads nothing: that would prove nothing here.
        assert!(read > 0, "the stalled reader's connection was never served");
        tries.push(read);
        if read < wanted / 2 {
            return;
        }
    }
    panic!("the server kept writing to a client that did not read: {tries:?} of {wanted} bytes");
}

/// One stalled reader: the bytes it could read after not reading for `wait`.
fn stall(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    count: usize,
    wait: Duration,
) -> usize {
    let mut stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        // A fixed receive buffer: the kernel does not grow it while nobody reads.
        socket
            .set_recv_buffer_size(1 << 16)
            .expect("a small buffer");
        let address = format!("127.0.0.1:{}", server.port)
            .parse()
            .expect("address");
        let stream = socket.connect(address).await.expect("connect");
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        stream
    });
    let request = b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n".repeat(count);
    stream.write_all(&request).expect("the requests");

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        get(server, "/readyz", false).expect("answer").status,
        200,
        "another client is served meanwhile"
    );
    std::thread::sleep(wait);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut total = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    let ended = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break "EOF",
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("reading: {e}"),
        }
    };
    eprintln!("stalled reader, after {wait:?}: {total} bytes, then {ended}");
    total
}
