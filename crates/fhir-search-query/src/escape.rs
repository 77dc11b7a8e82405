//! Value escaping (R4 search.html §3.1.1.5.x "Escaping Search Parameters"):
//! `,` separates ORed values, `$` composite components, `|` token/quantity
//! parts; a backslash escapes each of them and itself (`\,` `\$` `\|` `\\`).
//!
//! Splitting keeps escapes in the pieces so that a later split on another
//! separator still sees them; [`unescape`] is applied to leaf texts only.

/// Split `s` on every `sep` not preceded by an (unescaped) backslash. The
/// pieces keep their escape sequences.
pub(crate) fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(s.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

/// Remove the escaping backslash before `,` `$` `|` `\`. A backslash before
/// any other character (or at the end) is kept literally.
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&n @ (',' | '$' | '|' | '\\')) => {
                    out.push(n);
                    chars.next();
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Escape `,` `$` `|` `\` so that [`split_unescaped`] + [`unescape`] give `s` back: a search
/// value taken literally (search.html "Escaping Search Parameters").
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '$' | '|' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_table() {
        let cases: &[(&str, char, &[&str])] = &[
            ("a,b", ',', &["a", "b"]),
            ("a\\,b", ',', &["a\\,b"]),
            ("a\\\\,b", ',', &["a\\\\", "b"]),
            ("a,", ',', &["a", ""]),
            ("", ',', &[""]),
            ("x\\|y|z", '|', &["x\\|y", "z"]),
            ("c$v\\$w", '$', &["c", "v\\$w"]),
            ("é,ü", ',', &["é", "ü"]),
            ("trailing\\", ',', &["trailing\\"]),
        ];
        for (input, sep, want) in cases {
            assert_eq!(&split_unescaped(input, *sep), want, "{input}");
        }
    }

    #[test]
    fn unescape_table() {
        let cases = [
            ("a\\,b", "a,b"),
            ("a\\$b\\|c", "a$b|c"),
            ("a\\\\b", "a\\b"),
            ("a\\nb", "a\\nb"),
            ("end\\", "end\\"),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(unescape(input), want, "{input}");
        }
    }

    #[test]
    fn escape_round_trips() {
        for s in ["a,b", "x|y$z", "back\\slash", "", "ünï,cödé"] {
            let e = escape(s);
            let pieces = split_unescaped(&e, ',');
            assert_eq!(pieces.len(), 1);
            assert_eq!(unescape(pieces[0]), s);
        }
    }
}
