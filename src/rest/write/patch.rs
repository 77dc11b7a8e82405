//! The patch interaction's two formats (R4 http.html#patch): JSON Patch (RFC 6902,
//! `application/json-patch+json`) and FHIRPath Patch (fhirpatch.html: a `Parameters`
//! resource, applied by the `fhir-patch` crate). In a batch or transaction a PATCH entry's
//! resource is the `Parameters`, or a `Binary` whose `contentType` is
//! `application/json-patch+json` and whose `data` is the JSON Patch (http.html#transaction).
//!
//! Both make the same thing of the current version: a 404/410 when there is none, a 422 when
//! the patch does not apply or its result is not a valid resource of the same identity.

use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::store::StoredVersion;
use crate::validate::{check_resource, CheckedResource};
use base64::Engine as _;
use fhir_patch::{FhirPathPatch, PatchError, PatchErrorKind};
use serde_json::Value;

/// A patch body as the request carries it, before it is read (the permission to patch is
/// decided first).
#[derive(Debug, Clone)]
pub enum PatchBody {
    /// `Content-Type: application/json-patch+json`.
    JsonPatch(Value),
    /// A FHIR resource: `Parameters` (FHIRPath Patch) or a `Binary` holding a JSON Patch.
    Resource(Value),
}

/// A patch, read and checked.
#[derive(Debug, Clone)]
pub(crate) enum Patch {
    Json(json_patch::Patch),
    FhirPath(FhirPathPatch),
}

const JSON_PATCH: &str = "application/json-patch+json";

impl Patch {
    /// Reads a patch body: a 400 when it is not a patch of a format this server applies.
    pub(crate) fn read(body: PatchBody) -> FhirResult<Patch> {
        match body {
            PatchBody::JsonPatch(doc) => json_patch_of(doc),
            PatchBody::Resource(resource) => {
                match resource.get("resourceType").and_then(Value::as_str) {
                    Some("Parameters") => {
                        // The Parameters resource is checked as any resource is, then read.
                        let checked = check_resource(resource, "Parameters")?;
                        FhirPathPatch::parse(checked.value())
                            .map(Patch::FhirPath)
                            .map_err(patch_error)
                    }
                    Some("Binary") => json_patch_in_binary(&resource),
                    _ => Err(FhirError::invalid_at(
                        "a FHIR resource patch body must be a Parameters resource (FHIRPath \
                         Patch, fhirpatch.html); a JSON Patch is sent as \
                         application/json-patch+json",
                        "resourceType",
                    )),
                }
            }
        }
    }

    /// The content this patch makes of `current`, the current version of
    /// `resource_type/id`.
    pub(crate) fn apply(
        &self,
        resource_type: &str,
        id: &str,
        current: Option<&StoredVersion>,
    ) -> FhirResult<CheckedResource> {
        let body = match current {
            None => {
                return Err(FhirError::not_found(format!(
                    "{resource_type}/{id} is not known"
                )))
            }
            Some(StoredVersion { body: None, .. }) => {
                return Err(FhirError::new(
                    ErrorKind::Gone,
                    "deleted",
                    format!("{resource_type}/{id} was deleted"),
                ))
            }
            Some(StoredVersion {
                body: Some(body), ..
            }) => body,
        };
        let mut doc: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
        match self {
            Patch::Json(patch) => json_patch::patch(&mut doc, patch)
                .map_err(|e| unprocessable(format!("the patch cannot be applied: {e}")))?,
            Patch::FhirPath(patch) => doc = patch.apply(doc).map_err(patch_error)?,
        }
        if doc.get("id") != Some(&Value::String(id.to_string())) {
            return Err(unprocessable(
                "a patch must not change or remove the resource id",
            ));
        }
        if doc.get("resourceType") != Some(&Value::String(resource_type.to_string())) {
            return Err(unprocessable("a patch must not change the resourceType"));
        }
        check_resource(doc, resource_type).map_err(|mut e| {
            e.kind = ErrorKind::Unprocessable;
            e
        })
    }
}

/// What a PATCH makes of `current`, the stored JSON of `resource_type/id`: the body read as a
/// patch, then applied and checked, exactly as the write pipeline does it, without storage.
/// Public for the fuzz target in `fuzz/`.
pub fn apply_patch(
    body: PatchBody,
    resource_type: &str,
    id: &str,
    current: &[u8],
) -> FhirResult<CheckedResource> {
    let current = StoredVersion {
        version_id: 1,
        last_updated_us: 0,
        body: Some(bytes::Bytes::copy_from_slice(current)),
    };
    Patch::read(body)?.apply(resource_type, id, Some(&current))
}

fn unprocessable(diagnostics: impl Into<String>) -> FhirError {
    FhirError::new(ErrorKind::Unprocessable, "processing", diagnostics)
}

fn json_patch_of(doc: Value) -> FhirResult<Patch> {
    serde_json::from_value(doc).map(Patch::Json).map_err(|e| {
        FhirError::new(
            ErrorKind::BadRequest,
            "structure",
            format!("not a valid JSON Patch document: {e}"),
        )
    })
}

/// A JSON Patch carried in a Binary (http.html#transaction: "the JSON Patch is a Binary
/// resource … with contentType application/json-patch+json").
fn json_patch_in_binary(binary: &Value) -> FhirResult<Patch> {
    let content_type = binary.get("contentType").and_then(Value::as_str);
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if !media.is_some_and(|m| m.eq_ignore_ascii_case(JSON_PATCH)) {
        return Err(FhirError::invalid_at(
            format!(
                "a Binary patch must have contentType {JSON_PATCH}, not {:?}",
                content_type.unwrap_or("")
            ),
            "Binary.contentType",
        ));
    }
    let data = binary
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::invalid_at("the Binary has no data", "Binary.data"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| {
            FhirError::invalid_at(format!("Binary.data is not base64: {e}"), "Binary.data")
        })?;
    // Strict, as request bodies are: no repeated keys, no serde_json-private keys read as JSON.
    let doc: Value = crate::validate::parse_strict(&bytes).map_err(|e| {
        let (crate::validate::StrictJsonError::Syntax(e)
        | crate::validate::StrictJsonError::RepeatedKey(e)) = e;
        FhirError::invalid_at(
            format!("Binary.data is not a JSON document: {e}"),
            "Binary.data",
        )
    })?;
    json_patch_of(doc)
}

/// A refused FHIRPath Patch as an OperationOutcome: 400 for a document that is not a patch,
/// 422 for a patch that cannot be applied, located at the operation's parameter.
fn patch_error(e: PatchError) -> FhirError {
    let (kind, code) = match e.kind() {
        PatchErrorKind::Invalid => (ErrorKind::BadRequest, "invalid"),
        PatchErrorKind::Unprocessable => (ErrorKind::Unprocessable, "processing"),
        PatchErrorKind::Internal => return FhirError::internal(e),
    };
    FhirError {
        kind,
        issues: vec![crate::error::Issue::error(code, e.message()).at(e.expression())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn current(body: Value) -> StoredVersion {
        StoredVersion {
            version_id: 1,
            last_updated_us: 0,
            body: Some(serde_json::to_vec(&body).unwrap().into()),
        }
    }

    fn goal() -> Value {
        json!({"resourceType":"Goal","id":"g","lifecycleStatus":"active","description":{"text":"Walk"},
            "subject":{"reference":"Patient/p"},"note":[{"text":"old"}]})
    }

    fn fhirpath(ops: Value) -> FhirResult<Patch> {
        Patch::read(PatchBody::Resource(
            json!({"resourceType":"Parameters","parameter":ops}),
        ))
    }

    #[test]
    fn fhirpath_patch_applies_and_its_result_is_checked() {
        let replace = |path: &str, value: Value| json!([{"name":"operation","part":[{"name":"type","valueCode":"replace"},{"name":"path","valueString":path},{"name":"value","valueString":value}]}]);
        let patch = fhirpath(replace("Goal.note[0].text", json!("new"))).unwrap();
        let cur = current(goal());
        let done = patch.apply("Goal", "g", Some(&cur)).unwrap();
        assert_eq!(done.value()["note"], json!([{"text":"new"}]));

        let invalid = fhirpath(replace("Goal.lifecycleStatus", json!("banana"))).unwrap();
        let err = invalid.apply("Goal", "g", Some(&cur)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unprocessable, "{err}");

        let id = fhirpath(replace("Goal.id", json!("other"))).unwrap();
        let err = id.apply("Goal", "g", Some(&cur)).unwrap_err();
        assert_eq!(
            (err.kind, err.to_string().contains("id")),
            (ErrorKind::Unprocessable, true)
        );

        let nothing = fhirpath(replace("Goal.statusDate", json!("2026-01-01"))).unwrap();
        let err = nothing.apply("Goal", "g", Some(&cur)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unprocessable);
        assert_eq!(
            err.issues[0].expression,
            vec!["Parameters.parameter[0]".to_string()]
        );

        let err = patch.apply("Goal", "g", None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[test]
    fn bodies_that_are_not_patches() {
        let bad = fhirpath(
            json!([{"name":"operation","part":[{"name":"type","valueCode":"upsert"},{"name":"path","valueString":"Goal"}]}]),
        );
        assert_eq!(bad.unwrap_err().kind, ErrorKind::BadRequest);
        let not_parameters = Patch::read(PatchBody::Resource(goal()));
        assert_eq!(not_parameters.unwrap_err().kind, ErrorKind::BadRequest);
        let malformed_parameters = Patch::read(PatchBody::Resource(
            json!({"resourceType":"Parameters","parameter":[{"name":"operation","banana":1}]}),
        ));
        assert_eq!(
            malformed_parameters.unwrap_err().kind,
            ErrorKind::BadRequest
        );
        let not_json_patch = Patch::read(PatchBody::JsonPatch(json!({"op":"add"})));
        assert_eq!(not_json_patch.unwrap_err().kind, ErrorKind::BadRequest);
    }

    #[test]
    fn json_patch_in_a_binary() {
        let data = base64::engine::general_purpose::STANDARD
            .encode(br#"[{"op":"replace","path":"/note/0/text","value":"binary"}]"#);
        let binary = json!({"resourceType":"Binary","contentType":"application/json-patch+json","data":data});
        let patch = Patch::read(PatchBody::Resource(binary.clone())).unwrap();
        let done = patch.apply("Goal", "g", Some(&current(goal()))).unwrap();
        assert_eq!(done.value()["note"], json!([{"text":"binary"}]));
        let mut other = binary.clone();
        other["contentType"] = json!("application/json");
        assert_eq!(
            Patch::read(PatchBody::Resource(other)).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        let mut garbage = binary;
        garbage["data"] = json!("!!!");
        assert_eq!(
            Patch::read(PatchBody::Resource(garbage)).unwrap_err().kind,
            ErrorKind::BadRequest
        );
    }
}
