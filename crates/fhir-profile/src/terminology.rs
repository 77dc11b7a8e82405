//! Loaded ValueSets and CodeSystems and the one question profiles ask of them: is this code in
//! that value set? (FHIR R4 terminologies.html, valueset.html §4.9.5 "compose" rules,
//! codesystem.html). No terminology server: a value set answers from its `compose`
//! (`include.concept` lists, whole loaded CodeSystems, imported value sets, `exclude`) or its
//! `expansion`; whatever needs more (filters, CodeSystems that are not loaded) is "unknown",
//! never guessed. The R4 base model's enumerated value sets (those bound to `code` elements)
//! answer for codes without a system.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// Why membership could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown<'t> {
    /// The value set is not loaded (and not one of the base model's).
    ValueSetNotLoaded,
    /// The value set includes all of a CodeSystem that is not loaded (or not complete).
    SystemNotLoaded(&'t str),
    /// The value set selects codes with a filter.
    Filter(&'t str),
    /// Value set imports nest too deeply (or loop).
    TooDeep,
}

impl Unknown<'_> {
    /// Why, as a sentence fragment for diagnostics.
    pub(crate) fn reason(&self, value_set: &str) -> String {
        match self {
            Unknown::ValueSetNotLoaded => format!("value set {value_set} is not loaded"),
            Unknown::SystemNotLoaded(system) => format!(
                "value set {value_set} includes code system {system}, which is not loaded"
            ),
            Unknown::Filter(system) => format!(
                "value set {value_set} selects codes of {system} with a filter, which is not evaluated"
            ),
            Unknown::TooDeep => format!("value set {value_set} imports value sets too deeply"),
        }
    }
}

/// Membership: `Ok(true)` in, `Ok(false)` not in, `Err` cannot tell.
pub(crate) type Membership<'t> = Result<bool, Unknown<'t>>;

#[derive(Debug, Default)]
struct Include {
    system: Option<String>,
    /// `concept` codes, when listed.
    concepts: Option<HashSet<String>>,
    has_filter: bool,
    /// Imported value sets (`valueSet`), all of which a code must be in.
    value_sets: Vec<String>,
}

#[derive(Debug)]
enum Content {
    Compose {
        include: Vec<Include>,
        exclude: Vec<Include>,
    },
    /// `expansion.contains`, flattened: (system, code).
    Expansion(HashSet<(Option<String>, String)>),
}

#[derive(Debug)]
struct CodeSystem {
    codes: HashSet<String>,
    /// `content` is `complete` (or absent): a code not listed is not in the system.
    complete: bool,
}

/// The loaded terminology.
#[derive(Debug, Default)]
pub(crate) struct Terminology {
    value_sets: HashMap<String, Content>,
    code_systems: HashMap<String, CodeSystem>,
}

/// Nested value set imports followed at most this deep.
const MAX_IMPORT_DEPTH: usize = 8;

/// `url` without a `|version` suffix.
pub(crate) fn strip_version(canonical: &str) -> &str {
    canonical.split_once('|').map_or(canonical, |(url, _)| url)
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn array_of<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl Terminology {
    /// Adds a ValueSet resource; `Err` says what is malformed.
    pub(crate) fn add_value_set(&mut self, vs: &Value) -> Result<(), String> {
        let url = str_of(vs, "url").ok_or("has no url")?;
        if self.value_sets.contains_key(url) {
            return Err(format!("{url} is loaded twice"));
        }
        let content = if let Some(compose) = vs.get("compose") {
            let parse = |key: &str| -> Result<Vec<Include>, String> {
                array_of(compose, key)
                    .iter()
                    .map(|inc| parse_include(inc).map_err(|e| format!("compose.{key}: {e}")))
                    .collect()
            };
            Content::Compose {
                include: parse("include")?,
                exclude: parse("exclude")?,
            }
        } else if let Some(expansion) = vs.get("expansion") {
            let mut codes = HashSet::new();
            collect_expansion(array_of(expansion, "contains"), &mut codes);
            Content::Expansion(codes)
        } else {
            return Err(format!("{url} has neither compose nor expansion"));
        };
        self.value_sets.insert(url.to_string(), content);
        Ok(())
    }

    /// Adds a CodeSystem resource; `Err` says what is malformed.
    pub(crate) fn add_code_system(&mut self, cs: &Value) -> Result<(), String> {
        let url = str_of(cs, "url").ok_or("has no url")?;
        if self.code_systems.contains_key(url) {
            return Err(format!("{url} is loaded twice"));
        }
        let mut codes = HashSet::new();
        collect_concepts(array_of(cs, "concept"), &mut codes)?;
        let complete = matches!(str_of(cs, "content"), None | Some("complete"))
            && cs.get("supplements").is_none();
        self.code_systems
            .insert(url.to_string(), CodeSystem { codes, complete });
        Ok(())
    }

    /// Is (`system`, `code`) in value set `url`? A code without a system (a `code` element)
    /// matches any included system.
    pub(crate) fn contains(&self, url: &str, system: Option<&str>, code: &str) -> Membership<'_> {
        self.contains_at(strip_version(url), system, code, 0)
    }

    fn contains_at(
        &self,
        url: &str,
        system: Option<&str>,
        code: &str,
        depth: usize,
    ) -> Membership<'_> {
        if depth > MAX_IMPORT_DEPTH {
            return Err(Unknown::TooDeep);
        }
        let Some(content) = self.value_sets.get(url) else {
            // The base model's value sets hold codes of `code` elements (system implied).
            return match (system, fhir_validate::core_value_set_contains(url, code)) {
                (None, Some(found)) => Ok(found),
                _ => Err(Unknown::ValueSetNotLoaded),
            };
        };
        match content {
            Content::Expansion(codes) => Ok(match system {
                Some(s) => codes.contains(&(Some(s.to_string()), code.to_string())),
                None => codes.iter().any(|(_, c)| c == code),
            }),
            Content::Compose { include, exclude } => {
                let included = any_of(include, |inc| self.in_include(inc, system, code, depth))?;
                if !included {
                    return Ok(false);
                }
                let excluded = any_of(exclude, |exc| self.in_include(exc, system, code, depth))?;
                Ok(!excluded)
            }
        }
    }

    /// Is the code selected by one `include` (or `exclude`) entry?
    fn in_include<'t>(
        &'t self,
        inc: &'t Include,
        system: Option<&str>,
        code: &str,
        depth: usize,
    ) -> Membership<'t> {
        let mut in_system = true;
        if let Some(inc_system) = inc.system.as_deref() {
            if system.is_some_and(|s| s != inc_system) {
                return Ok(false);
            }
            in_system = if let Some(concepts) = &inc.concepts {
                concepts.contains(code)
            } else if inc.has_filter {
                return Err(Unknown::Filter(inc_system));
            } else {
                match self.code_systems.get(inc_system) {
                    Some(cs) if cs.codes.contains(code) => true,
                    Some(cs) if cs.complete => false,
                    _ => return Err(Unknown::SystemNotLoaded(inc_system)),
                }
            };
        }
        if !in_system {
            return Ok(false);
        }
        // Imported value sets: the code must be in every one of them.
        let mut unknown = None;
        for vs in &inc.value_sets {
            match self.contains_at(strip_version(vs), system, code, depth + 1) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => unknown = unknown.or(Some(e)),
            }
        }
        match unknown {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }
}

/// `Ok(true)` if any entry says in; otherwise `Err` if any cannot tell; else `Ok(false)`.
pub(crate) fn any_of<'t, T>(
    entries: impl IntoIterator<Item = T>,
    mut test: impl FnMut(T) -> Membership<'t>,
) -> Membership<'t> {
    let mut unknown = None;
    for entry in entries {
        match test(entry) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => unknown = unknown.or(Some(e)),
        }
    }
    match unknown {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

fn parse_include(inc: &Value) -> Result<Include, String> {
    let system = str_of(inc, "system").map(str::to_string);
    let concepts = match inc.get("concept") {
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|c| {
                    str_of(c, "code")
                        .map(str::to_string)
                        .ok_or("a concept has no code")
                })
                .collect::<Result<HashSet<_>, _>>()?,
        ),
        Some(_) => return Err("concept must be an array".into()),
        None => None,
    };
    let value_sets: Vec<String> = array_of(inc, "valueSet")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if system.is_none() && value_sets.is_empty() {
        return Err("an entry has neither system nor valueSet".into());
    }
    Ok(Include {
        system,
        concepts,
        has_filter: !array_of(inc, "filter").is_empty(),
        value_sets,
    })
}

fn collect_concepts(concepts: &[Value], out: &mut HashSet<String>) -> Result<(), String> {
    for c in concepts {
        let code = str_of(c, "code").ok_or("a concept has no code")?;
        out.insert(code.to_string());
        collect_concepts(array_of(c, "concept"), out)?;
    }
    Ok(())
}

fn collect_expansion(contains: &[Value], out: &mut HashSet<(Option<String>, String)>) {
    for c in contains {
        if let Some(code) = str_of(c, "code") {
            out.insert((str_of(c, "system").map(str::to_string), code.to_string()));
        }
        collect_expansion(array_of(c, "contains"), out);
    }
}
