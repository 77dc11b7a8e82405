//! The settings that also have a command-line flag (global: before or after the subcommand),
//! and the flags layer they make. A flag not given leaves the setting to the layers below.

use super::layer::Source;
use super::LogFormat;
use figment::value::Value;
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// Configuration flags of every `coplan` command. Field names are the settings' names.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Configuration file (default: ./coplan.toml when it exists).
    #[arg(long, global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite database.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Public base URL of the FHIR endpoint (default http://LISTEN/fhir).
    #[arg(long, global = true)]
    pub base_url: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, global = true)]
    pub max_body_bytes: Option<usize>,
    /// The server's zone for dates without one: UTC or an offset such as +02:00.
    #[arg(long, global = true)]
    pub timezone: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    #[serde(
        rename = "log_format",
        skip_serializing_if = "is_false",
        serialize_with = "json"
    )]
    pub log_json: bool,
    /// Serve the FHIR API WITHOUT access control (local experiments only; env
    /// COPLAN_INSECURE_NO_AUTH=true).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "is_false")]
    pub insecure_no_auth: bool,
}

impl Flags {
    /// The flags given, as a layer named after them in error messages.
    pub(super) fn source(&self) -> Source {
        let values = Value::serialize(self)
            .map_err(|e| e.to_string())
            .and_then(|v| v.into_dict().ok_or_else(|| "flags are not a table".into()))
            .map(|mut dict| {
                dict.retain(|_, v| !matches!(v, Value::Empty(..)));
                dict
            });
        Source::new("the command-line flags".into(), values, |key| match key {
            "log_format" => "--log-json".to_string(),
            _ => format!("--{}", key.replace('_', "-")),
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn json<S: Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
    LogFormat::Json.serialize(s)
}
