//! `coplan seed`: fill the configured database with synthetic patients, care plans, goals and
//! PROMs, showing progress.

use coplan::app::AppState;
use coplan::config::Config;

#[derive(clap::Args)]
pub struct SeedArgs {
    /// How many patients (each with ~10-20 resources).
    #[arg(long, default_value_t = 1000)]
    patients: u64,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Transactions in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

pub async fn seed(config: Config, args: SeedArgs) -> Result<(), String> {
    let SeedArgs {
        patients,
        seed,
        concurrency,
    } = args;
    // A bulk load: no Provenance (said loudly); the HTTP API always records it.
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
