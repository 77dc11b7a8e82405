//! Injected time and randomness: the server asks a [`Clock`] for "now", a [`Ticker`] how much
//! time has passed (rate limits), and an [`IdGenerator`] for new logical ids, so tests can make
//! all three exact.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use time::OffsetDateTime;

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    /// Now in microseconds since the Unix epoch: what versions and audit records store. The
    /// same instant as [`Clock::now`]; a clock may answer it without building a date (every
    /// audited read asks).
    fn now_unix_micros(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000) as i64
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the wall clock is read.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[allow(clippy::disallowed_methods)]
    fn now_unix_micros(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            // A wall clock set before 1970.
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
        }
    }
}

/// A clock for tests: starts at a fixed instant and advances by a fixed step on every call.
#[derive(Debug)]
pub struct SteppingClock {
    next_micros: AtomicI64,
    step_micros: i64,
}

impl SteppingClock {
    pub fn new(start: OffsetDateTime, step_micros: i64) -> Self {
        let micros = (start.unix_timestamp_nanos() / 1000) as i64;
        SteppingClock {
            next_micros: AtomicI64::new(micros),
            step_micros,
        }
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> OffsetDateTime {
        let micros = self
            .next_micros
            .fetch_add(self.step_micros, Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Monotonic elapsed time since some fixed start: what rate limits measure (never the wall
/// clock, which may jump).
pub trait Ticker: Send + Sync + 'static {
    fn elapsed(&self) -> std::time::Duration;
}

/// The real monotonic clock, counted from when it was made.
#[derive(Debug, Clone, Copy)]
pub struct SystemTicker(std::time::Instant);

impl Default for SystemTicker {
    // The one place the monotonic clock is read.
    fn default() -> Self {
        SystemTicker(std::time::Instant::now())
    }
}

impl Ticker for SystemTicker {
    fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// A ticker for tests: stands still until the test advances it.
#[derive(Debug, Default)]
pub struct ManualTicker(AtomicU64);

impl ManualTicker {
    pub fn advance(&self, by: std::time::Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Ticker for ManualTicker {
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// A source of new logical resource ids (FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`).
pub trait IdGenerator: Send + Sync + 'static {
    fn new_id(&self) -> String;
}

/// Version-7 UUIDs (RFC 9562 §5.7): a 48-bit Unix millisecond timestamp from the clock, then
/// 74 random bits, in canonical lowercase text. Ids made later sort later, so new rows land
/// at the right edge of every B-tree keyed by id (the current-version table, history, the
/// index tables' owner indexes) instead of splitting pages all over a large database; the
/// random part keeps them unguessable. They reveal their creation time to the millisecond,
/// which `meta.lastUpdated` of a first version shows anyway.
pub struct TimeOrderedIds {
    clock: std::sync::Arc<dyn Clock>,
}

impl TimeOrderedIds {
    pub fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        TimeOrderedIds { clock }
    }
}

impl IdGenerator for TimeOrderedIds {
    // The id generator is where ids get their randomness (tests inject `SequentialIds`).
    #[allow(clippy::disallowed_methods)]
    fn new_id(&self) -> String {
        let millis = self.clock.now().unix_timestamp_nanos() / 1_000_000;
        uuid_v7(u64::try_from(millis).unwrap_or(0), rand::random())
    }
}

/// The version-7 UUID for `unix_millis` (low 48 bits) and 16 random bytes (74 bits used).
fn uuid_v7(unix_millis: u64, random: [u8; 16]) -> String {
    let mut bytes = random;
    bytes[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(b >> 4)]));
        text.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    text
}

/// Deterministic ids for tests: `prefix-1`, `prefix-2`, …
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new(prefix: &str) -> Self {
        SequentialIds {
            prefix: prefix.to_string(),
            next: AtomicU64::new(1),
        }
    }
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::SeqCst)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stepping_clock_is_exact() {
        let clock = SteppingClock::new(datetime!(2026-01-02 03:04:05 UTC), 1_000);
        assert_eq!(clock.now(), datetime!(2026-01-02 03:04:05 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-02 03:04:05.001 UTC));
    }

    #[test]
    fn the_system_clock_gives_one_instant_in_both_forms() {
        let before = SystemClock.now();
        let micros = SystemClock.now_unix_micros();
        let after = SystemClock.now();
        let us = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000) as i64;
        assert!(
            us(before) <= micros && micros <= us(after),
            "{before} {micros} {after}"
        );
        // The stepping clock answers through `now`, one step per call.
        let clock = SteppingClock::new(datetime!(2026-01-02 03:04:05 UTC), 1_000);
        assert_eq!(clock.now_unix_micros(), 1_767_323_045_000_000);
        assert_eq!(clock.now_unix_micros(), 1_767_323_045_001_000);
    }

    #[test]
    fn uuid_v7_layout() {
        // RFC 9562 Appendix A.6: 2022-02-22 19:22:22 UTC = 0x017F22E279B0 ms.
        let id = uuid_v7(0x017F_22E2_79B0, [0xff; 16]);
        assert_eq!(id, "017f22e2-79b0-7fff-bfff-ffffffffffff");
        assert_eq!(
            uuid_v7(0x017F_22E2_79B0, [0; 16]),
            "017f22e2-79b0-7000-8000-000000000000"
        );
    }

    #[test]
    fn time_ordered_ids_sort_by_creation_and_stay_distinct() {
        let clock = SteppingClock::new(datetime!(2026-01-02 03:04:05 UTC), 1_000);
        let ids = TimeOrderedIds::new(std::sync::Arc::new(clock));
        let made: Vec<String> = (0..50).map(|_| ids.new_id()).collect();
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(made, sorted, "one millisecond apart, so strictly in order");
        sorted.dedup();
        assert_eq!(sorted.len(), 50);
        assert!(made.iter().all(|id| id.len() == 36 && &id[14..15] == "7"));
        // Within one millisecond the random part still tells them apart.
        let same_ms = TimeOrderedIds::new(std::sync::Arc::new(SteppingClock::new(
            datetime!(2026-01-02 03:04:05 UTC),
            0,
        )));
        assert_ne!(same_ms.new_id(), same_ms.new_id());
    }

    #[test]
    fn sequential_ids_count_up() {
        let ids = SequentialIds::new("t");
        assert_eq!(ids.new_id(), "t-1");
        assert_eq!(ids.new_id(), "t-2");
    }
}
