//! Access policy for the FHIR API (SMART App Launch 2.2 scopes-and-launch-context, R4 Patient
//! CompartmentDefinition): what a verified grant may do, enforced by `rest` on every
//! interaction. Deny by default.

pub mod grant;

pub use grant::{BearerVerifier, Grant, InvalidToken};
