//! What the authorization server decides about scope strings (SMART App Launch 2.2 "Scopes and
//! Launch Context"): which registered scopes cover a requested one, which the user must keep
//! (launch context). The grammar itself — v1 `.read/.write/.*`, v2 `.cruds`, granular
//! `?param=value` — is one parser and one type, [`crate::policy::scopes`], shared with the
//! enforcement of granted scopes, so what is granted here is exactly what is enforced. Their
//! plain-language texts are `wording.rs`.

/// The scope an EHR's system client needs to register EHR launch contexts (`POST /auth/launch`).
pub const EHR_LAUNCH_SCOPE: &str = "ehr-launch";

/// Does the registered or granted scope `allowed` cover the requested scope `requested`? One
/// grammar decides: the policy's ([`crate::policy::parse_resource_scope`]), so what is granted
/// here is exactly what is enforced.
pub fn covers(allowed: &str, requested: &str) -> bool {
    use crate::policy::parse_resource_scope;
    match (
        parse_resource_scope(allowed),
        parse_resource_scope(requested),
    ) {
        (Some(a), Some(r)) => a.includes(&r),
        (None, None) => allowed == requested && !looks_like_resource_scope(requested),
        _ => false,
    }
}

/// `context/…` scopes that do not parse are malformed resource scopes: they grant nothing, not
/// even themselves.
fn looks_like_resource_scope(scope: &str) -> bool {
    scope
        .split_once('/')
        .is_some_and(|(context, _)| matches!(context, "patient" | "user" | "system"))
}

/// Does the space-separated `granted` scope string imply `requested` (one scope)?
pub fn implied_by(granted: &str, requested: &str) -> bool {
    granted
        .split_ascii_whitespace()
        .any(|g| covers(g, requested))
}

/// The requested scopes the client is registered for, in request order, without duplicates.
pub fn allowed_subset(requested: &str, allowed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in requested.split_ascii_whitespace() {
        if allowed.iter().any(|a| covers(a, scope)) && !out.iter().any(|s| s == scope) {
            out.push(scope.to_string());
        }
    }
    out
}

/// Scopes the user cannot untick on the consent page: they carry the launch itself.
pub fn is_required(scope: &str) -> bool {
    matches!(
        scope,
        "launch" | "launch/patient" | "launch/encounter" | "openid"
    )
}

/// Does `scopes` (space separated) contain `scope`?
pub fn has(scopes: &str, scope: &str) -> bool {
    scopes.split_ascii_whitespace().any(|s| s == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_scopes_cover_narrower_requests_only() {
        assert!(covers("patient/*.cruds", "patient/Observation.rs"));
        assert!(covers("patient/*.read", "patient/Goal.rs"));
        assert!(covers(
            "patient/*.rs",
            "patient/Observation.rs?category=survey"
        ));
        assert!(!covers("patient/*.rs", "patient/Observation.c"));
        assert!(!covers("patient/*.rs", "user/Observation.rs"));
        assert!(!covers("patient/Goal.rs", "patient/*.rs"));
        assert!(!covers(
            "patient/Observation.rs?category=survey",
            "patient/Observation.rs"
        ));
        assert!(covers("openid", "openid"));
        // One grammar: a v1 scope with a granular query is malformed, and grants nothing.
        assert!(!covers(
            "patient/Observation.read?category=survey",
            "patient/Observation.read?category=survey"
        ));
        assert!(!covers("patient/Observation.rc", "patient/Observation.rc"));
        assert!(!covers("openid", "fhirUser"));
        let allowed = vec!["openid".to_string(), "patient/*.rs".to_string()];
        assert_eq!(
            allowed_subset("openid fhirUser patient/Goal.rs openid", &allowed),
            vec!["openid", "patient/Goal.rs"]
        );
    }
}
