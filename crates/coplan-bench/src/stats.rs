//! Latency statistics: exact nearest-rank percentiles over the merged per-task
//! microsecond samples, the per-scenario result record, and server memory
//! readings from `/proc/<pid>/status`.

use serde_json::{json, Value};

/// Nearest-rank percentile of an ascending-sorted slice (`p` in 0..=100).
/// Returns 0 for an empty slice. p=100 is the maximum, p=0 the minimum.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    sorted[idx]
}

/// Merge per-task latency vectors into one sorted vector.
pub fn merge_sorted(parts: Vec<Vec<u32>>) -> Vec<u32> {
    let total = parts.iter().map(Vec::len).sum();
    let mut all = Vec::with_capacity(total);
    for p in parts {
        all.extend(p);
    }
    all.sort_unstable();
    all
}

/// Resident memory of a process, in KiB, as reported by the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Parse `VmRSS` / `VmHWM` out of the text of `/proc/<pid>/status`.
pub fn parse_proc_status(text: &str) -> Option<Memory> {
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        let field = |prefix: &str| -> Option<u64> {
            line.strip_prefix(prefix)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        if let Some(v) = field("VmRSS:") {
            rss = Some(v);
        } else if let Some(v) = field("VmHWM:") {
            hwm = Some(v);
        }
    }
    Some(Memory {
        rss_kib: rss?,
        hwm_kib: hwm?,
    })
}

/// Read the memory of `pid`; `None` if the process is gone or unreadable.
pub fn read_memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_proc_status(&text)
}

/// CPU time a process has used so far (user + system, every thread, those ended included), in
/// microseconds: fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of 10 ms (Linux's
/// USER_HZ is 100 on every architecture it exports to user space).
pub fn parse_proc_stat_cpu_us(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state (3), then fields 4..=13, then utime (14) and stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

/// The CPU time `pid` has used so far, in microseconds; `None` if it is gone or unreadable.
pub fn read_cpu_us(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu_us(&text)
}

/// The server's CPU time over a scenario's measured window: read when the window opens and
/// when it closes (each at its instant, on its own task, whatever the load tasks are doing).
pub struct CpuWindow {
    start: Option<tokio::task::JoinHandle<Option<u64>>>,
    end: Option<tokio::task::JoinHandle<Option<u64>>>,
}

impl CpuWindow {
    /// Start watching `pid` (nothing without one) over `from..until`.
    pub fn watch(pid: Option<u32>, from: std::time::Instant, until: std::time::Instant) -> Self {
        let at = |instant: std::time::Instant| {
            pid.map(|pid| {
                tokio::spawn(async move {
                    tokio::time::sleep_until(instant.into()).await;
                    read_cpu_us(pid)
                })
            })
        };
        CpuWindow {
            start: at(from),
            end: at(until),
        }
    }

    /// CPU µs per request over the window (`None` without a server or requests).
    pub async fn per_request(self, requests: u64) -> Option<f64> {
        let read = |h: Option<tokio::task::JoinHandle<Option<u64>>>| async move {
            match h {
                Some(h) => h.await.ok().flatten(),
                None => None,
            }
        };
        let (start, end) = (read(self.start).await?, read(self.end).await?);
        (requests > 0).then(|| end.saturating_sub(start) as f64 / requests as f64)
    }
}

/// The outcome of one scenario's measured window.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub name: String,
    /// Responses (of any status) plus transport failures, in the window.
    pub requests: u64,
    /// Requests that did not get the expected status (includes 412s and
    /// transport failures).
    pub errors: u64,
    /// Of `errors`, how many were 412 Precondition Failed.
    pub conflicts: u64,
    /// Of `errors`, how many never got a response (connect/IO/timeout).
    pub transport_errors: u64,
    pub elapsed_s: f64,
    pub p50_us: u32,
    pub p90_us: u32,
    /// Reported in the JSON of every scenario and in the `crud` per-operation table.
    pub p95_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub memory: Option<Memory>,
    /// The server's CPU time in the measured window divided by its requests, in µs (with
    /// `--server-pid`): what a request costs the server, a figure the machine's noise moves
    /// far less than throughput.
    pub server_cpu_us_per_request: Option<f64>,
    /// First unexpected outcome seen, for diagnostics.
    pub first_error: Option<String>,
}

impl Summary {
    pub fn from_samples(name: &str, sorted: &[u32], elapsed_s: f64) -> Self {
        Summary {
            name: name.to_string(),
            elapsed_s,
            p50_us: percentile(sorted, 50.0),
            p90_us: percentile(sorted, 90.0),
            p95_us: percentile(sorted, 95.0),
            p99_us: percentile(sorted, 99.0),
            max_us: sorted.last().copied().unwrap_or(0),
            ..Default::default()
        }
    }

    /// Successful (expected-status) responses per second of the measured
    /// window. Equal to the raw request rate when there are no errors.
    pub fn throughput(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.requests.saturating_sub(self.errors) as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    pub fn header() -> String {
        format!(
            "{:<16} {:>9} {:>7} {:>6} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9}",
            "scenario",
            "requests",
            "errors",
            "412s",
            "io_err",
            "ok_req/s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "cpu_us/req",
            "rss_MiB",
            "hwm_MiB"
        )
    }

    pub fn line(&self) -> String {
        let (rss, hwm) = match self.memory {
            Some(m) => (
                format!("{:.1}", m.rss_kib as f64 / 1024.0),
                format!("{:.1}", m.hwm_kib as f64 / 1024.0),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let cpu = self
            .server_cpu_us_per_request
            .map_or_else(|| "-".to_string(), |us| format!("{us:.1}"));
        format!(
            "{:<16} {:>9} {:>7} {:>6} {:>6} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10} {:>9} {:>9}",
            self.name,
            self.requests,
            self.errors,
            self.conflicts,
            self.transport_errors,
            self.throughput(),
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.max_us),
            cpu,
            rss,
            hwm
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "errors_412": self.conflicts,
            "transport_errors": self.transport_errors,
            "elapsed_s": self.elapsed_s,
            "throughput_rps": self.throughput(),
            "raw_rps": if self.elapsed_s > 0.0 { self.requests as f64 / self.elapsed_s } else { 0.0 },
            "p50_ms": ms(self.p50_us),
            "p90_ms": ms(self.p90_us),
            "p95_ms": ms(self.p95_us),
            "p99_ms": ms(self.p99_us),
            "max_ms": ms(self.max_us),
            "server_cpu_us_per_request": self.server_cpu_us_per_request,
            "server_rss_kib": self.memory.map(|m| m.rss_kib),
            "server_hwm_kib": self.memory.map(|m| m.hwm_kib),
            "first_error": self.first_error,
        })
    }
}

pub fn ms(us: u32) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_empty_is_zero() {
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[], 99.0), 0);
    }

    #[test]
    fn percentile_single_sample() {
        for p in [0.0, 50.0, 90.0, 99.0, 100.0] {
            assert_eq!(percentile(&[7], p), 7);
        }
    }

    #[test]
    fn percentile_nearest_rank_1_to_100() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&v, 1.0), 1);
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.5), 100);
        assert_eq!(percentile(&v, 100.0), 100);
    }

    #[test]
    fn percentile_nearest_rank_small_sets() {
        // Classic nearest-rank example: {15, 20, 35, 40, 50}.
        let v = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&v, 5.0), 15);
        assert_eq!(percentile(&v, 30.0), 20);
        assert_eq!(percentile(&v, 40.0), 20);
        assert_eq!(percentile(&v, 50.0), 35);
        assert_eq!(percentile(&v, 100.0), 50);
        // With 10 samples, p99 must be the max (rank ceil(9.9) = 10).
        let ten: Vec<u32> = (10..20).collect();
        assert_eq!(percentile(&ten, 99.0), 19);
        assert_eq!(percentile(&ten, 90.0), 18);
    }

    #[test]
    fn merge_sorts_across_tasks() {
        let merged = merge_sorted(vec![vec![5, 1, 9], vec![], vec![3, 3, 8]]);
        assert_eq!(merged, vec![1, 3, 3, 5, 8, 9]);
        let s = Summary::from_samples("x", &merged, 2.0);
        assert_eq!(s.p50_us, 3);
        assert_eq!(s.max_us, 9);
        assert_eq!(s.p99_us, 9);
    }

    #[test]
    fn throughput_counts_requests_over_elapsed() {
        let mut s = Summary::from_samples("x", &[], 2.0);
        s.requests = 500;
        assert!((s.throughput() - 250.0).abs() < 1e-9);
        s.errors = 100;
        assert!((s.throughput() - 200.0).abs() < 1e-9);
        s.elapsed_s = 0.0;
        assert_eq!(s.throughput(), 0.0);
    }

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tcoplan\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\nThreads:\t3\n";
        assert_eq!(
            parse_proc_status(text),
            Some(Memory {
                rss_kib: 40960,
                hwm_kib: 51234
            })
        );
        assert_eq!(parse_proc_status("Name: x\n"), None);
    }

    #[test]
    fn reads_own_memory() {
        let m = read_memory(std::process::id()).expect("own /proc status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }

    #[test]
    fn parses_cpu_time_from_proc_stat() {
        // utime 1234 and stime 66 ticks; the name holds a space and a parenthesis.
        let text = "4242 (co plan) R 1 4242 4242 0 -1 4194560 9 0 0 0 1234 66 0 0 20 0 5 0 100 0";
        assert_eq!(parse_proc_stat_cpu_us(text), Some(13_000_000));
        assert_eq!(parse_proc_stat_cpu_us("4242 (x) R 1 2"), None);
        assert_eq!(parse_proc_stat_cpu_us("no name here"), None);
    }

    #[test]
    fn reads_own_cpu_time_and_it_grows() {
        let before = read_cpu_us(std::process::id()).expect("own /proc stat");
        let mut x = 0u64;
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let after = read_cpu_us(std::process::id()).expect("own /proc stat");
        assert!(after > before, "{before} → {after}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cpu_window_reads_the_time_used_between_its_instants() {
        let pid = Some(std::process::id());
        let now = std::time::Instant::now();
        let window = CpuWindow::watch(pid, now, now + std::time::Duration::from_millis(120));
        // Busy on another thread through the window.
        std::thread::spawn(|| {
            let spin = std::time::Instant::now();
            let mut x = 0u64;
            while spin.elapsed() < std::time::Duration::from_millis(200) {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            std::hint::black_box(x);
        });
        let per_request = window.per_request(10).await.expect("own process");
        assert!(per_request > 0.0, "{per_request}");
        let later = std::time::Instant::now();
        assert!(CpuWindow::watch(None, later, later)
            .per_request(10)
            .await
            .is_none());
        assert!(CpuWindow::watch(pid, later, later)
            .per_request(0)
            .await
            .is_none());
    }
}
