//! The implicit range of a date/time value (FHIR R4 search.html#date: "the date parameter
//! format … an implicit range … the precision of the value"): `2026` is the whole year,
//! `2026-02-03T10:30` that minute, `…T10:30:15.25` those 10 ms. One computation for the index
//! rows written with a resource and for the search values compared with them.
//!
//! Ranges are in microseconds since 1970-01-01T00:00:00Z, both ends inclusive. A value without
//! a zone (every `date`, and times written without one) is read in a caller-supplied offset:
//! the server's zone.

use crate::calendar::{days_from_civil, days_in_month, US_PER_DAY, US_PER_SEC};
use crate::datetime::{DateTimePrecision, PartialDateTime};
use crate::search::Bounds;

/// The instants a date/time value covers: `[low_us, high_us]`, both inclusive, in
/// microseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstantRange {
    pub low_us: i64,
    pub high_us: i64,
}

impl From<InstantRange> for Bounds<i64> {
    fn from(range: InstantRange) -> Self {
        Bounds {
            low: range.low_us,
            high: range.high_us,
        }
    }
}

impl PartialDateTime {
    /// The range this value covers at its precision. `default_offset_seconds` (east of UTC)
    /// places a value written without a zone; a written zone wins.
    ///
    /// * year, month, day: the whole period, from local midnight;
    /// * minute, second: that minute or second;
    /// * fractions: `10^(6 - digits)` µs wide (`.25` is 10 ms), at least 1 µs; digits after
    ///   the sixth do not narrow it;
    /// * a leap second (`:60`) is read as second 59 of its minute (as POSIX time does).
    pub fn range(&self, default_offset_seconds: i32) -> InstantRange {
        let offset_us = i64::from(
            self.offset()
                .map_or(default_offset_seconds, |o| o.seconds()),
        ) * US_PER_SEC;
        let (year, month, day, time) = self.fields();
        let (year, month, day) = (i64::from(year), i64::from(month), i64::from(day));
        let (start_local, width) = match self.precision() {
            DateTimePrecision::Year => {
                let start = days_from_civil(year, 1, 1);
                let end = days_from_civil(year + 1, 1, 1);
                (start * US_PER_DAY, (end - start) * US_PER_DAY)
            }
            DateTimePrecision::Month => (
                days_from_civil(year, month, 1) * US_PER_DAY,
                days_in_month(year, month) * US_PER_DAY,
            ),
            DateTimePrecision::Day => (days_from_civil(year, month, day) * US_PER_DAY, US_PER_DAY),
            precision => {
                let second = i64::from(time.second().min(59));
                let seconds_of_day =
                    i64::from(time.hour()) * 3600 + i64::from(time.minute()) * 60 + second;
                let micros_of_second = i64::from(time.nanos() / 1_000);
                let start = days_from_civil(year, month, day) * US_PER_DAY
                    + seconds_of_day * US_PER_SEC
                    + micros_of_second;
                let width = match precision {
                    DateTimePrecision::Minute => 60 * US_PER_SEC,
                    DateTimePrecision::Fraction(digits) => 10_i64.pow(6 - u32::from(digits.min(6))),
                    _ => US_PER_SEC,
                };
                (start, width)
            }
        };
        let low_us = start_local - offset_us;
        InstantRange {
            low_us,
            high_us: low_us + width - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z in µs.
    const JAN_2026: i64 = 1_767_225_600_000_000;
    const DAY: i64 = 86_400_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn range(text: &str, offset: i32) -> (i64, i64) {
        let value: PartialDateTime = text.parse().unwrap_or_else(|_| panic!("{text}"));
        let r = value.range(offset);
        (r.low_us, r.high_us)
    }

    #[test]
    fn year_month_day_precision() {
        assert_eq!(range("2026", 0), (JAN_2026, JAN_2026 + 365 * DAY - 1));
        assert_eq!(range("2026-01", 0), (JAN_2026, JAN_2026 + 31 * DAY - 1));
        assert_eq!(
            range("2026-01-02", 0),
            (JAN_2026 + DAY, JAN_2026 + 2 * DAY - 1)
        );
        assert_eq!(range("1970-01-01", 0), (0, DAY - 1));
        assert_eq!(range("1969-12-31", 0), (-DAY, -1));
        assert_eq!(range("2026-12", 0).1 + 1, range("2027", 0).0);
    }

    #[test]
    fn leap_years() {
        let days = |text: &str| {
            let (low, high) = range(text, 0);
            (high - low + 1) / DAY
        };
        assert_eq!(days("2024-02"), 29);
        assert_eq!(days("2026-02"), 28);
        assert_eq!(days("1900-02"), 28);
        assert_eq!(days("2000-02"), 29);
        assert_eq!(days("2024"), 366);
    }

    #[test]
    fn time_precision() {
        let t = JAN_2026 + 10 * HOUR;
        assert_eq!(range("2026-01-01T10:00:00Z", 0), (t, t + 999_999));
        assert_eq!(range("2026-01-01T10:00Z", 0), (t, t + 60_000_000 - 1));
        assert_eq!(
            range("2026-01-01T10:00:00.5Z", 0),
            (t + 500_000, t + 599_999)
        );
        assert_eq!(
            range("2026-01-01T10:00:00.123456Z", 0),
            (t + 123_456, t + 123_456)
        );
        assert_eq!(
            range("2026-01-01T10:00:00.1234567Z", 0),
            (t + 123_456, t + 123_456)
        );
        // A leap second is second 59.
        assert_eq!(
            range("2026-01-01T10:00:60Z", 0),
            range("2026-01-01T10:00:59Z", 0)
        );
    }

    #[test]
    fn time_zones() {
        let t = JAN_2026 + 10 * HOUR;
        // A written zone wins over the default offset.
        assert_eq!(
            range("2026-01-01T12:00:00+02:00", -18_000),
            (t, t + 999_999)
        );
        assert_eq!(range("2026-01-01T05:30:00-04:30", 0), (t, t + 999_999));
        // Without a zone, the default offset places the value (12:00 at +02:00 = 10:00Z).
        assert_eq!(range("2026-01-01T12:00:00", 7200), (t, t + 999_999));
        // Dates are local whole days.
        assert_eq!(
            range("2026-01-01", 3600),
            (JAN_2026 - HOUR, JAN_2026 + DAY - HOUR - 1)
        );
        assert_eq!(
            range("2026-01-01", -3600),
            (JAN_2026 + HOUR, JAN_2026 + DAY + HOUR - 1)
        );
    }

    #[test]
    fn before_the_epoch_fractions_floor() {
        // 1969-12-31T23:59:59.9999995Z: the microsecond that starts 1 µs before the epoch.
        assert_eq!(range("1969-12-31T23:59:59.9999995Z", 0), (-1, -1));
    }
}
