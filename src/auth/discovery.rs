//! Discovery documents (SMART App Launch 2.2 "Conformance": `.well-known/smart-configuration`;
//! OpenID Connect Discovery 1.0; the CapabilityStatement's `rest.security` with the
//! SMART-on-FHIR service and the `oauth-uris` extension). All are built from [`AuthSettings`],
//! so they cannot disagree with each other or with the endpoints.

use super::scopes::EHR_LAUNCH_SCOPE;
use super::AuthSettings;
use serde_json::{json, Value};

/// The SMART capabilities this server implements.
pub const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-banner",
    "context-style",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
    "authorize-post",
];

/// Scopes advertised in `scopes_supported`.
pub fn scopes_supported() -> Vec<&'static str> {
    vec![
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
        "patient/*.cruds",
        "patient/*.rs",
        "user/*.cruds",
        "user/*.rs",
        "system/*.cruds",
        "system/*.rs",
        "patient/*.read",
        "patient/*.write",
        "user/*.read",
        "user/*.write",
        "system/*.read",
        "system/*.write",
        EHR_LAUNCH_SCOPE,
    ]
}

/// `GET /fhir/.well-known/smart-configuration`.
pub fn smart_configuration(s: &AuthSettings) -> Value {
    json!({
        "issuer": s.issuer,
        "jwks_uri": s.jwks_url,
        "authorization_endpoint": s.authorize_url,
        "token_endpoint": s.token_url,
        "introspection_endpoint": s.introspect_url,
        "revocation_endpoint": s.revoke_url,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes_supported(),
        "capabilities": CAPABILITIES,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// `GET /.well-known/openid-configuration`.
pub fn openid_configuration(s: &AuthSettings) -> Value {
    json!({
        "issuer": s.issuer,
        "jwks_uri": s.jwks_url,
        "authorization_endpoint": s.authorize_url,
        "token_endpoint": s.token_url,
        "introspection_endpoint": s.introspect_url,
        "revocation_endpoint": s.revoke_url,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": scopes_supported(),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "authorization_response_iss_parameter_supported": true,
    })
}

/// The CapabilityStatement's `rest[0].security` for this server.
pub fn capability_security(s: &AuthSettings) -> Value {
    json!({
        "cors": true,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
                "display": "SMART-on-FHIR",
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
        }],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "token", "valueUri": s.token_url},
                {"url": "authorize", "valueUri": s.authorize_url},
                {"url": "introspect", "valueUri": s.introspect_url},
                {"url": "revoke", "valueUri": s.revoke_url},
            ],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigLayer;

    #[test]
    fn discovery_documents_agree_and_are_absolute() {
        let config = ConfigLayer::default()
            .set("base_url", "https://coplan.example/fhir")
            .resolve()
            .expect("config");
        let s = AuthSettings::from_config(&config);
        let smart = smart_configuration(&s);
        let oidc = openid_configuration(&s);
        assert_eq!(smart["issuer"], "https://coplan.example/fhir");
        assert_eq!(smart["token_endpoint"], "https://coplan.example/auth/token");
        for key in [
            "issuer",
            "jwks_uri",
            "authorization_endpoint",
            "token_endpoint",
        ] {
            assert_eq!(smart[key], oidc[key], "{key}");
        }
        let security = capability_security(&s);
        assert_eq!(
            security["extension"][0]["extension"][0]["valueUri"],
            smart["token_endpoint"]
        );
    }
}
