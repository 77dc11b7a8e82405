//! Instant-valued request parameters (`_since`, http.html#history; datatypes.html#instant) as
//! the REST layer reads them: `fhir-primitives` reads the text, this names the parameter in the
//! 400 a client gets for a bad one. The server's own instants are written by
//! [`fhir_primitives::format_instant`].

use crate::error::{FhirError, FhirResult};

/// Parse an instant (or a full date, meaning its start in UTC) given as a search/history
/// parameter into microseconds since the epoch. `name` names the parameter in the error.
pub fn parse_instant(text: &str, name: &str) -> FhirResult<i64> {
    fhir_primitives::parse_instant_or_date(text).ok_or_else(|| {
        FhirError::bad_request(format!(
            "{name} must be an instant such as 2026-01-31T12:00:00Z, got {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir_primitives::format_instant;

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
