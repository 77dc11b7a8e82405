//! Write-time search index extraction (FHIR R4 search.html §3.1.1 "Search Parameter
//! Types": number, date, string, token, reference, composite, quantity, uri; §3.1.1.2
//! the parameters for all resources). For a resource, every registry parameter of its
//! type is evaluated and its values become typed [`IndexEntry`] rows.
//!
//! Not indexed: `special` parameters (`near`; `_text`, `_content`, `_query` have no
//! expression), `Reference.identifier` (for `:identifier`), Range and SampledData values
//! of quantity parameters, and composites whose components use `%resource`
//! (MolecularSequence). See the crate documentation for details.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};

use fhir_fhirpath::Node;
use fhir_primitives::{ParamType, PartialDateTime};

use crate::compiled::{Compiled, ComponentPaths};
use crate::direct::is_choice_of;
use crate::normalize::normalize_string;
use crate::registry::{Registry, SearchParam};

/// Extraction settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Offset (seconds east of UTC) in which dates and times without a zone are read.
    pub tz_offset_seconds: i32,
    /// Evaluates every branch with the FHIRPath engine, plain paths too: the reference the
    /// direct reading of plain paths is tested against (tests and fuzzing only).
    #[doc(hidden)]
    pub engine_only: bool,
}

/// One search index row: a parameter code and one of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub code: &'static str,
    pub value: IndexValue,
}

/// A typed search index value.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `string` parameters: `normalized` for the default (starts-with) and `:contains`
    /// searches, `exact` for `:exact`.
    String { normalized: String, exact: String },
    /// `token` parameters. `text` is the display / CodeableConcept.text / Identifier.type.text
    /// (for `:text`); `of_type` is Identifier.type's first coding as (system, code) for
    /// `:of-type` (system empty when the coding has none).
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
        of_type: Option<(String, String)>,
    },
    /// `date` parameters: the inclusive range in UTC microseconds (`i64::MIN` / `i64::MAX`
    /// for an open Period start / end).
    Date { low_us: i64, high_us: i64 },
    /// `number` parameters; `value` is the decimal as written.
    Number { value: String, value_f64: f64 },
    /// `quantity` parameters.
    Quantity {
        value: String,
        value_f64: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// `reference` parameters. `url` is the reference as written. Type and id are parsed from
    /// relative (`Patient/1`, `Patient/1/_history/2`) and absolute FHIR URLs whose
    /// second-to-last segment is an R4 resource type. A local reference (`#x`) keeps `url`
    /// `#x`, has no id, and has the contained resource's type.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    /// `reference` parameters: the logical reference (`Reference.identifier`), for
    /// `:identifier`; `declared_type` is `Reference.type`.
    ReferenceIdentifier {
        system: Option<String>,
        value: String,
        declared_type: Option<String>,
    },
    /// `uri` parameters.
    Uri { value: String },
    /// `composite` parameters: one value per component, in component order.
    Composite { parts: Vec<IndexValue> },
}

/// Why a resource could not be indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the resource is not a JSON object")]
    NotAnObject,
    #[error("the resource has no resourceType")]
    MissingResourceType,
    #[error("unknown resource type `{0}`")]
    UnknownResourceType(String),
    #[error("FHIRPath engine unavailable: {0}")]
    Engine(String),
    #[error("search parameter `{code}` could not be evaluated: {message}")]
    Evaluation { code: String, message: String },
}

/// Extracts the search index rows of `resource` for every search parameter of its type.
pub fn extract(
    resource: &Value,
    options: &ExtractOptions,
) -> Result<Vec<IndexEntry>, ExtractError> {
    let object = resource.as_object().ok_or(ExtractError::NotAnObject)?;
    let resource_type = object
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(ExtractError::MissingResourceType)?;
    let registry = Registry::get();
    if !registry.is_resource_type(resource_type) {
        return Err(ExtractError::UnknownResourceType(resource_type.to_string()));
    }
    let compiled = Compiled::get().map_err(ExtractError::Engine)?;
    let ctx = Ctx {
        resource: object,
        registry,
        options,
    };
    // The engine's API is async but does no I/O here: one local block_on per resource
    // (works on any thread, inside or outside a tokio runtime).
    futures::executor::block_on(extract_with(resource, resource_type, compiled, &ctx))
}

async fn extract_with(
    resource: &Value,
    resource_type: &str,
    compiled: &Compiled,
    ctx: &Ctx<'_>,
) -> Result<Vec<IndexEntry>, ExtractError> {
    let registry = ctx.registry;
    // Converted into the engine's model only when a branch needs the engine.
    let mut prepared = None;
    // Several parameters share a branch (`code` and `combo-code` both evaluate
    // `Observation.code`; `patient` and `subject` both `Observation.subject`): each distinct
    // branch is evaluated once per resource.
    let mut evaluated: HashMap<&str, Vec<Node>> = HashMap::new();
    let mut out = Vec::new();
    for param in registry.params_for(resource_type) {
        if param.param_type == ParamType::Special || param.expression.is_empty() {
            continue;
        }
        let Some(branches) = compiled.param(resource_type, &param.code) else {
            continue;
        };
        let branches = branches
            .as_ref()
            .map_err(|message| ExtractError::Evaluation {
                code: param.code.clone(),
                message: message.clone(),
            })?;
        let mut values = Vec::new();
        for branch in branches {
            if let Some(element) = &branch.first_element {
                if !has_element(ctx.resource, element) {
                    continue;
                }
            }
            let nodes = match evaluated.entry(branch.expression.source()) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => {
                    let direct = match &branch.direct {
                        Some(direct) if !ctx.options.engine_only => direct.read(resource),
                        _ => None,
                    };
                    let nodes = match direct {
                        Some(nodes) => nodes,
                        None => {
                            let prepared =
                                prepared.get_or_insert_with(|| compiled.prepare(resource));
                            compiled
                                .evaluate(branch, prepared)
                                .await
                                .map_err(|message| ExtractError::Evaluation {
                                    code: param.code.clone(),
                                    message,
                                })?
                        }
                    };
                    slot.insert(nodes)
                }
            };
            for node in nodes.iter() {
                if param.param_type == ParamType::Composite {
                    if let Some(paths) = compiled.components(resource_type, &param.code) {
                        ctx.composite_values(param, paths, node, &mut values);
                    }
                } else {
                    let before = values.len();
                    ctx.values(param.param_type, node, &mut values);
                    if let Some(wanted) = &branch.resolve_is {
                        let mut i = before;
                        while i < values.len() {
                            let keep = match &values[i] {
                                IndexValue::Reference {
                                    target_type: Some(t),
                                    ..
                                } => t == wanted,
                                IndexValue::ReferenceIdentifier { declared_type, .. } => {
                                    declared_type.as_ref().is_none_or(|t| t == wanted)
                                }
                                _ => false,
                            };
                            if keep {
                                i += 1;
                            } else {
                                values.remove(i);
                            }
                        }
                    }
                }
            }
        }
        let code: &'static str = param.code.as_str();
        let mut seen: Vec<IndexValue> = Vec::with_capacity(values.len());
        for value in values {
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
        out.extend(seen.into_iter().map(|value| IndexEntry { code, value }));
    }
    Ok(out)
}

/// Per-resource extraction state.
struct Ctx<'a> {
    resource: &'a Map<String, Value>,
    registry: &'static Registry,
    options: &'a ExtractOptions,
}

/// The R4 ContactPoint.system codes; an Identifier.system is a URI instead.
const CONTACT_POINT_SYSTEMS: [&str; 7] = ["phone", "fax", "email", "pager", "url", "sms", "other"];
/// HumanName and Address parts indexed by `string` parameters.
const NAME_ADDRESS_PARTS: [&str; 11] = [
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn str_field(o: &Map<String, Value>, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number_text(v: &Value) -> Option<(String, f64)> {
    match v {
        Value::Number(n) => Some((n.to_string(), n.as_f64()?)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| (s.trim().to_string(), f)),
        _ => None,
    }
}

/// Splits a reference into (type, id) when it looks like `[base/]Type/id[/_history/v]` — the
/// one reading of references that indexing, and so compartments and access checks, rely on.
pub fn parse_reference(url: &str, registry: &Registry) -> (Option<String>, Option<String>) {
    let url = url.split(['?', '|']).next().unwrap_or(url);
    let mut segments: Vec<&str> = url.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() >= 4 && segments[segments.len() - 2] == "_history" {
        segments.truncate(segments.len() - 2);
    }
    if segments.len() >= 2 {
        let t = segments[segments.len() - 2];
        let id = segments[segments.len() - 1];
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if id_ok && registry.is_resource_type(t) {
            return (Some(t.to_string()), Some(id.to_string()));
        }
    }
    (None, None)
}

impl Ctx<'_> {
    fn values(&self, param_type: ParamType, node: &Node, out: &mut Vec<IndexValue>) {
        let json = match node {
            Node::Decimal(text) => {
                if let Ok(f) = text.parse::<f64>() {
                    match param_type {
                        ParamType::Number => out.push(IndexValue::Number {
                            value: text.clone(),
                            value_f64: f,
                        }),
                        ParamType::Quantity => out.push(IndexValue::Quantity {
                            value: text.clone(),
                            value_f64: f,
                            system: None,
                            code: None,
                            unit: None,
                        }),
                        _ => {}
                    }
                }
                return;
            }
            Node::Json(json) => json.as_ref(),
        };
        match param_type {
            ParamType::String => self.string_values(json, out),
            ParamType::Token => self.token_values(json, out),
            ParamType::Date => self.date_values(json, out),
            ParamType::Number => {
                if let Some((value, value_f64)) = number_text(json) {
                    out.push(IndexValue::Number { value, value_f64 });
                }
            }
            ParamType::Quantity => self.quantity_values(json, out),
            ParamType::Reference => self.reference_values(json, out),
            ParamType::Uri => {
                if let Value::String(s) = json {
                    out.push(IndexValue::Uri { value: s.clone() });
                }
            }
            ParamType::Composite | ParamType::Special => {}
        }
    }

    fn push_string(s: &str, out: &mut Vec<IndexValue>) {
        let normalized = normalize_string(s);
        if !normalized.is_empty() {
            out.push(IndexValue::String {
                normalized,
                exact: s.to_string(),
            });
        }
    }

    fn string_values(&self, json: &Value, out: &mut Vec<IndexValue>) {
        match json {
            Value::String(s) => Self::push_string(s, out),
            Value::Object(o) => {
                for part in NAME_ADDRESS_PARTS {
                    match o.get(part) {
                        Some(Value::String(s)) => Self::push_string(s, out),
                        Some(Value::Array(items)) => {
                            for s in items.iter().filter_map(Value::as_str) {
                                Self::push_string(s, out);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn token_values(&self, json: &Value, out: &mut Vec<IndexValue>) {
        let simple = |code: String| IndexValue::Token {
            system: None,
            code: Some(code),
            text: None,
            of_type: None,
        };
        match json {
            Value::String(s) => out.push(simple(s.clone())),
            Value::Bool(b) => out.push(simple(b.to_string())),
            Value::Number(n) => out.push(simple(n.to_string())),
            Value::Object(o) => {
                if let Some(codings) = o.get("coding") {
                    // CodeableConcept: one row per coding, plus the text alone if no coding carries it.
                    let cc_text = str_field(o, "text");
                    let mut text_used = false;
                    for coding in codings
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_object)
                    {
                        let text = str_field(coding, "display").or_else(|| cc_text.clone());
                        text_used |= text.is_some() && text == cc_text;
                        out.push(IndexValue::Token {
                            system: str_field(coding, "system"),
                            code: str_field(coding, "code"),
                            text,
                            of_type: None,
                        });
                    }
                    if let (Some(text), false) = (cc_text, text_used) {
                        out.push(IndexValue::Token {
                            system: None,
                            code: None,
                            text: Some(text),
                            of_type: None,
                        });
                    }
                } else if o.contains_key("code") {
                    // Coding (or a Quantity with a code).
                    out.push(IndexValue::Token {
                        system: str_field(o, "system"),
                        code: str_field(o, "code"),
                        text: str_field(o, "display"),
                        of_type: None,
                    });
                } else if let Some(value) = o.get("value").and_then(Value::as_str) {
                    let system = str_field(o, "system");
                    let is_contact = system
                        .as_deref()
                        .is_some_and(|s| CONTACT_POINT_SYSTEMS.contains(&s));
                    if is_contact {
                        out.push(simple(value.to_string()));
                    } else {
                        // Identifier.
                        let type_cc = o.get("type").and_then(Value::as_object);
                        let of_type = type_cc
                            .and_then(|t| t.get("coding"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_object)
                            .find_map(|c| {
                                str_field(c, "code")
                                    .map(|code| (str_field(c, "system").unwrap_or_default(), code))
                            });
                        out.push(IndexValue::Token {
                            system,
                            code: Some(value.to_string()),
                            text: type_cc.and_then(|t| str_field(t, "text")),
                            of_type,
                        });
                    }
                } else if let Some(text) = str_field(o, "text") {
                    out.push(IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some(text),
                        of_type: None,
                    });
                }
            }
            _ => {}
        }
    }

    /// The range of a date/time text (search.html#date), read in the server's zone when it
    /// has none; `None` if it is not a date/time.
    fn range(&self, text: &str) -> Option<(i64, i64)> {
        let value: PartialDateTime = text.trim().parse().ok()?;
        let range = value.range(self.options.tz_offset_seconds);
        Some((range.low_us, range.high_us))
    }

    fn period(&self, o: &Map<String, Value>, out: &mut Vec<IndexValue>) {
        let start = o
            .get("start")
            .and_then(Value::as_str)
            .and_then(|s| self.range(s));
        let end = o
            .get("end")
            .and_then(Value::as_str)
            .and_then(|s| self.range(s));
        if start.is_some() || end.is_some() {
            out.push(IndexValue::Date {
                low_us: start.map_or(i64::MIN, |r| r.0),
                high_us: end.map_or(i64::MAX, |r| r.1),
            });
        }
    }

    fn date_values(&self, json: &Value, out: &mut Vec<IndexValue>) {
        match json {
            Value::String(s) => {
                if let Some((low_us, high_us)) = self.range(s) {
                    out.push(IndexValue::Date { low_us, high_us });
                }
            }
            Value::Object(o) if o.contains_key("start") || o.contains_key("end") => {
                self.period(o, out)
            }
            Value::Object(o) => {
                // Timing: each event, and repeat.boundsPeriod.
                for event in o
                    .get("event")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some((low_us, high_us)) = event.as_str().and_then(|s| self.range(s)) {
                        out.push(IndexValue::Date { low_us, high_us });
                    }
                }
                if let Some(bounds) = o
                    .get("repeat")
                    .and_then(|r| r.get("boundsPeriod"))
                    .and_then(Value::as_object)
                {
                    self.period(bounds, out);
                }
            }
            _ => {}
        }
    }

    fn quantity_values(&self, json: &Value, out: &mut Vec<IndexValue>) {
        match json {
            Value::Object(o) => {
                if let Some((value, value_f64)) = o.get("value").and_then(number_text) {
                    out.push(IndexValue::Quantity {
                        value,
                        value_f64,
                        system: str_field(o, "system"),
                        code: str_field(o, "code"),
                        unit: str_field(o, "unit"),
                    });
                }
            }
            other => {
                if let Some((value, value_f64)) = number_text(other) {
                    out.push(IndexValue::Quantity {
                        value,
                        value_f64,
                        system: None,
                        code: None,
                        unit: None,
                    });
                }
            }
        }
    }

    fn reference_from_url(&self, url: &str, declared_type: Option<String>) -> Option<IndexValue> {
        if url.is_empty() {
            return None;
        }
        if let Some(local) = url.strip_prefix('#') {
            let contained_type = self
                .resource
                .get("contained")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
                .and_then(|c| c.get("resourceType"))
                .and_then(Value::as_str)
                .map(str::to_string);
            return Some(IndexValue::Reference {
                target_type: contained_type.or(declared_type),
                target_id: None,
                url: url.to_string(),
            });
        }
        let (parsed_type, target_id) = parse_reference(url, self.registry);
        Some(IndexValue::Reference {
            target_type: parsed_type.or(declared_type),
            target_id,
            url: url.to_string(),
        })
    }

    fn reference_values(&self, json: &Value, out: &mut Vec<IndexValue>) {
        match json {
            // canonical / uri elements searched as references.
            Value::String(s) => out.extend(self.reference_from_url(s, None)),
            Value::Object(o) => {
                if let Some(identifier) = o.get("identifier").and_then(Value::as_object) {
                    if let Some(value) = str_field(identifier, "value") {
                        out.push(IndexValue::ReferenceIdentifier {
                            system: str_field(identifier, "system"),
                            value,
                            declared_type: str_field(o, "type"),
                        });
                    }
                }
                if let Some(url) = o.get("reference").and_then(Value::as_str) {
                    out.extend(self.reference_from_url(url, str_field(o, "type")));
                } else if let (Some(t), Some(id)) =
                    (str_field(o, "resourceType"), str_field(o, "id"))
                {
                    // A resource reached directly (Bundle.entry[0].resource).
                    out.push(IndexValue::Reference {
                        url: format!("{t}/{id}"),
                        target_type: Some(t),
                        target_id: Some(id),
                    });
                }
            }
            _ => {}
        }
    }

    /// Composite: the components are evaluated relative to each element the composite
    /// expression yields; one row per combination of component values.
    fn composite_values(
        &self,
        param: &SearchParam,
        paths: &ComponentPaths,
        node: &Node,
        out: &mut Vec<IndexValue>,
    ) {
        const MAX_COMBINATIONS: usize = 256;
        let Node::Json(element) = node else { return };
        if paths.iter().flatten().any(Option::is_none) {
            return; // `%resource` paths and functions are not supported here.
        }
        let mut per_component: Vec<Vec<IndexValue>> = Vec::with_capacity(param.components.len());
        for (component, branches) in param.components.iter().zip(paths) {
            let Some(component_type) = self
                .registry
                .lookup(&param.resource_type, &component.code)
                .map(|p| p.param_type)
            else {
                return;
            };
            let mut values = Vec::new();
            for path in branches.iter().flatten() {
                for item in navigate(element, path) {
                    self.values(
                        component_type,
                        &Node::Json(Cow::Borrowed(item)),
                        &mut values,
                    );
                }
                // A text-only token (CodeableConcept.text) cannot be matched by a composite search.
                values.retain(|v| !matches!(v, IndexValue::Token { code: None, .. }));
            }

            if values.is_empty() {
                return;
            }
            per_component.push(values);
        }
        let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
        for values in per_component {
            let mut next = Vec::new();
            for combo in &combos {
                for v in &values {
                    if next.len() >= MAX_COMBINATIONS {
                        break;
                    }
                    let mut c = combo.clone();
                    c.push(v.clone());
                    next.push(c);
                }
            }
            combos = next;
        }
        out.extend(
            combos
                .into_iter()
                .map(|parts| IndexValue::Composite { parts }),
        );
    }
}

/// Whether `o` has element `name`, directly or as a choice element (`value` → `valueQuantity`).
fn has_element(o: &Map<String, Value>, name: &str) -> bool {
    o.contains_key(name) || o.keys().any(|k| is_choice_of(k, name))
}

/// Follows a dotted path of element names through JSON, flattening arrays. A name that is
/// absent is tried as a choice element (`value` → `valueQuantity`, `valueString`, …).
fn navigate<'v>(root: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![root];
    for name in path.split('.').map(str::trim) {
        let mut next = Vec::new();
        for v in current {
            let Some(o) = v.as_object() else { continue };
            let found = o.get(name).or_else(|| {
                o.iter()
                    .find(|(k, _)| is_choice_of(k, name))
                    .map(|(_, v)| v)
            });
            match found {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(item) => next.push(item),
                None => {}
            }
        }
        current = next;
    }
    current
}
