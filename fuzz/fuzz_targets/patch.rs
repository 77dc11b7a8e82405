//! libFuzzer entry of the `patch` target: see `src/targets/patch.rs` for what it exercises and
//! which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coplan_fuzz::run(|| coplan_fuzz::targets::patch::check(data));
});
