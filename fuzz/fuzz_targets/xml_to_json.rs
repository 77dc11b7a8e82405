//! libFuzzer entry of the `xml_to_json` target: see `src/targets/xml_to_json.rs` for what it exercises and
//! which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    coplan_fuzz::run(|| coplan_fuzz::targets::xml_to_json::check(data));
});
