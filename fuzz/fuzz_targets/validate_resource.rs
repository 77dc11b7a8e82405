//! libFuzzer entry of the `validate_resource` target: see `src/targets/validate_resource.rs` for what it exercises and
//! which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coplan_fuzz::run(|| coplan_fuzz::targets::validate_resource::check(data));
});
