//! `coplan migrate` (bring the schema up to date) and `coplan reindex` (recompute every
//! current resource's search index).

use coplan::app::AppState;
use coplan::config::Config;

pub async fn migrate(config: Config) -> Result<(), String> {
    let store = coplan::store::open(config.database_url.as_str(), config.current_cache_bytes())
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    tracing::info!(
        backend = store.backend_name(),
        "database schema is up to date"
    );
    Ok(())
}

pub async fn reindex(config: Config) -> Result<(), String> {
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
