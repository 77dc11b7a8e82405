//! Stamping server-owned metadata onto a resource before it is stored (http.html "create" and
//! "update"; resource.html#Meta): the logical `id`, `meta.versionId` and `meta.lastUpdated` are
//! the server's; other `meta` elements (profile, tag, security, source) are kept. The output is
//! the exact byte form that reads will serve, with `resourceType`, `id`, `meta` first.

use crate::error::{FhirError, FhirResult};
use crate::validate::CheckedResource;
use bytes::Bytes;
use fhir_primitives::format_instant;
use serde_json::Value;

/// Serialise `resource` with its server-assigned identity and version. Writes the JSON
/// directly (no copy of the resource tree), keeping the client's element order.
pub fn stamp(
    resource: &CheckedResource,
    id: &str,
    version_id: i64,
    last_updated_us: i64,
) -> FhirResult<Bytes> {
    let fields = resource.fields();
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"resourceType\":");
    write_json(&mut out, fields.get("resourceType").unwrap_or(&Value::Null))?;
    out.extend_from_slice(b",\"id\":");
    write_json(&mut out, id)?;
    out.extend_from_slice(b",\"meta\":{\"versionId\":");
    write_json(&mut out, &version_id.to_string())?;
    out.extend_from_slice(b",\"lastUpdated\":");
    write_json(&mut out, &format_instant(last_updated_us))?;
    if let Some(Value::Object(client_meta)) = fields.get("meta") {
        for (key, value) in client_meta {
            if key != "versionId" && key != "lastUpdated" {
                write_member(&mut out, key, value)?;
            }
        }
    }
    out.push(b'}');
    for (key, value) in fields {
        if key != "resourceType" && key != "id" && key != "meta" {
            write_member(&mut out, key, value)?;
        }
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

fn write_member(out: &mut Vec<u8>, key: &str, value: &Value) -> FhirResult<()> {
    out.push(b',');
    write_json(out, key)?;
    out.push(b':');
    write_json(out, value)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> FhirResult<()> {
    serde_json::to_writer(out, value).map_err(FhirError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_owns_id_version_and_last_updated() {
        let Value::Object(map) = json!({"resourceType":"Patient","active":true,"id":"client","meta":{"versionId":"99","lastUpdated":"2000-01-01T00:00:00Z","tag":[{"code":"t"}]}})
        else {
            unreachable!()
        };
        let bytes = stamp(&CheckedResource::from_object(map), "p1", 3, 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"1970-01-01T00:00:00.000Z","tag":[{"code":"t"}]},"active":true}"#
        );
    }

    #[test]
    fn element_order_is_kept() {
        let Value::Object(map) = serde_json::from_str(r#"{"resourceType":"Patient","active":true,"name":[{"family":"C"}],"birthDate":"1974-12-25","id":"x"}"#).unwrap() else { unreachable!() };
        let bytes = stamp(&CheckedResource::from_object(map), "p1", 1, 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"1970-01-01T00:00:00.000Z"},"active":true,"name":[{"family":"C"}],"birthDate":"1974-12-25"}"#
        );
    }
}
