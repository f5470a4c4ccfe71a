//! The sandbox's own behaviour, with the real CPython-on-WASI runtime in every test: executions,
//! limits, escapes, instance reuse and sessions.
//!
//! One binary, grouped by theme (as wasmtime's `tests/all`). The runtime comes from the cache
//! (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod escape;
mod exec;
mod limits;
mod reuse;
mod session;

use std::sync::OnceLock;

use start_sandbox::{Sandbox, SandboxOptions};

/// One sandbox per test binary, shared by every test (it is `Send + Sync`).
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| match Sandbox::new(SandboxOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("the runtime must be prepared for these tests: {e}"),
    })
}

/// Runs `code` with default limits.
pub fn run(code: &str) -> start_sandbox::Outcome {
    sandbox()
        .exec(code, &start_sandbox::Limits::default())
        .expect("host failure")
}
