//! `coplan client add`: register (or replace) an OAuth client of the built-in SMART
//! authorization server (`--introspect`: a resource server that may introspect every client's
//! tokens, RFC 7662 §4), and the Device that Provenance names as the app behind its changes; a
//! symmetric client's secret is printed once. `coplan client list` shows them.

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
        /// A resource server: may introspect every client's tokens at /auth/introspect
        /// (without it a confidential client introspects only its own tokens).
        #[arg(long)]
        introspect: bool,
    },
    /// List the registered clients, with the Device their changes are attributed to.
    List,
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
        introspect,
    } = command
    else {
        return list(config).await;
    };
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
    let (state, auth) = super::auth_server(config).await?;
    let device_name = name.clone().unwrap_or_else(|| id.clone());
    let spec = ClientSpec {
        client_id: id.clone(),
        name,
        kind,
        redirect_uris,
        scopes: scope,
        jwks,
        jwks_uri,
        introspect_any: introspect,
    };
    let secret = coplan::auth::admin::add_client(&auth, spec).await?;
    // The Device that Provenance names as the app that sent each change.
    state
        .fhir
        .register_app_device(&id, &device_name)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "registered client {id} (its changes are attributed to Device/{})",
        coplan::rest::provenance::device_id(&id)
    );
    if let Some(secret) = secret {
        println!("client secret (shown only now): {secret}");
    }
    Ok(())
}

/// `coplan client list`: id, kind, name, the Device in Provenance, the scopes, and
/// `introspect-any` for resource servers.
async fn list(config: Config) -> Result<(), String> {
    let (_state, auth) = super::auth_server(config).await?;
    let clients = auth.clients().await.map_err(|e| e.to_string())?;
    if clients.is_empty() {
        println!("no clients registered (coplan client add ID …)");
    }
    for client in clients {
        let kind = match client.kind {
            ClientKind::Public => "public",
            ClientKind::ConfidentialSymmetric => "symmetric",
            ClientKind::ConfidentialAsymmetric => "asymmetric",
        };
        let introspects = if client.introspect_any {
            "\tintrospect-any"
        } else {
            ""
        };
        println!(
            "{}\t{kind}\t{}\tDevice/{}\t{}{introspects}",
            client.client_id,
            client.name,
            coplan::rest::provenance::device_id(&client.client_id),
            client.scopes.join(" ")
        );
    }
    Ok(())
}
