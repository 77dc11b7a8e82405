//! `coplan keys rotate`: publish a new token signing key now; it signs once every node and
//! cached JWK Set has it, and old keys stay published until their tokens expire.

use coplan::config::Config;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Start signing with a new key; old keys stay published until their tokens expire.
    Rotate,
}

pub async fn run(config: Config, command: KeysCommand) -> Result<(), String> {
    let KeysCommand::Rotate = command;
    let (_state, auth) = super::auth_server(config).await?;
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
