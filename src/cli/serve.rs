//! `coplan serve` (the default): migrate, serve the FHIR API and the authorization server, and
//! stop cleanly on SIGINT or SIGTERM after the requests in flight.

use coplan::app::{self, AppState};
use coplan::config::Config;

pub async fn serve(config: Config) -> Result<(), String> {
    tracing::info!(?config, "starting Coplan");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let state = AppState::open(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        backend = state.fhir.backend_name(),
        "serving FHIR R4 at {}",
        config.base_url
    );
    app::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
