//! The FHIR date/time primitives `date`, `dateTime` and `instant` (FHIR R4 datatypes.html
//! #date, #dateTime, #instant) and the `time` of day (#time), parsed once into
//! [`PartialDateTime`] and [`TimeOfDay`].
//!
//! [`PartialDateTime`]'s [`FromStr`] reads the one grammar that resources and date search
//! values (search.html#date) share:
//!
//! ```text
//! YYYY | YYYY-MM | YYYY-MM-DD | YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh:mm]
//! ```
//!
//! with calendar validity checked: year 0001–9999 (the R4 regex excludes 0000), month 1–12,
//! day within its month (leap years included), hour 0–23, minute 0–59, second 0–60 (60 only for
//! a leap second), zone at most ±14:00. A zone needs a time. Which of these shapes each FHIR type
//! allows in a resource is [`PartialDateTime::is_date`], [`is_date_time`](PartialDateTime::is_date_time)
//! and [`is_instant`](PartialDateTime::is_instant): a `dateTime` with a time needs seconds and a
//! zone, an `instant` needs both always; search values may leave out the seconds and the zone.

use std::fmt;
use std::str::FromStr;

use crate::calendar::days_in_month;

/// How much of a date/time was written. The order is from coarsest to finest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DateTimePrecision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    /// Seconds with this many fraction digits, as written (saturating at 255). Digits after
    /// the ninth are read but not kept (nanoseconds), and digits after the sixth do not narrow
    /// the range (microseconds).
    Fraction(u8),
}

impl DateTimePrecision {
    /// Whether a value of this precision has a time of day.
    pub fn has_time(self) -> bool {
        self >= DateTimePrecision::Minute
    }

    /// Whether a value of this precision has seconds (what `dateTime` times and `instant`s need).
    pub fn has_seconds(self) -> bool {
        self >= DateTimePrecision::Second
    }
}

/// A zone offset east of UTC, whole minutes, at most ±14:00 (datatypes.html#dateTime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneOffset {
    minutes: i16,
}

impl ZoneOffset {
    /// `Z`.
    pub const UTC: ZoneOffset = ZoneOffset { minutes: 0 };
    /// The largest offset FHIR allows, in minutes (±14:00).
    pub const MAX_MINUTES: i16 = 14 * 60;

    /// The offset of `minutes` east of UTC, if FHIR allows it.
    pub fn from_minutes(minutes: i16) -> Option<ZoneOffset> {
        (minutes.abs() <= Self::MAX_MINUTES).then_some(ZoneOffset { minutes })
    }

    /// Minutes east of UTC.
    pub fn minutes(self) -> i16 {
        self.minutes
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        i32::from(self.minutes) * 60
    }
}

impl fmt::Display for ZoneOffset {
    /// `Z` for UTC, else `±hh:mm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minutes == 0 {
            return f.write_str("Z");
        }
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// A time of day: hour 0–23, minute 0–59, second 0–60 (60 only for a leap second), and the
/// fraction of the second in nanoseconds. On its own it is the FHIR `time` type
/// (`hh:mm:ss[.f+]`, datatypes.html#time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
}

impl TimeOfDay {
    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }

    /// 0–60; 60 is a leap second.
    pub fn second(self) -> u8 {
        self.second
    }

    /// The fraction of the second in nanoseconds (the first nine digits written).
    pub fn nanos(self) -> u32 {
        self.nanos
    }
}

/// Why a text is not a date/time (or time) of the expected form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseDateTimeError;

impl fmt::Display for ParseDateTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a valid FHIR date/time")
    }
}

impl std::error::Error for ParseDateTimeError {}

/// A FHIR date, dateTime or instant at the precision it was written with: the year, then as
/// much of month, day and time as were given, and the zone if one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialDateTime {
    year: u16,
    /// 1 when not given.
    month: u8,
    /// 1 when not given.
    day: u8,
    /// Midnight when not given.
    time: TimeOfDay,
    precision: DateTimePrecision,
    offset: Option<ZoneOffset>,
}

impl PartialDateTime {
    /// 1–9999.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// 1–12, if written.
    pub fn month(&self) -> Option<u8> {
        (self.precision >= DateTimePrecision::Month).then_some(self.month)
    }

    /// 1–31, if written.
    pub fn day(&self) -> Option<u8> {
        (self.precision >= DateTimePrecision::Day).then_some(self.day)
    }

    /// The time of day, if written.
    pub fn time(&self) -> Option<TimeOfDay> {
        self.precision.has_time().then_some(self.time)
    }

    /// The zone, if written (only a value with a time can have one).
    pub fn offset(&self) -> Option<ZoneOffset> {
        self.offset
    }

    pub fn precision(&self) -> DateTimePrecision {
        self.precision
    }

    /// The calendar fields with the defaults for what was not written (month and day 1,
    /// midnight), for arithmetic.
    pub(crate) fn fields(&self) -> (u16, u8, u8, TimeOfDay) {
        (self.year, self.month, self.day, self.time)
    }

    /// A valid FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn is_date(&self) -> bool {
        !self.precision.has_time()
    }

    /// A valid FHIR `dateTime`: a date, or a full date and a time with seconds and a zone.
    pub fn is_date_time(&self) -> bool {
        self.is_date() || self.is_instant()
    }

    /// A valid FHIR `instant`: a full date and a time with seconds and a zone.
    pub fn is_instant(&self) -> bool {
        self.precision.has_seconds() && self.offset.is_some()
    }
}

impl FromStr for PartialDateTime {
    type Err = ParseDateTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_date_time(s.as_bytes()).ok_or(ParseDateTimeError)
    }
}

impl FromStr for TimeOfDay {
    type Err = ParseDateTimeError;

    /// The FHIR `time` type: `hh:mm:ss[.f+]`, no zone.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_clock(s.as_bytes(), 0) {
            Some((time, precision, end)) if precision.has_seconds() && end == s.len() => Ok(time),
            _ => Err(ParseDateTimeError),
        }
    }
}

impl fmt::Display for TimeOfDay {
    /// `hh:mm:ss`, then the fraction without trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)?;
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl fmt::Display for PartialDateTime {
    /// The value at its precision, in the grammar [`FromStr`] reads (UTC written `Z`; fraction
    /// digits as many as the precision says, at most nine).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(month) = self.month() {
            write!(f, "-{month:02}")?;
        }
        if let Some(day) = self.day() {
            write!(f, "-{day:02}")?;
        }
        if let Some(time) = self.time() {
            write!(f, "T{:02}:{:02}", time.hour, time.minute)?;
            if self.precision.has_seconds() {
                write!(f, ":{:02}", time.second)?;
            }
            if let DateTimePrecision::Fraction(digits) = self.precision {
                let shown = usize::from(digits.min(9));
                let all = format!("{:09}", time.nanos);
                write!(f, ".{}", all.get(..shown).unwrap_or(&all))?;
            }
        }
        if let Some(offset) = self.offset {
            write!(f, "{offset}")?;
        }
        Ok(())
    }
}

/// The value of the `n` ASCII digits at `pos`, if they are all digits.
fn digits(b: &[u8], pos: usize, n: usize) -> Option<u32> {
    let part = b.get(pos..pos + n)?;
    part.iter().try_fold(0u32, |value, &c| {
        c.is_ascii_digit().then(|| value * 10 + u32::from(c - b'0'))
    })
}

fn parse_date_time(b: &[u8]) -> Option<PartialDateTime> {
    let year = digits(b, 0, 4)?;
    if year == 0 {
        return None;
    }
    let mut value = PartialDateTime {
        year: u16::try_from(year).ok()?,
        month: 1,
        day: 1,
        time: TimeOfDay::default(),
        precision: DateTimePrecision::Year,
        offset: None,
    };
    if b.len() == 4 {
        return Some(value);
    }
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    value.month = u8::try_from(month).ok()?;
    value.precision = DateTimePrecision::Month;
    if b.len() == 7 {
        return Some(value);
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(b, 8, 2)?;
    if day == 0 || i64::from(day) > days_in_month(i64::from(year), i64::from(month)) {
        return None;
    }
    value.day = u8::try_from(day).ok()?;
    value.precision = DateTimePrecision::Day;
    if b.len() == 10 {
        return Some(value);
    }
    if b.get(10) != Some(&b'T') {
        return None;
    }
    let (time, precision, end) = parse_clock(b, 11)?;
    value.time = time;
    value.precision = precision;
    let zone = b.get(end..)?;
    if !zone.is_empty() {
        value.offset = Some(parse_zone(zone)?);
    }
    Some(value)
}

/// `hh:mm[:ss[.f+]]` from `start`: the time, its precision and where it ends.
fn parse_clock(b: &[u8], start: usize) -> Option<(TimeOfDay, DateTimePrecision, usize)> {
    let hour = digits(b, start, 2)?;
    if b.get(start + 2) != Some(&b':') {
        return None;
    }
    let minute = digits(b, start + 3, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut time = TimeOfDay {
        hour: u8::try_from(hour).ok()?,
        minute: u8::try_from(minute).ok()?,
        ..TimeOfDay::default()
    };
    let mut pos = start + 5;
    if b.get(pos) != Some(&b':') {
        return Some((time, DateTimePrecision::Minute, pos));
    }
    let second = digits(b, pos + 1, 2)?;
    if second > 60 {
        return None;
    }
    time.second = u8::try_from(second).ok()?;
    pos += 3;
    if b.get(pos) != Some(&b'.') {
        return Some((time, DateTimePrecision::Second, pos));
    }
    pos += 1;
    let fraction_start = pos;
    while b.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    let written = pos - fraction_start;
    if written == 0 {
        return None;
    }
    let kept = written.min(9);
    let mut nanos = digits(b, fraction_start, kept)?;
    for _ in kept..9 {
        nanos *= 10;
    }
    time.nanos = nanos;
    let precision = DateTimePrecision::Fraction(u8::try_from(written).unwrap_or(u8::MAX));
    Some((time, precision, pos))
}

/// `Z` or `±hh:mm` (at most ±14:00), the whole of `b`.
fn parse_zone(b: &[u8]) -> Option<ZoneOffset> {
    if b == b"Z" {
        return Some(ZoneOffset::UTC);
    }
    let negative = match b.first()? {
        b'+' => false,
        b'-' => true,
        _ => return None,
    };
    if b.len() != 6 || b.get(3) != Some(&b':') {
        return None;
    }
    let hours = digits(b, 1, 2)?;
    let minutes = digits(b, 4, 2)?;
    if minutes > 59 {
        return None;
    }
    let total = i16::try_from(hours * 60 + minutes).ok()?;
    ZoneOffset::from_minutes(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DateTimePrecision::*;

    fn parse(s: &str) -> Option<PartialDateTime> {
        s.parse().ok()
    }

    #[test]
    fn precisions_and_zones() {
        let cases: &[(&str, DateTimePrecision, bool)] = &[
            ("2026", Year, false),
            ("2026-01", Month, false),
            ("2026-01-01", Day, false),
            ("2024-02-29", Day, false),
            ("2000-02-29", Day, false),
            ("2026-03-01T10:00", Minute, false),
            ("2026-03-01T10:00Z", Minute, true),
            ("2026-03-01T10:00:59", Second, false),
            ("2026-03-01T10:00:59+02:00", Second, true),
            ("2026-03-01T23:59:60.123Z", Fraction(3), true),
            ("2026-03-01T00:00:00.1-14:00", Fraction(1), true),
            ("2026-03-01T00:00:00.123456789", Fraction(9), false),
            ("2026-03-01T00:00:00.1234567890123Z", Fraction(13), true),
        ];
        for (text, precision, zoned) in cases {
            let v = parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (v.precision(), v.offset().is_some()),
                (*precision, *zoned),
                "{text}"
            );
        }
    }

    #[test]
    fn fields_are_read() {
        let v = parse("2026-03-01T10:20:30.5-05:30").unwrap();
        assert_eq!((v.year(), v.month(), v.day()), (2026, Some(3), Some(1)));
        let t = v.time().unwrap();
        assert_eq!(
            (t.hour(), t.minute(), t.second(), t.nanos()),
            (10, 20, 30, 500_000_000)
        );
        assert_eq!(v.offset().map(ZoneOffset::minutes), Some(-330));
        let v = parse("2026").unwrap();
        assert_eq!(
            (v.month(), v.day(), v.time(), v.offset()),
            (None, None, None, None)
        );
    }

    #[test]
    fn invalid_texts() {
        for text in [
            "",
            "26",
            "abcd",
            "0000",
            "2026-13-01",
            "2026-13",
            "2026-00",
            "2026-1",
            "2026-1-01",
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-01-00",
            "2026-01-01Z",
            "2026-01-01+01:00",
            "2026-01-01T",
            "2026T10:00",
            "2026-01T10:00",
            "2026-01-01T24:00",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:60",
            "2026-01-01T10",
            "2026-01-01T10:00:61",
            "2026-01-01T10:00:00.",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00+15:00",
            "2026-01-01T10:00+14:30",
            "2026-01-01T10:00+0100",
            "2026-01-01T10:00:00+5",
            "2026-01-01T10:00Zx",
            "2026-01-01T10:00:00z",
            "2026-01-01t10:00:00Z",
            "2026-01-01 10:00",
            "2026-01-01T10:00:00ü",
            "ü",
            "2026/01/01",
            "+2026",
            " 2026",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn fhir_type_shapes() {
        let v = |s: &str| parse(s).unwrap();
        assert!(v("2024-02").is_date() && v("2024-02").is_date_time() && !v("2024").is_instant());
        let instant = v("2015-02-07T13:28:17.239+02:00");
        assert!(instant.is_instant() && instant.is_date_time() && !instant.is_date());
        assert!(!v("2024-05-06T10:11:12").is_date_time());
        assert!(!v("2024-05-06T10:11Z").is_date_time());
        assert!(!v("2024-05-06T10:11Z").is_instant());
    }

    #[test]
    fn display_writes_the_grammar_back() {
        for text in [
            "2026",
            "2026-01",
            "2026-01-02",
            "2026-01-02T03:04",
            "2026-01-02T03:04Z",
            "2026-01-02T03:04:05-04:30",
            "2026-01-02T03:04:05.000Z",
            "2026-01-02T03:04:05.120+14:00",
            "0001-01-01T00:00:00.123456789",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            parse("2026-01-02T03:04:05+00:00").unwrap().to_string(),
            "2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn times_of_day() {
        let t = |s: &str| s.parse::<TimeOfDay>().ok();
        assert!(t("00:00:00").is_some() && t("23:59:59.5").is_some() && t("12:30:60").is_some());
        for bad in ["24:00:00", "12:30", "12:30:00Z", "1:30:00", "", "12:30:00."] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(t("23:59:59.50").unwrap().to_string(), "23:59:59.5");
    }
}
