//! `coplan client add`: register (or replace) an OAuth client of the built-in SMART
//! authorization server; a symmetric client's secret is printed once.

use coplan::auth::admin::ClientSpec;
use coplan::auth::clients::ClientKind;
use coplan::config::Config;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ClientType {
    /// A browser or native app without a secret (PKCE only).
    Public,
    /// A confidential client with a generated secret (client_secret_basic).
    Symmetric,
    /// A confidential client with registered public keys (private_key_jwt).
    Asymmetric,
}

#[derive(clap::Subcommand)]
pub enum ClientCommand {
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

pub async fn run(config: Config, command: ClientCommand) -> Result<(), String> {
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
    let (_state, auth) = super::auth_server(config).await?;
    let spec = ClientSpec {
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
