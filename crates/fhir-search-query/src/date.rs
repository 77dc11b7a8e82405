//! Date search values (R4 search.html §3.1.1.4.3 "date" and
//! datatypes.html `date` / `dateTime` / `instant`): an optional prefix, then
//! `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.f…]][Z|±hh:mm]`.
//! A time without a zone is accepted (`has_zone = false`; the executor picks
//! the server zone), a zone without a time is not. Calendar validity is
//! checked (month 1-12, day within the month incl. leap years, hour 0-23,
//! minute 0-59, second 0-60 for a leap second, zone ±14:00).

use crate::ir::{DateParts, DatePrecision, DateValue};
use crate::number::split_prefix;

/// Parse `[prefix]date`. The error message does not name the parameter.
pub(crate) fn parse_date_value(text: &str) -> Result<DateValue, String> {
    let (prefix, rest) = split_prefix(text)?;
    let (precision, has_zone, parts) = parse_date_text(rest)
        .ok_or_else(|| format!("'{text}' is not a valid FHIR date/dateTime"))?;
    Ok(DateValue {
        prefix,
        raw: rest.to_string(),
        precision,
        has_zone,
        parts,
    })
}

fn num(b: &[u8], pos: usize, n: usize) -> Option<u32> {
    let slice = b.get(pos..pos + n)?;
    let mut v: u32 = 0;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Parse the date text (no prefix); `None` if invalid.
pub(crate) fn parse_date_text(s: &str) -> Option<(DatePrecision, bool, DateParts)> {
    let b = s.as_bytes();
    let mut parts = DateParts {
        month: 1,
        day: 1,
        ..DateParts::default()
    };
    let year = num(b, 0, 4)?;
    if year == 0 {
        return None;
    }
    parts.year = year as u16;
    if b.len() == 4 {
        return Some((DatePrecision::Year, false, parts));
    }
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = num(b, 5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    parts.month = month as u8;
    if b.len() == 7 {
        return Some((DatePrecision::Month, false, parts));
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day = num(b, 8, 2)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    parts.day = day as u8;
    if b.len() == 10 {
        return Some((DatePrecision::Day, false, parts));
    }
    if b.get(10) != Some(&b'T') {
        return None;
    }
    let hour = num(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let minute = num(b, 14, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    parts.hour = hour as u8;
    parts.minute = minute as u8;
    let mut pos = 16;
    let mut precision = DatePrecision::Minute;
    if b.get(pos) == Some(&b':') {
        let second = num(b, pos + 1, 2)?;
        if second > 60 {
            return None;
        }
        parts.second = second as u8;
        precision = DatePrecision::Second;
        pos += 3;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            let digits = pos - start;
            if digits == 0 || digits > 9 {
                return None;
            }
            let mut nanos = num(b, start, digits)?;
            for _ in digits..9 {
                nanos *= 10;
            }
            parts.nanos = nanos;
            precision = DatePrecision::Fraction(digits as u8);
        }
    }
    let has_zone = match b.get(pos) {
        None => false,
        Some(b'Z') => {
            pos += 1;
            parts.offset_minutes = Some(0);
            true
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hh = num(b, pos + 1, 2)?;
            if b.get(pos + 3) != Some(&b':') {
                return None;
            }
            let mm = num(b, pos + 4, 2)?;
            if hh > 14 || mm > 59 || (hh == 14 && mm != 0) {
                return None;
            }
            let total = (hh * 60 + mm) as i16;
            parts.offset_minutes = Some(if sign == b'-' { -total } else { total });
            pos += 6;
            true
        }
        Some(_) => return None,
    };
    if pos != b.len() {
        return None;
    }
    Some((precision, has_zone, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Prefix;

    #[test]
    fn valid_dates() {
        use DatePrecision::*;
        let cases: &[(&str, Prefix, &str, DatePrecision, bool)] = &[
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
            assert_eq!(v.precision, *precision, "{input}");
            assert_eq!(v.has_zone, *zone, "{input}");
        }
    }

    #[test]
    fn parts_are_filled() {
        let v = parse_date_value("2026-03-01T10:20:30.5-05:30").unwrap();
        assert_eq!(
            v.parts,
            DateParts {
                year: 2026,
                month: 3,
                day: 1,
                hour: 10,
                minute: 20,
                second: 30,
                nanos: 500_000_000,
                offset_minutes: Some(-330),
            }
        );
        let v = parse_date_value("2026").unwrap();
        assert_eq!(
            (v.parts.month, v.parts.day, v.parts.offset_minutes),
            (1, 1, None)
        );
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
