//! The scope grammar the authorization server needs to decide what to grant (SMART App Launch
//! 2.2 "Scopes and Launch Context"): which registered scopes cover a requested one (v1
//! `.read/.write/.*` and v2 `.cruds`, with granular `?param=value` restrictions), which scopes
//! the user must keep (launch context). Their plain-language texts are `wording.rs`.
//! Enforcement of granted scopes on FHIR interactions lives in `policy`.

/// The scope an EHR's system client needs to register EHR launch contexts (`POST /auth/launch`).
pub const EHR_LAUNCH_SCOPE: &str = "ehr-launch";

/// A parsed resource scope: `context/Type.perms[?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope<'a> {
    /// `patient`, `user` or `system`.
    pub context: &'a str,
    /// A resource type or `*`.
    pub resource_type: &'a str,
    /// The v2 permissions among `c r u d s`, in that order.
    pub perms: String,
    /// The granular restriction after `?`, if any.
    pub query: Option<&'a str>,
}

/// Parse a resource scope; `None` for anything else (`openid`, `launch`, …).
pub fn parse_resource(scope: &str) -> Option<ResourceScope<'_>> {
    let (context, rest) = scope.split_once('/')?;
    if !matches!(context, "patient" | "user" | "system") {
        return None;
    }
    let (body, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (resource_type, perms) = body.split_once('.')?;
    if resource_type.is_empty()
        || !(resource_type == "*" || resource_type.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return None;
    }
    let perms = match perms {
        "read" => "rs".to_string(),
        "write" => "cud".to_string(),
        "*" => "cruds".to_string(),
        v2 => {
            // v2: a non-empty subsequence of "cruds", in order.
            let mut rest = "cruds";
            for ch in v2.chars() {
                let at = rest.find(ch)?;
                rest = &rest[at + 1..];
            }
            if v2.is_empty() {
                return None;
            }
            v2.to_string()
        }
    };
    Some(ResourceScope {
        context,
        resource_type,
        perms,
        query,
    })
}

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
        (None, None) => allowed == requested && parse_resource(requested).is_none(),
        _ => false,
    }
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
    fn v1_and_v2_scopes_parse() {
        let s = parse_resource("patient/Observation.rs?category=survey").expect("parses");
        assert_eq!(s.context, "patient");
        assert_eq!(s.resource_type, "Observation");
        assert_eq!(s.perms, "rs");
        assert_eq!(s.query, Some("category=survey"));
        assert_eq!(
            parse_resource("user/*.read").map(|s| s.perms),
            Some("rs".into())
        );
        assert_eq!(
            parse_resource("system/Patient.*").map(|s| s.perms),
            Some("cruds".into())
        );
        assert!(parse_resource("patient/Observation.rc").is_none());
        assert!(parse_resource("patient/Observation.").is_none());
        assert!(parse_resource("launch/patient").is_none());
        assert!(parse_resource("openid").is_none());
    }

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
        assert!(!covers("openid", "fhirUser"));
        let allowed = vec!["openid".to_string(), "patient/*.rs".to_string()];
        assert_eq!(
            allowed_subset("openid fhirUser patient/Goal.rs openid", &allowed),
            vec!["openid", "patient/Goal.rs"]
        );
    }
}
