//! `coplan-bench`: command line, orchestration of the scenarios (seeding,
//! ceiling child process, load runs) and the table / JSON report.

mod careplan;
mod ceiling;
mod client;
mod crud;
mod crud_payload;
mod load;
mod payload;
mod refresh;
mod rng;
mod soak;
mod stats;

use clap::{Parser, Subcommand, ValueEnum};
use load::{Kind, RunConfig, Seeded};
use serde_json::json;
use stats::{read_memory, Summary};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "coplan-bench",
    about = "Load benchmark for a running Coplan (or any FHIR R4) server (loopback only)",
    args_conflicts_with_subcommands = true,
    after_help = "Scenarios: ceiling (bare axum child process serving a body the size of a read), \
read (GET Patient/{id}), vread (GET Patient/{id}/_history/1), create-careplan (POST a ~3.8 KB \
US Core CarePlan claiming its profile: validated against it), create-careplan-unprofiled (the same \
without meta.profile), update (PUT Patient/{id} with If-Match; tasks own disjoint ids), phq9 (POST \
a completed PHQ-9 QuestionnaireResponse: validated, scored, extracted, the patient's goal moved), \
the searches and transaction10 (a transaction of 10 Observations).\n\
crud: the cross-server CRUD mix (the shape of HealthSamurai's fhir-server-performance-benchmark), \
for any FHIR R4 server by --base, standard requests only: each connection loops creating a \
Patient then an Encounter, Condition, Observation, Procedure, MedicationRequest, \
AllergyIntolerance, Immunization and DiagnosticReport referencing it (and the encounter), \
reading each by id, updating each (PUT; If-Match with the ETag the server sent, plain PUT when \
it sent none) and deleting them in reverse order. Create may answer 200 or 201 (id from the body \
or Location), update 200 or 201, delete 200, 202 or 204. Reported per operation (requests, \
req/s, p50/p95/p99) and overall; needs no seeding (none is done when crud is the only \
scenario).\n\
careplan: the shared-care-plan workload. Setup (not timed): for each seeded patient a Goal \
(PHQ-9 below 5) and a US Core CarePlan whose goal references it. Each connection owns disjoint \
patients (like update) and loops over them: read-plan (GET CarePlan?patient={id}\
&_include=CarePlan:goal&_revinclude=Provenance:target&_revinclude=QuestionnaireResponse:based-on), \
co-edit (JSON Patch of the goal's note with If-Match on the version the read showed; a 412 is \
re-read and retried once and counted as a conflict, not an error), phq9 (POST a completed PHQ-9 \
based on the CarePlan, which moves its goal). Reported per operation (requests, req/s, \
p50/p95/p99) and overall. The plan read returns every PHQ-9 posted for the plan, so it grows \
with the run.\n\
Exit status: 0 when every scenario ran without errors, 1 on errors or a failed scenario, \
2 on bad usage."
)]
struct Cli {
    /// FHIR base URL of the server, e.g. http://127.0.0.1:8080/fhir (loopback only; any FHIR
    /// R4 server for the crud scenario).
    #[arg(long)]
    base: Option<String>,
    /// PID of the server process, to report its VmRSS / VmHWM after each scenario and its CPU
    /// time per request in the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Concurrent keep-alive connections (one task each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds per scenario (discarded).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Patients to create before the scenarios (not timed).
    #[arg(long, default_value_t = 1000)]
    seed_patients: usize,
    /// Instead of seeding, use this many patients already on the server (e.g. after
    /// `coplan seed --patients 100000`).
    #[arg(long)]
    existing_patients: Option<usize>,
    /// Scenarios to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceiling,read,vread,create-careplan,update"
    )]
    scenarios: Vec<Scenario>,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long)]
    bearer: Option<String>,
    /// Refresh the access token every --refresh-every seconds during the run with this refresh
    /// token (rotated: each answer's new one is used next), at --token-path, as --client-id
    /// (with --client-secret for a confidential client). Needs --bearer (the first token).
    #[arg(long, requires_all = ["bearer", "client_id"])]
    refresh_token: Option<String>,
    /// The client the refresh token was issued to.
    #[arg(long)]
    client_id: Option<String>,
    /// A confidential client's secret (sent with HTTP Basic).
    #[arg(long)]
    client_secret: Option<String>,
    /// The token endpoint's path on the server.
    #[arg(long, default_value = "/auth/token")]
    token_path: String,
    /// Seconds between token refreshes.
    #[arg(long, default_value_t = 60)]
    refresh_every: u64,
    /// Print a JSON summary on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Soak mode of the careplan scenario: run it for --duration in windows of this many
    /// seconds, one sample (req/s, p50/p99, errors, server RSS, watched files, PostgreSQL
    /// connections) per window.
    #[arg(long)]
    soak_window: Option<u64>,
    /// A file whose size each soak sample reports (e.g. the SQLite WAL); repeatable.
    #[arg(long)]
    watch_file: Vec<std::path::PathBuf>,
    /// Count the connections to this PostgreSQL database in each soak sample (with psql).
    #[arg(long)]
    pg_connections_url: Option<String>,
    /// Write the soak samples as CSV to this file (benches/soak_plot.py draws it).
    #[arg(long)]
    soak_csv: Option<std::path::PathBuf>,
    /// Per-request timeout in seconds (a timeout counts as an error).
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a fixed body on an ephemeral loopback port (used by the ceiling scenario).
    #[command(hide = true)]
    CeilingServer {
        #[arg(long)]
        body_size: usize,
        /// Runtime worker threads (default: available parallelism).
        #[arg(long)]
        workers: Option<usize>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Ceiling,
    Read,
    Vread,
    CreateCareplan,
    CreateCareplanUnprofiled,
    Update,
    SearchCareplan,
    SearchCareplanStatusDate,
    SearchGoal,
    SearchQr,
    SearchCareteam,
    SearchPlanBundle,
    SearchChain,
    Transaction10,
    Phq9,
    Crud,
    Careplan,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Ceiling => "ceiling",
            Scenario::Read => "read",
            Scenario::Vread => "vread",
            Scenario::CreateCareplan => "create-careplan",
            Scenario::CreateCareplanUnprofiled => "create-careplan-unprofiled",
            Scenario::Update => "update",
            Scenario::SearchCareplan => "search-careplan",
            Scenario::SearchCareplanStatusDate => "search-careplan-status-date",
            Scenario::SearchGoal => "search-goal",
            Scenario::SearchQr => "search-qr",
            Scenario::SearchCareteam => "search-careteam",
            Scenario::SearchPlanBundle => "search-plan-bundle",
            Scenario::SearchChain => "search-chain",
            Scenario::Transaction10 => "transaction10",
            Scenario::Phq9 => "phq9",
            Scenario::Crud => "crud",
            Scenario::Careplan => "careplan",
        }
    }

    /// The load engine's kind; `None` for `crud` and `careplan`, which have their own engines
    /// (crud.rs, careplan.rs).
    fn kind(self) -> Option<Kind> {
        Some(match self {
            Scenario::Ceiling => Kind::Ceiling,
            Scenario::Read => Kind::Read,
            Scenario::Vread => Kind::Vread,
            Scenario::CreateCareplan => Kind::CreateCarePlan,
            Scenario::CreateCareplanUnprofiled => Kind::CreateCarePlanUnprofiled,
            Scenario::Update => Kind::Update,
            Scenario::Transaction10 => Kind::Transaction10,
            Scenario::Phq9 => Kind::Phq9,
            Scenario::Crud | Scenario::Careplan => return None,
            search => load::SEARCHES
                .iter()
                .find(|(name, _)| *name == search.name())
                .map(|(_, template)| Kind::Search(template))
                .unwrap_or(Kind::Read),
        })
    }

    /// Whether the scenario runs against seeded (or existing) patients.
    fn needs_patients(self) -> bool {
        self != Scenario::Crud
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CeilingServer { body_size, workers }) = cli.command {
        return match ceiling::serve(body_size, workers.unwrap_or_else(default_workers)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ceiling-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coplan-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        tokio::select! {
            code = bench(cli) => code,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("coplan-bench: interrupted");
                ExitCode::from(130)
            }
        }
    })
}

/// Prints the report line to stdout, or to stderr when stdout carries JSON.
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
}

async fn bench(cli: Cli) -> ExitCode {
    let Some(base) = cli.base.as_deref() else {
        eprintln!("coplan-bench: --base URL is required (e.g. http://127.0.0.1:8080/fhir)");
        return ExitCode::from(2);
    };
    if cli.duration == 0 || cli.connections == 0 {
        eprintln!("coplan-bench: --duration and --connections must be at least 1");
        return ExitCode::from(2);
    }
    let target = match client::Target::parse(base, cli.bearer.as_deref()).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("coplan-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let out = Out { json: cli.json };
    let timeout = Duration::from_secs(cli.timeout.max(1));
    let cfg = RunConfig {
        connections: cli.connections,
        warmup: Duration::from_secs(cli.warmup),
        duration: Duration::from_secs(cli.duration),
        timeout,
        server_pid: cli.server_pid,
    };
    let mut scenarios = cli.scenarios.clone();
    scenarios.dedup();

    out.line(&format!(
        "coplan-bench: base {base} ({}), {} connections, {}s + {}s warm-up per scenario",
        target.addr, cli.connections, cli.duration, cli.warmup
    ));

    // Seeding (not timed as part of any scenario), unless no scenario needs patients.
    let needs_patients = scenarios.iter().any(|s| s.needs_patients());
    let mut seeded: Vec<Seeded> = Vec::new();
    let mut seed_errors = 0usize;
    if !needs_patients {
        // Nothing to seed: the crud scenario creates what it uses.
    } else if let Some(count) = cli.existing_patients {
        match load::existing_patients(&target, count, timeout).await {
            Ok(found) => {
                out.line(&format!("using {} existing patients", found.len()));
                seeded = found;
            }
            Err(e) => {
                eprintln!("coplan-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else if !scenarios.is_empty() && cli.seed_patients > 0 {
        let t0 = Instant::now();
        let (ok, errs) = load::seed(&target, cli.seed_patients, cli.connections, timeout).await;
        let secs = t0.elapsed().as_secs_f64();
        seed_errors = errs.len();
        out.line(&format!(
            "seeded {} of {} patients in {:.2}s ({:.0}/s), {} errors",
            ok.len(),
            cli.seed_patients,
            secs,
            ok.len() as f64 / secs.max(1e-9),
            errs.len()
        ));
        if let Some(first) = errs.first() {
            eprintln!("seeding: first error: {first}");
        }
        seeded = ok;
    }
    if needs_patients && seeded.is_empty() {
        eprintln!("coplan-bench: no seeded patients; the scenarios need some");
        return ExitCode::FAILURE;
    }
    let owning = [Scenario::Update, Scenario::Careplan];
    if scenarios.iter().any(|s| owning.contains(s)) && seeded.len() < cli.connections {
        eprintln!(
            "coplan-bench: note: only {} patients for {} update/careplan tasks; some tasks will idle",
            seeded.len(),
            cli.connections
        );
    }

    let mut summaries: Vec<Summary> = Vec::new();
    // The JSON of each scenario, in order (crud's and careplan's with their operations).
    let mut scenario_json = Vec::new();
    // The per-operation tables of crud and careplan, printed after the main table.
    let mut op_tables: Vec<Vec<String>> = Vec::new();
    // Token refreshes run beside the scenarios, for all of them (not during seeding).
    let refresh_log = Arc::new(Mutex::new(refresh::RefreshLog::default()));
    let refresher = cli.refresh_token.as_ref().map(|token| {
        let config = refresh::RefreshConfig {
            token_path: cli.token_path.clone(),
            client_id: cli.client_id.clone().unwrap_or_default(),
            client_secret: cli.client_secret.clone(),
            refresh_token: token.clone(),
            every: Duration::from_secs(cli.refresh_every.max(1)),
        };
        let run_for = (cfg.warmup + cfg.duration) * u32::try_from(scenarios.len()).unwrap_or(1);
        tokio::spawn(refresh::run(
            Arc::new(target.clone()),
            target.bearer.clone(),
            config,
            refresh_log.clone(),
            Instant::now() + run_for + Duration::from_secs(3600),
            timeout,
        ))
    });
    let mut failed = false;
    out.line("");
    out.line(&Summary::header());
    for sc in &scenarios {
        let (summary, json) = match sc {
            Scenario::Ceiling => match run_ceiling(&target, &mut seeded, &cfg, timeout).await {
                Ok(s) => (s, None),
                Err(e) => {
                    eprintln!("ceiling: {e}");
                    failed = true;
                    continue;
                }
            },
            Scenario::Crud => {
                let mut report = crud::run(sc.name(), &target, &cfg).await;
                report.overall.memory = cli.server_pid.and_then(read_memory);
                op_tables.push(report.table());
                (report.overall.clone(), Some(report.to_json()))
            }
            Scenario::Careplan => {
                let mut report = match cli.soak_window {
                    Some(window) => {
                        let soak = soak::SoakConfig {
                            window: Duration::from_secs(window),
                            watch_files: cli.watch_file.clone(),
                            pg_connections_url: cli.pg_connections_url.clone(),
                            csv: cli.soak_csv.clone(),
                            refresh_log: refresher.is_some().then(|| refresh_log.clone()),
                        };
                        soak::run(sc.name(), &target, &seeded, &cfg, &soak).await.0
                    }
                    None => careplan::run(sc.name(), &target, &seeded, &cfg).await,
                };
                report.overall.memory = cli.server_pid.and_then(read_memory);
                op_tables.push(report.table());
                (report.overall.clone(), Some(report.to_json()))
            }
            other => {
                let Some(kind) = other.kind() else {
                    eprintln!("{}: no load engine", other.name());
                    failed = true;
                    continue;
                };
                let mut s = load::run(kind, other.name(), &target, &mut seeded, &cfg).await;
                s.memory = cli.server_pid.and_then(read_memory);
                (s, None)
            }
        };
        scenario_json.push(json.unwrap_or_else(|| summary.to_json()));
        out.line(&summary.line());
        failed |= summary.errors > 0;
        if let Some(e) = &summary.first_error {
            eprintln!("  {}: first error: {e}", summary.name);
        }
        summaries.push(summary);
    }

    if let Some(handle) = refresher {
        handle.abort();
        let log = refresh_log.lock().map(|l| l.clone()).unwrap_or_default();
        out.line(&log.summary());
        failed |= log.errors > 0;
    }

    let rate = |name: &str| {
        summaries
            .iter()
            .find(|s| s.name == name)
            .map(Summary::throughput)
    };
    let ratio = match (rate("read"), rate("ceiling")) {
        (Some(r), Some(c)) if c > 0.0 => Some(100.0 * r / c),
        _ => None,
    };
    out.line("");
    for table in &op_tables {
        for line in table {
            out.line(line);
        }
        out.line("");
    }
    if let Some(pct) = ratio {
        out.line(&format!(
            "read throughput is {pct:.1}% of the ceiling ({:.0} vs {:.0} req/s)",
            rate("read").unwrap_or(0.0),
            rate("ceiling").unwrap_or(0.0)
        ));
    }
    if let Some(u) = summaries.iter().find(|s| s.name == "update") {
        if u.conflicts > 0 {
            out.line(&format!(
                "WARNING: {} update(s) got 412 although every task owns disjoint ids",
                u.conflicts
            ));
        }
    }

    if cli.json {
        let report = json!({
            "base": base,
            "connections": cli.connections,
            "duration_s": cli.duration,
            "warmup_s": cli.warmup,
            "seed_patients": cli.seed_patients,
            "seeded": seeded.len(),
            "seed_errors": seed_errors,
            "server_pid": cli.server_pid,
            "scenarios": scenario_json,
            "read_vs_ceiling_pct": ratio,
        });
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("coplan-bench: json: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Size the ceiling body with one GET of a seeded patient, start the ceiling
/// server child, load it like the read scenario, and stop it.
async fn run_ceiling(
    target: &client::Target,
    seeded: &mut [Seeded],
    cfg: &RunConfig,
    timeout: Duration,
) -> Result<Summary, String> {
    let first = seeded
        .first()
        .ok_or_else(|| "no seeded patient to size the body".to_string())?;
    let size = load::measure_read_body(target, &first.id, timeout)
        .await
        .map_err(|e| format!("measuring read body: {e}"))?;
    let child = ceiling::spawn(size, default_workers()).await?;
    let ceiling_target = target.with_port(child.port);
    let mut s = load::run(Kind::Ceiling, "ceiling", &ceiling_target, seeded, cfg).await;
    s.memory = child.pid().and_then(read_memory);
    child.stop().await;
    Ok(s)
}
