//! SMART App Launch 2.2 scope syntax (scopes-and-launch-context.html): v2 resource scopes
//! `(patient|user|system)/(Type|*).[c][r][u][d][s]` with optional granular query parameters
//! (`patient/Observation.rs?category=http://…|survey`), v1 `.read` / `.write` / `.*` mapped to
//! their v2 equivalents, and the launch, identity and refresh scopes. Scopes this server does
//! not understand grant nothing.

/// A permission a resource scope may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    /// The v2 letter (`c`, `r`, `u`, `d`, `s`).
    pub const fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }
}

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeContext {
    /// `patient/`: the launch patient's compartment.
    Patient,
    /// `user/`: what the signed-in user may see.
    User,
    /// `system/`: a backend service, no user.
    System,
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    pub context: ScopeContext,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    permissions: u8,
    /// Granular search parameters (v2 only), decoded, in order.
    pub query: Vec<(String, String)>,
}

impl ResourceScope {
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions & permission.bit() != 0
    }

    pub fn covers(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    /// Whether everything `narrower` allows, this scope allows too (SMART 2.2: a client may ask
    /// for less than it was granted): the same context, this type or `*`, no permission beyond
    /// these, and this scope's granular filter, if it has one, exactly.
    pub fn includes(&self, narrower: &ResourceScope) -> bool {
        self.context == narrower.context
            && match (&self.resource_type, &narrower.resource_type) {
                (None, _) => true,
                (Some(mine), Some(theirs)) => mine == theirs,
                (Some(_), None) => false,
            }
            && narrower.permissions & !self.permissions == 0
            && (self.query.is_empty() || self.query == narrower.query)
    }
}

/// A parsed scope string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    pub resources: Vec<ResourceScope>,
    pub openid: bool,
    pub fhir_user: bool,
    pub launch: bool,
    pub launch_patient: bool,
    pub launch_encounter: bool,
    pub offline_access: bool,
    pub online_access: bool,
}

impl ScopeSet {
    /// Parse a space-separated scope string; unknown or malformed scopes are skipped (they
    /// grant nothing).
    pub fn parse(scope: &str) -> ScopeSet {
        let mut set = ScopeSet::default();
        for token in scope.split_ascii_whitespace() {
            match token {
                "openid" => set.openid = true,
                "fhirUser" => set.fhir_user = true,
                "launch" => set.launch = true,
                "launch/patient" => set.launch_patient = true,
                "launch/encounter" => set.launch_encounter = true,
                "offline_access" => set.offline_access = true,
                "online_access" => set.online_access = true,
                other => {
                    if let Some(resource) = parse_resource_scope(other) {
                        set.resources.push(resource);
                    }
                }
            }
        }
        set
    }

    /// The resource scopes granting `permission` on `resource_type`.
    pub fn granting<'a>(
        &'a self,
        resource_type: &'a str,
        permission: Permission,
    ) -> impl Iterator<Item = &'a ResourceScope> + 'a {
        self.resources
            .iter()
            .filter(move |s| s.covers(resource_type) && s.allows(permission))
    }
}

/// `patient/Observation.rs?category=…`, `user/*.read`, … → a resource scope.
pub fn parse_resource_scope(text: &str) -> Option<ResourceScope> {
    let (context, rest) = text.split_once('/')?;
    let context = match context {
        "patient" => ScopeContext::Patient,
        "user" => ScopeContext::User,
        "system" => ScopeContext::System,
        _ => return None,
    };
    let (head, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (rest, None),
    };
    let (resource_type, permissions) = head.rsplit_once('.')?;
    let resource_type = match resource_type {
        "*" => None,
        t if is_type_name(t) => Some(t.to_string()),
        _ => return None,
    };
    let (bits, v1) = match permissions {
        "read" => (Permission::Read.bit() | Permission::Search.bit(), true),
        "write" => (
            Permission::Create.bit() | Permission::Update.bit() | Permission::Delete.bit(),
            true,
        ),
        "*" => (31, true),
        letters => (v2_permissions(letters)?, false),
    };
    let query = match query {
        None => Vec::new(),
        // Granular scopes are a v2 feature; `.read?…` is malformed.
        Some(_) if v1 => return None,
        Some("") => return None,
        Some(q) => form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    };
    Some(ResourceScope {
        context,
        resource_type,
        permissions: bits,
        query,
    })
}

/// `cruds` letters, each at most once and in that order.
fn v2_permissions(letters: &str) -> Option<u8> {
    if letters.is_empty() {
        return None;
    }
    let order = [
        Permission::Create,
        Permission::Read,
        Permission::Update,
        Permission::Delete,
        Permission::Search,
    ];
    let mut bits = 0;
    let mut next = 0;
    for ch in letters.chars() {
        let position = order[next..].iter().position(|p| p.letter() == ch)?;
        bits |= order[next + position].bit();
        next += position + 1;
    }
    Some(bits)
}

fn is_type_name(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_includes_the_narrower_ones_it_implies() {
        let scope = |t: &str| parse_resource_scope(t).expect(t);
        let table = [
            ("patient/*.rs", "patient/CarePlan.rs", true),
            ("patient/*.rs", "patient/CarePlan.r", true),
            ("patient/*.read", "patient/CarePlan.s", true),
            ("patient/*.cruds", "patient/Goal.write", true),
            (
                "patient/*.rs",
                "patient/Observation.rs?category=survey",
                true,
            ),
            (
                "patient/Observation.rs?category=survey",
                "patient/Observation.rs?category=survey",
                true,
            ),
            (
                "patient/Observation.rs?category=survey",
                "patient/Observation.rs",
                false,
            ),
            (
                "patient/Observation.rs?category=survey",
                "patient/Observation.rs?category=vital-signs",
                false,
            ),
            ("patient/*.rs", "patient/CarePlan.cu", false),
            ("patient/*.rs", "user/CarePlan.rs", false),
            ("patient/CarePlan.rs", "patient/*.rs", false),
            ("patient/CarePlan.rs", "patient/Goal.rs", false),
        ];
        for (granted, requested, included) in table {
            assert_eq!(
                scope(granted).includes(&scope(requested)),
                included,
                "{granted} ⊇ {requested}"
            );
        }
        assert_eq!(
            parse_resource_scope("patient/Observation.read?category=x"),
            None
        );
    }

    #[test]
    fn v2_scopes_with_permissions_in_order() {
        let s = parse_resource_scope("patient/Observation.rs").expect("parses");
        assert_eq!(s.context, ScopeContext::Patient);
        assert_eq!(s.resource_type.as_deref(), Some("Observation"));
        assert!(s.allows(Permission::Read) && s.allows(Permission::Search));
        assert!(!s.allows(Permission::Create) && !s.allows(Permission::Update));
        let all = parse_resource_scope("user/*.cruds").expect("parses");
        assert!(all.resource_type.is_none() && all.covers("Goal"));
        for p in [
            Permission::Create,
            Permission::Read,
            Permission::Update,
            Permission::Delete,
            Permission::Search,
        ] {
            assert!(all.allows(p));
        }
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
            "clinic/Observation.rs",
            "patient/observation.rs",
            "patient/Obs-ervation.rs",
            "patient/Observation",
            "patient/Observation.read?category=x",
            "patient/Observation.rs?",
        ] {
            assert_eq!(parse_resource_scope(bad), None, "{bad}");
        }
    }

    #[test]
    fn v1_scopes_map_to_v2() {
        let read = parse_resource_scope("patient/*.read").expect("parses");
        assert!(read.allows(Permission::Read) && read.allows(Permission::Search));
        assert!(!read.allows(Permission::Create));
        let write = parse_resource_scope("user/Goal.write").expect("parses");
        assert!(write.allows(Permission::Create) && write.allows(Permission::Update));
        assert!(write.allows(Permission::Delete) && !write.allows(Permission::Read));
        let star = parse_resource_scope("system/CarePlan.*").expect("parses");
        assert!(star.allows(Permission::Search) && star.allows(Permission::Delete));
    }

    #[test]
    fn granular_scopes_keep_their_query() {
        let s = parse_resource_scope(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
        )
        .expect("parses");
        assert_eq!(
            s.query,
            vec![(
                "category".to_string(),
                "http://terminology.hl7.org/CodeSystem/observation-category|survey".to_string()
            )]
        );
    }

    #[test]
    fn scope_strings_and_launch_scopes() {
        let set = ScopeSet::parse(
            "openid fhirUser launch/patient offline_access patient/Goal.cruds nonsense patient/CarePlan.read",
        );
        assert!(set.openid && set.fhir_user && set.launch_patient && set.offline_access);
        assert!(!set.launch && !set.online_access);
        assert_eq!(set.resources.len(), 2);
        assert_eq!(set.granting("Goal", Permission::Update).count(), 1);
        assert_eq!(set.granting("CarePlan", Permission::Update).count(), 0);
        assert_eq!(set.granting("CarePlan", Permission::Search).count(), 1);
        assert_eq!(set.granting("Observation", Permission::Read).count(), 0);
    }
}
