//! Every input the fuzzers found a bug with (`fuzz/regressions/<target>/`, docs/fuzzing.md),
//! replayed through the same target bodies the libFuzzer binaries run (`fuzz/src/targets/`,
//! compiled here on stable): a fixed bug that comes back fails `cargo test`.

#[path = "../../fuzz/src/targets/mod.rs"]
#[allow(dead_code)] // a few items serve only the libFuzzer binaries
mod targets;

use std::path::{Path, PathBuf};

/// The kept inputs of `target`, sorted; every directory under `fuzz/regressions/` must be a
/// target's (a misspelt one would never be replayed).
fn regressions(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for entry in std::fs::read_dir(&root).expect("fuzz/regressions") {
        let entry = entry.expect("a directory entry");
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        assert!(
            targets::TARGETS.contains(&name.as_ref()),
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir(root.join(target)) {
        Ok(dir) => dir.map(|e| e.expect("a directory entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Replay `target`'s regressions through `check`, naming the file that fails.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let files = regressions(target);
    for file in &files {
        let data = std::fs::read(file).expect("a regression input");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(outcome.is_ok(), "{} fails again", file.display());
    }
    files.len()
}

#[test]
fn stateless_targets_replay_their_regressions() {
    let replayed = [
        replay("patch", targets::patch::check),
        replay("search_query", targets::search_query::check),
        replay("smart_scopes", targets::smart_scopes::check),
        replay("validate_resource", targets::validate_resource::check),
        replay("xml_to_json", targets::xml_to_json::check),
    ];
    eprintln!("replayed {replayed:?} regression inputs");
}

#[test]
fn bearer_tokens_replay_their_regressions() {
    let harness = targets::bearer_token::Harness::new();
    replay("bearer_token", |data| harness.check(data));
}

#[test]
fn bundles_replay_their_regressions() {
    let harness = targets::bundle::Harness::new();
    replay("bundle", |data| harness.check(data));
}
