//! One loaded StructureDefinition (FHIR R4 structuredefinition.html, profiling.html §5.1.0.1):
//! its descriptive fields, its element tree built from the differential (a snapshot, if
//! present, is ignored), and where its `baseDefinition` leads.

use serde_json::Value;

use crate::element::Node;
use crate::tree::{self, Keys, Note};

/// What a loaded StructureDefinition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    /// The canonical URL.
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    pub title: Option<String>,
    /// The type it constrains (`CarePlan`, `Extension`, `Quantity`).
    pub type_name: String,
    /// The profile it derives from.
    pub base_definition: Option<String>,
    /// `resource`, `complex-type` or `primitive-type`.
    pub kind: String,
}

impl ProfileInfo {
    /// `url|version`, or the url alone when there is no version.
    pub fn canonical(&self) -> String {
        match &self.version {
            Some(v) => format!("{}|{v}", self.url),
            None => self.url.clone(),
        }
    }
}

/// Where a profile's `baseDefinition` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    /// The core R4 definition of its type: nothing more to apply.
    Core,
    /// Another loaded profile (index into the set's profiles).
    Loaded(usize),
    /// A profile that is neither loaded nor core.
    Unknown(String),
}

#[derive(Debug)]
pub(crate) struct Profile {
    pub info: ProfileInfo,
    /// `url|version` (or `url`), as diagnostics name the profile.
    pub canonical: String,
    pub root: Node,
    pub notes: Vec<Note>,
    pub base: Base,
}

fn text(sd: &Value, key: &str) -> Option<String> {
    sd.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Reads one StructureDefinition; `Err` says what is malformed or unsupported.
pub(crate) fn parse(sd: &Value, keys: &mut Keys) -> Result<Profile, String> {
    let url = text(sd, "url").ok_or("it has no url")?;
    let type_name = text(sd, "type").ok_or("it has no type")?;
    let kind = text(sd, "kind").ok_or("it has no kind")?;
    if kind == "logical" {
        return Err("logical models are not supported".into());
    }
    match sd.get("derivation").and_then(Value::as_str) {
        None | Some("constraint") => {}
        Some(other) => {
            return Err(format!(
                "derivation '{other}' is not supported: only constraint profiles are"
            ))
        }
    }
    let base_definition = text(sd, "baseDefinition");
    if base_definition.is_none() {
        return Err("it has no baseDefinition".into());
    }
    let elements = match sd.get("differential") {
        None => &[][..],
        Some(d) => d
            .get("element")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .ok_or("differential.element is not an array")?,
    };
    let (root, notes) = tree::build(&type_name, elements, keys)?;
    let info = ProfileInfo {
        url,
        version: text(sd, "version"),
        name: text(sd, "name"),
        title: text(sd, "title"),
        type_name,
        base_definition,
        kind,
    };
    Ok(Profile {
        canonical: info.canonical(),
        info,
        root,
        notes,
        base: Base::Core,
    })
}

/// The type `url` defines when it is a core R4 definition
/// (`http://hl7.org/fhir/StructureDefinition/{Type}`).
pub(crate) fn core_type(url: &str) -> Option<&str> {
    let name = crate::terminology::strip_version(url)
        .strip_prefix("http://hl7.org/fhir/StructureDefinition/")?;
    let known = fhir_validate::is_resource_type(name)
        || matches!(name, "Resource" | "DomainResource")
        || tree::root_type(name).is_some();
    known.then_some(name)
}
