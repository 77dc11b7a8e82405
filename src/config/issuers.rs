//! External authorization servers whose JWT access tokens the FHIR API accepts
//! (`[[trusted_issuers]]` in `coplan.toml`), and the names of their claims.

use serde::Deserialize;
use std::path::PathBuf;

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
