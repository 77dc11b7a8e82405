//! Injected time and randomness: the server asks a [`Clock`] for "now" and an [`IdGenerator`]
//! for new logical ids, so tests can make both exact.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use time::OffsetDateTime;

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
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

/// A source of new logical resource ids (FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`).
pub trait IdGenerator: Send + Sync + 'static {
    fn new_id(&self) -> String;
}

/// Random version-4 UUIDs in their canonical lowercase text form.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> String {
        let mut bytes: [u8; 16] = rand::random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
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
    fn random_ids_are_uuid_shaped_and_distinct() {
        let a = RandomIds.new_id();
        let b = RandomIds.new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }

    #[test]
    fn sequential_ids_count_up() {
        let ids = SequentialIds::new("t");
        assert_eq!(ids.new_id(), "t-1");
        assert_eq!(ids.new_id(), "t-2");
    }
}
