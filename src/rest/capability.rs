//! The CapabilityStatement served at `GET /metadata` (capabilitystatement.html), generated from
//! what this server implements so it cannot drift from the code. A copy lives in
//! `conformance/CapabilityStatement.json`; a test keeps the two identical.

use serde_json::{json, Value};

/// Interactions offered on every resource type.
pub const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// Interactions offered at the system level.
pub const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system"];

/// The statement's fixed publication date: bump it with the software version.
const PUBLISHED: &str = "2026-11-28";

/// The search parameters this server applies for `resource_type` (special and composite
/// parameters are not offered yet).
fn search_params(resource_type: &str) -> Vec<Value> {
    use fhir_search_index::ParamType;
    fhir_search_index::Registry::get()
        .params_for(resource_type)
        .filter(|p| !matches!(p.param_type, ParamType::Special | ParamType::Composite))
        .map(|p| json!({"name": p.code, "type": p.param_type.code()}))
        .collect()
}

/// Build the CapabilityStatement for a server whose FHIR base is `base_url`.
pub fn capability_statement(base_url: &str, resource_types: &[&str]) -> Value {
    let resources: Vec<Value> = resource_types
        .iter()
        .map(|rt| {
            let mut resource = json!({
                "type": rt,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{rt}"),
                "interaction": TYPE_INTERACTIONS.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "multiple",
                "searchParam": search_params(rt),
            });
            if *rt == "Patient" {
                resource["operation"] = json!([{
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }]);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PUBLISHED,
        "publisher": "Coplan",
        "kind": "instance",
        "software": {
            "name": "Coplan",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "implementation": {
            "description": "Coplan: one jointly owned, personalised care plan per patient",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": SYSTEM_INTERACTIONS.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
        }],
    })
}
