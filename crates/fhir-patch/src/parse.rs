//! Reading a `Parameters` resource as FHIRPath Patch operations (fhirpatch.html "Parameters
//! Format"): each `parameter` is named `operation`, and its `part`s are `type` (code),
//! `path` (string), `name` (string), `value` (any type, or nested parts), `index`, `source`
//! and `destination` (integer) — exactly those each operation type takes, each at most once.

use fhir_fhirpath::{limits, rewrite_choice_casts, Engine, Expression};
use serde_json::{Map, Value};

use crate::path;
use crate::value::ValuePart;
use crate::{PatchError, PatchErrorKind};

/// The five operation types of fhirpatch.html.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

impl OperationType {
    fn from_code(code: &str) -> Option<OperationType> {
        Some(match code {
            "add" => OperationType::Add,
            "insert" => OperationType::Insert,
            "delete" => OperationType::Delete,
            "replace" => OperationType::Replace,
            "move" => OperationType::Move,
            _ => return None,
        })
    }

    /// The code (`add`, …).
    pub fn name(self) -> &'static str {
        match self {
            OperationType::Add => "add",
            OperationType::Insert => "insert",
            OperationType::Delete => "delete",
            OperationType::Replace => "replace",
            OperationType::Move => "move",
        }
    }

    /// The parts this type takes besides `type` and `path` (all of them required).
    fn parts(self) -> &'static [&'static str] {
        match self {
            OperationType::Add => &["name", "value"],
            OperationType::Insert => &["index", "value"],
            OperationType::Delete => &[],
            OperationType::Replace => &["value"],
            OperationType::Move => &["source", "destination"],
        }
    }
}

const PART_NAMES: [&str; 7] = [
    "type",
    "path",
    "name",
    "value",
    "index",
    "source",
    "destination",
];

/// One operation of a patch.
#[derive(Debug, Clone)]
pub struct Operation {
    pub(crate) parameter: usize,
    pub(crate) kind: OperationType,
    /// The path as written in the patch.
    pub(crate) path: String,
    /// The path as evaluated (casts on choice elements spelled as JSON names).
    pub(crate) source: String,
    pub(crate) expression: Expression,
    pub(crate) name: Option<String>,
    pub(crate) value: Option<ValuePart>,
    pub(crate) index: Option<usize>,
    pub(crate) from: Option<usize>,
    pub(crate) to: Option<usize>,
}

impl Operation {
    /// Its index in `Parameters.parameter`.
    pub fn parameter(&self) -> usize {
        self.parameter
    }

    pub fn kind(&self) -> OperationType {
        self.kind
    }

    /// The path as the patch wrote it.
    pub fn path(&self) -> &str {
        &self.path
    }
}

pub(crate) fn operations(parameters: &Value) -> Result<Vec<Operation>, PatchError> {
    let invalid = |i: Option<usize>, m: String| PatchError::invalid(i, m);
    let Some(doc) = parameters.as_object() else {
        return Err(invalid(
            None,
            "a FHIRPath Patch is a Parameters resource".into(),
        ));
    };
    if doc.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(invalid(
            None,
            "a FHIRPath Patch is a Parameters resource (resourceType \"Parameters\")".into(),
        ));
    }
    let params = match doc.get("parameter") {
        None => return Ok(Vec::new()),
        Some(Value::Array(params)) => params,
        Some(_) => {
            return Err(invalid(
                None,
                "Parameters.parameter must be an array".into(),
            ))
        }
    };
    let engine = Engine::shared()
        .map_err(|e| PatchError::new(PatchErrorKind::Internal, None, e.to_string()))?;
    params
        .iter()
        .enumerate()
        .map(|(i, p)| operation(engine, i, p).map_err(|m| invalid(Some(i), m)))
        .collect()
}

fn operation(engine: &Engine, parameter: usize, p: &Value) -> Result<Operation, String> {
    let p = p.as_object().ok_or("a parameter must be an object")?;
    match p.get("name").and_then(Value::as_str) {
        Some("operation") => {}
        Some(other) => {
            return Err(format!(
                "a FHIRPath Patch has only parameters named \"operation\", not {other:?}"
            ))
        }
        None => return Err("the parameter has no name (it must be \"operation\")".into()),
    }
    if p.contains_key("resource") || p.keys().any(|k| k.starts_with("value")) {
        return Err("an operation carries its content in parts, not a value".into());
    }
    let parts = match p.get("part") {
        Some(Value::Array(parts)) => parts,
        _ => return Err("an operation needs its parts (type, path, …)".into()),
    };
    let mut found: Map<String, Value> = Map::new();
    for part in parts {
        let part = part.as_object().ok_or("a part must be an object")?;
        let name = part
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every part needs a name")?;
        if !PART_NAMES.contains(&name) {
            return Err(format!(
                "unknown part {name:?} (the parts are {})",
                PART_NAMES.join(", ")
            ));
        }
        if found
            .insert(name.to_string(), Value::Object(part.clone()))
            .is_some()
        {
            return Err(format!("the part {name:?} is given more than once"));
        }
    }
    let code = typed(&found, "type", "valueCode")?.ok_or("the operation has no type part")?;
    let kind = OperationType::from_code(code).ok_or_else(|| {
        format!("unknown operation type {code:?} (add, insert, delete, replace or move)")
    })?;
    let path = typed(&found, "path", "valueString")?
        .ok_or("the operation has no path part")?
        .to_string();
    for name in PART_NAMES.iter().skip(2) {
        let takes = kind.parts().contains(name);
        match (takes, found.contains_key(*name)) {
            (true, false) => return Err(format!("{} needs a {name:?} part", kind.name())),
            (false, true) => {
                return Err(format!("{} takes no {name:?} part", kind.name()));
            }
            _ => {}
        }
    }
    if path::calls_resolve(&path) {
        return Err(
            "resolve() is not supported in a patch path; a contained resource is reached as \
             contained[i] or contained.where(id = '…')"
                .into(),
        );
    }
    // Both the text as sent and as the engine gets it after the casts' rewrite (which joins
    // names: `replace.as(matches)` would become `replaceMatches`).
    let source = rewrite_choice_casts(&path);
    if let Some(refused) = limits::check_path(&path).or_else(|| limits::check_path(&source)) {
        return Err(format!("the path is refused: {refused}"));
    }
    let expression = engine
        .compile(&source)
        .map_err(|e| format!("the path is not valid FHIRPath: {e}"))?;
    let value = match found.get("value").and_then(Value::as_object) {
        Some(part) => Some(ValuePart::parse(part)?),
        None => None,
    };
    Ok(Operation {
        parameter,
        kind,
        path,
        source,
        expression,
        name: typed(&found, "name", "valueString")?.map(str::to_string),
        value,
        index: integer(&found, "index")?,
        from: integer(&found, "source")?,
        to: integer(&found, "destination")?,
    })
}

/// The string value `key` of part `name`, when the part is there.
fn typed<'p>(
    parts: &'p Map<String, Value>,
    name: &str,
    key: &str,
) -> Result<Option<&'p str>, String> {
    match parts.get(name) {
        None => Ok(None),
        Some(part) => match part.get(key).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => Ok(Some(s)),
            _ => Err(format!("the {name:?} part needs a non-empty {key}")),
        },
    }
}

/// The non-negative `valueInteger` of part `name`, when the part is there.
fn integer(parts: &Map<String, Value>, name: &str) -> Result<Option<usize>, String> {
    match parts.get(name) {
        None => Ok(None),
        Some(part) => part
            .get("valueInteger")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("the {name:?} part needs a valueInteger of 0 or more")),
    }
}
