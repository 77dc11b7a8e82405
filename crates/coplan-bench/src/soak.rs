//! Soak mode of the `careplan` scenario (issue 17 §5): the shared-care-plan workload runs for
//! `--duration` seconds in windows of `--soak-window` seconds, and after each window one sample
//! is taken: the window's requests/s, p50/p99 and errors, the server's VmRSS (`--server-pid`),
//! the size of watched files (`--watch-file`, e.g. the SQLite WAL) and the connections to the
//! server's PostgreSQL database (`--pg-connections-url`, counted with `psql`). Samples are
//! printed and, as CSV, written to `--soak-csv` (benches/soak_plot.py draws them); the end
//! prints the drift: mean RSS and p99 of the last fifth of the windows against the first fifth
//! (the very first window, which holds the warm-up growth, left out). With `--refresh-token`
//! each sample also counts the token refreshes of its window (failed ones are errors). Each plan
//! is renewed (a new patient, Goal and CarePlan) after [`RENEW_AFTER_ROUNDS`] rounds, so reads
//! stay bounded while the database grows as in real use.

use crate::careplan::{self, CarePlanReport};
use crate::client::Target;
use crate::crud::Tally;
use crate::load::{RunConfig, Seeded};
use crate::refresh::RefreshLog;
use crate::stats::read_memory;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rounds on one plan before the soak moves its task to a new patient with a fresh plan: the
/// plan read includes every PHQ-9 based on the plan, so without renewal the read would grow
/// all run long and p99 would drift by construction.
pub const RENEW_AFTER_ROUNDS: u64 = 20;

/// What the soak samples besides the workload's own figures.
pub struct SoakConfig {
    pub window: Duration,
    pub watch_files: Vec<PathBuf>,
    pub pg_connections_url: Option<String>,
    pub csv: Option<PathBuf>,
    /// The token refresher's log (`--refresh-token`): each window reports the refreshes made in
    /// it, and counts the failed ones among its errors.
    pub refresh_log: Option<Arc<Mutex<RefreshLog>>>,
}

/// One window's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Token refreshes made in the window (their failures are among `errors`).
    pub refreshes: u64,
    pub rss_mib: Option<f64>,
    pub file_mib: Vec<Option<f64>>,
    pub pg_connections: Option<u64>,
}

impl Sample {
    pub fn csv_header(files: usize) -> String {
        let mut h = "t_s,requests,rps,p50_ms,p99_ms,errors,refreshes,rss_mib".to_string();
        for i in 0..files {
            h.push_str(&format!(",file{i}_mib"));
        }
        h.push_str(",pg_connections");
        h
    }

    pub fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
        let mut line = format!(
            "{:.0},{},{:.1},{:.2},{:.2},{},{},{}",
            self.t_s,
            self.requests,
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.refreshes,
            opt(self.rss_mib)
        );
        for f in &self.file_mib {
            line.push(',');
            line.push_str(&opt(*f));
        }
        line.push(',');
        line.push_str(
            &self
                .pg_connections
                .map(|c| c.to_string())
                .unwrap_or_default(),
        );
        line
    }
}

/// The drift of a soak: means of the first and the last fifth of the windows (the first window
/// left out), as `(first, last)`; `None` with fewer than 6 samples or no values.
pub fn drift(samples: &[Sample], value: impl Fn(&Sample) -> Option<f64>) -> Option<(f64, f64)> {
    let steady = samples.get(1..)?;
    let fifth = steady.len() / 5;
    if fifth == 0 {
        return None;
    }
    let mean = |part: &[Sample]| {
        let values: Vec<f64> = part.iter().filter_map(&value).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    Some((
        mean(&steady[..fifth])?,
        mean(&steady[steady.len() - fifth..])?,
    ))
}

async fn pg_connections(url: &str) -> Option<u64> {
    let out = tokio::process::Command::new("psql")
        .args([
            url,
            "-Atc",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid()",
        ])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Run the soak; the whole run's report (every window merged) and the samples.
pub async fn run(
    name: &str,
    target: &Target,
    seeded: &[Seeded],
    cfg: &RunConfig,
    soak: &SoakConfig,
) -> (CarePlanReport, Vec<Sample>) {
    let target = Arc::new(target.clone());
    let (mut owned, mut failed) = careplan::set_up_all(name, &target, seeded, cfg).await;
    let mut csv = soak.csv.as_ref().and_then(|path| {
        std::fs::write(path, Sample::csv_header(soak.watch_files.len()) + "\n")
            .map_err(|e| eprintln!("soak: cannot write {}: {e}", path.display()))
            .ok()?;
        Some(path.clone())
    });
    let start = Instant::now() + cfg.warmup;
    let end = start + cfg.duration;
    let window = soak.window.max(Duration::from_secs(1));
    let mut all: Vec<[Tally; 3]> = Vec::new();
    let (mut rounds, mut samples) = (0u64, Vec::new());
    // The first window's tasks start now and measure from `start` (after the warm-up).
    let mut from = start;
    // The refresher's totals at the last sample.
    let mut refreshed = (0u64, 0u64);
    while from < end {
        let until = (from + window).min(end);
        let done = careplan::window(
            &target,
            owned,
            from,
            until,
            cfg.timeout,
            Some(RENEW_AFTER_ROUNDS),
        )
        .await;
        owned = done.owned;
        failed.extend(done.failed);
        let elapsed = done.stopped.saturating_duration_since(from).as_secs_f64();
        let part = careplan::report(name, done.tallies.clone(), done.rounds, elapsed);
        rounds += done.rounds;
        all.extend(done.tallies);
        let mut files = Vec::new();
        for f in &soak.watch_files {
            files.push(std::fs::metadata(f).ok().map(|m| mib(m.len())));
        }
        let pg = match &soak.pg_connections_url {
            Some(url) => pg_connections(url).await,
            None => None,
        };
        let totals = soak
            .refresh_log
            .as_ref()
            .and_then(|log| log.lock().ok().map(|l| (l.refreshes, l.errors)))
            .unwrap_or_default();
        let (refreshes, refresh_errors) = (totals.0 - refreshed.0, totals.1 - refreshed.1);
        refreshed = totals;
        let sample = Sample {
            t_s: until.saturating_duration_since(start).as_secs_f64(),
            requests: part.overall.requests,
            rps: part.overall.throughput(),
            p50_ms: f64::from(part.overall.p50_us) / 1000.0,
            p99_ms: f64::from(part.overall.p99_us) / 1000.0,
            errors: part.overall.errors + refresh_errors,
            refreshes,
            rss_mib: cfg
                .server_pid
                .and_then(read_memory)
                .map(|m| m.rss_kib as f64 / 1024.0),
            file_mib: files,
            pg_connections: pg,
        };
        println!("soak {}", sample.csv());
        if let Some(path) = &csv {
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, (sample.csv() + "\n").as_bytes())
                });
            if let Err(e) = appended {
                eprintln!("soak: cannot append to {}: {e}", path.display());
                csv = None;
            }
        }
        samples.push(sample);
        from = until;
    }
    let elapsed = end.saturating_duration_since(start).as_secs_f64();
    let mut report = careplan::report(name, all, rounds, elapsed);
    if let Some(first) = failed.first() {
        report.overall.errors += failed.len() as u64;
        report.overall.first_error = Some(first.clone());
    }
    for (what, value) in [
        ("RSS MiB", drift(&samples, |s| s.rss_mib)),
        ("p99 ms", drift(&samples, |s| Some(s.p99_ms))),
        ("req/s", drift(&samples, |s| Some(s.rps))),
    ] {
        if let Some((first, last)) = value {
            println!(
                "soak drift {what}: first fifth {first:.1}, last fifth {last:.1} ({:+.1}%)",
                100.0 * (last - first) / first.max(1e-9)
            );
        }
    }
    (report, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, rss: f64, p99: f64) -> Sample {
        Sample {
            t_s: t,
            requests: 10,
            rps: 1.0,
            p50_ms: 1.0,
            p99_ms: p99,
            errors: 0,
            refreshes: 1,
            rss_mib: Some(rss),
            file_mib: vec![Some(2.5), None],
            pg_connections: Some(4),
        }
    }

    #[test]
    fn drift_compares_the_first_and_last_fifth_without_the_first_window() {
        // The first window (RSS 10) is warm-up; then 10 windows: 20,20,…,30,30.
        let mut samples = vec![sample(10.0, 10.0, 1.0)];
        for i in 0..10 {
            samples.push(sample(
                20.0 + 10.0 * i as f64,
                if i < 5 { 20.0 } else { 30.0 },
                2.0,
            ));
        }
        assert_eq!(drift(&samples, |s| s.rss_mib), Some((20.0, 30.0)));
        assert_eq!(drift(&samples, |s| Some(s.p99_ms)), Some((2.0, 2.0)));
        assert_eq!(drift(&samples[..5], |s| s.rss_mib), None, "too few windows");
    }

    #[test]
    fn csv_lines_match_their_header() {
        let s = sample(30.0, 12.34, 5.0);
        assert_eq!(
            Sample::csv_header(2).split(',').count(),
            s.csv().split(',').count()
        );
        assert_eq!(s.csv(), "30,10,1.0,1.00,5.00,0,1,12.3,2.5,,4");
    }
}
