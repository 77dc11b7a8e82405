//! The implicit ranges of search values (search.html#prefix, #date, #number) as store ranges: a
//! date means the whole period its precision names (`fhir_primitives::PartialDateTime::range`,
//! the computation the index rows come from; a date without a zone is read in the server's
//! zone), a number the interval its significant digits name (`100` is [99.5, 100.5]).

use crate::store::search::Range;
use fhir_search_query::{DateValue, NumberValue, Prefix};

/// The store range for a date search value; `tz_offset_seconds` is the server's zone.
pub fn date_search_range(value: &DateValue, tz_offset_seconds: i32) -> Range<i64> {
    let range = value.date.range(tz_offset_seconds);
    Range {
        op: value.prefix,
        low: range.low_us,
        high: range.high_us,
    }
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
    use crate::rest::format_instant;

    fn date(raw: &str) -> DateValue {
        DateValue {
            prefix: Prefix::Eq,
            raw: raw.into(),
            date: raw.parse().unwrap(),
        }
    }

    fn low_high(value: &DateValue, tz_offset_seconds: i32) -> (i64, i64) {
        let range = date_search_range(value, tz_offset_seconds);
        (range.low, range.high)
    }

    #[test]
    fn dates_cover_their_whole_precision() {
        let (low, high) = low_high(&date("2026-02-28"), 0);
        assert_eq!(format_instant(low), "2026-02-28T00:00:00.000Z");
        assert_eq!(high - low, 86_400_000_000 - 1);
        let (low, high) = low_high(&date("2024-02"), 0);
        assert_eq!((high + 1 - low) / 86_400_000_000, 29, "leap February");
        let (_, high) = low_high(&date("2026"), 0);
        assert_eq!(format_instant(high + 1), "2027-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_date_without_zone_is_read_in_the_server_zone() {
        let day = date("2026-01-01");
        let (utc, _) = low_high(&day, 0);
        let (plus_one, _) = low_high(&day, 3600);
        assert_eq!(utc - plus_one, 3_600_000_000);
        let (low, high) = low_high(&date("2026-01-01T10:00:00+02:00"), 3600);
        assert_eq!(format_instant(low), "2026-01-01T08:00:00.000Z");
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
