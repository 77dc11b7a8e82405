//! The implicit ranges of search values (search.html#prefix, #date, #number): a date means the
//! whole period its precision names (a date without a zone is read in the server's zone), a
//! number the interval its significant digits name (`100` is [99.5, 100.5]).

use crate::store::search::Range;
use fhir_search_query::{DatePrecision, DateValue, NumberValue, Prefix};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

fn micros(dt: OffsetDateTime) -> i64 {
    (dt.unix_timestamp_nanos() / 1_000) as i64
}

/// The instant range `[low, high]` (microseconds, inclusive) a date search value covers;
/// `None` if the parts do not form a real date. `tz_offset_seconds` is the server's zone.
pub fn date_range(value: &DateValue, tz_offset_seconds: i32) -> Option<(i64, i64)> {
    let p = value.parts;
    let month = Month::try_from(p.month.max(1)).ok()?;
    let date = Date::from_calendar_date(i32::from(p.year), month, p.day.max(1)).ok()?;
    let time = Time::from_hms_nano(p.hour, p.minute, p.second, p.nanos).ok()?;
    let offset = match p.offset_minutes {
        Some(minutes) => UtcOffset::from_whole_seconds(i32::from(minutes) * 60).ok()?,
        None => UtcOffset::from_whole_seconds(tz_offset_seconds).ok()?,
    };
    let start = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let end = match value.precision {
        DatePrecision::Year => {
            let next = Date::from_calendar_date(i32::from(p.year) + 1, Month::January, 1).ok()?;
            PrimitiveDateTime::new(next, Time::MIDNIGHT).assume_offset(offset)
        }
        DatePrecision::Month => {
            let (y, m) = if p.month == 12 {
                (i32::from(p.year) + 1, Month::January)
            } else {
                (i32::from(p.year), month.next())
            };
            PrimitiveDateTime::new(Date::from_calendar_date(y, m, 1).ok()?, Time::MIDNIGHT)
                .assume_offset(offset)
        }
        DatePrecision::Day => start + time::Duration::days(1),
        DatePrecision::Minute => start + time::Duration::minutes(1),
        DatePrecision::Second => start + time::Duration::seconds(1),
        DatePrecision::Fraction(digits) => {
            let step_nanos = 10i64.pow(9u32.saturating_sub(u32::from(digits.min(9))));
            start + time::Duration::nanoseconds(step_nanos.max(1_000))
        }
    };
    Some((micros(start), micros(end) - 1))
}

/// The store range for a date search value.
pub fn date_search_range(value: &DateValue, tz_offset_seconds: i32) -> Option<Range<i64>> {
    let (low, high) = date_range(value, tz_offset_seconds)?;
    Some(Range {
        op: value.prefix,
        low,
        high,
    })
}

/// The store range for a number (or quantity) search value.
pub fn number_search_range(value: &NumberValue) -> Option<Range<f64>> {
    let v: f64 = value.raw.parse().ok()?;
    let op = value.prefix;
    let (low, high) = match op {
        Prefix::Eq | Prefix::Ne => {
            let half = 0.5 * 10f64.powi(value.scale);
            (v - half, v + half)
        }
        Prefix::Ap => {
            let tenth = (v * 0.1).abs();
            (v - tenth, v + tenth)
        }
        _ => (v, v),
    };
    Some(Range { op, low, high })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir_search_query::DateParts;

    fn date(raw: &str, precision: DatePrecision, parts: DateParts) -> DateValue {
        DateValue {
            prefix: Prefix::Eq,
            raw: raw.into(),
            precision,
            has_zone: parts.offset_minutes.is_some(),
            parts,
        }
    }

    #[test]
    fn dates_cover_their_whole_precision() {
        let day = date(
            "2026-02-28",
            DatePrecision::Day,
            DateParts {
                year: 2026,
                month: 2,
                day: 28,
                ..Default::default()
            },
        );
        let (low, high) = date_range(&day, 0).unwrap();
        assert_eq!(crate::rest::format_instant(low), "2026-02-28T00:00:00.000Z");
        assert_eq!(high - low, 86_400_000_000 - 1);
        let month = date(
            "2024-02",
            DatePrecision::Month,
            DateParts {
                year: 2024,
                month: 2,
                day: 1,
                ..Default::default()
            },
        );
        let (low, high) = date_range(&month, 0).unwrap();
        assert_eq!((high + 1 - low) / 86_400_000_000, 29, "leap February");
        let year = date(
            "2026",
            DatePrecision::Year,
            DateParts {
                year: 2026,
                month: 1,
                day: 1,
                ..Default::default()
            },
        );
        let (_, high) = date_range(&year, 0).unwrap();
        assert_eq!(
            crate::rest::format_instant(high + 1),
            "2027-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_date_without_zone_is_read_in_the_server_zone() {
        let day = date(
            "2026-01-01",
            DatePrecision::Day,
            DateParts {
                year: 2026,
                month: 1,
                day: 1,
                ..Default::default()
            },
        );
        let (utc, _) = date_range(&day, 0).unwrap();
        let (plus_one, _) = date_range(&day, 3600).unwrap();
        assert_eq!(utc - plus_one, 3_600_000_000);
        let zoned = date(
            "2026-01-01T10:00:00+02:00",
            DatePrecision::Second,
            DateParts {
                year: 2026,
                month: 1,
                day: 1,
                hour: 10,
                offset_minutes: Some(120),
                ..Default::default()
            },
        );
        let (low, high) = date_range(&zoned, 3600).unwrap();
        assert_eq!(crate::rest::format_instant(low), "2026-01-01T08:00:00.000Z");
        assert_eq!(high - low, 999_999);
    }

    #[test]
    fn numbers_carry_their_precision() {
        let n = |raw: &str, scale| NumberValue {
            prefix: Prefix::Eq,
            raw: raw.into(),
            significant_digits: 3,
            scale,
        };
        let r = number_search_range(&n("100", 0)).unwrap();
        assert_eq!((r.low, r.high), (99.5, 100.5));
        let r = number_search_range(&n("100.00", -2)).unwrap();
        assert!((r.low - 99.995).abs() < 1e-9);
        let gt = NumberValue {
            prefix: Prefix::Gt,
            ..n("5", 0)
        };
        let r = number_search_range(&gt).unwrap();
        assert_eq!((r.op, r.low, r.high), (Prefix::Gt, 5.0, 5.0));
    }
}
