//! Stamping server-owned metadata onto a resource before it is stored (http.html "create" and
//! "update"; resource.html#Meta): the logical `id`, `meta.versionId` and `meta.lastUpdated` are
//! the server's; other `meta` elements (profile, tag, security, source) are kept. The output is
//! the exact byte form that reads will serve, with `resourceType`, `id`, `meta` first.

use super::instant::format_instant;
use crate::error::{FhirError, FhirResult};
use crate::validate::CheckedResource;
use bytes::Bytes;
use serde_json::{Map, Value};

/// Serialise `resource` with its server-assigned identity and version.
pub fn stamp(
    resource: CheckedResource,
    id: &str,
    version_id: i64,
    last_updated_us: i64,
) -> FhirResult<Bytes> {
    let mut fields = resource.0;
    let resource_type = fields.remove("resourceType").unwrap_or(Value::Null);
    fields.remove("id");
    let client_meta = match fields.remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    let mut meta = Map::new();
    meta.insert("versionId".into(), Value::String(version_id.to_string()));
    meta.insert(
        "lastUpdated".into(),
        Value::String(format_instant(last_updated_us)),
    );
    for (key, value) in client_meta {
        if key != "versionId" && key != "lastUpdated" {
            meta.insert(key, value);
        }
    }
    let mut out = Map::with_capacity(fields.len() + 3);
    out.insert("resourceType".into(), resource_type);
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(meta));
    out.extend(fields);
    serde_json::to_vec(&Value::Object(out))
        .map(Bytes::from)
        .map_err(FhirError::internal)
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
        let bytes = stamp(CheckedResource(map), "p1", 3, 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"1970-01-01T00:00:00.000Z","tag":[{"code":"t"}]},"active":true}"#
        );
    }
}
