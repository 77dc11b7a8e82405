//! Configuration layers (on figment): each sets some settings, a later layer overrides an
//! earlier one, and [`ConfigLayer::resolve`] reads the result into a checked [`Config`] whose
//! `Default` fills whatever no layer set. [`load`] stacks the process's layers.

use super::Config;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use std::path::Path;

/// The process's configuration: built-in defaults < the configuration file (`--config`, or
/// `./coplan.toml` when it exists) < `COPLAN_*` variables (read through `env`) < flags.
pub fn load(flags: &super::Flags, env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let default_file = Path::new("coplan.toml");
    let file = match &flags.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None if default_file.is_file() => ConfigLayer::from_file(default_file)?,
        None => ConfigLayer::default(),
    };
    file.overridden_by(ConfigLayer::from_env(env))
        .overridden_by(ConfigLayer::from_flags(flags))
        .resolve()
}

/// Some settings; `ConfigLayer::default()` sets none. Tests build theirs with
/// [`ConfigLayer::set`]: `ConfigLayer::default().set("max_body_bytes", 4096)`.
#[derive(Debug, Clone, Default)]
pub struct ConfigLayer(Figment);

impl ConfigLayer {
    /// The same layer with `key` (a setting's name) set to `value`.
    pub fn set(self, key: &str, value: impl Serialize) -> Self {
        let values = Value::serialize(value)
            .map(|value| Dict::from([(key.to_string(), value)]))
            .map_err(|e| e.to_string());
        let set = Source::new("settings set in code".into(), values, str::to_string);
        ConfigLayer(self.0.merge(set))
    }

    /// Settings from TOML text (`coplan.toml`'s format). Malformed TOML is refused here; a
    /// value of the wrong kind or an unknown name when resolving.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        Self::toml(text, "configuration file".into())
    }

    /// Settings from a TOML file (errors name the file).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::toml(&text, format!("configuration file {}", path.display()))
    }

    fn toml(text: &str, name: String) -> Result<Self, String> {
        let mut profiles = Toml::string(text)
            .data()
            .map_err(|e| format!("invalid configuration file: {e}"))?;
        let values = profiles.remove(&Profile::Default).unwrap_or_default();
        Ok(ConfigLayer(Figment::from(Source::new(
            name,
            Ok(values),
            str::to_string,
        ))))
    }

    /// Settings from `COPLAN_*` variables, looked up with `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        ConfigLayer(Figment::from(super::env::environment(get)))
    }

    /// The settings given as command-line flags.
    pub fn from_flags(flags: &super::Flags) -> Self {
        ConfigLayer(Figment::from(flags.source()))
    }

    /// `self` overridden by every setting `over` sets.
    pub fn overridden_by(self, over: ConfigLayer) -> Self {
        ConfigLayer(self.0.merge(over.0))
    }

    /// The effective configuration: built-in defaults under these layers, checked. Numbers and
    /// switches may be given as text (`"4096"`, `"true"`, `"yes"`, `"1"`).
    pub fn resolve(self) -> Result<Config, String> {
        let config: Config = self.0.extract_lossy().map_err(|errors| {
            errors
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        config.checked()
    }
}

/// Settings from one named source (the environment, the flags), each setting named in error
/// messages as that source spells it (`COPLAN_LISTEN`, `--listen`).
pub(super) struct Source {
    name: String,
    values: Result<Dict, String>,
    key: fn(&str) -> String,
}

impl Source {
    pub(super) fn new(name: String, values: Result<Dict, String>, key: fn(&str) -> String) -> Self {
        Source { name, values, key }
    }
}

impl Provider for Source {
    fn metadata(&self) -> Metadata {
        let key = self.key;
        Metadata::named(self.name.clone())
            .interpolater(move |_: &Profile, keys: &[&str]| key(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let values = self.values.clone().map_err(figment::Error::from)?;
        Ok(Profile::Default.collect(values))
    }
}
