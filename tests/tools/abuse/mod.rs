//! Hostile input over real TCP (issue 17 §3): the `coplan` binary on 127.0.0.1 with small
//! limits and timeouts, fed oversized, deep, huge, malformed, slow and flooding requests,
//! searches built to cost (`_count`, `:iterate` cycles, deep chains, pattern characters), XML
//! with entities, and more sign-in or token-less requests than the limits allow. Every answer
//! must be a 4xx with an OperationOutcome (an OAuth error on `/auth`), or the connection closed
//! for abuse of the protocol itself — never a 5xx — and the process's memory must stay bounded
//! (VmHWM and VmRSS from /proc). On SQLite, and on PostgreSQL when configured. Connections
//! themselves — more than the cap from one address, a client that stops reading its answers —
//! get a server of their own.

mod connections;
mod limits;
mod requests;
mod searches;
mod slow;
mod wire;

use coplan::testing::{backends, TestDatabase};
use wire::*;

#[test]
fn hostile_requests_are_refused_and_memory_stays_bounded() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in backends() {
        let db = runtime.block_on(TestDatabase::new(backend));
        let mut server = start(&db);
        let (rss_before, _) = memory(&server);
        requests::bodies(&server);
        requests::urls_and_headers(&server);
        slow::slow_clients(&server);
        searches::costly_searches(&server, backend);
        requests::xml(&server);
        limits::limits_by_address(&server);
        slow::in_progress_per_client(&server);
        assert_alive(&mut server);
        let (rss_after, peak) = memory(&server);
        eprintln!(
            "{backend:?}: VmRSS {rss_before} KiB before, {rss_after} KiB after, VmHWM {peak} KiB"
        );
        assert!(peak < MAX_PEAK_KIB, "{backend:?}: VmHWM {peak} KiB");
        assert!(
            rss_after < rss_before + MAX_GROWTH_KIB,
            "{backend:?}: VmRSS grew from {rss_before} to {rss_after} KiB"
        );
        drop(server);
        runtime.block_on(db.cleanup());
    }
}

#[test]
fn connections_are_capped_per_address_and_stalled_readers_cut_off() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in backends() {
        let db = runtime.block_on(TestDatabase::new(backend));
        let mut server = start_with(&db, &connections::ENV);
        connections::capped_per_address(&server);
        connections::stalled_reader(&server, &runtime);
        assert_alive(&mut server);
        drop(server);
        runtime.block_on(db.cleanup());
    }
}
