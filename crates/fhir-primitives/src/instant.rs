//! Instants as the server writes and reads them (FHIR R4 datatypes.html#instant): the text of
//! `meta.lastUpdated` (and every other time the server stamps), and the reading of an
//! instant-valued request parameter such as `_since` (http.html#history).

use crate::calendar::{civil_from_days, US_PER_DAY, US_PER_SEC};
use crate::datetime::{DateTimePrecision, PartialDateTime};

/// Microseconds since the Unix epoch → `YYYY-MM-DDThh:mm:ss.sssZ` (UTC, millisecond
/// precision, the finer digits dropped). A value outside the years -9999..=9999 is written as
/// the epoch.
pub fn format_instant(micros: i64) -> String {
    let days = micros.div_euclid(US_PER_DAY);
    let micros_of_day = micros.rem_euclid(US_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(-9999..=9999).contains(&year) {
        return format_instant(0);
    }
    let seconds = micros_of_day / US_PER_SEC;
    let millis = (micros_of_day % US_PER_SEC) / 1_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
    )
}

/// The instant an instant-valued parameter names, in microseconds since the epoch: a FHIR
/// `instant` (seconds and a zone required), or a full date (`YYYY-MM-DD`) meaning its first
/// microsecond in UTC. `None` for anything else.
pub fn parse_instant_or_date(text: &str) -> Option<i64> {
    let value: PartialDateTime = text.parse().ok()?;
    let accepted = value.is_instant() || value.precision() == DateTimePrecision::Day;
    accepted.then(|| value.range(0).low_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(format_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_instant(1_764_345_600_123_456),
            "2025-11-28T16:00:00.123Z"
        );
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_instant(i64::MAX), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_instants_and_dates() {
        assert_eq!(
            parse_instant_or_date("1970-01-01T00:00:01Z"),
            Some(1_000_000)
        );
        assert_eq!(parse_instant_or_date("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_instant_or_date("1970-01-02"), Some(86_400_000_000));
        assert_eq!(
            parse_instant_or_date(&format_instant(1_764_345_600_123_000)),
            Some(1_764_345_600_123_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026",
            "2026-01",
            "2026-13-01",
            "2026-02-30",
            "2026-01-01T10:00",
            "2026-01-01T10:00Z",
            "2026-01-01T10:00:00",
        ] {
            assert_eq!(parse_instant_or_date(bad), None, "{bad}");
        }
    }
}
