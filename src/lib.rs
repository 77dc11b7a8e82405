//! Coplan: a SMART-on-FHIR R4 server for one jointly owned, personalised care plan per patient.
//!
//! The crate is a library (so tests drive the real router) plus a small binary (`main.rs`, its
//! subcommands in `cli/`). Layers, outermost first: `http` (axum only) → `rest` (FHIR interactions, no HTTP types) →
//! `validate` (checks on write) and `store` (SQLite / PostgreSQL).

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod http;
pub mod policy;
pub mod rest;
pub mod seed;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-kit"))]
pub mod testing;
pub mod throttle;
pub mod validate;
