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

/// Provenance and AuditEvent record what happened: created (by the server with every write or
/// read, or by a client), never changed or deleted (`rest/write/record_provenance.rs`).
const RECORD_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// Interactions offered at the system level.
pub const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system"];

/// The statement's fixed publication date: bump it with the software version.
const PUBLISHED: &str = "2026-11-28";

/// The search parameters this server applies for `resource_type`: not the special ones, and
/// of the composites only those of two components, one a token (the three-part
/// MolecularSequence coordinates are not offered).
fn search_params(resource_type: &str) -> Vec<Value> {
    use fhir_search_index::ParamType;
    let registry = fhir_search_index::Registry::get();
    let applied = |p: &fhir_search_index::SearchParam| match p.param_type {
        ParamType::Special => false,
        ParamType::Composite => {
            p.components.len() == 2
                && p.components.iter().any(|c| {
                    registry
                        .lookup(resource_type, &c.code)
                        .is_some_and(|c| c.param_type == ParamType::Token)
                })
        }
        _ => true,
    };
    registry
        .params_for(resource_type)
        .filter(|p| applied(p))
        .map(|p| json!({"name": p.code, "type": p.param_type.code()}))
        .collect()
}

/// What `resource.documentation` says about QuestionnaireResponse writes (the PROM hook).
const PROM_DOCUMENTATION: &str = "A response is checked against its Questionnaire \
     (canonical url|version, url, or Questionnaire/id) on every write: 422 naming the linkId. A \
     completed or amended response is scored by what its Questionnaire defines (ordinalValue, \
     itemWeight, calculatedExpression) and the score stored, in the same commit, as an \
     Observation derivedFrom it; live Goals of the patient whose target.measure is the score's \
     code link it in outcomeReference and get an achievementStatus from the trend. A response \
     to an unknown questionnaire is stored unscored, with a warning.";

/// What `resource.documentation` says about `If-Match` for a type the requirement covers.
fn if_match_documentation(all_callers: bool) -> &'static str {
    if all_callers {
        "Updates, patches and deletes must carry If-Match with the version they replace (412 \
         otherwise), from every caller."
    } else {
        "Updates, patches and deletes by patient/ and user/ tokens (the patient's and the care \
         team's apps, which co-edit this shared plan) must carry If-Match with the version they \
         replace (412 otherwise); backend services (system/ tokens) may leave it out."
    }
}

/// Build the CapabilityStatement for a server whose FHIR base is `base_url`; the types in
/// `require_if_match` are `versioned-update` (for every caller when `all_callers`).
pub fn capability_statement(
    base_url: &str,
    resource_types: &[&str],
    require_if_match: &[String],
    all_callers: bool,
) -> Value {
    let resources: Vec<Value> = resource_types
        .iter()
        .map(|rt| {
            let is_record = matches!(*rt, "Provenance" | "AuditEvent");
            let interactions = if is_record {
                RECORD_INTERACTIONS
            } else {
                TYPE_INTERACTIONS
            };
            let mut resource = json!({
                "type": rt,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{rt}"),
                "interaction": interactions.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "multiple",
                "searchParam": search_params(rt),
            });
            let operations: Vec<Value> = super::operations::operations_on(rt)
                .map(|op| json!({"name": op.name, "definition": op.definition}))
                .collect();
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            let mut documentation = Vec::new();
            if require_if_match.iter().any(|t| t == rt) {
                resource["versioning"] = json!("versioned-update");
                documentation.push(if_match_documentation(all_callers));
            }
            if *rt == "QuestionnaireResponse" {
                documentation.push(PROM_DOCUMENTATION);
            }
            if !documentation.is_empty() {
                resource["documentation"] = json!(documentation.join(" "));
            }
            if is_record {
                resource["updateCreate"] = json!(false);
                resource["conditionalUpdate"] = json!(false);
                resource["conditionalDelete"] = json!("not-supported");
            }
            resource
        })
        .collect();
    let mut rest = json!({
        "mode": "server",
        "resource": resources,
        "interaction": SYSTEM_INTERACTIONS.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
    });
    let system_operations: Vec<Value> = super::operations::system_operations()
        .map(|op| json!({"name": op.name, "definition": op.definition}))
        .collect();
    if !system_operations.is_empty() {
        rest["operation"] = Value::Array(system_operations);
    }
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
        // JSON Patch, and FHIRPath Patch (a Parameters resource, fhirpatch.html) in either
        // FHIR format.
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [rest],
    })
}
