//! Server configuration, layered: built-in defaults < `coplan.toml` < `COPLAN_*` environment
//! variables < command-line flags. Secrets (database passwords) are redacted in `Debug`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration of one server process.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; defaults to an SQLite file under `data_dir`.
    pub database_url: String,
    /// Directory for the embedded database.
    pub data_dir: PathBuf,
    /// Public base URL of the FHIR endpoint (used in Location headers and fullUrls).
    pub base_url: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Default and maximum page size for history (and later search).
    pub default_page_size: u32,
    pub max_page_size: u32,
    /// The server's zone as an offset east of UTC: dates without a zone in searches and
    /// resources mean that day here (search.html#date).
    pub tz_offset_seconds: i32,
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `coplan=debug`.
    pub log_filter: String,
    /// Serve the FHIR API without any access control (local experiments only).
    pub insecure_no_auth: bool,
    /// argon2id cost for user passwords: memory in KiB and passes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// How often a node re-reads the token signing keys from the database, in seconds (so a
    /// rotation by `coplan keys rotate` or another node is seen).
    pub key_reload_seconds: i64,
    /// How long clients may cache the JWK Set (`Cache-Control: max-age`), in seconds. A rotated
    /// key is published this long plus two reloads before any node signs with it.
    pub jwks_max_age_seconds: i64,
    /// Other authorization servers whose access tokens the FHIR API accepts (resource-server
    /// mode); configuration file only.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// `user/` scopes of a Practitioner reach every patient (an organisation-wide clinician
    /// role) instead of the patients whose active CareTeam includes them.
    pub practitioners_see_all_patients: bool,
    /// Browser origins (`https://app.example.org`) allowed to call the FHIR API and the token
    /// endpoint (CORS); discovery is open to every origin.
    pub allowed_origins: Vec<String>,
    /// How long an app that was allowed `offline_access` keeps it (its refresh tokens), in days.
    pub offline_access_days: u32,
    /// Who runs this service, as patients should read it on the sign-in page ("Example Health
    /// NHS Trust"); without it the page names the server's host.
    pub operator: Option<String>,
    /// Extra trusted root certificates (PEM) for fetching key sets from `jwks_uri`s, beside
    /// the operating system's (a private CA).
    pub jwks_ca_file: Option<PathBuf>,
    /// Also fetch key sets from plain `http://` URLs (tests and local development only).
    pub jwks_allow_http: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("base_url", &self.base_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("tz_offset_seconds", &self.tz_offset_seconds)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("insecure_no_auth", &self.insecure_no_auth)
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("key_reload_seconds", &self.key_reload_seconds)
            .field("jwks_max_age_seconds", &self.jwks_max_age_seconds)
            .field("trusted_issuers", &self.trusted_issuers)
            .field(
                "practitioners_see_all_patients",
                &self.practitioners_see_all_patients,
            )
            .field("allowed_origins", &self.allowed_origins)
            .field("offline_access_days", &self.offline_access_days)
            .field("operator", &self.operator)
            .field("jwks_ca_file", &self.jwks_ca_file)
            .field("jwks_allow_http", &self.jwks_allow_http)
            .finish()
    }
}

/// Replace the password in `scheme://user:password@host/...` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// Values that any layer may set; `None` means "not set at this layer".
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub base_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub default_page_size: Option<u32>,
    pub max_page_size: Option<u32>,
    /// `UTC`, `Z`, or an offset such as `+02:00`.
    pub timezone: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_filter: Option<String>,
    pub insecure_no_auth: Option<bool>,
    pub argon2_memory_kib: Option<u32>,
    pub argon2_iterations: Option<u32>,
    pub key_reload_seconds: Option<u32>,
    pub jwks_max_age_seconds: Option<u32>,
    pub trusted_issuers: Option<Vec<TrustedIssuer>>,
    pub practitioners_see_all_patients: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    pub offline_access_days: Option<u32>,
    pub operator: Option<String>,
    pub jwks_ca_file: Option<PathBuf>,
    pub jwks_allow_http: Option<bool>,
}

impl ConfigLayer {
    /// Values from `COPLAN_*` variables, read through `get` so tests need not touch the process
    /// environment.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let parse_num = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
                })
                .transpose()
        };
        let log_format = match get("COPLAN_LOG_FORMAT").as_deref() {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("text") => Some(LogFormat::Text),
            Some(other) => {
                return Err(format!(
                    "COPLAN_LOG_FORMAT must be text or json, got {other:?}"
                ))
            }
        };
        Ok(ConfigLayer {
            listen: get("COPLAN_LISTEN"),
            database_url: get("COPLAN_DATABASE_URL"),
            data_dir: get("COPLAN_DATA_DIR").map(PathBuf::from),
            base_url: get("COPLAN_BASE_URL"),
            max_body_bytes: parse_num("COPLAN_MAX_BODY_BYTES")?.map(|v| v as usize),
            default_page_size: parse_num("COPLAN_DEFAULT_PAGE_SIZE")?.map(|v| v as u32),
            max_page_size: parse_num("COPLAN_MAX_PAGE_SIZE")?.map(|v| v as u32),
            timezone: get("COPLAN_TIMEZONE"),
            log_format,
            log_filter: get("COPLAN_LOG"),
            insecure_no_auth: match get("COPLAN_INSECURE_NO_AUTH").as_deref() {
                None | Some("") => None,
                Some("1" | "true" | "yes") => Some(true),
                Some("0" | "false" | "no") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "COPLAN_INSECURE_NO_AUTH must be true or false, got {other:?}"
                    ))
                }
            },
            argon2_memory_kib: parse_num("COPLAN_ARGON2_MEMORY_KIB")?.map(|v| v as u32),
            argon2_iterations: parse_num("COPLAN_ARGON2_ITERATIONS")?.map(|v| v as u32),
            key_reload_seconds: parse_num("COPLAN_KEY_RELOAD_SECONDS")?
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            jwks_max_age_seconds: parse_num("COPLAN_JWKS_MAX_AGE_SECONDS")?
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            trusted_issuers: None,
            offline_access_days: parse_num("COPLAN_OFFLINE_ACCESS_DAYS")?
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            operator: get("COPLAN_OPERATOR").filter(|v| !v.trim().is_empty()),
            allowed_origins: get("COPLAN_ALLOWED_ORIGINS").map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            jwks_ca_file: get("COPLAN_JWKS_CA_FILE").map(PathBuf::from),
            jwks_allow_http: match get("COPLAN_JWKS_ALLOW_HTTP").as_deref() {
                None | Some("") => None,
                Some("1" | "true" | "yes") => Some(true),
                Some("0" | "false" | "no") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "COPLAN_JWKS_ALLOW_HTTP must be true or false, got {other:?}"
                    ))
                }
            },
            practitioners_see_all_patients: match get("COPLAN_PRACTITIONERS_SEE_ALL_PATIENTS")
                .as_deref()
            {
                None => None,
                Some("true" | "1") => Some(true),
                Some("false" | "0") => Some(false),
                Some(other) => {
                    return Err(format!(
                        "COPLAN_PRACTITIONERS_SEE_ALL_PATIENTS must be true or false, got {other:?}"
                    ))
                }
            },
        })
    }

    /// Values from a TOML file (`coplan.toml`).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("invalid configuration file: {e}"))
    }

    /// `self` overridden by every value `over` sets.
    pub fn overridden_by(self, over: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: over.listen.or(self.listen),
            database_url: over.database_url.or(self.database_url),
            data_dir: over.data_dir.or(self.data_dir),
            base_url: over.base_url.or(self.base_url),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
            default_page_size: over.default_page_size.or(self.default_page_size),
            max_page_size: over.max_page_size.or(self.max_page_size),
            timezone: over.timezone.or(self.timezone),
            log_format: over.log_format.or(self.log_format),
            log_filter: over.log_filter.or(self.log_filter),
            insecure_no_auth: over.insecure_no_auth.or(self.insecure_no_auth),
            argon2_memory_kib: over.argon2_memory_kib.or(self.argon2_memory_kib),
            argon2_iterations: over.argon2_iterations.or(self.argon2_iterations),
            key_reload_seconds: over.key_reload_seconds.or(self.key_reload_seconds),
            jwks_max_age_seconds: over.jwks_max_age_seconds.or(self.jwks_max_age_seconds),
            trusted_issuers: over.trusted_issuers.or(self.trusted_issuers),
            practitioners_see_all_patients: over
                .practitioners_see_all_patients
                .or(self.practitioners_see_all_patients),
            allowed_origins: over.allowed_origins.or(self.allowed_origins),
            offline_access_days: over.offline_access_days.or(self.offline_access_days),
            operator: over.operator.or(self.operator),
            jwks_ca_file: over.jwks_ca_file.or(self.jwks_ca_file),
            jwks_allow_http: over.jwks_allow_http.or(self.jwks_allow_http),
        }
    }

    /// Fill in defaults and check the result.
    pub fn resolve(self) -> Result<Config, String> {
        let listen_text = self.listen.unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("listen address must look like 127.0.0.1:8080, got {listen_text:?}")
        })?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let database_url = self
            .database_url
            .unwrap_or_else(|| default_sqlite_url(&data_dir));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(format!(
                "database URL must start with sqlite: or postgres://, got {}",
                redact_url(&database_url)
            ));
        }
        let base_url = self
            .base_url
            .unwrap_or_else(|| format!("http://{listen}/fhir"))
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "base URL must be absolute http(s), got {base_url:?}"
            ));
        }
        let default_page_size = self.default_page_size.unwrap_or(50);
        let max_page_size = self.max_page_size.unwrap_or(1000);
        if default_page_size == 0 || max_page_size < default_page_size {
            return Err("page sizes must satisfy 0 < default_page_size <= max_page_size".into());
        }
        Ok(Config {
            listen,
            database_url,
            data_dir,
            base_url,
            max_body_bytes: self.max_body_bytes.unwrap_or(4 * 1024 * 1024),
            default_page_size,
            max_page_size,
            tz_offset_seconds: parse_offset(self.timezone.as_deref().unwrap_or("UTC"))?,
            log_format: self.log_format.unwrap_or(LogFormat::Text),
            log_filter: self.log_filter.unwrap_or_else(|| "info".to_string()),
            insecure_no_auth: self.insecure_no_auth.unwrap_or(false),
            // OWASP's argon2id minimum: 19 MiB, 2 passes.
            argon2_memory_kib: self.argon2_memory_kib.unwrap_or(19 * 1024).max(8),
            argon2_iterations: self.argon2_iterations.unwrap_or(2).max(1),
            // A day at most: a rotated key is published ahead for max-age plus two reloads.
            key_reload_seconds: i64::from(self.key_reload_seconds.unwrap_or(60).clamp(1, 86_400)),
            jwks_max_age_seconds: i64::from(self.jwks_max_age_seconds.unwrap_or(300).min(86_400)),
            trusted_issuers: check_issuers(
                self.trusted_issuers.unwrap_or_default(),
                self.jwks_allow_http.unwrap_or(false),
            )?,
            practitioners_see_all_patients: self.practitioners_see_all_patients.unwrap_or(false),
            allowed_origins: self.allowed_origins.unwrap_or_default(),
            // SMART leaves the lifetime to the server; a year at most.
            offline_access_days: match self.offline_access_days.unwrap_or(90) {
                days @ 1..=365 => days,
                other => {
                    return Err(format!(
                        "offline_access_days must be between 1 and 365, got {other}"
                    ))
                }
            },
            operator: self
                .operator
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty()),
            jwks_ca_file: self.jwks_ca_file,
            jwks_allow_http: self.jwks_allow_http.unwrap_or(false),
        })
    }
}

/// An external authorization server whose JWT access tokens are accepted (`[[trusted_issuers]]`
/// in `coplan.toml`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Its JWK Set as a file, or the https URL it is published at.
    pub jwks_file: Option<PathBuf>,
    pub jwks_uri: Option<String>,
    /// The `aud` its tokens must carry (default: this server's FHIR base URL).
    pub audience: Option<String>,
    /// Accepted signing algorithms (default RS256, RS384, ES256, ES384).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Which claims carry what (defaults: scope, patient, fhirUser, client_id).
    #[serde(default)]
    pub claims: ClaimMapping,
}

/// Claim names in an external issuer's tokens.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    pub scope: Option<String>,
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    pub client_id: Option<String>,
}

fn check_issuers(
    issuers: Vec<TrustedIssuer>,
    jwks_allow_http: bool,
) -> Result<Vec<TrustedIssuer>, String> {
    for issuer in &issuers {
        if issuer.jwks_file.is_some() == issuer.jwks_uri.is_some() {
            return Err(format!(
                "trusted issuer {} needs exactly one of jwks_file and jwks_uri",
                issuer.issuer
            ));
        }
        if let Some(uri) = &issuer.jwks_uri {
            let https = uri.starts_with("https://");
            if !(https || (jwks_allow_http && uri.starts_with("http://"))) {
                return Err(format!(
                    "trusted issuer {}: jwks_uri {uri:?} must be https:// (plain http only with jwks_allow_http, for tests)",
                    issuer.issuer
                ));
            }
        }
    }
    Ok(issuers)
}

/// `UTC`/`Z` or `±hh:mm` → seconds east of UTC.
fn parse_offset(text: &str) -> Result<i32, String> {
    let invalid = || format!("timezone must be UTC or an offset such as +02:00, got {text:?}");
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(invalid)?;
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    if h > 14 || m > 59 || h.to_string().len() > 2 {
        return Err(invalid());
    }
    Ok(sign * (h * 3600 + m * 60))
}

fn default_sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("coplan.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080() {
        let config = ConfigLayer::default().resolve().expect("defaults resolve");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://data/coplan.db");
        assert_eq!(config.base_url, "http://127.0.0.1:8080/fhir");
        assert_eq!(config.max_body_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn layers_override_in_order_file_env_cli() {
        let file = ConfigLayer::from_toml(
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 10\nlog_filter = \"debug\"",
        )
        .expect("toml");
        let env = ConfigLayer::from_env(|k| match k {
            "COPLAN_LISTEN" => Some("127.0.0.1:9001".into()),
            "COPLAN_LOG_FORMAT" => Some("json".into()),
            _ => None,
        })
        .expect("env");
        let cli = ConfigLayer {
            listen: Some("127.0.0.1:9002".into()),
            ..Default::default()
        };
        let config = ConfigLayer::default()
            .overridden_by(file)
            .overridden_by(env)
            .overridden_by(cli)
            .resolve()
            .expect("resolves");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9002");
        assert_eq!(config.max_body_bytes, 10);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.log_filter, "debug");
    }

    #[test]
    fn timezones_are_offsets() {
        assert_eq!(parse_offset("UTC"), Ok(0));
        assert_eq!(parse_offset("+02:00"), Ok(7200));
        assert_eq!(parse_offset("-05:30"), Ok(-19800));
        assert!(parse_offset("Europe/Paris").is_err());
        assert!(parse_offset("+25:00").is_err());
    }

    #[test]
    fn bad_values_are_reported_not_defaulted() {
        assert!(ConfigLayer::from_toml("listen = 5").is_err());
        assert!(ConfigLayer::from_toml("no_such_key = 1").is_err());
        assert!(
            ConfigLayer::from_env(|k| (k == "COPLAN_MAX_BODY_BYTES").then(|| "lots".into()))
                .is_err()
        );
        let bad_listen = ConfigLayer {
            listen: Some("localhost".into()),
            ..Default::default()
        };
        assert!(bad_listen.resolve().is_err());
        let bad_db = ConfigLayer {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(bad_db.resolve().is_err());
    }

    #[test]
    fn debug_output_redacts_database_passwords() {
        let config = ConfigLayer {
            database_url: Some("postgres://coplan:s3cret@db.example/coplan".into()),
            ..Default::default()
        }
        .resolve()
        .expect("resolves");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://coplan:***@db.example/coplan"),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
