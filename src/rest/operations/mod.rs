//! FHIR operations (R4 operations.html): the one registry of what this server offers at the
//! system (`/$op`), type (`/{type}/$op`) and instance (`/{type}/{id}/$op`) levels, and the one
//! dispatch every operation request goes through. Inputs arrive as the URL's parameters (GET)
//! or a `Parameters` resource (POST); an operation answers with a resource (a Bundle, a
//! `Parameters`, …). The CapabilityStatement lists exactly what is registered here.
//!
//! Refusals: an operation this server does not know is a 404 `not-supported`; a known one
//! invoked at a level or on a type it is not defined for is a 404 too (that endpoint does not
//! exist); GET of an operation that changes data is a 405 (operations.html: only operations
//! that do not affect state may be invoked with GET).

mod everything;
mod lastn;
mod sdc;
mod validate;

pub use everything::EverythingParams;

use super::FhirService;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use bytes::Bytes;
use serde_json::Value;

/// Where an operation is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    System,
    Type,
    Instance,
}

/// One operation the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationDefinition {
    /// The code, without `$`.
    pub name: &'static str,
    /// The canonical URL of its OperationDefinition.
    pub definition: &'static str,
    pub levels: &'static [Level],
    /// The resource types it is defined on (type and instance levels).
    pub types: &'static [&'static str],
    /// Whether it changes data (then POST only).
    pub affects_state: bool,
}

/// In [`OperationDefinition::types`]: every resource type.
pub const ANY_TYPE: &str = "*";

impl OperationDefinition {
    /// Whether it is defined on `resource_type`.
    pub fn on(&self, resource_type: &str) -> bool {
        self.types.contains(&resource_type) || self.types.contains(&ANY_TYPE)
    }
}

/// Every operation the server offers.
pub const OPERATIONS: &[OperationDefinition] = &[
    OperationDefinition {
        name: "everything",
        definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        levels: &[Level::Instance],
        types: &["Patient"],
        affects_state: false,
    },
    OperationDefinition {
        name: "validate",
        definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
        levels: &[Level::Type, Level::Instance],
        types: &[ANY_TYPE],
        affects_state: false,
    },
    OperationDefinition {
        name: "extract",
        definition: "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract",
        levels: &[Level::Type, Level::Instance],
        types: &["QuestionnaireResponse"],
        affects_state: false,
    },
    OperationDefinition {
        name: "populate",
        definition: "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
        levels: &[Level::Type, Level::Instance],
        types: &["Questionnaire"],
        affects_state: false,
    },
    OperationDefinition {
        name: "lastn",
        definition: "http://hl7.org/fhir/OperationDefinition/Observation-lastn",
        levels: &[Level::Type],
        types: &["Observation"],
        affects_state: false,
    },
];

/// The operations offered on `resource_type` (type or instance level), for the
/// CapabilityStatement.
pub fn operations_on(resource_type: &str) -> impl Iterator<Item = &'static OperationDefinition> {
    let resource_type = resource_type.to_string();
    OPERATIONS.iter().filter(move |op| {
        op.on(&resource_type)
            && op
                .levels
                .iter()
                .any(|l| matches!(l, Level::Type | Level::Instance))
    })
}

/// The operations offered at the system level, for the CapabilityStatement.
pub fn system_operations() -> impl Iterator<Item = &'static OperationDefinition> {
    OPERATIONS
        .iter()
        .filter(|op| op.levels.contains(&Level::System))
}

/// An operation request, as the HTTP layer hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationCall<'a> {
    /// The code as written in the URL, with its `$`.
    pub code: &'a str,
    pub level: Level,
    pub resource_type: Option<&'a str>,
    pub id: Option<&'a str>,
    /// POST (a `Parameters` body) rather than GET (URL parameters).
    pub post: bool,
    pub input: OperationInput,
}

/// The name under which a resource posted as an operation's body is kept (an operation that
/// takes one lists it among its parameters for [`OperationInput::only`]).
pub const BODY: &str = "(body)";

/// An operation's input parameters: primitive values as text in order (URL parameters, or
/// the `value[x]` of a `Parameters` body), and resource-valued parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationInput {
    pub values: Vec<(String, String)>,
    pub resources: Vec<(String, Value)>,
}

impl OperationInput {
    /// From URL parameters (GET, or alongside a POST body).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        OperationInput {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resources: Vec::new(),
        }
    }

    /// Add the parameters of a `Parameters` resource (a POST body): each `parameter` has a
    /// `name` and a primitive `value[x]` or a `resource`; parts (nested parameters) are not
    /// taken by any registered operation and are refused.
    pub fn add_parameters(&mut self, body: &Value) -> FhirResult<()> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(FhirError::invalid_at(
                "an operation's POST body must be a Parameters resource",
                "resourceType",
            ));
        }
        let parameters = match body.get("parameter") {
            None => return Ok(()),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(FhirError::invalid_at(
                    "Parameters.parameter must be an array",
                    "Parameters.parameter",
                ))
            }
        };
        for (i, parameter) in parameters.iter().enumerate() {
            let at = format!("Parameters.parameter[{i}]");
            let name = parameter
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| FhirError::invalid_at("a parameter has no name", &at))?;
            if let Some(resource) = parameter.get("resource") {
                self.resources.push((name.to_string(), resource.clone()));
                continue;
            }
            if parameter.get("part").is_some() {
                return Err(FhirError::invalid_at(
                    format!("parameter {name:?} has parts; no operation here takes them"),
                    &at,
                ));
            }
            let value = parameter
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
                .map(|(_, v)| v);
            let text = match value {
                Some(Value::String(s)) => s.clone(),
                // A Reference (`valueReference`, e.g. $populate's subject): its reference.
                Some(Value::Object(o)) if o.get("reference").is_some_and(Value::is_string) => o
                    .get("reference")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => {
                    return Err(FhirError::invalid_at(
                        format!("parameter {name:?} has no primitive value[x] or resource"),
                        &at,
                    ))
                }
            };
            self.values.push((name.to_string(), text));
        }
        Ok(())
    }

    /// Add a POST body: the parameters of a `Parameters` resource, or any other resource as
    /// the operation's one resource input (R4 operations.html: an operation whose only input
    /// is a resource may take it as the body), named [`BODY`].
    pub fn add_body(&mut self, body: &Value) -> FhirResult<()> {
        if body.get("resourceType").and_then(Value::as_str) == Some("Parameters") {
            return self.add_parameters(body);
        }
        self.resources.push((BODY.to_string(), body.clone()));
        Ok(())
    }

    /// The resource parameter `name`, or the resource posted as the body; a 400 when given
    /// more than once.
    pub fn resource(&self, name: &str) -> FhirResult<Option<&Value>> {
        let mut found = self
            .resources
            .iter()
            .filter(|(k, _)| k == name || k == BODY)
            .map(|(_, v)| v);
        let first = found.next();
        if found.next().is_some() {
            return Err(FhirError::bad_request(format!(
                "the resource parameter {name} is given more than once"
            )));
        }
        Ok(first)
    }

    /// The single value of `name`, if given.
    pub fn value(&self, name: &str) -> FhirResult<Option<&str>> {
        let mut found = self.values.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(FhirError::bad_request(format!(
                "parameter {name} is given more than once"
            )));
        }
        Ok(first)
    }

    /// Refuse parameters outside `known` (an operation never silently ignores one).
    pub fn only(&self, operation: &str, known: &[&str]) -> FhirResult<()> {
        let unknown = self
            .values
            .iter()
            .map(|(k, _)| k)
            .chain(self.resources.iter().map(|(k, _)| k))
            .find(|k| !known.contains(&k.as_str()) && !matches!(k.as_str(), "_format" | "_pretty"));
        match unknown {
            Some(name) => Err(FhirError::bad_request(format!(
                "${operation} takes no parameter {name:?} (it takes {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// Find the registered operation `code` (with its `$`) for `level` and `resource_type`.
pub fn resolve(
    code: &str,
    level: Level,
    resource_type: Option<&str>,
) -> FhirResult<&'static OperationDefinition> {
    let name = code.strip_prefix('$').unwrap_or(code);
    let known = OPERATIONS
        .iter()
        .find(|op| op.name == name)
        .ok_or_else(|| {
            FhirError::new(
                ErrorKind::NotFound,
                "not-supported",
                format!("this server has no operation ${name}"),
            )
        })?;
    let on_type = match resource_type {
        None => true,
        Some(rt) => known.on(rt),
    };
    if !known.levels.contains(&level) || !on_type {
        let place = match (level, resource_type) {
            (Level::System, _) | (_, None) => "at the system level".to_string(),
            (Level::Type, Some(rt)) => format!("on the {rt} type"),
            (Level::Instance, Some(rt)) => format!("on a {rt}"),
        };
        return Err(FhirError::new(
            ErrorKind::NotFound,
            "not-supported",
            format!("${name} is not defined {place}"),
        ));
    }
    Ok(known)
}

impl FhirService {
    /// Run an operation request: resolve it in the registry, then hand it to the operation.
    pub async fn operation(&self, access: &Access, call: &OperationCall<'_>) -> FhirResult<Bytes> {
        if let Some(rt) = call.resource_type {
            super::check_known_type(rt)?;
        }
        let definition = resolve(call.code, call.level, call.resource_type)?;
        if definition.affects_state && !call.post {
            return Err(FhirError::new(
                ErrorKind::MethodNotAllowed,
                "not-supported",
                format!("${} changes data: invoke it with POST", definition.name),
            ));
        }
        match (definition.name, call.id) {
            ("everything", Some(id)) => {
                let input = &call.input;
                input.only("everything", &["_since", "_type", "_count", "_page"])?;
                let params = EverythingParams {
                    since: input.value("_since")?.map(str::to_string),
                    types: input.value("_type")?.map(str::to_string),
                    count: input.value("_count")?.map(str::to_string),
                    page: input.value("_page")?.map(str::to_string),
                };
                self.everything(access, id, &params).await
            }
            ("lastn", None) => self.lastn(access, &call.input).await,
            ("validate", id) => {
                let rt = call.resource_type.unwrap_or_default();
                self.validate_operation(access, rt, id, &call.input).await
            }
            ("extract", id) => self.extract_response(access, id, &call.input).await,
            ("populate", id) => self.populate_questionnaire(access, id, &call.input).await,
            (name, _) => Err(FhirError::internal(format!(
                "operation ${name} is registered but has no implementation"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_registered_operations_where_they_are_defined() {
        assert_eq!(
            resolve("$everything", Level::Instance, Some("Patient")).map(|d| d.name),
            Ok("everything")
        );
        for (code, level, rt, says) in [
            ("$nope", Level::System, None, "no operation $nope"),
            (
                "$everything",
                Level::Instance,
                Some("Goal"),
                "not defined on a Goal",
            ),
            (
                "$everything",
                Level::Type,
                Some("Patient"),
                "not defined on the Patient type",
            ),
            (
                "$everything",
                Level::System,
                None,
                "not defined at the system level",
            ),
        ] {
            let refused = resolve(code, level, rt).expect_err(code);
            assert_eq!(refused.kind, ErrorKind::NotFound, "{code}");
            let text = refused.to_operation_outcome().to_string();
            assert!(text.contains(says), "{code}: {text}");
            assert!(text.contains("not-supported"), "{text}");
        }
    }

    #[test]
    fn parameters_bodies_become_named_values() {
        let mut input = OperationInput::from_pairs([("_format", "json")]);
        input
            .add_parameters(&json!({"resourceType": "Parameters", "parameter": [
                {"name": "_since", "valueInstant": "2026-01-01T00:00:00Z"},
                {"name": "_count", "valueInteger": 5},
                {"name": "flag", "valueBoolean": true},
                {"name": "res", "resource": {"resourceType": "Patient"}}
            ]}))
            .expect("parameters");
        assert_eq!(input.value("_since"), Ok(Some("2026-01-01T00:00:00Z")));
        assert_eq!(input.value("_count"), Ok(Some("5")));
        assert_eq!(input.value("flag"), Ok(Some("true")));
        assert_eq!(input.resources.len(), 1);
        assert!(input
            .only("x", &["_since", "_count", "flag", "res"])
            .is_ok());
        assert!(input.only("x", &["_since"]).is_err());

        let mut twice = OperationInput::from_pairs([("_count", "1"), ("_count", "2")]);
        assert!(twice.value("_count").is_err());
        assert!(twice
            .add_parameters(&json!({"resourceType": "Patient"}))
            .is_err());
        assert!(twice
            .add_parameters(
                &json!({"resourceType": "Parameters", "parameter": [{"valueString": "x"}]})
            )
            .is_err());
        assert!(twice
            .add_parameters(
                &json!({"resourceType": "Parameters", "parameter": [{"name": "p", "part": []}]})
            )
            .is_err());
    }
}
