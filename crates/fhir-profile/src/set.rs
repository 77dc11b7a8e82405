//! `ProfileSet`: the loaded StructureDefinitions, ValueSets and CodeSystems, immutable after
//! load, and the entry points that validate against them (FHIR R4 profiling.html,
//! validation.html §"Profiles"). Canonical references resolve by `url` or `url|version`
//! (references.html §2.3.0.6 "Canonical URLs").

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use fhir_validate::Issue;
use serde_json::Value;

use crate::element::{Node, Target};
use crate::inherit::inherit_slicing;
use crate::profile::{self, Base, Profile, ProfileInfo};
use crate::terminology::{strip_version, Terminology};
use crate::tree::Keys;
use crate::walk::Ctx;

/// Why a set of resources could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    message: String,
}

impl LoadError {
    fn new(message: String) -> LoadError {
        LoadError { message }
    }

    /// What was wrong, naming the resource.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

/// `validate` was asked for a profile that is not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProfile {
    pub canonical: String,
}

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile {} is not loaded", self.canonical)
    }
}

impl std::error::Error for UnknownProfile {}

#[derive(Debug)]
pub(crate) struct Inner {
    pub profiles: Vec<Profile>,
    /// url → indices into `profiles`, in load order.
    by_url: HashMap<String, Vec<usize>>,
    pub terminology: Terminology,
    /// Some profile has type Extension (the extension pass has work to do).
    pub has_extensions: bool,
}

impl Inner {
    /// The profile named by `canonical` (`url`, or `url|version`; a bare url picks the one
    /// loaded last).
    pub(crate) fn lookup(&self, canonical: &str) -> Option<usize> {
        let (url, version) = match canonical.split_once('|') {
            Some((url, version)) => (url, Some(version)),
            None => (canonical, None),
        };
        let indices = self.by_url.get(url)?;
        match version {
            None => indices.last().copied(),
            Some(v) => indices
                .iter()
                .copied()
                .find(|&i| self.profiles[i].info.version.as_deref() == Some(v)),
        }
    }

    /// The loaded Extension definition with `url`.
    pub(crate) fn extension(&self, url: &str) -> Option<usize> {
        self.lookup(url)
            .filter(|&i| self.profiles[i].info.type_name == "Extension")
    }
}

/// Loaded profiles and terminology. Immutable after [`ProfileSet::load`]; cloning is cheap
/// (the content is shared), and it is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    inner: Arc<Inner>,
}

/// A name for a resource in load errors: its url, else its id, else its position.
fn label(resource: &Value, index: usize) -> String {
    let rt = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("resource");
    match (
        resource.get("url").and_then(Value::as_str),
        resource.get("id").and_then(Value::as_str),
    ) {
        (Some(url), _) => format!("{rt} {url}"),
        (None, Some(id)) => format!("{rt} with id '{id}'"),
        (None, None) => format!("{rt} #{index} (no url, no id)"),
    }
}

impl ProfileSet {
    /// A set with nothing loaded: every profile is unknown to it.
    pub fn empty() -> ProfileSet {
        ProfileSet {
            inner: Arc::new(Inner {
                profiles: Vec::new(),
                by_url: HashMap::new(),
                terminology: Terminology::default(),
                has_extensions: false,
            }),
        }
    }

    /// Loads StructureDefinitions (differentials; a snapshot is ignored), ValueSets and
    /// CodeSystems. Refuses, naming the resource, anything malformed: a missing url, a
    /// differential path that does not exist in the base type, a base of another type, a
    /// loop of baseDefinitions, the same canonical twice.
    pub fn load(resources: Vec<Value>) -> Result<ProfileSet, LoadError> {
        let mut keys = Keys::default();
        let mut profiles: Vec<Profile> = Vec::new();
        let mut terminology = Terminology::default();
        for (index, resource) in resources.iter().enumerate() {
            let fail = |e: String| LoadError::new(format!("{}: {e}", label(resource, index)));
            match resource.get("resourceType").and_then(Value::as_str) {
                Some("StructureDefinition") => {
                    profiles.push(profile::parse(resource, &mut keys).map_err(fail)?)
                }
                Some("ValueSet") => terminology.add_value_set(resource).map_err(fail)?,
                Some("CodeSystem") => terminology.add_code_system(resource).map_err(fail)?,
                Some(other) => {
                    return Err(fail(format!(
                        "a {other} is not a StructureDefinition, ValueSet or CodeSystem"
                    )))
                }
                None => return Err(fail("it has no resourceType".into())),
            }
        }
        let mut by_url: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in profiles.iter().enumerate() {
            let same = by_url.entry(p.info.url.clone()).or_default();
            if same
                .iter()
                .any(|&j| profiles[j].info.version == p.info.version)
            {
                return Err(LoadError::new(format!(
                    "StructureDefinition {} is loaded twice",
                    p.canonical
                )));
            }
            same.push(i);
        }
        let mut inner = Inner {
            has_extensions: profiles.iter().any(|p| p.info.type_name == "Extension"),
            profiles,
            by_url,
            terminology,
        };
        resolve_bases(&mut inner)?;
        inherit_slicing(&mut inner.profiles, &mut keys);
        resolve_targets(&mut inner);
        Ok(ProfileSet {
            inner: Arc::new(inner),
        })
    }

    /// Every loaded StructureDefinition, in load order.
    pub fn profiles(&self) -> impl Iterator<Item = ProfileInfo> + '_ {
        self.inner.profiles.iter().map(|p| p.info.clone())
    }

    /// The StructureDefinition named by `canonical` (`url` or `url|version`).
    pub fn get(&self, canonical: &str) -> Option<ProfileInfo> {
        self.inner
            .lookup(canonical)
            .map(|i| self.inner.profiles[i].info.clone())
    }

    /// Validates `resource` against the profile `canonical` and, through `baseDefinition`,
    /// every loaded profile it derives from, down to the core R4 type; then every extension
    /// whose url names a loaded Extension definition. Base R4 validation is not repeated here
    /// (run `fhir_validate::validate_resource` for it). Issues come profile by profile (the
    /// named one first), each in differential order.
    pub fn validate(
        &self,
        resource: &Value,
        canonical: &str,
    ) -> Result<Vec<Issue>, UnknownProfile> {
        let index = self.inner.lookup(canonical).ok_or_else(|| UnknownProfile {
            canonical: canonical.to_string(),
        })?;
        let mut ctx = Ctx::new(&self.inner, resource);
        ctx.validate_resource(index);
        Ok(ctx.finish())
    }

    /// Is `code` (of `system`, if given) in value set `url` (`url|version` accepted)?
    /// Answers from a loaded ValueSet's `compose` (listed codes, whole loaded CodeSystems,
    /// imported value sets, `exclude`) or `expansion`, or from the R4 base model's enumerated
    /// value sets for a code without a system. `None`: cannot tell (the value set or an
    /// included CodeSystem is not loaded, or codes are selected by a filter).
    pub fn value_set_contains(&self, url: &str, system: Option<&str>, code: &str) -> Option<bool> {
        self.inner.terminology.contains(url, system, code).ok()
    }
}

/// Resolves every profile's `baseDefinition`; refuses bases of another type and loops.
fn resolve_bases(inner: &mut Inner) -> Result<(), LoadError> {
    for i in 0..inner.profiles.len() {
        let p = &inner.profiles[i];
        let Some(base_url) = p.info.base_definition.clone() else {
            continue;
        };
        let fail = |e: String| LoadError::new(format!("StructureDefinition {}: {e}", p.canonical));
        let base = if let Some(j) = inner.lookup(&base_url) {
            let base_type = &inner.profiles[j].info.type_name;
            if j == i {
                return Err(fail("it is its own baseDefinition".into()));
            }
            if *base_type != p.info.type_name {
                return Err(fail(format!(
                    "its baseDefinition {base_url} constrains {base_type}, not {}",
                    p.info.type_name
                )));
            }
            Base::Loaded(j)
        } else if let Some(core) = profile::core_type(&base_url) {
            if core != p.info.type_name {
                return Err(fail(format!(
                    "its baseDefinition {base_url} is the core {core}, not {}",
                    p.info.type_name
                )));
            }
            Base::Core
        } else {
            Base::Unknown(strip_version(&base_url).to_string())
        };
        inner.profiles[i].base = base;
    }
    for start in 0..inner.profiles.len() {
        let mut at = start;
        for _ in 0..=inner.profiles.len() {
            match inner.profiles[at].base {
                Base::Loaded(next) if next == start => {
                    return Err(LoadError::new(format!(
                        "StructureDefinition {}: its baseDefinitions form a loop",
                        inner.profiles[start].canonical
                    )))
                }
                Base::Loaded(next) => at = next,
                _ => break,
            }
        }
    }
    Ok(())
}

/// Resolves every `targetProfile` once: a loaded profile's type, a core type, any resource,
/// or unknown (not loaded).
fn resolve_targets(inner: &mut Inner) {
    fn urls<'n>(node: &'n Node, out: &mut Vec<&'n str>) {
        for rule in node.types.iter().flatten() {
            out.extend(rule.target_profiles.iter().map(String::as_str));
        }
        for child in node.children.iter().chain(node.slices.iter()) {
            urls(child, out);
        }
    }
    fn fill(node: &mut Node, resolved: &HashMap<String, Target>) {
        for rule in node.types.iter_mut().flatten() {
            rule.targets = rule
                .target_profiles
                .iter()
                .filter_map(|url| resolved.get(url).cloned())
                .collect();
        }
        for child in node.children.iter_mut().chain(node.slices.iter_mut()) {
            fill(child, resolved);
        }
    }
    let mut all = Vec::new();
    for p in &inner.profiles {
        urls(&p.root, &mut all);
    }
    let resolved: HashMap<String, Target> = all
        .into_iter()
        .map(|url| {
            let target = if let Some(i) = inner.lookup(url) {
                Target::Type(inner.profiles[i].info.type_name.clone())
            } else {
                match profile::core_type(url) {
                    Some("Resource" | "DomainResource") => Target::Any,
                    Some(t) => Target::Type(t.to_string()),
                    None => Target::Unknown(url.to_string()),
                }
            };
            (url.to_string(), target)
        })
        .collect();
    for p in &mut inner.profiles {
        fill(&mut p.root, &resolved);
    }
}
