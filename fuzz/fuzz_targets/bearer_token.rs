//! libFuzzer entry of the `bearer_token` target: see `src/targets/bearer_token.rs` for what it exercises and
//! which invariants it checks. One harness (runtime, database) per process.
#![no_main]

use coplan_fuzz::targets::bearer_token::Harness;
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        let harness = Harness::new();
        coplan_fuzz::remove_at_exit(harness.directory());
        harness
    });
    coplan_fuzz::run(|| harness.check(data));
});
