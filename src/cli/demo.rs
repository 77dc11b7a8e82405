//! `coplan demo`: seed a demo patient, clinician, related person, their accounts and demo
//! apps, and print how to complete a SMART launch.

use coplan::config::Config;

pub async fn demo(config: Config) -> Result<(), String> {
    let (state, _auth) = super::auth_server(config).await?;
    let text = coplan::demo::run(&state).await?;
    println!("{text}");
    Ok(())
}
