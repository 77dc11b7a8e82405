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
    /// Serve the FHIR API WITHOUT access control (local experiments only; env
    /// COPLAN_INSECURE_NO_AUTH=true).
    #[arg(long, global = true)]
    insecure_no_auth: bool,
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
    /// Manage the OAuth clients of the built-in SMART authorization server.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage user accounts (linked to a Patient, Practitioner or RelatedPerson).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Seed a demo patient, clinician, related person, their accounts and demo apps, and print
    /// how to complete a SMART launch.
    Demo,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ClientType {
    /// A browser or native app without a secret (PKCE only).
    Public,
    /// A confidential client with a generated secret (client_secret_basic).
    Symmetric,
    /// A confidential client with registered public keys (private_key_jwt).
    Asymmetric,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register (or replace) a client. A symmetric client's secret is printed once.
    Add {
        /// The client_id.
        id: String,
        #[arg(long, value_enum, default_value = "public")]
        r#type: ClientType,
        /// A display name for the consent page.
        #[arg(long)]
        name: Option<String>,
        /// An exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The scopes the client may be granted, space separated (e.g. "openid fhirUser
        /// launch/patient patient/*.rs offline_access").
        #[arg(long, default_value = "")]
        scope: String,
        /// The client's public keys as a JWK Set file (asymmetric clients).
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        /// Where the client publishes its JWK Set (asymmetric clients; http only).
        #[arg(long)]
        jwks_uri: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create (or replace) a user; the password is read from standard input.
    Add {
        username: String,
        /// The linked FHIR user, e.g. Patient/123.
        #[arg(long)]
        fhir_user: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; old keys stay published until their tokens expire.
    Rotate,
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
            Command::Client { command } => client_command(config, command).await,
            Command::User { command } => user_command(config, command).await,
            Command::Keys {
                command: KeysCommand::Rotate,
            } => rotate_keys(config).await,
            Command::Demo => demo(config).await,
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
        insecure_no_auth: cli.insecure_no_auth.then_some(true),
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
    let state = AppState::open(config)
        .await
        .map_err(|e| e.to_string())?
        .without_provenance();
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

/// The authorization server over the configured database.
async fn auth_server(
    config: coplan::config::Config,
) -> Result<(AppState, std::sync::Arc<coplan::auth::AuthServer>), String> {
    let state = AppState::open(config).await.map_err(|e| e.to_string())?;
    let auth = state
        .auth
        .clone()
        .ok_or("the authorization server did not start")?;
    Ok((state, auth))
}

async fn client_command(
    config: coplan::config::Config,
    command: ClientCommand,
) -> Result<(), String> {
    use coplan::auth::clients::ClientKind;
    let ClientCommand::Add {
        id,
        r#type,
        name,
        redirect_uris,
        scope,
        jwks_file,
        jwks_uri,
    } = command;
    let jwks = jwks_file
        .map(|path| {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        })
        .transpose()?;
    let kind = match r#type {
        ClientType::Public => ClientKind::Public,
        ClientType::Symmetric => ClientKind::ConfidentialSymmetric,
        ClientType::Asymmetric => ClientKind::ConfidentialAsymmetric,
    };
    let (_state, auth) = auth_server(config).await?;
    let spec = coplan::auth::admin::ClientSpec {
        client_id: id.clone(),
        name,
        kind,
        redirect_uris,
        scopes: scope,
        jwks,
        jwks_uri,
    };
    let secret = coplan::auth::admin::add_client(&auth, spec).await?;
    println!("registered client {id}");
    if let Some(secret) = secret {
        println!("client secret (shown only now): {secret}");
    }
    Ok(())
}

async fn user_command(config: coplan::config::Config, command: UserCommand) -> Result<(), String> {
    let UserCommand::Add {
        username,
        fhir_user,
    } = command;
    eprint!("password for {username}: ");
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let (_state, auth) = auth_server(config).await?;
    auth.add_user(&username, password, fhir_user.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!();
    println!("created user {username}");
    Ok(())
}

async fn rotate_keys(config: coplan::config::Config) -> Result<(), String> {
    let (_state, auth) = auth_server(config).await?;
    let keep = auth
        .settings
        .access_token_seconds
        .max(auth.settings.id_token_seconds)
        + 300;
    let ahead = auth.settings.key_publish_ahead_seconds();
    let der = coplan::auth::keys::generate_key()
        .await
        .map_err(|e| e.to_string())?;
    let rotation = coplan::auth::keys::rotate(auth.store.as_ref(), &der, auth.now(), ahead, keep)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "new signing key {}: published now, signing in {ahead} s; previous keys stay published for {} s",
        rotation.kid,
        rotation.old_keys_expire_at - auth.now()
    );
    Ok(())
}

async fn demo(config: coplan::config::Config) -> Result<(), String> {
    let (state, _auth) = auth_server(config).await?;
    let text = coplan::demo::run(&state).await?;
    println!("{text}");
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
