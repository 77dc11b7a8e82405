//! libFuzzer entry of the `smart_scopes` target: see `src/targets/smart_scopes.rs` for what it exercises and
//! which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coplan_fuzz::run(|| coplan_fuzz::targets::smart_scopes::check(data));
});
