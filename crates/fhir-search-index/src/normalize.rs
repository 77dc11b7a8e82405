//! String normalisation for `string` search parameters (FHIR R4 search.html §3.1.1.5.3
//! "string": matching is case- and accent-insensitive, and ignores differences in
//! whitespace). The same function is applied at write time (index rows) and at query
//! time (search values), so both sides compare like with like.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Lower-cases, strips accents (NFD decomposition, then combining marks removed) and
/// collapses runs of whitespace to one space, trimming both ends.
///
/// `"  Ångström  Éva "` → `"angstrom eva"`.
pub fn normalize_string(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for c in input.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        for lower in c.to_lowercase() {
            out.push(lower);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_string;

    #[test]
    fn case_and_accents() {
        assert_eq!(normalize_string("Chalmers"), "chalmers");
        assert_eq!(normalize_string("Ångström"), "angstrom");
        assert_eq!(normalize_string("José Núñez"), "jose nunez");
        assert_eq!(normalize_string("MÜLLER"), "muller");
        assert_eq!(normalize_string("Ça Va"), "ca va");
        // Already decomposed input (e + combining acute) gives the same result.
        assert_eq!(normalize_string("e\u{0301}"), "e");
    }

    #[test]
    fn whitespace_collapsed() {
        assert_eq!(normalize_string("  Peter \t James\n "), "peter james");
        assert_eq!(normalize_string(""), "");
        assert_eq!(normalize_string("   "), "");
    }
}
