//! Access policy for the FHIR API (SMART App Launch 2.2 scopes-and-launch-context, R4 Patient
//! CompartmentDefinition): scope syntax, what a verified grant may do, and the decision `rest`
//! enforces on every interaction. Deny by default.

pub mod access;
pub mod coproduction;
pub mod grant;
pub mod scopes;

pub use access::{Access, Decision, Reach, Rule, ScopedAccess};
pub use grant::{BearerVerifier, Grant, InvalidToken};
pub use scopes::{parse_resource_scope, Permission, ScopeContext, ScopeSet};
