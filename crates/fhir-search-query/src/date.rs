//! Date search values (R4 search.html#date): an optional prefix, then a date
//! read by `fhir_primitives::PartialDateTime`, the reader the index uses too
//! (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.f…]][Z|±hh:mm]`,
//! calendar validity checked). A time without a zone is accepted (the executor
//! reads it in the server zone), a zone without a time is not. A search value
//! keeps at most nine fraction digits (nanoseconds).

use crate::ir::DateValue;
use crate::number::split_prefix;
use fhir_primitives::{DateTimePrecision, PartialDateTime};

/// Fraction digits a date search value may have.
const MAX_FRACTION_DIGITS: u8 = 9;

/// Parse `[prefix]date`. The error message does not name the parameter.
pub(crate) fn parse_date_value(text: &str) -> Result<DateValue, String> {
    let (prefix, rest) = split_prefix(text)?;
    let invalid = || format!("'{text}' is not a valid FHIR date/dateTime");
    let date: PartialDateTime = rest.parse().map_err(|_| invalid())?;
    if let DateTimePrecision::Fraction(digits) = date.precision() {
        if digits > MAX_FRACTION_DIGITS {
            return Err(invalid());
        }
    }
    Ok(DateValue {
        prefix,
        raw: rest.to_string(),
        date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir_primitives::Prefix;

    #[test]
    fn valid_dates() {
        use DateTimePrecision::*;
        let cases: &[(&str, Prefix, &str, DateTimePrecision, bool)] = &[
            ("2026", Prefix::Eq, "2026", Year, false),
            ("ge2026-01", Prefix::Ge, "2026-01", Month, false),
            ("2026-01-01", Prefix::Eq, "2026-01-01", Day, false),
            ("eq2024-02-29", Prefix::Eq, "2024-02-29", Day, false),
            ("ne2000-02-29", Prefix::Ne, "2000-02-29", Day, false),
            (
                "gt2026-03-01T10:00",
                Prefix::Gt,
                "2026-03-01T10:00",
                Minute,
                false,
            ),
            (
                "lt2026-03-01T10:00Z",
                Prefix::Lt,
                "2026-03-01T10:00Z",
                Minute,
                true,
            ),
            (
                "le2026-03-01T10:00:59",
                Prefix::Le,
                "2026-03-01T10:00:59",
                Second,
                false,
            ),
            (
                "sa2026-03-01T10:00:59+02:00",
                Prefix::Sa,
                "2026-03-01T10:00:59+02:00",
                Second,
                true,
            ),
            (
                "eb2026-03-01T23:59:60.123Z",
                Prefix::Eb,
                "2026-03-01T23:59:60.123Z",
                Fraction(3),
                true,
            ),
            (
                "ap2026-03-01T00:00:00.1-14:00",
                Prefix::Ap,
                "2026-03-01T00:00:00.1-14:00",
                Fraction(1),
                true,
            ),
            (
                "2026-03-01T00:00:00.123456789",
                Prefix::Eq,
                "2026-03-01T00:00:00.123456789",
                Fraction(9),
                false,
            ),
        ];
        for (input, prefix, raw, precision, zone) in cases {
            let v = parse_date_value(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(v.prefix, *prefix, "{input}");
            assert_eq!(v.raw, *raw, "{input}");
            assert_eq!(v.date.precision(), *precision, "{input}");
            assert_eq!(v.date.offset().is_some(), *zone, "{input}");
        }
    }

    #[test]
    fn parts_are_filled() {
        let v = parse_date_value("2026-03-01T10:20:30.5-05:30")
            .unwrap()
            .date;
        let time = v.time().unwrap();
        assert_eq!((v.year(), v.month(), v.day()), (2026, Some(3), Some(1)));
        assert_eq!(
            (time.hour(), time.minute(), time.second(), time.nanos()),
            (10, 20, 30, 500_000_000)
        );
        assert_eq!(v.offset().map(|o| o.minutes()), Some(-330));
        let v = parse_date_value("2026").unwrap().date;
        assert_eq!((v.month(), v.day(), v.offset()), (None, None, None));
    }

    #[test]
    fn invalid_dates() {
        for input in [
            "",
            "26",
            "0000",
            "2026-13-01",
            "2026-00",
            "2026-1",
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-01-00",
            "2026-01-01Z",
            "2026-01-01+01:00",
            "2026-01-01T",
            "2026-01-01T24:00",
            "2026-01-01T10:60",
            "2026-01-01T10",
            "2026-01-01T10:00:61",
            "2026-01-01T10:00:00.",
            "2026-01-01T10:00:00.1234567890",
            "2026-01-01T10:00+15:00",
            "2026-01-01T10:00+14:30",
            "2026-01-01T10:00+0100",
            "2026-01-01T10:00Zx",
            "2026-01-01 10:00",
            "zz2026",
            "g2026",
            "2026-01-01T10:00:00ü",
            "ü",
            "2026/01/01",
            "+2026",
        ] {
            assert!(parse_date_value(input).is_err(), "{input} should fail");
        }
    }
}
