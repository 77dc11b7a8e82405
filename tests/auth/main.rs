//! The SMART authorization server, in one test binary (each test binary links the whole
//! server). Run one module with `cargo test --test auth tokens::`.
//!
//! - `browser`: the sign-in, picker and consent pages and the SMART JS client in Chromium
//! - `cli`: `coplan client add`, `user add`, `keys rotate`, `demo` (runs the `coplan` binary)
//! - `discovery`: smart-configuration, OpenID configuration and JWKS agree
//! - `external`: tokens of trusted external issuers
//! - `key_rotation`: key rotation across real `coplan serve` processes
//! - `launch`: standalone and EHR launch end to end with the `oauth2` crate
//! - `refresh_reach`: a refresh is refused once the user no longer reaches the patient
//! - `refusals`: what the authorization and token endpoints refuse
//! - `store`: the authorization storage contract on every backend
//! - `throttle`: sign-in limits per account and unverified tokens by address, from many addresses
//! - `tokens`: refresh, backend services, introspection, revocation, the apps page
//! - `verifier`: forged, stale and revoked bearer tokens are refused
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod cli;
mod discovery;
mod external;
mod key_rotation;
mod launch;
mod refresh_reach;
mod refusals;
mod store;
mod throttle;
mod tokens;
mod verifier;
