//! The command line: the configuration flags every command takes, the subcommands, and which
//! module runs each.

mod clients;
mod database;
mod demo;
mod keys;
mod profiles;
mod seed;
mod serve;
mod users;

use clap::{Parser, Subcommand};
use coplan::app::AppState;
use coplan::auth::AuthServer;
use coplan::config::{Config, Flags};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "coplan",
    version,
    about = "Coplan: a SMART-on-FHIR R4 server for one shared care plan per patient"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub flags: Flags,
}

#[derive(Subcommand)]
pub enum Command {
    /// Migrate the database and serve the FHIR API (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Recompute the search index of every current resource (after the search parameters changed).
    Reindex,
    /// Fill the database with synthetic patients, care plans, goals and PROMs.
    Seed(seed::SeedArgs),
    /// Manage the OAuth clients of the built-in SMART authorization server.
    Client {
        #[command(subcommand)]
        command: clients::ClientCommand,
    },
    /// Manage user accounts (linked to a Patient, Practitioner or RelatedPerson).
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Manage the token signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Seed a demo patient, clinician, related person, their accounts and demo apps, and print
    /// how to complete a SMART launch.
    Demo,
    /// The profiles writes and `$validate` are checked against.
    Profiles {
        #[command(subcommand)]
        command: profiles::ProfilesCommand,
    },
}

/// Run `command` (`serve` when none was given) with the resolved configuration.
pub async fn run(command: Option<Command>, config: Config) -> Result<(), String> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => database::migrate(config).await,
        Command::Reindex => database::reindex(config).await,
        Command::Seed(args) => seed::seed(config, args).await,
        Command::Client { command } => clients::run(config, command).await,
        Command::User { command } => users::run(config, command).await,
        Command::Keys { command } => keys::run(config, command).await,
        Command::Demo => demo::demo(config).await,
        Command::Profiles { command } => profiles::run(command),
    }
}

/// The authorization server over the configured database.
async fn auth_server(config: Config) -> Result<(AppState, Arc<AuthServer>), String> {
    let state = AppState::open(config).await.map_err(|e| e.to_string())?;
    let auth = state
        .auth
        .clone()
        .ok_or("the authorization server did not start")?;
    Ok((state, auth))
}
