//! Target `xml_to_json`: a FHIR XML request body (R4 xml.html) converted to JSON at the HTTP
//! edge (`fhir_r4::xml_to_json`, then `validate::parse_json` as the handlers do).
//!
//! Invariants beyond "no panic": when the XML converts,
//! - the JSON is well-formed and accepted by the first validation gate's JSON reader;
//! - converting it back (`json_to_xml`, what an XML response does) succeeds;
//! - a second round trip is a fixpoint (XML → JSON → XML → JSON gives the same JSON).

pub fn check(data: &[u8]) {
    let Ok(json) = fhir_r4::xml_to_json(data, 64) else {
        return;
    };
    if let Err(e) = coplan::validate::parse_json(&json, super::JSON_LIMITS) {
        panic!("xml_to_json produced JSON the server cannot read: {e:?}");
    }
    let xml = fhir_r4::json_to_xml(&json).unwrap_or_else(|e| {
        panic!(
            "xml_to_json accepted the document but json_to_xml refuses its result: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    let json_again = fhir_r4::xml_to_json(&xml, 64).unwrap_or_else(|e| {
        panic!(
            "the XML written for converted JSON does not read back: {e}\n{}",
            String::from_utf8_lossy(&xml)
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&json_again),
        String::from_utf8_lossy(&json),
        "XML → JSON is not stable over a round trip"
    );
}
