//! Hand-written matchers for the FHIR R4 primitive types, one per type,
//! implementing the regular expressions of FHIR R4 datatypes.html §2.24.0.1
//! (plus calendar validity for dates, and the 32-bit ranges for integers).
//!
//! Every matcher works on the lexical form (for numbers: the JSON source
//! text) and rejects the empty string, since FHIR forbids empty values.
//! `\s` in the spec regexes is the ASCII whitespace set, as in Java.

/// Maximum size of a `string` value (FHIR R4: "strings SHALL NOT exceed 1MB").
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Whitespace as matched by `\s` in the FHIR regexes.
#[inline]
fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

#[inline]
fn all_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// `true|false`.
pub fn is_boolean(s: &str) -> bool {
    s == "true" || s == "false"
}

/// Parses a digit string without leading zero issues; None when > i32::MAX.
fn small_value(digits: &[u8]) -> Option<i64> {
    if digits.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = v * 10 + i64::from(d - b'0');
    }
    Some(v)
}

/// `-?([0]|([1-9][0-9]*))`, within -2,147,483,648..2,147,483,647.
pub fn is_integer(s: &str) -> bool {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if !all_digits(digits) || (digits.len() > 1 && digits[0] == b'0') {
        return false;
    }
    match small_value(digits) {
        Some(v) if neg => v <= 2_147_483_648,
        Some(v) => v <= 2_147_483_647,
        None => false,
    }
}

/// `[0]|([1-9][0-9]*)`, at most 2,147,483,647.
pub fn is_unsigned_int(s: &str) -> bool {
    let b = s.as_bytes();
    if !all_digits(b) || (b.len() > 1 && b[0] == b'0') {
        return false;
    }
    matches!(small_value(b), Some(v) if v <= 2_147_483_647)
}

/// `+?[1-9][0-9]*`, at most 2,147,483,647.
pub fn is_positive_int(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.strip_prefix(b"+").unwrap_or(b);
    if !all_digits(digits) || digits[0] == b'0' {
        return false;
    }
    matches!(small_value(digits), Some(v) if v <= 2_147_483_647)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i = 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - start;
    if int_len == 0 || (int_len > 1 && b[start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// `[ \r\n\t\S]+`: non-empty, no control characters other than tab, CR and
/// LF, at most [`MAX_STRING_BYTES`].
pub fn is_string(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_STRING_BYTES && !has_forbidden_control(s)
}

/// Control characters forbidden in FHIR strings (below U+0020 other than
/// tab, CR, LF).
pub(crate) fn has_forbidden_control(s: &str) -> bool {
    s.bytes()
        .any(|b| b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n')
}

/// markdown: `\s*(\S|\s)*` — any non-empty string obeying the string rules.
pub fn is_markdown(s: &str) -> bool {
    is_string(s)
}

/// `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `[^\s]+(\s[^\s]+)*`: no leading/trailing whitespace, single internal
/// whitespace characters only.
pub fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || ws(b[0]) || ws(b[b.len() - 1]) {
        return false;
    }
    !b.windows(2).any(|w| ws(w[0]) && ws(w[1]))
}

/// uri: `\S*` (non-empty here).
pub fn is_uri(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(ws) && !has_forbidden_control(s)
}

/// url: `\S*` (non-empty here).
pub fn is_url(s: &str) -> bool {
    is_uri(s)
}

/// canonical: `\S*` (non-empty here).
pub fn is_canonical(s: &str) -> bool {
    is_uri(s)
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
pub fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    match parts.next() {
        Some("0" | "1" | "2") => {}
        _ => return false,
    }
    let mut n = 0;
    for p in parts {
        let b = p.as_bytes();
        if !all_digits(b) || (b.len() > 1 && b[0] == b'0') {
            return false;
        }
        n += 1;
    }
    n > 0
}

/// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`.
pub fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, and `=` only as trailing padding.
pub fn is_base64_binary(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut groups = 0;
    let mut padding_seen = false;
    loop {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return groups > 0;
        }
        if padding_seen || i + 4 > b.len() {
            return false;
        }
        let g = &b[i..i + 4];
        for (k, &c) in g.iter().enumerate() {
            if c == b'=' {
                // padding: only in the last two positions, then only '='
                if k < 2 || g[k..].iter().any(|&x| x != b'=') {
                    return false;
                }
                padding_seen = true;
            } else if !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/') {
                return false;
            }
        }
        i += 4;
        groups += 1;
    }
}

fn two(b: &[u8], i: usize) -> Option<u32> {
    match (b.get(i), b.get(i + 1)) {
        (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
            Some(u32::from(x - b'0') * 10 + u32::from(y - b'0'))
        }
        _ => None,
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Date precision parsed by [`parse_date`].
#[derive(PartialEq, Eq, Clone, Copy)]
enum DatePrec {
    Year,
    Month,
    Day,
}

/// Parses `YYYY(-MM(-DD)?)?` at the start of `b`; returns precision and
/// bytes consumed. Year 0000 is excluded (as in the R4 regex).
fn parse_date(b: &[u8]) -> Option<(DatePrec, usize)> {
    let y = two(b, 0)? * 100 + two(b, 2)?;
    if y == 0 {
        return None;
    }
    if b.get(4) != Some(&b'-') {
        return Some((DatePrec::Year, 4));
    }
    let m = two(b, 5)?;
    if !(1..=12).contains(&m) {
        return None;
    }
    if b.get(7) != Some(&b'-') {
        return Some((DatePrec::Month, 7));
    }
    let d = two(b, 8)?;
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((DatePrec::Day, 10))
}

/// Parses `hh:mm:ss(\.[0-9]+)?` at the start of `b`; returns bytes consumed.
fn parse_time(b: &[u8]) -> Option<usize> {
    let h = two(b, 0)?;
    let m = two(b, 3)?;
    let s = two(b, 6)?;
    if b[2] != b':' || b[5] != b':' || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut i = 8;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return None;
        }
    }
    Some(i)
}

/// `Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`, exactly the whole of `b`.
fn is_zone(b: &[u8]) -> bool {
    if b == b"Z" {
        return true;
    }
    if b.len() != 6 || !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
        return false;
    }
    match (two(b, 1), two(b, 4)) {
        (Some(h), Some(m)) => (h <= 13 && m <= 59) || (h == 14 && m == 0),
        _ => false,
    }
}

/// date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real calendar date.
pub fn is_date(s: &str) -> bool {
    matches!(parse_date(s.as_bytes()), Some((_, n)) if n == s.len())
}

/// dateTime: a date, or a full date + `T` + time with seconds and a
/// mandatory zone.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    match parse_date(b) {
        Some((_, n)) if n == b.len() => true,
        Some((DatePrec::Day, n)) => b[n] == b'T' && time_and_zone(&b[n + 1..]),
        _ => false,
    }
}

fn time_and_zone(b: &[u8]) -> bool {
    match parse_time(b) {
        Some(n) => is_zone(&b[n..]),
        None => false,
    }
}

/// instant: `YYYY-MM-DDThh:mm:ss(.f+)?` + zone, all parts required.
pub fn is_instant(s: &str) -> bool {
    let b = s.as_bytes();
    match parse_date(b) {
        Some((DatePrec::Day, n)) if n < b.len() => b[n] == b'T' && time_and_zone(&b[n + 1..]),
        _ => false,
    }
}

/// time: `([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?`.
pub fn is_time(s: &str) -> bool {
    matches!(parse_time(s.as_bytes()), Some(n) if n == s.len())
}

/// The R4 primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    String,
    Markdown,
    Id,
    Code,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Instant,
    Date,
    DateTime,
    Time,
    Xhtml,
}

impl Prim {
    pub(crate) fn from_name(name: &str) -> Option<Prim> {
        Some(match name {
            "boolean" => Prim::Boolean,
            "integer" => Prim::Integer,
            "positiveInt" => Prim::PositiveInt,
            "unsignedInt" => Prim::UnsignedInt,
            "decimal" => Prim::Decimal,
            "string" => Prim::String,
            "markdown" => Prim::Markdown,
            "id" => Prim::Id,
            "code" => Prim::Code,
            "uri" => Prim::Uri,
            "url" => Prim::Url,
            "canonical" => Prim::Canonical,
            "oid" => Prim::Oid,
            "uuid" => Prim::Uuid,
            "base64Binary" => Prim::Base64Binary,
            "instant" => Prim::Instant,
            "date" => Prim::Date,
            "dateTime" => Prim::DateTime,
            "time" => Prim::Time,
            "xhtml" => Prim::Xhtml,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Prim::Boolean => "boolean",
            Prim::Integer => "integer",
            Prim::PositiveInt => "positiveInt",
            Prim::UnsignedInt => "unsignedInt",
            Prim::Decimal => "decimal",
            Prim::String => "string",
            Prim::Markdown => "markdown",
            Prim::Id => "id",
            Prim::Code => "code",
            Prim::Uri => "uri",
            Prim::Url => "url",
            Prim::Canonical => "canonical",
            Prim::Oid => "oid",
            Prim::Uuid => "uuid",
            Prim::Base64Binary => "base64Binary",
            Prim::Instant => "instant",
            Prim::Date => "date",
            Prim::DateTime => "dateTime",
            Prim::Time => "time",
            Prim::Xhtml => "xhtml",
        }
    }

    /// The lexical matcher for string-valued types (None for JSON
    /// booleans/numbers and xhtml, which are checked elsewhere).
    pub(crate) fn string_matcher(self) -> Option<fn(&str) -> bool> {
        Some(match self {
            Prim::String => is_string,
            Prim::Markdown => is_markdown,
            Prim::Id => is_id,
            Prim::Code => is_code,
            Prim::Uri => is_uri,
            Prim::Url => is_url,
            Prim::Canonical => is_canonical,
            Prim::Oid => is_oid,
            Prim::Uuid => is_uuid,
            Prim::Base64Binary => is_base64_binary,
            Prim::Instant => is_instant,
            Prim::Date => is_date,
            Prim::DateTime => is_date_time,
            Prim::Time => is_time,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean() {
        assert!(is_boolean("true") && is_boolean("false"));
        assert!(!is_boolean("True") && !is_boolean("1") && !is_boolean(""));
    }

    #[test]
    fn integers() {
        for ok in ["0", "-1", "42", "2147483647", "-2147483648"] {
            assert!(is_integer(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "01",
            "1.0",
            "1e2",
            "2147483648",
            "-2147483649",
            "+1",
            " 1",
            "99999999999999",
        ] {
            assert!(!is_integer(bad), "{bad}");
        }
        assert!(is_unsigned_int("0") && is_unsigned_int("2147483647"));
        assert!(!is_unsigned_int("-1") && !is_unsigned_int("00") && !is_unsigned_int("2147483648"));
        assert!(is_positive_int("1") && is_positive_int("+7") && is_positive_int("2147483647"));
        assert!(
            !is_positive_int("0")
                && !is_positive_int("-1")
                && !is_positive_int("+")
                && !is_positive_int("2147483648")
        );
    }

    #[test]
    fn decimals() {
        for ok in [
            "0", "-0", "1.5", "-12.0001", "1e10", "1.5E-3", "0.0", "3e+2",
        ] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", "01", "1.", ".5", "1e", "1e+", "--1", "1.5.2", "NaN", "+1",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn strings_and_markdown() {
        assert!(is_string("hello\tworld\r\n") && is_string(" padded "));
        assert!(!is_string("") && !is_string("bell\u{7}") && !is_string("nul\0"));
        assert!(!is_string(&"x".repeat(MAX_STRING_BYTES + 1)));
        assert!(is_markdown("# Title\n\n* item") && !is_markdown(""));
    }

    #[test]
    fn ids() {
        assert!(is_id("example") && is_id("a-b.C9") && is_id(&"a".repeat(64)));
        assert!(
            !is_id("") && !is_id("has space") && !is_id("under_score") && !is_id(&"a".repeat(65))
        );
        assert!(!is_id("é"));
    }

    #[test]
    fn codes() {
        assert!(is_code("male") && is_code("a b") && is_code("x\ty"));
        assert!(
            !is_code("")
                && !is_code(" a")
                && !is_code("a ")
                && !is_code("a  b")
                && !is_code("a\n\nb")
        );
    }

    #[test]
    fn uris() {
        assert!(is_uri("http://hl7.org/fhir") && is_uri("urn:x") && is_url("https://a/b?c=d"));
        assert!(is_canonical("http://x/ValueSet/y|1.0"));
        assert!(
            !is_uri("") && !is_uri("http://a b") && !is_uri(" http://a") && !is_canonical("a\tb")
        );
    }

    #[test]
    fn oids_and_uuids() {
        assert!(is_oid("urn:oid:2.16.840.1.113883") && is_oid("urn:oid:1.0"));
        assert!(
            !is_oid("urn:oid:3.1")
                && !is_oid("urn:oid:1")
                && !is_oid("urn:oid:1.01")
                && !is_oid("2.16.840")
                && !is_oid("urn:oid:1.")
        );
        assert!(is_uuid("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
        assert!(!is_uuid("urn:uuid:C757873D-EC9A-4326-A141-556F43239520"));
        assert!(!is_uuid("c757873d-ec9a-4326-a141-556f43239520"));
        assert!(!is_uuid("urn:uuid:c757873d-ec9a-4326-a141-556f4323952"));
        assert!(!is_uuid("urn:uuid:c757873dxec9a-4326-a141-556f43239520"));
    }

    #[test]
    fn base64() {
        assert!(
            is_base64_binary("aGVsbG8=")
                && is_base64_binary("aGVs bG8h")
                && is_base64_binary("QQ==\n")
        );
        assert!(!is_base64_binary("") && !is_base64_binary("abc") && !is_base64_binary("a=bc"));
        assert!(
            !is_base64_binary("QQ==QUFB") && !is_base64_binary("ab!d") && !is_base64_binary("   ")
        );
    }

    #[test]
    fn dates() {
        for ok in [
            "2024",
            "2024-02",
            "2024-02-29",
            "2000-02-29",
            "0001-01-01",
            "1999-12-31",
        ] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "",
            "not-a-date",
            "0000",
            "2023-02-29",
            "1900-02-29",
            "2024-13",
            "2024-00",
            "2024-04-31",
            "2024-01-00",
            "24",
            "2024-1-01",
            "2024-01-01T10:00:00Z",
            "2024-",
            "20240101",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn date_times() {
        for ok in [
            "2024",
            "2024-05",
            "2024-05-06",
            "2024-05-06T10:11:12Z",
            "2024-05-06T23:59:60+14:00",
            "2024-05-06T00:00:00.123456-05:00",
            "2015-02-07T13:28:17-13:59",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "2024-05-06T10:11:12",
            "2024-05-06T10:11Z",
            "2024-05-06T24:00:00Z",
            "2024-05-06T10:60:00Z",
            "2024-05-06T10:11:12+14:01",
            "2024-05-06T10:11:12+15:00",
            "2024-05T10:11:12Z",
            "2024-05-06T",
            "2024-05-06T10:11:12.Z",
            "2024-05-06 10:11:12Z",
            "2024-02-30T10:11:12Z",
            "2024-05-06T10:11:12z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn instants_and_times() {
        assert!(is_instant("2015-02-07T13:28:17.239+02:00") && is_instant("2015-02-07T13:28:17Z"));
        assert!(
            !is_instant("2015-02-07") && !is_instant("2015-02-07T13:28:17") && !is_instant("2015")
        );
        assert!(!is_instant("2015-02-07T13:28Z"));
        assert!(is_time("00:00:00") && is_time("23:59:59.5") && is_time("12:30:60"));
        assert!(
            !is_time("24:00:00")
                && !is_time("12:30")
                && !is_time("12:30:00Z")
                && !is_time("1:30:00")
                && !is_time("")
        );
    }

    #[test]
    fn prim_names_round_trip() {
        for n in [
            "boolean",
            "integer",
            "decimal",
            "dateTime",
            "xhtml",
            "base64Binary",
            "positiveInt",
        ] {
            assert_eq!(Prim::from_name(n).map(Prim::name), Some(n));
        }
        assert!(Prim::from_name("Patient").is_none());
        assert!(Prim::Boolean.string_matcher().is_none());
        assert!(Prim::Date.string_matcher().is_some());
    }
}
