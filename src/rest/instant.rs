//! The FHIR `instant` text of `meta.lastUpdated` and `_since` (datatypes.html#instant).

use crate::error::{FhirError, FhirResult};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// Microseconds since the epoch → `YYYY-MM-DDThh:mm:ss.sssZ` (millisecond precision).
pub fn format_instant(micros: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Parse an instant (or a full date, meaning its start in UTC) given as a search/history
/// parameter into microseconds since the epoch. `name` names the parameter in the error.
pub fn parse_instant(text: &str, name: &str) -> FhirResult<i64> {
    let invalid = || {
        FhirError::bad_request(format!(
            "{name} must be an instant such as 2026-01-31T12:00:00Z, got {text:?}"
        ))
    };
    if let Ok(dt) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((dt.unix_timestamp_nanos() / 1_000) as i64);
    }
    // A date alone: YYYY-MM-DD.
    let parts: Vec<&str> = text.split('-').collect();
    if let [y, m, d] = parts.as_slice() {
        if y.len() == 4 && m.len() == 2 && d.len() == 2 {
            let year: i32 = y.parse().map_err(|_| invalid())?;
            let month: u8 = m.parse().map_err(|_| invalid())?;
            let day: u8 = d.parse().map_err(|_| invalid())?;
            let month = Month::try_from(month).map_err(|_| invalid())?;
            let date = Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
            let dt = date.midnight().assume_utc();
            return Ok((dt.unix_timestamp_nanos() / 1_000) as i64);
        }
    }
    Err(invalid())
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
    }

    #[test]
    fn parses_instants_and_dates() {
        assert_eq!(
            parse_instant("1970-01-01T00:00:01Z", "_since").unwrap(),
            1_000_000
        );
        assert_eq!(
            parse_instant("1970-01-01T01:00:00+01:00", "_since").unwrap(),
            0
        );
        assert_eq!(
            parse_instant("1970-01-02", "_since").unwrap(),
            86_400_000_000
        );
        assert_eq!(
            parse_instant(&format_instant(1_764_345_600_123_000), "_since").unwrap(),
            1_764_345_600_123_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-01-01T10:00",
        ] {
            let err = parse_instant(bad, "_since").unwrap_err();
            assert!(err.issues[0].diagnostics.contains("_since"), "{bad}");
        }
    }
}
