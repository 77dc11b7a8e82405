//! Number and quantity search values (R4 search.html#number, #quantity, and
//! the comparison prefixes of search.html#prefix). Numbers follow the FHIR
//! `decimal` grammar and are kept as exact text with their precision
//! (significant digits and the scale of the last digit, read by
//! `fhir_primitives::DecimalPrecision`), because precision defines the
//! implicit range of `eq` (R4: `100` means [99.5, 100.5)).

use crate::escape::{split_unescaped, unescape};
use crate::ir::{NumberValue, QuantityValue};
use fhir_primitives::{DecimalPrecision, Prefix};

/// Split a leading two-letter prefix off a number/date/quantity value.
/// A value starting with a letter must start with a known prefix.
pub(crate) fn split_prefix(text: &str) -> Result<(Prefix, &str), String> {
    let b = text.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() => {
            let code = text
                .get(..2)
                .filter(|p| p.bytes().all(|c| c.is_ascii_alphabetic()));
            match code.and_then(Prefix::from_code) {
                Some(p) => Ok((p, text.get(2..).unwrap_or(""))),
                None => Err(format!(
                    "'{text}' does not start with a valid prefix (eq ne gt lt ge le sa eb ap)"
                )),
            }
        }
        _ => Ok((Prefix::Eq, text)),
    }
}

/// Parse `[prefix]decimal`.
pub(crate) fn parse_number_value(text: &str) -> Result<NumberValue, String> {
    let (prefix, rest) = split_prefix(text)?;
    let DecimalPrecision {
        significant_digits,
        scale,
    } = DecimalPrecision::of(rest).ok_or_else(|| format!("'{text}' is not a valid number"))?;
    Ok(NumberValue {
        prefix,
        raw: rest.to_string(),
        significant_digits,
        scale,
    })
}

/// Parse `[prefix]number|system|code`, `[prefix]number||code` or `[prefix]number`.
pub(crate) fn parse_quantity_value(text: &str) -> Result<QuantityValue, String> {
    let parts = split_unescaped(text, '|');
    let number_text = unescape(parts.first().copied().unwrap_or(""));
    let number = parse_number_value(&number_text)
        .map_err(|_| format!("'{text}' is not a valid quantity (number part '{number_text}')"))?;
    match parts.len() {
        1 => Ok(QuantityValue {
            number,
            system: None,
            code: None,
        }),
        3 => {
            let system = unescape(parts[1]);
            let code = unescape(parts[2]);
            if code.is_empty() {
                return Err(format!("'{text}' is not a valid quantity: empty unit code"));
            }
            Ok(QuantityValue {
                number,
                system: (!system.is_empty()).then_some(system),
                code: Some(code),
            })
        }
        _ => Err(format!(
            "'{text}' is not a valid quantity (expected number, number|system|code or number||code)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let cases: &[(&str, Prefix, &str, u32, i32)] = &[
            ("100", Prefix::Eq, "100", 3, 0),
            ("100.00", Prefix::Eq, "100.00", 5, -2),
            ("1e2", Prefix::Eq, "1e2", 1, 2),
            ("1.5E2", Prefix::Eq, "1.5E2", 2, 1),
            ("1.5e-2", Prefix::Eq, "1.5e-2", 2, -3),
            ("1e+2", Prefix::Eq, "1e+2", 1, 2),
            ("0", Prefix::Eq, "0", 1, 0),
            ("0.001", Prefix::Eq, "0.001", 1, -3),
            ("0.000", Prefix::Eq, "0.000", 3, -3),
            ("-5.5", Prefix::Eq, "-5.5", 2, -1),
            ("gt0.8", Prefix::Gt, "0.8", 1, -1),
            ("lt-5", Prefix::Lt, "-5", 1, 0),
            ("ge10", Prefix::Ge, "10", 2, 0),
            ("le10", Prefix::Le, "10", 2, 0),
            ("ne10", Prefix::Ne, "10", 2, 0),
            ("sa10", Prefix::Sa, "10", 2, 0),
            ("eb10", Prefix::Eb, "10", 2, 0),
            ("ap10", Prefix::Ap, "10", 2, 0),
            ("eq10", Prefix::Eq, "10", 2, 0),
        ];
        for (input, prefix, raw, sig, scale) in cases {
            let v = parse_number_value(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (v.prefix, v.raw.as_str(), v.significant_digits, v.scale),
                (*prefix, *raw, *sig, *scale),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_numbers() {
        for input in [
            "", "1.2.3", "zz5", "z5", "e5", "gt", "01", "1.", ".5", "+5", "--5", "1e", "1e+", "5x",
            "1,5", "1e999999", "ge 5", "GT5", "ü5", "5ü", "NaN", "inf",
        ] {
            assert!(parse_number_value(input).is_err(), "{input} should fail");
        }
    }

    #[test]
    fn quantities() {
        let q = parse_quantity_value("5.4|http://unitsofmeasure.org|mg").unwrap();
        assert_eq!(q.number.raw, "5.4");
        assert_eq!(q.system.as_deref(), Some("http://unitsofmeasure.org"));
        assert_eq!(q.code.as_deref(), Some("mg"));
        let q = parse_quantity_value("le5.4||mg").unwrap();
        assert_eq!(q.number.prefix, Prefix::Le);
        assert_eq!((q.system, q.code.as_deref()), (None, Some("mg")));
        let q = parse_quantity_value("ap5.40").unwrap();
        assert_eq!((q.number.scale, q.system, q.code), (-2, None, None));
        let q = parse_quantity_value("1|s\\|ys|c\\$d").unwrap();
        assert_eq!(
            (q.system.as_deref(), q.code.as_deref()),
            (Some("s|ys"), Some("c$d"))
        );
        for bad in [
            "",
            "mg",
            "5|mg",
            "5|sys|",
            "5||",
            "5|a|b|c",
            "zz5||mg",
            "1.2.3||mg",
        ] {
            assert!(parse_quantity_value(bad).is_err(), "{bad} should fail");
        }
    }
}
