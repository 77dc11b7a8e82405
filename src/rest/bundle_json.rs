//! Writing Bundle JSON around stored resource bytes (bundle.html): the one Bundle builder of
//! search, history and `$everything`. The read path splices the stored bytes in as they are, so
//! no Bundle re-parses a resource. FHIR JSON has no empty arrays (json.html): a Bundle without
//! entries has no `entry` property at all, and one without links no `link`.

use bytes::Bytes;

/// Append `text` as a JSON string.
pub fn push_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A Bundle being written: header fields, then links, then entries, then [`BundleJson::finish`].
pub struct BundleJson {
    out: Vec<u8>,
    links: usize,
    entries: usize,
}

impl BundleJson {
    /// `{"resourceType":"Bundle","type":kind` with room for `capacity` bytes.
    pub fn new(kind: &str, capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + 128);
        out.extend_from_slice(br#"{"resourceType":"Bundle","type":"#);
        push_json_string(&mut out, kind);
        BundleJson {
            out,
            links: 0,
            entries: 0,
        }
    }

    /// A header field with an already-encoded JSON value (`total`, `meta`), before any link.
    pub fn field(&mut self, key: &str, raw_json: &[u8]) {
        debug_assert!(self.links == 0 && self.entries == 0);
        self.out.push(b',');
        push_json_string(&mut self.out, key);
        self.out.push(b':');
        self.out.extend_from_slice(raw_json);
    }

    /// One `link` (`self`, `next`, …), before any entry.
    pub fn link(&mut self, relation: &str, url: &str) {
        debug_assert!(self.entries == 0);
        self.out.extend_from_slice(if self.links == 0 {
            b",\"link\":["
        } else {
            b","
        });
        self.links += 1;
        self.out.extend_from_slice(br#"{"relation":"#);
        push_json_string(&mut self.out, relation);
        self.out.extend_from_slice(br#","url":"#);
        push_json_string(&mut self.out, url);
        self.out.push(b'}');
    }

    /// Start one entry object and return the buffer to write its members into (the caller
    /// writes the whole `{…}`).
    pub fn entry(&mut self) -> &mut Vec<u8> {
        if self.entries == 0 {
            if self.links > 0 {
                self.out.push(b']');
            }
            self.out.extend_from_slice(b",\"entry\":[");
        } else {
            self.out.push(b',');
        }
        self.entries += 1;
        &mut self.out
    }

    /// One searchset entry `{"fullUrl":…,"resource":…,"search":{"mode":…}}`.
    pub fn search_entry(&mut self, full_url: &str, resource: &[u8], mode: &str) {
        let out = self.entry();
        out.extend_from_slice(br#"{"fullUrl":"#);
        push_json_string(out, full_url);
        out.extend_from_slice(br#","resource":"#);
        out.extend_from_slice(resource);
        out.extend_from_slice(br#","search":{"mode":"#);
        push_json_string(out, mode);
        out.extend_from_slice(b"}}");
    }

    /// Close the arrays that were opened and the Bundle.
    pub fn finish(mut self) -> Bytes {
        if self.entries > 0 || self.links > 0 {
            self.out.push(b']');
        }
        self.out.push(b'}');
        Bytes::from(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(b: BundleJson) -> Value {
        serde_json::from_slice(&b.finish()).expect("valid JSON")
    }

    #[test]
    fn entries_are_comma_separated_json() {
        let mut b = BundleJson::new("searchset", 0);
        b.field("total", b"2");
        b.link("self", "http://x/fhir/Patient?a=1");
        b.link("next", "http://x/fhir/Patient?a=1&_page=2");
        b.search_entry(
            "http://x/fhir/Patient/1",
            br#"{"resourceType":"Patient","id":"1"}"#,
            "match",
        );
        b.search_entry("http://x/fhir/Goal/\"2\"", b"{}", "include");
        let v = parsed(b);
        assert_eq!(v["total"], 2);
        assert_eq!(v["link"][1]["relation"], "next");
        assert_eq!(v["entry"][0]["resource"]["id"], "1");
        assert_eq!(v["entry"][1]["fullUrl"], "http://x/fhir/Goal/\"2\"");
        assert_eq!(v["entry"][1]["search"]["mode"], "include");
    }

    #[test]
    fn no_entries_means_no_entry_property() {
        let mut b = BundleJson::new("history", 0);
        b.link("self", "http://x/fhir/_history");
        assert_eq!(
            parsed(b),
            json!({"resourceType":"Bundle","type":"history","link":[{"relation":"self","url":"http://x/fhir/_history"}]})
        );
        let mut b = BundleJson::new("searchset", 0);
        b.field("total", b"0");
        assert_eq!(
            parsed(b),
            json!({"resourceType":"Bundle","type":"searchset","total":0})
        );
    }

    #[test]
    fn entries_without_links() {
        let mut b = BundleJson::new("searchset", 0);
        b.entry()
            .extend_from_slice(br#"{"resource":{"resourceType":"OperationOutcome"}}"#);
        let v = parsed(b);
        assert_eq!(
            v["entry"][0]["resource"]["resourceType"],
            "OperationOutcome"
        );
        assert!(v.get("link").is_none());
    }
}
