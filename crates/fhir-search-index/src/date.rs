//! Date/time range computation for `date` search parameters (FHIR R4 search.html
//! §3.1.1.5.2 "date": every date value is an implicit range whose width is its
//! precision). Used at write time for index rows and at query time for search values.
//!
//! Ranges are inclusive `[low, high]` in microseconds since the Unix epoch (UTC).
//! Values without a time zone are read in a caller-supplied fixed offset.

/// Microseconds in one second.
const US_PER_SEC: i64 = 1_000_000;
/// Microseconds in one day.
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

/// Whether `year` is a Gregorian leap year.
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1-12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian civil date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses exactly `n` ASCII digits from the start of `s`.
fn digits(s: &str, n: usize) -> Option<i64> {
    let part = s.get(..n)?;
    if part.len() != n || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Parses a zone designator (`Z`, `+hh:mm`, `-hh:mm`) into seconds east of UTC.
fn parse_zone(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = s.get(1..)?;
    if rest.len() != 5 || rest.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let h = digits(rest, 2)?;
    let m = digits(rest.get(3..)?, 2)?;
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// The inclusive range in UTC microseconds covered by a FHIR `date`, `dateTime` or
/// `instant` literal, at its precision:
///
/// * `2026` → the whole year, `2026-02` → the whole month, `2026-02-03` → the whole day;
/// * `2026-02-03T10:30` → that minute, `…T10:30:15` → that second, `…T10:30:15.25` → that
///   10 ms (the width follows the number of fraction digits, down to 1 µs);
/// * a value with a zone (`Z`, `±hh:mm`) is placed by its zone; one without is placed
///   in `tz_offset_seconds` (seconds east of UTC; 0 = UTC).
///
/// Returns `None` for anything that is not a valid date (month 13, 30 February, 24:00, …).
pub fn date_range(text: &str, tz_offset_seconds: i32) -> Option<(i64, i64)> {
    let text = text.trim();
    let year = digits(text, 4)?;
    let (date_part, time_part) = match text.find('T') {
        Some(i) => (text.get(..i)?, Some(text.get(i + 1..)?)),
        None => (text, None),
    };
    let (month, day) = match date_part.len() {
        4 => (None, None),
        7 if date_part.as_bytes().get(4) == Some(&b'-') => {
            (Some(digits(date_part.get(5..)?, 2)?), None)
        }
        10 if date_part.as_bytes().get(4) == Some(&b'-')
            && date_part.as_bytes().get(7) == Some(&b'-') =>
        {
            (
                Some(digits(date_part.get(5..)?, 2)?),
                Some(digits(date_part.get(8..)?, 2)?),
            )
        }
        _ => return None,
    };
    if let Some(m) = month {
        if !(1..=12).contains(&m) {
            return None;
        }
        if let Some(d) = day {
            if d < 1 || d > days_in_month(year, m) {
                return None;
            }
        }
    }
    if time_part.is_some() && day.is_none() {
        return None;
    }
    let default_offset = i64::from(tz_offset_seconds);

    let Some(time) = time_part else {
        // Date-only precision: year, month or day, placed in the configured zone.
        let (start_day, end_day_excl) = match (month, day) {
            (None, _) => (days_from_civil(year, 1, 1), days_from_civil(year + 1, 1, 1)),
            (Some(m), None) => {
                let start = days_from_civil(year, m, 1);
                (start, start + days_in_month(year, m))
            }
            (Some(m), Some(d)) => {
                let start = days_from_civil(year, m, d);
                (start, start + 1)
            }
        };
        let shift = default_offset * US_PER_SEC;
        return Some((
            start_day * US_PER_DAY - shift,
            end_day_excl * US_PER_DAY - shift - 1,
        ));
    };

    // Split the zone designator off the time.
    let zone_at = time.find(['Z', '+', '-']);
    let (clock, offset) = match zone_at {
        Some(i) => (time.get(..i)?, parse_zone(time.get(i..)?)?),
        None => (time, default_offset),
    };
    let h = digits(clock, 2)?;
    if clock.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let mi = digits(clock.get(3..)?, 2)?;
    let (sec, width_us, frac_us) = match clock.len() {
        5 => (0, 60 * US_PER_SEC, 0),
        n if n >= 8 && clock.as_bytes().get(5) == Some(&b':') => {
            let s = digits(clock.get(6..)?, 2)?;
            if n == 8 {
                (s, US_PER_SEC, 0)
            } else {
                if clock.as_bytes().get(8) != Some(&b'.') {
                    return None;
                }
                let frac = clock.get(9..)?;
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Keep at most 6 digits (µs); finer digits do not narrow the range further.
                let used = frac.get(..frac.len().min(6))?;
                let scale = 10_i64.pow(6 - used.len() as u32);
                let value: i64 = used.parse().ok()?;
                (s, scale, value * scale)
            }
        }
        _ => return None,
    };
    // FHIR allows 60 for leap seconds only in theory; accept it as the last second.
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let day_start = days_from_civil(year, month?, day?) * US_PER_DAY;
    let local = day_start + (h * 3600 + mi * 60 + sec) * US_PER_SEC + frac_us;
    let low = local - offset * US_PER_SEC;
    Some((low, low + width_us - 1))
}

#[cfg(test)]
mod tests {
    use super::date_range;

    /// 2026-01-01T00:00:00Z in µs.
    const JAN_2026: i64 = 1_767_225_600_000_000;
    const DAY: i64 = 86_400_000_000;

    #[test]
    fn year_month_day_precision() {
        assert_eq!(
            date_range("2026", 0),
            Some((JAN_2026, JAN_2026 + 365 * DAY - 1))
        );
        assert_eq!(
            date_range("2026-01", 0),
            Some((JAN_2026, JAN_2026 + 31 * DAY - 1))
        );
        assert_eq!(
            date_range("2026-01-02", 0),
            Some((JAN_2026 + DAY, JAN_2026 + 2 * DAY - 1))
        );
        assert_eq!(date_range("1970-01-01", 0), Some((0, DAY - 1)));
        assert_eq!(date_range("1969-12-31", 0), Some((-DAY, -1)));
    }

    #[test]
    fn leap_years() {
        let feb = |y: &str| date_range(&format!("{y}-02"), 0).map(|(l, h)| (h - l + 1) / DAY);
        assert_eq!(feb("2024"), Some(29));
        assert_eq!(feb("2026"), Some(28));
        assert_eq!(feb("1900"), Some(28));
        assert_eq!(feb("2000"), Some(29));
        assert!(date_range("2024-02-29", 0).is_some());
        assert_eq!(date_range("2026-02-29", 0), None);
        assert_eq!(
            date_range("2024", 0).map(|(l, h)| (h - l + 1) / DAY),
            Some(366)
        );
    }

    #[test]
    fn invalid_values() {
        for bad in [
            "",
            "20",
            "2026-13",
            "2026-00",
            "2026-04-31",
            "2026-1-01",
            "abcd",
            "2026-01-01T",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00:00+5",
            "2026T10:00",
            "2026-01-01T10:00:00+15:00",
        ] {
            assert_eq!(date_range(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn time_precision() {
        let t = JAN_2026 + 10 * 3_600_000_000;
        assert_eq!(
            date_range("2026-01-01T10:00:00Z", 0),
            Some((t, t + 999_999))
        );
        assert_eq!(
            date_range("2026-01-01T10:00Z", 0),
            Some((t, t + 60_000_000 - 1))
        );
        assert_eq!(
            date_range("2026-01-01T10:00:00.5Z", 0),
            Some((t + 500_000, t + 599_999))
        );
        assert_eq!(
            date_range("2026-01-01T10:00:00.123456Z", 0),
            Some((t + 123_456, t + 123_456))
        );
        assert_eq!(
            date_range("2026-01-01T10:00:00.1234567Z", 0),
            Some((t + 123_456, t + 123_456))
        );
    }

    #[test]
    fn time_zones() {
        let t = JAN_2026 + 10 * 3_600_000_000;
        // Explicit zones win over the configured offset.
        assert_eq!(
            date_range("2026-01-01T12:00:00+02:00", -18_000),
            Some((t, t + 999_999))
        );
        assert_eq!(
            date_range("2026-01-01T05:30:00-04:30", 0),
            Some((t, t + 999_999))
        );
        // Without a zone, the configured offset applies (local 12:00 at +02:00 = 10:00Z).
        assert_eq!(
            date_range("2026-01-01T12:00:00", 7200),
            Some((t, t + 999_999))
        );
        // Date-only values are local whole days.
        assert_eq!(
            date_range("2026-01-01", 3600),
            Some((JAN_2026 - 3_600_000_000, JAN_2026 + DAY - 3_600_000_000 - 1))
        );
        assert_eq!(
            date_range("2026-01-01", -3600),
            Some((JAN_2026 + 3_600_000_000, JAN_2026 + DAY + 3_600_000_000 - 1))
        );
    }
}
