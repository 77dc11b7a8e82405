//! Properties of the date/time primitives (FHIR R4 datatypes.html#dateTime, search.html#date,
//! search.html#prefix), for every precision (year, month, day, minute, second, 1–12 fraction
//! digits), with and without a zone, in any server zone:
//!
//! * the text reads back as written (`FromStr` then `Display`), and the FHIR type shapes
//!   (`date`, `dateTime`, `instant`) are what the text has;
//! * its range is the one an independent calendar (the `time` crate) gives: from the start of
//!   the written period in its zone (or the server's) to the start of the next one;
//! * the value at a coarser precision (a prefix of the text, no zone) contains the finer one;
//! * every prefix judges a value's own range as search.html#prefix says.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use fhir_primitives::{DateTimePrecision, InstantRange, PartialDateTime, Prefix};
use proptest::prelude::*;
use time::{Date, Duration, Month, PrimitiveDateTime, Time, UtcOffset};

/// A date/time as a test writes it.
#[derive(Debug, Clone)]
struct Written {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction: String,
    precision: DateTimePrecision,
    /// Minutes east of UTC.
    zone: Option<i16>,
}

impl Written {
    fn text(&self) -> String {
        let mut s = format!("{:04}", self.year);
        if self.precision >= DateTimePrecision::Month {
            s += &format!("-{:02}", self.month);
        }
        if self.precision >= DateTimePrecision::Day {
            s += &format!("-{:02}", self.day);
        }
        if self.precision.has_time() {
            s += &format!("T{:02}:{:02}", self.hour, self.minute);
        }
        if self.precision.has_seconds() {
            s += &format!(":{:02}", self.second);
        }
        if let DateTimePrecision::Fraction(_) = self.precision {
            s += &format!(".{}", self.fraction);
        }
        match self.zone {
            Some(0) => s += "Z",
            Some(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                s += &format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60);
            }
            None => {}
        }
        s
    }

    /// The range by the `time` crate.
    fn oracle_range(&self, server_offset_seconds: i32) -> InstantRange {
        let offset_seconds = self
            .zone
            .map_or(server_offset_seconds, |m| i32::from(m) * 60);
        let offset = UtcOffset::from_whole_seconds(offset_seconds).unwrap();
        let month = Month::try_from(self.month).unwrap();
        let date = Date::from_calendar_date(self.year, month, self.day).unwrap();
        let nanos = match self.precision {
            DateTimePrecision::Fraction(_) => {
                let mut nine = self.fraction.clone();
                nine.truncate(9);
                while nine.len() < 9 {
                    nine.push('0');
                }
                nine.parse::<u32>().unwrap()
            }
            _ => 0,
        };
        let at = |date: Date, time: Time| {
            let nanos = PrimitiveDateTime::new(date, time)
                .assume_offset(offset)
                .unix_timestamp_nanos();
            i64::try_from(nanos.div_euclid(1_000)).unwrap()
        };
        let midnight = Time::MIDNIGHT;
        let (low, next) = match self.precision {
            DateTimePrecision::Year => {
                let start = Date::from_calendar_date(self.year, Month::January, 1).unwrap();
                let next = Date::from_calendar_date(self.year + 1, Month::January, 1).unwrap();
                (at(start, midnight), at(next, midnight))
            }
            DateTimePrecision::Month => {
                let start = Date::from_calendar_date(self.year, month, 1).unwrap();
                let next = if month == Month::December {
                    Date::from_calendar_date(self.year + 1, Month::January, 1).unwrap()
                } else {
                    Date::from_calendar_date(self.year, month.next(), 1).unwrap()
                };
                (at(start, midnight), at(next, midnight))
            }
            DateTimePrecision::Day => {
                let start = at(date, midnight);
                (start, start + Duration::DAY.whole_microseconds() as i64)
            }
            precision => {
                // A leap second is second 59; a minute starts at second 0.
                let second = if precision.has_seconds() {
                    self.second.min(59)
                } else {
                    0
                };
                let time = Time::from_hms_nano(self.hour, self.minute, second, nanos).unwrap();
                let start = at(date, time);
                let width = match precision {
                    DateTimePrecision::Minute => 60_000_000,
                    DateTimePrecision::Second => 1_000_000,
                    _ => 10_i64.pow(6 - self.fraction.len().min(6) as u32),
                };
                (start, start + width)
            }
        };
        InstantRange {
            low_us: low,
            high_us: next - 1,
        }
    }
}

fn precision() -> impl Strategy<Value = DateTimePrecision> {
    prop_oneof![
        Just(DateTimePrecision::Year),
        Just(DateTimePrecision::Month),
        Just(DateTimePrecision::Day),
        Just(DateTimePrecision::Minute),
        Just(DateTimePrecision::Second),
        (1u8..=12).prop_map(DateTimePrecision::Fraction),
    ]
}

fn zone() -> impl Strategy<Value = i16> {
    prop_oneof![
        Just(0i16),
        Just(840),
        Just(-840),
        (-56i16..=56).prop_map(|q| q * 15),
        -839i16..=839,
    ]
}

fn written() -> impl Strategy<Value = Written> {
    (
        (1i32..=9998, 1u8..=12, 1u8..=31),
        (
            0u8..=23,
            0u8..=59,
            prop_oneof![9 => 0u8..=59, 1 => Just(60u8)],
        ),
        precision(),
        proptest::option::of(zone()),
    )
        .prop_flat_map(
            |((year, month, day), (hour, minute, second), precision, zone)| {
                let digits = match precision {
                    DateTimePrecision::Fraction(n) => usize::from(n),
                    _ => 1,
                };
                let fraction = proptest::collection::vec(0u8..=9, digits)
                    .prop_map(|d| d.iter().map(|d| char::from(b'0' + d)).collect::<String>());
                let last_day = time::util::days_in_month(Month::try_from(month).unwrap(), year);
                (
                    Just((year, month, day.min(last_day), hour, minute, second)),
                    fraction,
                )
                    .prop_map(
                        move |((year, month, day, hour, minute, second), fraction)| Written {
                            year,
                            month,
                            day,
                            hour,
                            minute,
                            second,
                            fraction,
                            precision,
                            // A zone needs a time.
                            zone: zone.filter(|_| precision.has_time()),
                        },
                    )
            },
        )
}

fn server_offset() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        (-48i32..=56).prop_map(|q| q * 900),
        -50_400i32..=50_400
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn text_reads_back_as_written(w in written()) {
        let text = w.text();
        let value: PartialDateTime = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(value.precision(), w.precision);
        prop_assert_eq!(value.offset().map(|o| o.minutes()), w.zone);
        // Nine fraction digits are kept.
        let kept = Written { fraction: w.fraction.chars().take(9).collect(), ..w.clone() };
        prop_assert_eq!(value.to_string(), kept.text());
        prop_assert_eq!(value.is_date(), !w.precision.has_time());
        prop_assert_eq!(value.is_instant(), w.precision.has_seconds() && w.zone.is_some());
    }

    #[test]
    fn range_is_the_calendar_period(w in written(), server in server_offset()) {
        let text = w.text();
        let value: PartialDateTime = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let range = value.range(server);
        prop_assert_eq!(range, w.oracle_range(server), "{}", text);
        prop_assert!(range.low_us <= range.high_us);
    }

    #[test]
    fn a_coarser_value_contains_the_finer(w in written(), server in server_offset()) {
        let local = Written { zone: None, ..w };
        let text = local.text();
        let fine: PartialDateTime = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let fine = fine.range(server);
        for cut in [4, 7, 10, 16, 19] {
            if let Some(coarse) = text.get(..cut).filter(|_| cut < text.len()) {
                let coarse: PartialDateTime = coarse.parse().map_err(|e| TestCaseError::fail(format!("{coarse}: {e}")))?;
                let coarse = coarse.range(server);
                prop_assert!(coarse.low_us <= fine.low_us && fine.high_us <= coarse.high_us, "{} in {}", text, cut);
                prop_assert!(Prefix::Eq.matches(fine.into(), coarse.into()));
            }
        }
    }

    #[test]
    fn prefixes_judge_a_values_own_range(w in written(), server in server_offset()) {
        let text = w.text();
        let value: PartialDateTime = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let range = value.range(server);
        for prefix in Prefix::ALL {
            let expected = matches!(prefix, Prefix::Eq | Prefix::Ge | Prefix::Le | Prefix::Ap);
            prop_assert_eq!(prefix.matches(range.into(), range.into()), expected, "{} {}", prefix.code(), text);
        }
    }
}
