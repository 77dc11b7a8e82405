//! The FHIR `decimal` (FHIR R4 datatypes.html#decimal:
//! `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) and the precision its text carries, which
//! gives a number search value its implicit range (search.html#number: `100` means
//! [99.5, 100.5)).

/// The precision a decimal is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecimalPrecision {
    /// Count of significant digits in the mantissa (leading zeros excluded; `0` and `0.0`
    /// count their zeros after the first, at least 1).
    pub significant_digits: u32,
    /// Power of ten of the last written digit: `100` → 0, `100.00` → -2, `1e2` → 2,
    /// `1.5e2` → 1.
    pub scale: i32,
}

/// Exponents beyond this have no search precision (no FHIR decimal needs them).
const MAX_EXPONENT: i64 = 100_000;

/// The parts of a decimal text.
struct DecimalParts<'t> {
    int_digits: &'t [u8],
    frac_digits: &'t [u8],
    /// Saturates just above [`MAX_EXPONENT`] in magnitude.
    exponent: i64,
}

/// Reads the decimal grammar; `None` if `text` does not follow it.
fn scan(text: &str) -> Option<DecimalParts<'_>> {
    let b = text.as_bytes();
    let mut pos = usize::from(b.first() == Some(&b'-'));
    let int_start = pos;
    while b.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    let int_digits = b.get(int_start..pos)?;
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits.first() == Some(&b'0')) {
        return None;
    }
    let mut frac_digits: &[u8] = &[];
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        frac_digits = b.get(start..pos)?;
        if frac_digits.is_empty() {
            return None;
        }
    }
    let mut exponent: i64 = 0;
    if matches!(b.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let negative = match b.get(pos) {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let start = pos;
        while let Some(&d) = b.get(pos).filter(|d| d.is_ascii_digit()) {
            exponent = (exponent * 10 + i64::from(d - b'0')).min(MAX_EXPONENT + 1);
            pos += 1;
        }
        if pos == start {
            return None;
        }
        if negative {
            exponent = -exponent;
        }
    }
    (pos == b.len()).then_some(DecimalParts {
        int_digits,
        frac_digits,
        exponent,
    })
}

impl DecimalPrecision {
    /// The precision of a decimal text; `None` if it is not a FHIR decimal, or its exponent is
    /// beyond ±100000.
    pub fn of(text: &str) -> Option<DecimalPrecision> {
        let DecimalParts {
            int_digits,
            frac_digits,
            exponent,
        } = scan(text)?;
        if exponent.abs() > MAX_EXPONENT {
            return None;
        }
        let first_nonzero = int_digits
            .iter()
            .chain(frac_digits)
            .position(|&d| d != b'0');
        let significant = match first_nonzero {
            Some(first) => int_digits.len() + frac_digits.len() - first,
            None => frac_digits.len().max(1),
        };
        let scale = exponent - i64::try_from(frac_digits.len()).ok()?;
        Some(DecimalPrecision {
            significant_digits: u32::try_from(significant).ok()?,
            scale: i32::try_from(scale).ok()?,
        })
    }
}

/// A valid FHIR `decimal` text.
pub fn is_decimal(text: &str) -> bool {
    scan(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_of_the_text() {
        let cases: &[(&str, u32, i32)] = &[
            ("100", 3, 0),
            ("100.00", 5, -2),
            ("1e2", 1, 2),
            ("1.5E2", 2, 1),
            ("1.5e-2", 2, -3),
            ("1e+2", 1, 2),
            ("0", 1, 0),
            ("0.001", 1, -3),
            ("0.000", 3, -3),
            ("-5.5", 2, -1),
        ];
        for (text, significant_digits, scale) in cases {
            assert_eq!(
                DecimalPrecision::of(text),
                Some(DecimalPrecision {
                    significant_digits: *significant_digits,
                    scale: *scale
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn decimals() {
        for ok in [
            "0", "-0", "1.5", "-12.0001", "1e10", "1.5E-3", "0.0", "3e+2",
        ] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", "01", "1.", ".5", "1e", "1e+", "--1", "1.5.2", "NaN", "+1", "5x", "1,5", "inf",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
        // A valid decimal, but no search precision.
        assert!(is_decimal("1e999999") && DecimalPrecision::of("1e999999").is_none());
    }
}
