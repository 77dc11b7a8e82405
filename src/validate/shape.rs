//! How deep and how big a JSON document is, counted on its bytes before any parse: a limit
//! must hold before a recursive parser descends (serde_json's own depth limit, 128, is too deep
//! for a setting to mean anything) and before a million values are built in memory and then
//! indexed. Brackets and commas inside strings are text. Malformed JSON is left to the parser.

/// What of a document is over its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excess {
    /// Objects and arrays nest deeper than allowed.
    Depth,
    /// More values (object members and array items) than allowed.
    Values,
}

/// Whether `json` opens more than `max_depth` objects and arrays inside one another, or holds
/// more than `max_values` object members and array items (counted as the commas between them
/// plus one per object or array: exact for every non-empty one).
pub fn check(json: &[u8], max_depth: usize, max_values: usize) -> Result<(), Excess> {
    let mut depth: usize = 0;
    let mut values: usize = 0;
    for (_, byte) in fhir_r4::outside_strings(json) {
        match byte {
            b'{' | b'[' => {
                depth += 1;
                values += 1;
                if depth > max_depth {
                    return Err(Excess::Depth);
                }
            }
            b',' => values += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if values > max_values {
            return Err(Excess::Values);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, Excess};

    #[test]
    fn counts_nesting_outside_strings() {
        let doc = br#"{"a":[{"b":"[[[{{{"}]}"#;
        assert_eq!(check(doc, 3, 100), Ok(()));
        assert_eq!(check(doc, 2, 100), Err(Excess::Depth));
        assert_eq!(
            check(br#"{"s":"\"[[["}"#, 1, 100),
            Ok(()),
            "an escaped quote stays in the string"
        );
        let deep = "[".repeat(10_000);
        assert_eq!(check(deep.as_bytes(), 64, usize::MAX), Err(Excess::Depth));
        assert_eq!(
            check(b"[1,[2],[3],[4]]", 2, 100),
            Ok(()),
            "siblings do not add up"
        );
    }

    #[test]
    fn counts_members_and_items() {
        // a, b, and b's three items.
        let doc = br#"{"a":1,"b":[1,2,3],"c":"x,y,z"}"#;
        assert_eq!(check(doc, 10, 6), Ok(()));
        assert_eq!(check(doc, 10, 5), Err(Excess::Values));
        let million = format!("[{}]", vec!["0"; 1_000_000].join(","));
        assert_eq!(check(million.as_bytes(), 64, 100_000), Err(Excess::Values));
    }
}
