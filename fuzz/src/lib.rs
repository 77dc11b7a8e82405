//! Coplan's fuzz targets (`cargo +nightly fuzz run <target>`; docs/fuzzing.md). The target bodies
//! are in `targets/`, shared with the stable regression test; this crate adds what only the
//! libFuzzer binaries need.

#[path = "targets/mod.rs"]
pub mod targets;

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Run one input through `body`, reporting a panic that escapes it.
///
/// libfuzzer-sys installs a panic hook that aborts on *every* panic, even one the code under test
/// catches. crates/fhir-r4 catches fhirbolt's panics on purpose (the input is then refused with
/// a 400), so this replaces that hook with one that only remembers the message: a panic that
/// escapes `body` is printed and aborts the process (a crash libFuzzer records), a caught one
/// does not.
pub fn run(body: impl FnOnce()) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = format!("{info}");
            LAST_PANIC.with(|last| *last.borrow_mut() = message);
        }));
    });
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        LAST_PANIC.with(|last| eprintln!("\n==== panic: {}\n", last.borrow()));
        std::process::abort();
    }
}

/// Remove `path` when the process exits normally (libFuzzer ends with `exit`, so statics,
/// such as a target's temporary database, are never dropped).
pub fn remove_at_exit(path: &std::path::Path) {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    extern "C" fn remove() {
        if let Some(path) = PATH.get() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    if PATH.set(path.to_path_buf()).is_ok() {
        // SAFETY: `remove` is a plain function that neither unwinds nor calls `exit`.
        unsafe {
            libc::atexit(remove);
        }
    }
}
