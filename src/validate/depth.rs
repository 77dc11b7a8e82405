//! How deep a JSON document nests, counted on its bytes before any parse (a nesting limit must
//! hold before a recursive parser descends; serde_json's own stops at 128, too deep for a
//! setting to mean anything). Brackets inside strings are text.

/// Whether `json` opens more than `max` objects and arrays inside one another. Malformed
/// JSON is left to the parser.
pub fn exceeds(json: &[u8], max: usize) -> bool {
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::exceeds;

    #[test]
    fn counts_objects_and_arrays_outside_strings() {
        let doc = br#"{"a":[{"b":"[[[{{{"}]}"#;
        assert!(!exceeds(doc, 3));
        assert!(exceeds(doc, 2));
        assert!(!exceeds(br#"{"s":"\"[[["}"#, 1), "an escaped quote stays in the string");
        let deep = "[".repeat(10_000);
        assert!(exceeds(deep.as_bytes(), 64));
        assert!(!exceeds(b"[1,[2],[3],[4]]", 2), "siblings do not add up");
    }
}
