//! The server as a program and beside other programs, in one test binary (each test binary
//! links the whole server). Run one module with `cargo test --test tools seed::`.
//!
//! - `abuse`: hostile input over real TCP is refused (4xx, never 5xx) with bounded memory
//!   (`cargo test --test tools abuse::`)
//! - `cli`: the `coplan` binary: `migrate`, `serve`, configuration, SIGTERM
//! - `crash`: acknowledged writes survive SIGKILL (`server_process`: the server as a child)
//! - `disk_full`: SQLite on a full disk refuses writes whole, keeps reads, recovers
//! - `outage`: a PostgreSQL outage under load is survived without a restart
//! - `real_clients`: fhirpy and the SMART Python client against a real server
//! - `two_nodes`: two servers on one PostgreSQL: never a stale read, never a lost update
//! - `seed`: the synthetic data generator writes valid, searchable data
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod cli;
mod crash;
mod disk_full;
mod outage;
mod real_clients;
mod seed;
mod server_process;
mod two_nodes;
