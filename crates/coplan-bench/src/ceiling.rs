//! The "ceiling" reference server: a bare axum app answering every request
//! with a fixed `application/fhir+json` body of a given size. It runs as a
//! child process (`coplan-bench ceiling-server`) so that, as with the real
//! server, load generator and server are separate processes.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Router;
use bytes::Bytes;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A JSON body of exactly `size` bytes (spaces only below the minimum).
pub fn fixed_body(size: usize) -> Bytes {
    let prefix = "{\"resourceType\":\"Basic\",\"id\":\"ceiling\",\"pad\":\"";
    let suffix = "\"}";
    if size < prefix.len() + suffix.len() {
        return Bytes::from(vec![b' '; size]);
    }
    let mut s = String::with_capacity(size);
    s.push_str(prefix);
    s.extend(std::iter::repeat_n('x', size - prefix.len() - suffix.len()));
    s.push_str(suffix);
    Bytes::from(s)
}

/// Entry point of the hidden `ceiling-server` subcommand. Prints the port on
/// stdout, then serves until stdin closes (parent gone) or SIGTERM/SIGINT.
pub fn serve(body_size: usize, workers: usize) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async move {
        let body = fixed_body(body_size);
        let app = Router::new().fallback(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, crate::client::FHIR_JSON)], body).into_response() }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        println!("{port}");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("serve: {e}"))
    })
}

async fn shutdown_signal() {
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = stdin_closed => {},
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// A running ceiling server child; killed when dropped.
pub struct CeilingChild {
    pub child: Child,
    pub port: u16,
}

impl CeilingChild {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        // Closing stdin asks it to exit; kill as a fallback.
        drop(self.child.stdin.take());
        let waited =
            tokio::time::timeout(std::time::Duration::from_secs(3), self.child.wait()).await;
        if waited.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Spawn `<this exe> ceiling-server --body-size N` and read its port.
pub async fn spawn(body_size: usize, workers: usize) -> Result<CeilingChild, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .arg("ceiling-server")
        .arg("--body-size")
        .arg(body_size.to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawning ceiling server: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "ceiling server has no stdout".to_string())?;
    let mut line = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    match read {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return Err("ceiling server exited before printing its port".into()),
        Ok(Err(e)) => return Err(format!("reading ceiling server port: {e}")),
        Err(_) => return Err("ceiling server did not print its port within 10 s".into()),
    }
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|e| format!("ceiling server printed {line:?}: {e}"))?;
    Ok(CeilingChild { child, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_body_has_exact_size_and_is_json() {
        for size in [0usize, 5, 49, 50, 51, 1234, 4096] {
            let b = fixed_body(size);
            assert_eq!(b.len(), size);
            if size >= 60 {
                serde_json::from_slice::<serde_json::Value>(&b).expect("json");
            }
        }
    }
}
