//! Server configuration, layered: built-in defaults < `coplan.toml` < `COPLAN_*` environment
//! variables < command-line flags. Every setting is spelled once, in [`Config`]: its name is the
//! file key, its upper-cased name after `COPLAN_` the environment variable, and its
//! `Default` the built-in value; [`Flags`] names the few that also have a flag. Secrets
//! (database passwords) are redacted in `Debug` ([`DatabaseUrl`]).

mod check;
mod database_url;
mod env;
mod flags;
mod issuers;
mod layer;
mod parse;
#[cfg(test)]
mod tests;

pub use database_url::{redact_url, DatabaseUrl};
pub use flags::Flags;
pub use issuers::{ClaimMapping, TrustedIssuer};
pub use layer::{load, ConfigLayer};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How logs are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The effective configuration of one server process. A setting's name is its key in
/// `coplan.toml` and, upper-cased after `COPLAN_`, its environment variable (except
/// `log_filter`: `COPLAN_LOG`; `trusted_issuers`, `required_profiles`: file only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds to.
    #[serde(deserialize_with = "parse::listen")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; defaults to an SQLite file under `data_dir`.
    pub database_url: DatabaseUrl,
    /// Directory for the embedded database.
    pub data_dir: PathBuf,
    /// Public base URL of the FHIR endpoint (used in Location headers and fullUrls); defaults
    /// to `http://LISTEN/fhir`.
    pub base_url: String,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) accepted, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's headers, in seconds; also how long an
    /// idle keep-alive connection stays open. The connection is closed after it.
    pub header_read_timeout_seconds: u32,
    /// How long a client may take to send a request's body, in seconds (408, and the
    /// connection closed, after it).
    pub body_read_timeout_seconds: u32,
    /// Deepest nesting of JSON objects and arrays accepted in a request body (8 to 100).
    pub max_json_depth: u32,
    /// Most values (object members and array items) in a request body.
    pub max_json_values: u32,
    /// MiB of current resource versions a node keeps in memory for reads by id (on PostgreSQL
    /// kept fresh across nodes by LISTEN/NOTIFY), 1 to 65,536.
    pub current_cache_mib: u32,
    /// Most parameters one search may have (query string or `POST _search` form).
    pub max_query_params: u32,
    /// Most resources `_include`/`_revinclude` (with `:iterate`) may add to one page.
    pub max_include_results: u32,
    /// Deepest chain or `_has` nesting of a search parameter (1 to 8).
    pub max_chain_depth: u32,
    /// Most FHIR API requests one client may have in progress at once (429 beyond).
    pub max_concurrent_requests_per_client: u32,
    /// Most connections open at once, in total and from one address (IPv6: one /64); a
    /// connection beyond either is closed as soon as it is accepted.
    pub max_connections: u32,
    pub max_connections_per_address: u32,
    /// Most connections open at once from one IPv6 /48 (a site's usual allocation: 65,536 /64s).
    pub max_connections_per_ipv6_site: u32,
    /// How long writing a response may wait with fewer than `response_write_min_bytes` taken
    /// by the client (one that stopped reading, or reads a trickle), in seconds; the connection
    /// is closed after it.
    pub response_write_timeout_seconds: u32,
    /// Bytes a client must take of a waiting response within `response_write_timeout_seconds`.
    pub response_write_min_bytes: u32,
    /// FHIR API requests per second per client (an access token's client and user; the
    /// address when there is no access control), and the burst above that rate; 0: no limit.
    pub api_requests_per_second: u32,
    pub api_burst: u32,
    /// Requests per second per address without a valid access token (the FHIR API's 401s,
    /// metadata, discovery, the authorization server's pages), and the burst; 0: no limit.
    pub anonymous_requests_per_second: u32,
    pub anonymous_burst: u32,
    /// Sign-in, token, introspection, revocation and launch requests (every `POST /auth/…`)
    /// per second per address, and the burst; 0: no limit.
    pub sign_in_requests_per_second: u32,
    pub sign_in_burst: u32,
    /// Sign-in attempts per account, whatever the address: one per this many seconds after a
    /// burst; an account is a username at the sign-in form, a client id authenticating at the
    /// token, introspection, revocation and launch endpoints (only its failed attempts count);
    /// 0: no limit.
    pub sign_in_account_interval_seconds: u32,
    pub sign_in_account_burst: u32,
    /// Default and maximum page size for history and search.
    pub default_page_size: u32,
    pub max_page_size: u32,
    /// The server's zone as an offset east of UTC, set as `timezone` (`UTC`, `Z` or `±hh:mm`):
    /// dates without a zone in searches and resources mean that day here (search.html#date).
    #[serde(rename = "timezone", deserialize_with = "parse::timezone")]
    pub tz_offset_seconds: i32,
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `coplan=debug` (environment: `COPLAN_LOG`).
    pub log_filter: String,
    /// Serve the FHIR API without any access control (local experiments only).
    pub insecure_no_auth: bool,
    /// argon2id cost for user passwords: memory in KiB (at least 8) and passes (at least 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// How often a node re-reads the token signing keys from the database, in seconds (so a
    /// rotation by `coplan keys rotate` or another node is seen); 1 to 86 400.
    pub key_reload_seconds: u32,
    /// How long clients may cache the JWK Set (`Cache-Control: max-age`), in seconds, at most
    /// a day. A rotated key is published this long plus two reloads before any node signs
    /// with it.
    pub jwks_max_age_seconds: u32,
    /// Other authorization servers whose access tokens the FHIR API accepts (resource-server
    /// mode); configuration file only.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// `user/` scopes of a Practitioner reach every patient (an organisation-wide clinician
    /// role) instead of the patients whose active CareTeam includes them.
    pub practitioners_see_all_patients: bool,
    /// Browser origins (`https://app.example.org`) allowed to call the FHIR API and the token
    /// endpoint (CORS); discovery is open to every origin. A list, or comma-separated text.
    #[serde(deserialize_with = "parse::origins")]
    pub allowed_origins: Vec<String>,
    /// How long an app that was allowed `offline_access` keeps it (its refresh tokens), in
    /// days: 1 to 365.
    pub offline_access_days: u32,
    /// Who runs this service, as patients should read it on the sign-in page ("Example Health
    /// NHS Trust"); without it the page names the server's host.
    pub operator: Option<String>,
    /// Extra trusted root certificates (PEM) for fetching key sets from `jwks_uri`s, beside
    /// the operating system's (a private CA).
    pub jwks_ca_file: Option<PathBuf>,
    /// Also fetch key sets from plain `http://` URLs (tests and local development only).
    pub jwks_allow_http: bool,
    /// The shared plan's resource types: their updates, patches and deletes by the apps that
    /// co-edit them (`patient/` and `user/` tokens) must carry `If-Match` (412 otherwise), so
    /// neither the patient nor a clinician silently overwrites the other. A list, or
    /// comma-separated text; empty turns the requirement off.
    #[serde(deserialize_with = "parse::origins")]
    pub require_if_match: Vec<String>,
    /// Require `If-Match` on those types from every caller: backend services (`system/`
    /// tokens) and servers without access control too.
    pub require_if_match_for_all: bool,
    /// Record every read, search and write of patient data as an AuditEvent.
    pub audit_events: bool,
    /// Refuse (422) a QuestionnaireResponse to a questionnaire the server does not know,
    /// rather than accepting it unscored with a warning.
    pub require_known_questionnaire: bool,
    /// Profiles every resource of a type must conform to, whether it claims them or not
    /// (`[required_profiles]` with `CarePlan = ["http://…"]`; configuration file only). The
    /// profiles a resource claims in `meta.profile` are checked in any case.
    pub required_profiles: std::collections::BTreeMap<String, Vec<String>>,
}

impl Config {
    /// `current_cache_mib` in bytes (saturating where `usize` is narrower).
    pub fn current_cache_bytes(&self) -> usize {
        usize::try_from(u64::from(self.current_cache_mib) * 1024 * 1024).unwrap_or(usize::MAX)
    }
}

impl Default for Config {
    /// The built-in defaults. `database_url` and `base_url` are empty here: unset, they are
    /// derived from `data_dir` and `listen` when the configuration is resolved.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DatabaseUrl::default(),
            data_dir: PathBuf::from("data"),
            base_url: String::new(),
            max_body_bytes: 4 * 1024 * 1024,
            // Limits (docs/limits.md says why each default).
            max_header_bytes: 64 * 1024,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 60,
            max_json_depth: 64,
            max_json_values: 100_000,
            current_cache_mib: 64,
            max_query_params: 100,
            max_include_results: 5_000,
            max_chain_depth: 8,
            max_concurrent_requests_per_client: 64,
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_connections_per_ipv6_site: 1_024,
            response_write_timeout_seconds: 60,
            response_write_min_bytes: 65_536,
            api_requests_per_second: 100_000,
            api_burst: 100_000,
            anonymous_requests_per_second: 20,
            anonymous_burst: 100,
            sign_in_requests_per_second: 2,
            sign_in_burst: 10,
            sign_in_account_interval_seconds: 10,
            sign_in_account_burst: 10,
            default_page_size: 50,
            max_page_size: 1000,
            tz_offset_seconds: 0,
            log_format: LogFormat::Text,
            log_filter: "info".to_string(),
            insecure_no_auth: false,
            // OWASP's argon2id minimum: 19 MiB, 2 passes.
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            key_reload_seconds: 60,
            jwks_max_age_seconds: 300,
            trusted_issuers: Vec::new(),
            practitioners_see_all_patients: false,
            allowed_origins: Vec::new(),
            offline_access_days: 90,
            operator: None,
            jwks_ca_file: None,
            jwks_allow_http: false,
            require_if_match: ["CarePlan", "Goal", "CareTeam"].map(String::from).to_vec(),
            require_if_match_for_all: false,
            audit_events: true,
            require_known_questionnaire: false,
            required_profiles: std::collections::BTreeMap::new(),
        }
    }
}
