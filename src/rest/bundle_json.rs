//! Writing Bundle JSON around stored resource bytes (bundle.html): the read path splices the
//! stored bytes in as they are, so search, history and `$everything` never re-parse resources.

/// Append `text` as a JSON string.
pub fn push_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Append one searchset entry `{"fullUrl":…,"resource":…,"search":{"mode":…}}`, preceded by a
/// comma unless it is the first (`first` is cleared).
pub fn push_search_entry(
    out: &mut Vec<u8>,
    first: &mut bool,
    full_url: &str,
    resource: &[u8],
    mode: &str,
) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.extend_from_slice(br#"{"fullUrl":"#);
    push_json_string(out, full_url);
    out.extend_from_slice(br#","resource":"#);
    out.extend_from_slice(resource);
    out.extend_from_slice(br#","search":{"mode":"#);
    push_json_string(out, mode);
    out.extend_from_slice(b"}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_comma_separated_json() {
        let mut out = b"[".to_vec();
        let mut first = true;
        push_search_entry(
            &mut out,
            &mut first,
            "http://x/fhir/Patient/1",
            br#"{"resourceType":"Patient","id":"1"}"#,
            "match",
        );
        push_search_entry(
            &mut out,
            &mut first,
            "http://x/fhir/Goal/\"2\"",
            b"{}",
            "include",
        );
        out.push(b']');
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed[0]["resource"]["id"], "1");
        assert_eq!(parsed[1]["fullUrl"], "http://x/fhir/Goal/\"2\"");
        assert_eq!(parsed[1]["search"]["mode"], "include");
    }
}
