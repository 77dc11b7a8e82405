//! A small, non-generic wall around fhirbolt's R4 model.
//!
//! fhirbolt's generic (de)serializers monomorphize into whichever crate calls them, which makes
//! every rebuild of the server pay for the whole R4 model. This crate instantiates them once,
//! behind plain functions on bytes, so the server only links the compiled result.
//!
//! What it offers (FHIR R4 json.html and xml.html):
//! - [`check_json`]: strict structural parse of a resource (unknown elements, wrong types,
//!   duplicate choice values and missing required elements are rejected);
//! - [`json_to_xml`] / [`xml_to_json`]: conversion between the two FHIR formats, used at the
//!   HTTP edge; storage stays JSON.
//!
//! The typed fast path (`from_str::<CarePlan>`) of fhirbolt 0.4 fails on JSON decimals and on
//! elements after a nested resource, so everything goes through the `Resource` enum.
//!
//! fhirbolt 0.4 panics on some input (an empty JSON array: `element/de.rs` unwraps the first
//! item). FHIR JSON never has empty arrays (json.html), so such input is refused before fhirbolt
//! sees it, and every call into fhirbolt runs under [`guarded`]: a panic it still raises is a
//! [`StructureError`], never an unwinding request.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

/// A structural error reported by fhirbolt, as a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureError(pub String);

impl std::fmt::Display for StructureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StructureError {}

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

/// Run a call into fhirbolt, turning a panic inside it into an error (the panic hook still
/// logs it, loudly, as the bug it is).
fn guarded<T>(
    what: &str,
    call: impl FnOnce() -> Result<T, StructureError>,
) -> Result<T, StructureError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|_| {
        Err(StructureError(format!(
            "the R4 model library failed on this document while {what}"
        )))
    })
}

/// The bytes of `json` outside its strings, with their offsets: each string shows as its
/// opening quote only (escapes inside it skipped). For byte-level checks that must not be
/// fooled by brackets inside strings, before any parser sees the document.
pub fn outside_strings(json: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    json.iter().enumerate().filter_map(move |(at, &byte)| {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            return None;
        }
        in_string = byte == b'"';
        Some((at, byte))
    })
}

/// Where `json` holds an empty array (`[` and `]` with only whitespace between, outside
/// strings): FHIR JSON has none, and fhirbolt panics on them.
fn empty_array_at(json: &[u8]) -> Option<usize> {
    let mut open: Option<usize> = None;
    for (at, byte) in outside_strings(json) {
        match byte {
            b'[' => open = Some(at),
            b']' if open.is_some() => return open,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => open = None,
        }
    }
    None
}

fn parse_json(json: &[u8]) -> Result<Resource, StructureError> {
    if let Some(at) = empty_array_at(json) {
        return Err(StructureError(format!(
            "an empty array at byte {at}: FHIR JSON leaves out an element with no values"
        )));
    }
    guarded("reading JSON", || {
        fhirbolt::json::from_slice::<Resource>(json, strict())
            .map_err(|e| StructureError(e.to_string()))
    })
}

/// Strictly parse a JSON resource against the R4 model; `Ok(())` when it conforms structurally.
pub fn check_json(json: &[u8]) -> Result<(), StructureError> {
    parse_json(json).map(|_| ())
}

/// Convert a JSON resource (any type, including Bundles) to FHIR XML.
pub fn json_to_xml(json: &[u8]) -> Result<Vec<u8>, StructureError> {
    let resource = parse_json(json)?;
    guarded("writing XML", || {
        fhirbolt::xml::to_vec(&resource, None).map_err(|e| StructureError(e.to_string()))
    })
}

/// Parse a FHIR XML resource strictly and convert it to FHIR JSON. Elements may nest at most
/// `max_depth` levels: deeper documents are refused before fhirbolt, whose reader recurses
/// per level, sees them.
///
/// fhirbolt 0.4's XML reader takes a required primitive written without a value
/// (`<type falue="group"/>` in a Questionnaire `item`, found by the `xml_to_json` fuzz target)
/// as absent and reads on, while its JSON reader refuses the absence. The converted document is
/// therefore held to the JSON rules too: XML is refused on the same grounds as JSON, and what
/// is accepted can always be written as XML again.
pub fn xml_to_json(xml: &[u8], max_depth: usize) -> Result<Vec<u8>, StructureError> {
    // quick-xml (the reader fhirbolt uses too) panics on some malformed declarations, e.g.
    // `<!DOCTYPE>` without a name (found by fuzzing): guarded like fhirbolt's own calls.
    guarded("reading the XML", || check_well_formed(xml, max_depth))?;
    let json = guarded("converting XML to JSON", || {
        let resource = fhirbolt::xml::from_slice::<Resource>(xml, strict())
            .map_err(|e| StructureError(e.to_string()))?;
        fhirbolt::json::to_vec(&resource, None).map_err(|e| StructureError(e.to_string()))
    })?;
    check_json(&json)?;
    Ok(json)
}

/// fhirbolt 0.4 accepts truncated XML (unclosed elements): check well-formedness first — one
/// root element, every element closed by its own name, no DOCTYPE (no entity tricks), nesting
/// at most `max_depth` deep.
fn check_well_formed(xml: &[u8], max_depth: usize) -> Result<(), StructureError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.check_end_names(true);
    let mut buf = Vec::new();
    let mut depth: usize = 0;
    let mut roots = 0;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            StructureError(format!(
                "malformed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match event {
            Event::Start(_) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
                if depth > max_depth {
                    return Err(StructureError(format!(
                        "XML elements nested deeper than {max_depth} levels are not accepted"
                    )));
                }
            }
            Event::Empty(_) if depth == 0 => roots += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => {
                return Err(StructureError(
                    "DOCTYPE declarations are not allowed in FHIR XML".into(),
                ))
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match (depth, roots) {
        (0, 1) => Ok(()),
        (0, 0) => Err(StructureError(
            "the XML document has no root element".into(),
        )),
        (0, _) => Err(StructureError(
            "the XML document has more than one root element".into(),
        )),
        _ => Err(StructureError(
            "the XML document ends before all elements are closed".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Chalmers","given":["Peter","James"]}],"birthDate":"1974-12-25"}"#;

    #[test]
    fn accepts_a_valid_patient() {
        assert_eq!(check_json(PATIENT.as_bytes()), Ok(()));
    }

    #[test]
    fn rejects_unknown_elements_and_wrong_types() {
        let unknown = r#"{"resourceType":"Patient","colour":"blue"}"#;
        assert!(check_json(unknown.as_bytes()).is_err());
        let wrong_type = r#"{"resourceType":"Patient","active":"yes"}"#;
        assert!(check_json(wrong_type.as_bytes()).is_err());
        let not_a_resource = r#"{"resourceType":"Nonsense"}"#;
        assert!(check_json(not_a_resource.as_bytes()).is_err());
    }

    #[test]
    fn accepts_decimals_and_contained_resources() {
        let obs = r##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},
            "contained":[{"resourceType":"Patient","id":"c1"}],
            "subject":{"reference":"#c1"},
            "valueQuantity":{"value":72.50,"unit":"kg"}}"##;
        assert_eq!(check_json(obs.as_bytes()), Ok(()));
    }

    #[test]
    fn round_trips_through_xml_keeping_decimal_precision() {
        let obs = r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":72.50}}"#;
        let xml = json_to_xml(obs.as_bytes()).expect("to xml");
        let xml_text = String::from_utf8(xml.clone()).expect("utf8");
        assert!(
            xml_text.contains("<Observation xmlns=\"http://hl7.org/fhir\">"),
            "{xml_text}"
        );
        assert!(xml_text.contains("72.50"), "{xml_text}");
        let json = xml_to_json(&xml, 64).expect("to json");
        let json_text = String::from_utf8(json).expect("utf8");
        assert!(json_text.contains("72.50"), "{json_text}");
    }

    #[test]
    fn an_empty_array_is_an_error_never_a_panic() {
        for json in [
            r#"{"resourceType":"Bundle","type":"searchset","entry":[]}"#,
            r#"{"resourceType":"Patient","name":[ ]}"#,
            r#"{"resourceType":"Patient","name":[{"given":[
            ]}]}"#,
        ] {
            let refused = check_json(json.as_bytes()).expect_err(json);
            assert!(refused.0.contains("empty array"), "{refused}");
            assert!(json_to_xml(json.as_bytes()).is_err(), "{json}");
        }
        // Brackets inside strings are text, not arrays.
        let text = r#"{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">[] \\\" []</div>"}}"#;
        assert_eq!(empty_array_at(text.as_bytes()), None);
        assert_eq!(check_json(text.as_bytes()), Ok(()));
        assert!(json_to_xml(text.as_bytes()).is_ok());
        assert_eq!(empty_array_at(br#"{"a":[1],"b":[]}"#), Some(13));
    }

    #[test]
    fn a_panic_inside_the_model_library_is_an_error() {
        let failed: Result<(), StructureError> = guarded("testing", || panic!("a bug"));
        assert_eq!(
            failed,
            Err(StructureError(
                "the R4 model library failed on this document while testing".into()
            ))
        );
    }

    #[test]
    fn xml_the_reader_panics_on_is_refused_not_a_panic() {
        // fuzz/regressions/xml_to_json/: quick-xml 0.25 panics ("DocType must have a name").
        let refused = xml_to_json(b"<!DOCTYPE>]><Patient xmlns=\"http://hl7.org/fhir\"/>", 64);
        assert!(refused.is_err(), "{refused:?}");
        let doctype = xml_to_json(b"<!DOCTYPE p><Patient xmlns=\"http://hl7.org/fhir\"/>", 64);
        assert!(
            doctype.unwrap_err().0.contains("DOCTYPE"),
            "a named DOCTYPE is refused by name"
        );
    }

    #[test]
    fn xml_missing_a_required_element_is_refused_as_json_is() {
        // Questionnaire.item.type is 1..1: the JSON reader refuses its absence, and so must
        // the XML reader (or the accepted resource could not be written as XML again).
        let xml = br#"<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/><item><linkId value="1"/><type falue="display"/></item></Questionnaire>"#;
        let refused = xml_to_json(xml, 64).expect_err("an item whose type has no value");
        assert!(refused.0.contains("type"), "{refused}");
        let typed = br#"<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/><item><linkId value="1"/><type value="display"/></item></Questionnaire>"#;
        let json = xml_to_json(typed, 64).expect("a complete item");
        assert!(json_to_xml(&json).is_ok());
    }

    #[test]
    fn rejects_malformed_xml() {
        let convert = |xml: &[u8]| xml_to_json(xml, 64);
        assert!(
            convert(b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\">").is_err()
        );
        assert!(convert(b"not xml").is_err());
        assert!(convert(b"<Patient xmlns=\"http://hl7.org/fhir\"></Observation>").is_err());
        assert!(convert(b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\"/>").is_err());
        assert!(convert(
            b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/></Patient>"
        )
        .is_ok());
    }

    #[test]
    fn deep_xml_is_refused_before_the_model_library_recurses_into_it() {
        let levels = 10_000;
        let mut xml = String::from("<Questionnaire xmlns=\"http://hl7.org/fhir\">");
        xml.push_str(&"<item>".repeat(levels));
        xml.push_str(&"</item>".repeat(levels));
        xml.push_str("</Questionnaire>");
        let refused = xml_to_json(xml.as_bytes(), 64).expect_err("too deep");
        assert!(refused.0.contains("deeper than 64"), "{refused}");
        let shallow =
            "<Patient xmlns=\"http://hl7.org/fhir\"><name><given value=\"A\"/></name></Patient>";
        assert!(xml_to_json(shallow.as_bytes(), 2).is_ok());
        assert!(xml_to_json(shallow.as_bytes(), 1).is_err());
    }
}
