//! The `coplan` binary: parse the command line, resolve the configuration, start logging, and
//! run a subcommand (`serve`, the default, or `migrate`).

use clap::{Parser, Subcommand};
use coplan::app::{self, AppState};
use coplan::config::{ConfigLayer, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "coplan",
    version,
    about = "Coplan: a SMART-on-FHIR R4 server for one shared care plan per patient"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (default: ./coplan.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Directory of the embedded SQLite database.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Public base URL of the FHIR endpoint (default http://LISTEN/fhir).
    #[arg(long, global = true)]
    base_url: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, global = true)]
    max_body_bytes: Option<usize>,
    /// The server's zone for dates without one: UTC or an offset such as +02:00.
    #[arg(long, global = true)]
    timezone: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the FHIR API (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Recompute the search index of every current resource (after the search parameters changed).
    Reindex,
    /// Fill the database with synthetic patients, care plans, goals and PROMs.
    Seed {
        /// How many patients (each with ~10-20 resources).
        #[arg(long, default_value_t = 1000)]
        patients: u64,
        /// Random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Transactions in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match resolve_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coplan: {e}");
            return ExitCode::from(2);
        }
    };
    coplan::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coplan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Reindex => reindex(config).await,
            Command::Seed {
                patients,
                seed,
                concurrency,
            } => seed_database(config, patients, seed, concurrency).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("coplan: {e}");
            ExitCode::FAILURE
        }
    }
}

fn resolve_config(cli: &Cli) -> Result<coplan::config::Config, String> {
    let file = match &cli.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        None => std::fs::read_to_string("coplan.toml").ok(),
    };
    let file_layer = file
        .as_deref()
        .map(ConfigLayer::from_toml)
        .transpose()?
        .unwrap_or_default();
    let env_layer = ConfigLayer::from_env(|k| std::env::var(k).ok())?;
    let cli_layer = ConfigLayer {
        listen: cli.listen.clone(),
        database_url: cli.database_url.clone(),
        data_dir: cli.data_dir.clone(),
        base_url: cli.base_url.clone(),
        max_body_bytes: cli.max_body_bytes,
        timezone: cli.timezone.clone(),
        log_format: cli.log_json.then_some(LogFormat::Json),
        ..Default::default()
    };
    ConfigLayer::default()
        .overridden_by(file_layer)
        .overridden_by(env_layer)
        .overridden_by(cli_layer)
        .resolve()
}

async fn migrate(config: coplan::config::Config) -> Result<(), String> {
    let store = coplan::store::open(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    tracing::info!(
        backend = store.backend_name(),
        "database schema is up to date"
    );
    Ok(())
}

async fn reindex(config: coplan::config::Config) -> Result<(), String> {
    let state = AppState::open(config).await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let done = state
        .fhir
        .reindex(|n| {
            eprintln!(
                "reindexed {n} resources ({:.0}s)",
                started.elapsed().as_secs_f64()
            )
        })
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "reindexed {done} resources in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed_database(
    config: coplan::config::Config,
    patients: u64,
    seed: u64,
    concurrency: usize,
) -> Result<(), String> {
    let state = AppState::open(config).await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let progress = move |done: u64, resources: u64| {
        let secs = started.elapsed().as_secs_f64();
        let width = 40;
        let filled = (done * width / patients.max(1)) as usize;
        eprintln!(
            "[{}{}] {done}/{patients} patients, {resources} resources, {secs:.0}s ({:.0} resources/s)",
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            resources as f64 / secs.max(0.001)
        );
    };
    let written = coplan::seed::seed(state.fhir.clone(), patients, seed, concurrency, progress)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "seeded {patients} patients, {written} resources in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(config: coplan::config::Config) -> Result<(), String> {
    tracing::info!(?config, "starting Coplan");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let state = AppState::open(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        backend = state.fhir.store.backend_name(),
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
