//! Fixtures for tests of this crate and of crates built on it (feature `test-util`).

use std::sync::OnceLock;

mod venv;
pub use venv::{Venv, venv_in};

use crate::{Limits, Outcome, Sandbox, SandboxOptions};

/// One sandbox per test binary with the default options, shared by every test (a
/// [`Sandbox`] is `Send + Sync`). The runtime comes from the cache (`$START_CACHE_DIR` or
/// `~/.cache/start`), prepared on first use.
///
/// # Panics
/// When the runtime cannot be prepared; the message says why.
pub fn shared_sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| match Sandbox::new(SandboxOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("the runtime must be prepared for these tests: {e}"),
    })
}

/// Runs `code` in [`shared_sandbox`] with default limits.
///
/// # Panics
/// On a host failure (a guest's failure is an [`Outcome`]).
pub fn run(code: &str) -> Outcome {
    match shared_sandbox().exec(code, &Limits::default()) {
        Ok(outcome) => outcome,
        Err(e) => panic!("host failure running {code:?}: {e}"),
    }
}
