//! libFuzzer entry of the `bundle` target: see `src/targets/bundle.rs` for what it exercises and
//! which invariants it checks. One harness (runtime, database) per process, made before the
//! first input (so its set-up never counts against an input's time limit).
#![no_main]

use coplan_fuzz::targets::bundle::Harness;
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let harness = Harness::new();
        coplan_fuzz::remove_at_exit(harness.directory());
        harness
    })
}

libfuzzer_sys::fuzz_target!(
    init: {
        harness();
    },
    |data: &[u8]| {
        coplan_fuzz::run(|| harness().check(data));
    }
);
