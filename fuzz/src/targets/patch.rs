//! Target `patch`: the PATCH interaction without storage (R4 http.html#patch;
//! `rest::apply_patch`): a JSON Patch (RFC 6902) or a FHIRPath Patch (fhirpatch.html, applied by
//! crates/fhir-patch), or a Binary carrying a JSON Patch, read and applied to a current version,
//! the result checked as every write is.
//!
//! Input: the current resource (JSON), a NUL byte, the patch body (JSON). A body starting with
//! `[` is sent as `application/json-patch+json`, any other as a FHIR resource. Only current
//! resources the server could have stored are used (they pass the write checks; one without
//! a valid `id` gets `"id": "fuzz"`).
//!
//! Invariants beyond "no panic, no 500": a patched result keeps the resource's type and id,
//! passes the write checks again as stored, and is accepted by the last structural gate or
//! refused with a 400 (never a 500).

use super::assert_not_internal;
use coplan::rest::{apply_patch, PatchBody};
use coplan::validate::{check_resource, is_valid_id, parse_json};
use serde_json::Value;

pub fn check(data: &[u8]) {
    let Some(split) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let Some((resource_type, id, current)) = current_version(&data[..split]) else {
        return;
    };
    let Ok(doc) = parse_json(&data[split + 1..], super::JSON_LIMITS) else {
        return;
    };
    let body = if doc.is_array() {
        PatchBody::JsonPatch(doc)
    } else {
        PatchBody::Resource(doc)
    };
    let patched = match apply_patch(body, &resource_type, &id, &current) {
        Ok(patched) => patched,
        Err(e) => return assert_not_internal(&e, "apply_patch"),
    };
    let value = patched.value();
    assert_eq!(value["resourceType"], resource_type.as_str());
    assert_eq!(value["id"], id.as_str());
    let stored = serde_json::to_vec(value).expect("a patched resource serialises");
    let again =
        parse_json(&stored, super::JSON_LIMITS).and_then(|v| check_resource(v, &resource_type));
    if let Err(e) = again {
        panic!("the stored form of a patched resource is refused: {e:?}");
    }
    super::assert_fhirbolt_accepts(&stored, "a patched resource");
}

/// The stored bytes of a resource the server would have accepted, with its type and id.
fn current_version(bytes: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let value = parse_json(bytes, super::JSON_LIMITS).ok()?;
    let resource_type = value.get("resourceType")?.as_str()?.to_string();
    let mut value = check_resource(value, &resource_type).ok()?.value().clone();
    let id = match value.get("id").and_then(Value::as_str) {
        Some(id) if is_valid_id(id) => id.to_string(),
        _ => {
            value["id"] = Value::from("fuzz");
            "fuzz".to_string()
        }
    };
    let stored = serde_json::to_vec(&value).ok()?;
    super::assert_fhirbolt_accepts(&stored, "a current version");
    Some((resource_type, id, stored))
}
