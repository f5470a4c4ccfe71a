//! Behaviour across crates, with the real CPython-on-WASI runtime in every test.
//!
//! One binary, grouped by theme (as wasmtime's `tests/all`). The runtime comes from the cache
//! (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod escape;
mod exec;
mod judge;
mod limits;
mod reuse;
mod session;
mod via_daemon;

use std::sync::OnceLock;

use sandbox::{Sandbox, SandboxOptions};

/// One sandbox per test binary, shared by every test (it is `Send + Sync`).
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| match Sandbox::new(SandboxOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("the runtime must be prepared for these tests: {e}"),
    })
}

/// Runs `code` with default limits.
pub fn run(code: &str) -> sandbox::Outcome {
    sandbox()
        .exec(code, &sandbox::Limits::default())
        .expect("host failure")
}
