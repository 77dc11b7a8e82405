//! Logging with `tracing`: human-readable text or JSON lines, filtered by `Config::log_filter`
//! (or `RUST_LOG`). Secrets never reach the log: the config's `Debug` redacts them.
//!
//! The filter is `tracing_subscriber`'s `Targets` (levels by target) whenever the directives
//! are only that, and `EnvFilter` only for directives that name spans or fields. `EnvFilter`
//! takes a lock shared by every thread each time a span is made, entered, left or closed — for
//! each request's span, at every poll of the response — to look for span directives, even
//! when there are none; `Targets` decides from the callsite alone.

use crate::config::{Config, LogFormat};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// The filter the directives need, one of the two: `RUST_LOG` when set, not empty and valid,
/// else the configured filter; directives that do not parse leave `info`.
fn filter(rust_log: Option<String>, configured: &str) -> (Option<Targets>, Option<EnvFilter>) {
    let rust_log = rust_log.filter(|v| !v.trim().is_empty());
    for directives in rust_log.as_deref().into_iter().chain([configured]) {
        if let Some(targets) = levels_by_target(directives) {
            return (Some(targets), None);
        }
        if let Ok(env) = EnvFilter::try_new(directives) {
            return (None, Some(env));
        }
    }
    (
        Some(Targets::new().with_default(tracing::Level::INFO)),
        None,
    )
}

/// `directives` as `Targets` when every one of them is a level or `target=level` (with a
/// target of letters, digits, `_`, `-` and `::`), read as `EnvFilter` reads them: spaces
/// around each trimmed, empty ones skipped. `Targets`' own parser does neither, and takes a
/// span directive (`coplan[request]=debug`) for a target name, so anything else is `None` and
/// left to `EnvFilter`.
fn levels_by_target(directives: &str) -> Option<Targets> {
    let plain_target = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
    };
    let mut targets = Targets::new();
    let mut any = false;
    for piece in directives
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        targets = match piece.split_once('=') {
            Some((target, level)) => {
                let target = target.trim();
                if !plain_target(target) {
                    return None;
                }
                targets.with_target(target, level.trim().parse::<LevelFilter>().ok()?)
            }
            None => targets.with_default(piece.parse::<LevelFilter>().ok()?),
        };
        any = true;
    }
    any.then_some(targets)
}

/// Install the global subscriber once; later calls are no-ops.
pub fn init(config: &Config) {
    let (targets, env) = filter(std::env::var("RUST_LOG").ok(), &config.log_filter);
    // Colours only for a terminal, and not when NO_COLOR is set (no-color.org): a log file or
    // journal gets plain text (and formatting a request span's fields without escape codes is
    // cheaper on every request).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let subscriber = tracing_subscriber::registry().with(targets).with(env);
    let lines = || fmt::layer().with_ansi(colour).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => subscriber.with(lines().json()).try_init(),
        LogFormat::Text => subscriber.with(lines()).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::Level;

    fn targets(rust_log: Option<&str>, configured: &str) -> tracing_subscriber::filter::Targets {
        match filter(rust_log.map(str::to_string), configured) {
            (Some(t), None) => t,
            other => panic!("expected levels by target alone, got {other:?}"),
        }
    }

    #[test]
    fn levels_by_target_need_no_env_filter() {
        let t = targets(None, "info");
        assert!(t.would_enable("coplan::store", &Level::INFO));
        assert!(!t.would_enable("coplan::store", &Level::DEBUG));
        let t = targets(None, "warn,coplan=debug,sqlx=error");
        assert!(t.would_enable("coplan::rest::read", &Level::DEBUG));
        assert!(!t.would_enable("sqlx::query", &Level::WARN));
        assert!(t.would_enable("hyper", &Level::WARN));
        assert!(!t.would_enable("hyper", &Level::INFO));
    }

    #[test]
    fn rust_log_wins_unless_empty_or_invalid() {
        assert!(targets(Some("debug"), "info").would_enable("x", &Level::DEBUG));
        assert!(!targets(Some("  "), "info").would_enable("x", &Level::DEBUG));
        let t = targets(Some("coplan=[[["), "warn");
        assert!(t.would_enable("x", &Level::WARN));
        assert!(!t.would_enable("x", &Level::INFO));
    }

    #[test]
    fn spaces_and_empty_directives_read_as_env_filter_reads_them() {
        let t = targets(None, "info ");
        assert!(t.would_enable("coplan", &Level::INFO));
        let t = targets(None, "warn, coplan = debug");
        assert!(t.would_enable("coplan::store", &Level::DEBUG));
        assert!(!t.would_enable("hyper", &Level::INFO));
        let t = targets(None, "debug,");
        assert!(t.would_enable("coplan", &Level::DEBUG));
    }

    #[test]
    fn span_and_field_directives_keep_the_env_filter() {
        for directives in [
            "info,coplan[request{path=/fhir/metadata}]=debug",
            "info,coplan[request]=debug",
            "[request]=trace",
            "[{request_id}]=debug",
        ] {
            match filter(None, directives) {
                (None, Some(e)) => assert!(e.to_string().contains('['), "{directives}: {e}"),
                other => panic!("{directives} needs EnvFilter alone, got {other:?}"),
            }
        }
    }

    #[test]
    fn directives_that_do_not_parse_leave_info() {
        let t = targets(None, "coplan=[[[");
        assert!(t.would_enable("coplan", &Level::INFO));
        assert!(!t.would_enable("coplan", &Level::DEBUG));
    }
}
