//! `coplan user add`: create (or replace) a user account, the password read from standard
//! input, optionally linked to a FHIR user (`Patient/123`).

use coplan::config::Config;

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create (or replace) a user; the password is read from standard input.
    Add {
        username: String,
        /// The linked FHIR user, e.g. Patient/123.
        #[arg(long)]
        fhir_user: Option<String>,
    },
}

pub async fn run(config: Config, command: UserCommand) -> Result<(), String> {
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
    let (_state, auth) = super::auth_server(config).await?;
    auth.add_user(&username, password, fhir_user.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!();
    println!("created user {username}");
    Ok(())
}
