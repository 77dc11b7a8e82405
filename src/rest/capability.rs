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

/// The US Core Server CapabilityStatement this statement `instantiates` (conformance/: the
/// published 8.0.0 statement, unchanged).
pub const US_CORE_SERVER: &str =
    "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|8.0.0";
const US_CORE_SERVER_JSON: &str = include_str!("../../conformance/us-core-server-8.0.json");

/// The search parameter combinations US Core names for `resource_type` whose parameters this
/// server all applies (any combination of applied parameters works; these are the ones clients
/// are told to expect).
fn us_core_combinations(resource_type: &str, applied: &[Value]) -> Vec<Vec<String>> {
    static STATEMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let statement =
        STATEMENT.get_or_init(|| serde_json::from_str(US_CORE_SERVER_JSON).unwrap_or(Value::Null));
    let applies = |name: &str| applied.iter().any(|p| p["name"] == name);
    statement["rest"][0]["resource"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == resource_type)
        .flat_map(|r| r["extension"].as_array().into_iter().flatten())
        .filter(|e| e["url"] == COMBINATION)
        .map(|e| {
            e["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["url"] == "required")
                .filter_map(|x| x["valueString"].as_str().map(str::to_string))
                .collect::<Vec<String>>()
        })
        .filter(|combo| !combo.is_empty() && combo.iter().all(|p| applies(p)))
        .collect()
}

/// Target types of a reference parameter up to which its typed `_include`s are listed.
const MAX_TYPED_INCLUDES: usize = 12;

const COMBINATION: &str =
    "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination";

/// `_include` values for `resource_type`: every reference parameter, and each of its target
/// types when it has a few (`CareTeam:participant:Practitioner`; a parameter that may point to
/// any resource is listed once, its typed forms work all the same), and `*`.
fn search_includes(resource_type: &str) -> Vec<String> {
    use fhir_search_index::ParamType;
    let mut includes = vec!["*".to_string()];
    for p in fhir_search_index::Registry::get()
        .params_for(resource_type)
        .filter(|p| p.param_type == ParamType::Reference)
    {
        includes.push(format!("{resource_type}:{}", p.code));
        if (2..=MAX_TYPED_INCLUDES).contains(&p.targets.len()) {
            for t in &p.targets {
                includes.push(format!("{resource_type}:{}:{t}", p.code));
            }
        }
    }
    includes
}

/// The profiles loaded for `resource_type` (canonical, with `|version` where it has one).
fn supported_profiles(resource_type: &str) -> Vec<String> {
    let mut profiles: Vec<String> = super::profiles::profile_set()
        .profiles()
        .filter(|p| p.type_name == resource_type && p.kind == "resource")
        .map(|p| p.canonical())
        .collect();
    profiles.sort();
    profiles
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
            let params = search_params(rt);
            let combinations: Vec<Value> = us_core_combinations(rt, &params)
                .into_iter()
                .map(|combo| {
                    json!({"url": COMBINATION, "extension": combo
                        .iter()
                        .map(|p| json!({"url": "required", "valueString": p}))
                        .collect::<Vec<_>>()})
                })
                .collect();
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
                "searchParam": params,
            });
            let profiles = supported_profiles(rt);
            if !profiles.is_empty() {
                resource["supportedProfile"] = json!(profiles);
            }
            if !is_record {
                resource["searchInclude"] = json!(search_includes(rt));
                // Who changed it (every write has its Provenance).
                resource["searchRevInclude"] = json!(["Provenance:target"]);
            }
            if !combinations.is_empty() {
                resource["extension"] = Value::Array(combinations);
            }
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
        // Where Coplan meets it: the SHALLs it does not meet are listed, with why, by the test
        // `us_core_server_shalls` and in the README.
        "instantiates": [US_CORE_SERVER],
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

#[cfg(test)]
#[path = "capability_us_core.rs"]
mod us_core;
