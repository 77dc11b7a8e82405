//! libFuzzer entry of the `search_query` target: see `src/targets/search_query.rs` for what it exercises and
//! which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coplan_fuzz::run(|| coplan_fuzz::targets::search_query::check(data));
});
