//! Target `smart_scopes`: SMART App Launch 2.2 scope strings (scopes-and-launch-context.html) —
//! the grammar in `policy::scopes` (v1, v2, granular `?param=value`), what the authorization
//! server grants of a request (`auth::scopes::allowed_subset`) and what the policy then allows
//! (`Access::decide`).
//!
//! Input: the scopes a client is registered for, a newline, the scopes it requests.
//!
//! Invariants beyond "no panic":
//! - every parsed resource scope includes itself, and `includes` is transitive;
//! - `includes` never lets a narrower scope allow a permission or a type the wider one does not;
//! - nothing granted escapes the registration: every granted scope is one the registration
//!   covers, and for every type and permission the granted scopes allow something only if some
//!   registered scope allows it too.

use coplan::auth::scopes::allowed_subset;
use coplan::policy::scopes::ResourceScope;
use coplan::policy::{
    parse_resource_scope, Access, Decision, Grant, Permission, Reach, ScopeSet, ScopedAccess,
};
use std::sync::Arc;

const PERMISSIONS: [Permission; 5] = [
    Permission::Create,
    Permission::Read,
    Permission::Update,
    Permission::Delete,
    Permission::Search,
];

/// Types the checks ask about, besides those the input names.
const TYPES: &[&str] = &[
    "CarePlan",
    "Goal",
    "Observation",
    "Patient",
    "Practitioner",
    "Task",
];

/// Compare at most this many scopes pairwise (and in triples).
const MAX_COMPARED: usize = 8;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, requested) = text.split_once('\n').unwrap_or((text, text));
    let registered_list: Vec<String> = registered
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let registered_set = ScopeSet::parse(registered);
    let requested_set = ScopeSet::parse(requested);
    for set in [&registered_set, &requested_set] {
        check_includes(&set.resources);
    }

    let granted = allowed_subset(requested, &registered_list);
    for scope in &granted {
        let covered = match parse_resource_scope(scope) {
            Some(g) => registered_set.resources.iter().any(|r| r.includes(&g)),
            None => registered_list.contains(scope),
        };
        assert!(
            covered,
            "granted {scope:?}, which {registered:?} does not cover"
        );
    }
    let granted_set = ScopeSet::parse(&granted.join(" "));
    let mut types: Vec<&str> = TYPES.to_vec();
    types.extend(
        granted_set
            .resources
            .iter()
            .filter_map(|s| s.resource_type.as_deref()),
    );
    let granted_access = access(granted_set.clone());
    for resource_type in types {
        for permission in PERMISSIONS {
            for in_compartment in [true, false] {
                let decision = granted_access.decide(resource_type, permission, in_compartment);
                if matches!(decision, Decision::Denied(_)) {
                    continue;
                }
                let registered_allows = registered_set
                    .granting(resource_type, permission)
                    .next()
                    .is_some();
                assert!(
                    registered_allows,
                    "granted {granted:?} allows {permission:?} on {resource_type} \
                     ({decision:?}); the registration {registered:?} does not"
                );
            }
        }
    }
}

fn check_includes(scopes: &[ResourceScope]) {
    let scopes = &scopes[..scopes.len().min(MAX_COMPARED)];
    for a in scopes {
        assert!(a.includes(a), "{a:?} does not include itself");
        for b in scopes {
            if !a.includes(b) {
                continue;
            }
            for permission in PERMISSIONS {
                assert!(
                    !b.allows(permission) || a.allows(permission),
                    "{a:?} includes {b:?} but not its {permission:?}"
                );
            }
            if let Some(t) = &b.resource_type {
                assert!(a.covers(t), "{a:?} includes {b:?} but not its type");
            } else {
                assert!(
                    a.resource_type.is_none(),
                    "{a:?} includes {b:?}, which is `*`"
                );
            }
            for c in scopes {
                if b.includes(c) {
                    assert!(
                        a.includes(c),
                        "includes is not transitive: {a:?} {b:?} {c:?}"
                    );
                }
            }
        }
    }
}

/// A launch-patient token with these scopes, whose user sees one patient.
fn access(scopes: ScopeSet) -> Access {
    Access::Scoped(Arc::new(ScopedAccess {
        grant: Grant {
            client_id: "fuzz".into(),
            subject: "fuzz".into(),
            scope: String::new(),
            patient: Some("p1".into()),
            fhir_user: Some("Practitioner/u1".into()),
            expires_at: 0,
        },
        scopes,
        user_reach: Reach::Patients(vec!["p1".into()]),
    }))
}
