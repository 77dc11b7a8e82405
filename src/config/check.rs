//! The last step of resolving: settings derived from others (the database under `data_dir`,
//! the base URL from `listen`), bounds, and checks that span settings.

use super::{Config, DatabaseUrl, TrustedIssuer};

impl Config {
    /// Fill in the derived defaults, clamp what has bounds, and refuse what cannot work.
    pub(crate) fn checked(mut self) -> Result<Config, String> {
        if self.database_url.is_empty() {
            self.database_url = DatabaseUrl::sqlite_in(&self.data_dir);
        }
        let url = self.database_url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(format!(
                "database URL must start with sqlite: or postgres://, got {}",
                self.database_url
            ));
        }
        if self.base_url.trim().is_empty() {
            self.base_url = format!("http://{}/fhir", self.listen);
        }
        self.base_url = self.base_url.trim_end_matches('/').to_string();
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(format!(
                "base URL must be absolute http(s), got {:?}",
                self.base_url
            ));
        }
        if self.default_page_size == 0 || self.max_page_size < self.default_page_size {
            return Err("page sizes must satisfy 0 < default_page_size <= max_page_size".into());
        }
        check_limits(&self)?;
        self.argon2_memory_kib = self.argon2_memory_kib.max(8);
        self.argon2_iterations = self.argon2_iterations.max(1);
        // A day at most: a rotated key is published ahead for max-age plus two reloads.
        self.key_reload_seconds = self.key_reload_seconds.clamp(1, 86_400);
        self.jwks_max_age_seconds = self.jwks_max_age_seconds.min(86_400);
        check_issuers(&self.trusted_issuers, self.jwks_allow_http)?;
        if let Some(unknown) = self
            .require_if_match
            .iter()
            .find(|t| !crate::validate::is_resource_type(t))
        {
            return Err(format!(
                "require_if_match names {unknown:?}, which is not a FHIR R4 resource type"
            ));
        }
        if let Some(unknown) = self
            .required_profiles
            .keys()
            .find(|t| !crate::validate::is_resource_type(t))
        {
            return Err(format!(
                "required_profiles names {unknown:?}, which is not a FHIR R4 resource type"
            ));
        }
        // SMART leaves the lifetime to the server; a year at most.
        if !(1..=365).contains(&self.offline_access_days) {
            return Err(format!(
                "offline_access_days must be between 1 and 365, got {}",
                self.offline_access_days
            ));
        }
        self.operator = self
            .operator
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty());
        Ok(self)
    }
}

/// The request limits' ranges: each bound keeps the server working (a body of at least 1 KiB,
/// a JSON depth a resource fits in) and below what the code underneath allows (serde_json stops
/// at depth 128, chains nest at most 8 levels in `fhir-search-query`).
fn check_limits(config: &Config) -> Result<(), String> {
    let ranges: [(&str, u64, u64, u64); 17] = [
        (
            "max_body_bytes",
            config.max_body_bytes as u64,
            1024,
            1 << 30,
        ),
        (
            "max_header_bytes",
            config.max_header_bytes as u64,
            8 * 1024,
            1 << 20,
        ),
        (
            "header_read_timeout_seconds",
            config.header_read_timeout_seconds.into(),
            1,
            3600,
        ),
        (
            "body_read_timeout_seconds",
            config.body_read_timeout_seconds.into(),
            1,
            3600,
        ),
        ("max_json_depth", config.max_json_depth.into(), 8, 100),
        (
            "max_json_values",
            config.max_json_values.into(),
            1_000,
            100_000_000,
        ),
        (
            "max_query_params",
            config.max_query_params.into(),
            1,
            10_000,
        ),
        (
            "max_include_results",
            config.max_include_results.into(),
            0,
            100_000,
        ),
        ("max_chain_depth", config.max_chain_depth.into(), 1, 8),
        (
            "current_cache_mib",
            config.current_cache_mib.into(),
            1,
            65_536,
        ),
        (
            "max_concurrent_requests_per_client",
            config.max_concurrent_requests_per_client.into(),
            1,
            1_000_000,
        ),
        (
            "max_connections",
            config.max_connections.into(),
            1,
            1_000_000,
        ),
        (
            "max_connections_per_address",
            config.max_connections_per_address.into(),
            1,
            1_000_000,
        ),
        (
            "max_connections_per_ipv6_site",
            config.max_connections_per_ipv6_site.into(),
            1,
            1_000_000,
        ),
        (
            "response_write_timeout_seconds",
            config.response_write_timeout_seconds.into(),
            1,
            3600,
        ),
        (
            "response_write_min_bytes",
            config.response_write_min_bytes.into(),
            1,
            16_777_216,
        ),
        (
            "sign_in_account_interval_seconds",
            config.sign_in_account_interval_seconds.into(),
            0,
            3600,
        ),
    ];
    for (name, value, low, high) in ranges {
        if !(low..=high).contains(&value) {
            return Err(format!(
                "{name} must be between {low} and {high}, got {value}"
            ));
        }
    }
    let rates = [
        (config.api_requests_per_second, config.api_burst, "api"),
        (
            config.anonymous_requests_per_second,
            config.anonymous_burst,
            "anonymous",
        ),
        (
            config.sign_in_requests_per_second,
            config.sign_in_burst,
            "sign_in",
        ),
    ];
    if config.max_connections_per_ipv6_site < config.max_connections_per_address {
        return Err(format!(
            "max_connections_per_ipv6_site ({}) must be at least max_connections_per_address \
             ({}): one IPv6 address (a reverse proxy's, say) counts against its /48 too",
            config.max_connections_per_ipv6_site, config.max_connections_per_address
        ));
    }
    if config.sign_in_account_interval_seconds > 0 && config.sign_in_account_burst == 0 {
        return Err(
            "sign_in_account_burst must be at least 1 while sign_in_account_interval_seconds is set"
                .into(),
        );
    }
    for (rate, burst, name) in rates {
        if rate > 0 && burst == 0 {
            return Err(format!(
                "{name}_burst must be at least 1 while {name}_requests_per_second is set"
            ));
        }
    }
    Ok(())
}

fn check_issuers(issuers: &[TrustedIssuer], jwks_allow_http: bool) -> Result<(), String> {
    for issuer in issuers {
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
    Ok(())
}
