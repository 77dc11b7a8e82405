//! What one request may do (SMART App Launch 2.2 scopes-and-launch-context.html, R4 Patient
//! CompartmentDefinition): the verified grant's scopes, and whose records each scope context
//! reaches — `patient/` the launch patient, `user/` the patients the signed-in user may see,
//! `system/` everyone. [`Access::decide`] turns that into a [`Decision`] per resource type and
//! permission; `rest` applies it to every interaction.

use super::grant::Grant;
use super::scopes::{Permission, ScopeContext, ScopeSet};
use std::sync::Arc;

/// Whose records a scope context reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every patient's.
    Everyone,
    /// The compartments of these patients (ids).
    Patients(Vec<String>),
    /// Nobody's (e.g. `user/` scopes without a user).
    Nobody,
}

/// The access of one authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedAccess {
    pub grant: Grant,
    pub scopes: ScopeSet,
    /// What `user/` scopes reach (resolved from `fhirUser` by the caller).
    pub user_reach: Reach,
}

/// The access of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No authorization applies (`--insecure-no-auth`, or the server's own tooling).
    Unrestricted,
    Scoped(Arc<ScopedAccess>),
}

/// A limit on what a permitted interaction may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `Some`: only resources in these patients' compartments (an empty list: none at all).
    pub patients: Option<Vec<String>>,
    /// `Some`: only resources matching these search parameters (granular scopes).
    pub query: Option<Vec<(String, String)>>,
}

/// Whether, and how far, an interaction is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Unrestricted,
    Limited(Rule),
    /// No scope allows it (a 403): the reason, naming the scope that would.
    Denied(String),
}

impl Access {
    /// Whether `permission` on `resource_type` is allowed, and within which limits.
    /// `in_patient_compartment` says whether the type has a place in the Patient compartment:
    /// types that do not (Practitioner, Questionnaire, …) are not confined to patients.
    pub fn decide(
        &self,
        resource_type: &str,
        permission: Permission,
        in_patient_compartment: bool,
    ) -> Decision {
        let scoped = match self {
            Access::Unrestricted => return Decision::Unrestricted,
            Access::Scoped(scoped) => scoped,
        };
        let mut candidates: Vec<Candidate> = Vec::new();
        for scope in scoped.scopes.granting(resource_type, permission) {
            let reach = match scope.context {
                ScopeContext::System => Reach::Everyone,
                ScopeContext::User => scoped.user_reach.clone(),
                ScopeContext::Patient => match &scoped.grant.patient {
                    Some(p) => Reach::Patients(vec![p.clone()]),
                    None => Reach::Nobody,
                },
            };
            let patients = match reach {
                Reach::Nobody => continue,
                Reach::Everyone => None,
                Reach::Patients(list) if in_patient_compartment => Some(list),
                // A caller confined to patients may only read the shared definitions outside
                // the compartment (who the practitioners are, the questionnaires, …) — never
                // write them, and never other patient-related types the R4 compartment omits
                // (Task, Device, Binary, …).
                Reach::Patients(_) => {
                    let reads = matches!(permission, Permission::Read | Permission::Search);
                    if reads && is_shared_definition(resource_type) {
                        None
                    } else {
                        continue;
                    }
                }
            };
            candidates.push((patients, scope.query.clone()));
        }
        if candidates.is_empty() {
            return Decision::Denied(format!(
                "the access token has no scope allowing {} of {resource_type} (e.g. patient/{resource_type}.{})",
                describe(permission),
                permission.letter()
            ));
        }
        combine(candidates)
    }

    /// Whether this is one of the user-facing apps that co-edit the shared plan: a token with
    /// any `patient/` or `user/` scope (not a backend service, not the server's tooling).
    pub fn co_edits(&self) -> bool {
        match self {
            Access::Unrestricted => false,
            Access::Scoped(scoped) => scoped
                .scopes
                .resources
                .iter()
                .any(|s| s.context != ScopeContext::System),
        }
    }

    /// The grant behind this access, if any.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Access::Unrestricted => None,
            Access::Scoped(s) => Some(&s.grant),
        }
    }
}

/// Types outside the Patient compartment that hold no one patient's data: what a confined
/// caller may read alongside its compartment.
const SHARED_DEFINITIONS: &[&str] = &[
    "ActivityDefinition",
    "CapabilityStatement",
    "CodeSystem",
    "ConceptMap",
    "DeviceDefinition",
    "Endpoint",
    "HealthcareService",
    "Library",
    "Location",
    "Measure",
    "Medication",
    "MedicationKnowledge",
    "NamingSystem",
    "ObservationDefinition",
    "OperationDefinition",
    "Organization",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Questionnaire",
    "SearchParameter",
    "SpecimenDefinition",
    "StructureDefinition",
    "Substance",
    "ValueSet",
];

fn is_shared_definition(resource_type: &str) -> bool {
    SHARED_DEFINITIONS.binary_search(&resource_type).is_ok()
}

fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::Create => "create",
        Permission::Read => "read",
        Permission::Update => "update",
        Permission::Delete => "delete",
        Permission::Search => "search",
    }
}

/// What one granting scope allows: the patients it is confined to (`None`: any) and its
/// granular filter (empty: none).
type Candidate = (Option<Vec<String>>, Vec<(String, String)>);

/// The union of what several scopes allow, when it can be expressed as one rule.
fn combine(candidates: Vec<Candidate>) -> Decision {
    if candidates.iter().any(|(p, q)| p.is_none() && q.is_empty()) {
        return Decision::Unrestricted;
    }
    let union_patients = |cands: &[Candidate]| {
        let mut all: Vec<String> = Vec::new();
        for (p, _) in cands {
            match p {
                None => return None,
                Some(list) => {
                    for id in list {
                        if !all.contains(id) {
                            all.push(id.clone());
                        }
                    }
                }
            }
        }
        Some(all)
    };
    let first_query = &candidates[0].1;
    if candidates.iter().all(|(_, q)| q == first_query) {
        let query = (!first_query.is_empty()).then(|| first_query.clone());
        return limited(union_patients(&candidates), query);
    }
    let first_patients = &candidates[0].0;
    if candidates.iter().all(|(p, _)| p == first_patients) {
        if candidates.iter().any(|(_, q)| q.is_empty()) {
            return limited(first_patients.clone(), None);
        }
        // Several single-parameter filters on the same parameter: one OR (comma) list.
        let name = &first_query[0].0;
        if candidates
            .iter()
            .all(|(_, q)| q.len() == 1 && &q[0].0 == name)
        {
            let values: Vec<&str> = candidates.iter().map(|(_, q)| q[0].1.as_str()).collect();
            return limited(
                first_patients.clone(),
                Some(vec![(name.clone(), values.join(","))]),
            );
        }
    }
    Decision::Denied(
        "the access token's granular scopes for this type combine filters this server cannot \
         apply together; request one scope per resource type"
            .to_string(),
    )
}

fn limited(patients: Option<Vec<String>>, query: Option<Vec<(String, String)>>) -> Decision {
    if patients.is_none() && query.is_none() {
        Decision::Unrestricted
    } else {
        Decision::Limited(Rule { patients, query })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(scope: &str, patient: Option<&str>, user_reach: Reach) -> Access {
        Access::Scoped(Arc::new(ScopedAccess {
            grant: Grant {
                client_id: "app".into(),
                subject: "u".into(),
                scope: scope.into(),
                patient: patient.map(str::to_string),
                fhir_user: None,
                expires_at: 0,
            },
            scopes: ScopeSet::parse(scope),
            user_reach,
        }))
    }

    fn confined_to(ids: &[&str]) -> Decision {
        Decision::Limited(Rule {
            patients: Some(ids.iter().map(|s| s.to_string()).collect()),
            query: None,
        })
    }

    #[test]
    fn patient_scopes_confine_to_the_launch_patient() {
        let a = access("patient/*.rs", Some("p1"), Reach::Nobody);
        assert_eq!(
            a.decide("CarePlan", Permission::Read, true),
            confined_to(&["p1"])
        );
        // Shared definitions outside the Patient compartment are readable, not writable; other
        // types outside it are not reachable at all.
        assert_eq!(
            a.decide("Practitioner", Permission::Read, false),
            Decision::Unrestricted
        );
        let writer = access("patient/*.cruds", Some("p1"), Reach::Nobody);
        for p in [Permission::Create, Permission::Update, Permission::Delete] {
            assert!(matches!(
                writer.decide("Practitioner", p, false),
                Decision::Denied(_)
            ));
        }
        assert!(matches!(
            writer.decide("Task", Permission::Read, false),
            Decision::Denied(_)
        ));
        assert!(SHARED_DEFINITIONS.windows(2).all(|w| w[0] < w[1]), "sorted");
        // System scopes reach them all.
        let system = access("system/*.cruds", None, Reach::Nobody);
        assert_eq!(
            system.decide("Task", Permission::Update, false),
            Decision::Unrestricted
        );
        assert!(matches!(
            a.decide("CarePlan", Permission::Update, true),
            Decision::Denied(_)
        ));
        // Without a launch patient, patient/ scopes reach nothing.
        let no_patient = access("patient/*.rs", None, Reach::Everyone);
        assert!(matches!(
            no_patient.decide("CarePlan", Permission::Read, true),
            Decision::Denied(_)
        ));
    }

    #[test]
    fn user_and_system_scopes() {
        let practitioner = access(
            "user/*.cruds",
            None,
            Reach::Patients(vec!["p1".into(), "p2".into()]),
        );
        assert_eq!(
            practitioner.decide("Goal", Permission::Create, true),
            confined_to(&["p1", "p2"])
        );
        let system = access("system/*.rs", None, Reach::Nobody);
        assert_eq!(
            system.decide("Goal", Permission::Search, true),
            Decision::Unrestricted
        );
        assert!(matches!(
            system.decide("Goal", Permission::Delete, true),
            Decision::Denied(_)
        ));
        assert_eq!(
            Access::Unrestricted.decide("Goal", Permission::Delete, true),
            Decision::Unrestricted
        );
    }

    #[test]
    fn scopes_combine_as_a_union() {
        // patient/ and user/ scopes on the same type: both compartments.
        let a = access(
            "patient/Goal.rs user/Goal.rs",
            Some("p1"),
            Reach::Patients(vec!["p2".into()]),
        );
        assert_eq!(
            a.decide("Goal", Permission::Read, true),
            confined_to(&["p1", "p2"])
        );
        // Granular scopes on one parameter become one OR list.
        let g = access(
            "patient/Observation.rs?category=survey patient/Observation.rs?category=vital-signs",
            Some("p1"),
            Reach::Nobody,
        );
        assert_eq!(
            g.decide("Observation", Permission::Search, true),
            Decision::Limited(Rule {
                patients: Some(vec!["p1".into()]),
                query: Some(vec![("category".into(), "survey,vital-signs".into())]),
            })
        );
        // A scope without a filter widens a granular one.
        let wide = access(
            "patient/Observation.rs?category=survey patient/Observation.r",
            Some("p1"),
            Reach::Nobody,
        );
        assert_eq!(
            wide.decide("Observation", Permission::Read, true),
            confined_to(&["p1"])
        );
        assert_eq!(
            wide.decide("Observation", Permission::Search, true),
            Decision::Limited(Rule {
                patients: Some(vec!["p1".into()]),
                query: Some(vec![("category".into(), "survey".into())]),
            })
        );
        // Filters on different parameters cannot be merged into one rule: refused, not widened.
        let mixed = access(
            "patient/Observation.rs?category=survey patient/Observation.rs?code=1234-5",
            Some("p1"),
            Reach::Nobody,
        );
        assert!(matches!(
            mixed.decide("Observation", Permission::Read, true),
            Decision::Denied(_)
        ));
    }
}
