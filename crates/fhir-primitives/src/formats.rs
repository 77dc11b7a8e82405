//! The lexical formats of the FHIR R4 primitive types (datatypes.html §2.24.0.1, "Primitive
//! Types": the regular expressions, plus calendar validity for dates and the 32-bit ranges of
//! the integers), one matcher per type, and [`PrimitiveType`], the types by their R4 names.
//!
//! Every matcher works on the lexical form (for numbers: the JSON source text) and rejects the
//! empty string, since FHIR forbids empty values. `\s` in the spec regexes is the ASCII
//! whitespace set, as in Java. The date/time types are read by [`crate::PartialDateTime`], the
//! decimal by [`crate::DecimalPrecision`].

use crate::datetime::{PartialDateTime, TimeOfDay};
pub use crate::decimal::is_decimal;

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

/// `[ \r\n\t\S]+`: non-empty, no control characters other than tab, CR and
/// LF, at most [`MAX_STRING_BYTES`].
pub fn is_string(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_STRING_BYTES && !has_forbidden_control(s)
}

/// Control characters forbidden in FHIR strings (below U+0020 other than
/// tab, CR, LF).
pub fn has_forbidden_control(s: &str) -> bool {
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

/// date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real calendar date.
pub fn is_date(s: &str) -> bool {
    s.parse::<PartialDateTime>().is_ok_and(|v| v.is_date())
}

/// dateTime: a date, or a full date + `T` + time with seconds and a mandatory zone.
pub fn is_date_time(s: &str) -> bool {
    s.parse::<PartialDateTime>().is_ok_and(|v| v.is_date_time())
}

/// instant: `YYYY-MM-DDThh:mm:ss(.f+)?` + zone, all parts required.
pub fn is_instant(s: &str) -> bool {
    s.parse::<PartialDateTime>().is_ok_and(|v| v.is_instant())
}

/// time: `([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?`.
pub fn is_time(s: &str) -> bool {
    s.parse::<TimeOfDay>().is_ok()
}

/// The R4 primitive types (datatypes.html#primitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimitiveType {
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

impl PrimitiveType {
    /// The type of an R4 type name (`"dateTime"`); `None` for a non-primitive type.
    pub fn from_name(name: &str) -> Option<PrimitiveType> {
        Some(match name {
            "boolean" => PrimitiveType::Boolean,
            "integer" => PrimitiveType::Integer,
            "positiveInt" => PrimitiveType::PositiveInt,
            "unsignedInt" => PrimitiveType::UnsignedInt,
            "decimal" => PrimitiveType::Decimal,
            "string" => PrimitiveType::String,
            "markdown" => PrimitiveType::Markdown,
            "id" => PrimitiveType::Id,
            "code" => PrimitiveType::Code,
            "uri" => PrimitiveType::Uri,
            "url" => PrimitiveType::Url,
            "canonical" => PrimitiveType::Canonical,
            "oid" => PrimitiveType::Oid,
            "uuid" => PrimitiveType::Uuid,
            "base64Binary" => PrimitiveType::Base64Binary,
            "instant" => PrimitiveType::Instant,
            "date" => PrimitiveType::Date,
            "dateTime" => PrimitiveType::DateTime,
            "time" => PrimitiveType::Time,
            "xhtml" => PrimitiveType::Xhtml,
            _ => return None,
        })
    }

    /// The R4 type name.
    pub fn name(self) -> &'static str {
        match self {
            PrimitiveType::Boolean => "boolean",
            PrimitiveType::Integer => "integer",
            PrimitiveType::PositiveInt => "positiveInt",
            PrimitiveType::UnsignedInt => "unsignedInt",
            PrimitiveType::Decimal => "decimal",
            PrimitiveType::String => "string",
            PrimitiveType::Markdown => "markdown",
            PrimitiveType::Id => "id",
            PrimitiveType::Code => "code",
            PrimitiveType::Uri => "uri",
            PrimitiveType::Url => "url",
            PrimitiveType::Canonical => "canonical",
            PrimitiveType::Oid => "oid",
            PrimitiveType::Uuid => "uuid",
            PrimitiveType::Base64Binary => "base64Binary",
            PrimitiveType::Instant => "instant",
            PrimitiveType::Date => "date",
            PrimitiveType::DateTime => "dateTime",
            PrimitiveType::Time => "time",
            PrimitiveType::Xhtml => "xhtml",
        }
    }

    /// The lexical matcher for string-valued types (None for JSON
    /// booleans/numbers and xhtml, which are checked elsewhere).
    pub fn string_matcher(self) -> Option<fn(&str) -> bool> {
        Some(match self {
            PrimitiveType::String => is_string,
            PrimitiveType::Markdown => is_markdown,
            PrimitiveType::Id => is_id,
            PrimitiveType::Code => is_code,
            PrimitiveType::Uri => is_uri,
            PrimitiveType::Url => is_url,
            PrimitiveType::Canonical => is_canonical,
            PrimitiveType::Oid => is_oid,
            PrimitiveType::Uuid => is_uuid,
            PrimitiveType::Base64Binary => is_base64_binary,
            PrimitiveType::Instant => is_instant,
            PrimitiveType::Date => is_date,
            PrimitiveType::DateTime => is_date_time,
            PrimitiveType::Time => is_time,
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
            assert_eq!(
                PrimitiveType::from_name(n).map(PrimitiveType::name),
                Some(n)
            );
        }
        assert!(PrimitiveType::from_name("Patient").is_none());
        assert!(PrimitiveType::Boolean.string_matcher().is_none());
        assert!(PrimitiveType::Date.string_matcher().is_some());
    }
}
