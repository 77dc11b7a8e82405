//! Logging with `tracing`: human-readable text or JSON lines, filtered by `Config::log_filter`
//! (or `RUST_LOG`). Secrets never reach the log: the config's `Debug` redacts them.

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Install the global subscriber once; later calls are no-ops.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal, and not when NO_COLOR is set (no-color.org): a log file or
    // journal gets plain text (and formatting a request span's fields without escape codes is
    // cheaper on every request).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
