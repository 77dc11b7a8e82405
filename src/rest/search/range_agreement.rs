//! Property tests (proptest) that an index row and a search of the same date agree (FHIR R4
//! search.html#date, search.html#prefix), through the paths the server really takes:
//!
//! * write side: a resource carrying the value (`Observation.effectiveDateTime`,
//!   `effectiveInstant`, `effectivePeriod`, `Patient.birthDate`) → FHIRPath extraction
//!   (`fhir-search-index`) → the store's `IndexRow::Date { low_us, high_us }`;
//! * search side: `date=<prefix><value>` → `fhir-search-query` parsing → `translate` → the
//!   store's `Condition::Date { range }`, whose SQL is rendered from
//!   `fhir_primitives::Prefix::range_test`, the table [`Prefix::matches`] evaluates here.
//!
//! For every precision (year, month, day, second, 1–9 fraction digits in resources; minutes
//! and zone-less times too in search values), in any server zone, and every prefix: the row's
//! range equals the query's, and each prefix judges the row of the same value, and of any
//! other value, as the spec says. Run with `cargo test -p coplan --lib range_agreement`.
//!
//! Resources carry only what datatypes.html allows (a time needs seconds and a zone; the
//! validator refuses anything else): the FHIRPath engine reads a zone-less time reached
//! through a choice (`Observation.effective`) as UTC, so the index of such a value would not
//! follow the server's zone.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::params::R4SearchParams;
use super::translate::{clause, Context};
use crate::store::index::IndexRow;
use crate::store::search::{Condition, Range};
use fhir_primitives::{Bounds, DateTimePrecision, PartialDateTime, Prefix};
use fhir_search_query::ParamLookup;

/// A date/time as a client or a resource writes it.
#[derive(Debug, Clone)]
struct Written {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction: String,
    precision: DateTimePrecision,
    /// Minutes east of UTC; only with a time.
    zone: Option<i16>,
}

impl Written {
    /// The value as a resource may carry it (datatypes.html#dateTime): a time needs seconds
    /// and a zone (`zone` when it has none). Minutes and zone-less times are search forms only.
    fn in_resource(self, zone: i16) -> Written {
        if !self.precision.has_time() {
            return self;
        }
        Written {
            precision: self.precision.max(DateTimePrecision::Second),
            zone: self.zone.or(Some(zone)),
            ..self
        }
    }

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
}

/// Small field domains, so that two values are often equal, adjacent or overlapping.
fn written() -> impl Strategy<Value = Written> {
    let precision = prop_oneof![
        Just(DateTimePrecision::Year),
        Just(DateTimePrecision::Month),
        Just(DateTimePrecision::Day),
        Just(DateTimePrecision::Minute),
        Just(DateTimePrecision::Second),
        (1u8..=9).prop_map(DateTimePrecision::Fraction),
    ];
    let zone = proptest::option::of(prop_oneof![
        Just(0i16),
        Just(60),
        Just(-330),
        Just(840),
        Just(-840),
        -839i16..=839,
    ]);
    (
        (
            prop_oneof![Just(1969u16), Just(1970), 2024u16..=2026, 1u16..=9999],
            1u8..=12,
            prop_oneof![1u8..=2, 28u8..=31],
        ),
        (
            prop_oneof![0u8..=1, 22u8..=23],
            0u8..=1,
            prop_oneof![0u8..=1, Just(59), Just(60)],
        ),
        (precision, zone, proptest::collection::vec(0u8..=9, 9)),
    )
        .prop_map(
            |((year, month, day), (hour, minute, second), (precision, zone, nine))| {
                let last_day = match month {
                    2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                let digits = match precision {
                    DateTimePrecision::Fraction(n) => usize::from(n),
                    _ => 0,
                };
                Written {
                    year,
                    month,
                    day: day.min(last_day),
                    hour,
                    minute,
                    second,
                    fraction: nine
                        .iter()
                        .take(digits)
                        .map(|d| char::from(b'0' + d))
                        .collect(),
                    precision,
                    zone: zone.filter(|_| precision.has_time()),
                }
            },
        )
}

fn server_zone() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(3600),
        Just(-18_000),
        (-48i32..=56).prop_map(|q| q * 900),
        -50_400i32..=50_400
    ]
}

/// Where a resource carries the value: the search parameter and the resource.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    EffectiveDateTime,
    EffectiveInstant,
    /// `effectivePeriod` with the value as both start and end.
    EffectivePeriod,
    BirthDate,
}

fn carrier() -> impl Strategy<Value = Carrier> {
    prop_oneof![
        Just(Carrier::EffectiveDateTime),
        Just(Carrier::EffectiveInstant),
        Just(Carrier::EffectivePeriod),
        Just(Carrier::BirthDate),
    ]
}

impl Carrier {
    /// (resource type, search parameter, resource); instants and birth dates only where the
    /// type allows the value (else the `dateTime` element).
    fn carry(self, value: &PartialDateTime, text: &str) -> (&'static str, &'static str, Value) {
        match self {
            Carrier::BirthDate if value.is_date() => (
                "Patient",
                "birthdate",
                json!({"resourceType": "Patient", "id": "p", "birthDate": text}),
            ),
            Carrier::EffectiveInstant if value.is_instant() => (
                "Observation",
                "date",
                json!({"resourceType": "Observation", "id": "o", "status": "final",
                       "code": {"text": "x"}, "effectiveInstant": text}),
            ),
            Carrier::EffectivePeriod => (
                "Observation",
                "date",
                json!({"resourceType": "Observation", "id": "o", "status": "final",
                       "code": {"text": "x"}, "effectivePeriod": {"start": text, "end": text}}),
            ),
            _ => (
                "Observation",
                "date",
                json!({"resourceType": "Observation", "id": "o", "status": "final",
                       "code": {"text": "x"}, "effectiveDateTime": text}),
            ),
        }
    }
}

/// The `(low_us, high_us)` of the index rows of `code` the server writes for `resource`.
fn indexed(params: &R4SearchParams, resource: &Value, code: &str) -> Vec<Bounds<i64>> {
    let rows = params.index_rows(resource).unwrap();
    rows.into_iter()
        .filter_map(|row| match row {
            IndexRow::Date {
                code: c,
                low_us,
                high_us,
            } if c == code => Some(Bounds {
                low: low_us,
                high: high_us,
            }),
            _ => None,
        })
        .collect()
}

/// The store range a search `code=<prefix><text>` on `resource_type` means.
fn searched(
    params: &R4SearchParams,
    resource_type: &str,
    code: &str,
    prefix: Prefix,
    text: &str,
) -> Range<i64> {
    let value = format!("{}{text}", prefix.code());
    let request = fhir_search_query::parse([(code, value.as_str())], resource_type, params, true)
        .unwrap_or_else(|e| panic!("{code}={value}: {e:?}"));
    let [filter] = request.filters.as_slice() else {
        panic!("{code}={value}: {request:?}")
    };
    let normalize = |s: &str| s.to_string();
    let ctx = Context {
        normalize: &normalize,
        tz_offset_seconds: params.tz_offset_seconds,
        base_url: "http://example.org/fhir",
    };
    let clause = clause(filter, &ctx).unwrap();
    match clause.any_of.as_slice() {
        [Condition::Date { code: c, range }] if c == code => *range,
        other => panic!("{code}={value}: {other:?}"),
    }
}

fn bounds(range: &Range<i64>) -> Bounds<i64> {
    Bounds {
        low: range.low,
        high: range.high,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The row of a value and the search of the same value: one range, and every prefix judges
    /// the row as search.html#prefix says (the value equals itself: eq, ge, le, ap match; ne,
    /// gt, lt, sa, eb do not).
    #[test]
    fn index_row_range_equals_query_range(
        w in written(),
        zone in -840i16..=840,
        tz in server_zone(),
        carrier in carrier(),
    ) {
        let params = R4SearchParams {
            tz_offset_seconds: tz,
            ..R4SearchParams::default()
        };
        let text = w.in_resource(zone).text();
        let value: PartialDateTime = text.parse().unwrap();
        let (resource_type, code, resource) = carrier.carry(&value, &text);
        prop_assert!(params.lookup(resource_type, code).is_some());
        let rows = indexed(&params, &resource, code);
        prop_assert_eq!(rows.len(), 1, "{} rows for {}", rows.len(), text);
        let row = rows[0];
        for prefix in Prefix::ALL {
            let range = searched(&params, resource_type, code, prefix, &text);
            prop_assert_eq!(range.op, prefix);
            prop_assert_eq!(bounds(&range), row, "{} {}{}", code, prefix.code(), text);
            let expected = matches!(prefix, Prefix::Eq | Prefix::Ge | Prefix::Le | Prefix::Ap);
            prop_assert_eq!(
                range.op.matches(row, bounds(&range)),
                expected,
                "{}{} against its own row",
                prefix.code(),
                text
            );
        }
    }

    /// The row of one value and the search of another, of any precision (and with or without
    /// a zone): each prefix matches as search.html#prefix says for the search range after,
    /// before, around or inside the row's, or overlapping it in part.
    #[test]
    fn prefixes_order_neighbouring_values(
        a in written(),
        zone in -840i16..=840,
        b in written(),
        tz in server_zone(),
    ) {
        let params = R4SearchParams {
            tz_offset_seconds: tz,
            ..R4SearchParams::default()
        };
        let (row_text, query_text) = (a.in_resource(zone).text(), b.text());
        let resource = json!({"resourceType": "Observation", "id": "o", "status": "final",
                              "code": {"text": "x"}, "effectiveDateTime": row_text});
        let rows = indexed(&params, &resource, "date");
        prop_assert_eq!(rows.len(), 1);
        let row = rows[0];
        let contains = |outer: Bounds<i64>, inner: Bounds<i64>| {
            outer.low <= inner.low && inner.high <= outer.high
        };
        for prefix in Prefix::ALL {
            let search = bounds(&searched(&params, "Observation", "date", prefix, &query_text));
            let matched = prefix.matches(row, search);
            let case = format!("row {row_text} {row:?}, search {}{query_text} {search:?}", prefix.code());
            let expected = if row.low > search.high {
                // The row is after the search value.
                matches!(prefix, Prefix::Ne | Prefix::Gt | Prefix::Ge | Prefix::Sa)
            } else if row.high < search.low {
                // The row is before the search value.
                matches!(prefix, Prefix::Ne | Prefix::Lt | Prefix::Le | Prefix::Eb)
            } else if contains(search, row) {
                // The search value contains the row (or equals it).
                matches!(prefix, Prefix::Eq | Prefix::Ge | Prefix::Le | Prefix::Ap)
            } else {
                // The row reaches beyond the search value on one side or both: never equal,
                // always approximate, neither wholly after nor before; above when it reaches
                // above, below when it reaches below (one of them at least). `ge` and `le`
                // follow the server's reading: the row reaches the value, or beyond it.
                prop_assert!(row.high > search.high || row.low < search.low, "{}", case);
                match prefix {
                    Prefix::Eq | Prefix::Sa | Prefix::Eb => false,
                    Prefix::Ne | Prefix::Ap | Prefix::Ge | Prefix::Le => true,
                    Prefix::Gt => row.high > search.high,
                    Prefix::Lt => row.low < search.low,
                }
            };
            prop_assert_eq!(matched, expected, "{}", case);
        }
    }
}
