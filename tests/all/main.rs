//! The `start` package's behaviour end to end, with the real CPython-on-WASI runtime in every
//! test: the CLI, judging, Hint-infer (the driver with a real sandbox session, the resumable
//! CLI killed and rerun, the `openai` backend against a local streaming server, the `llama`
//! backend on a real small GGUF model), Hint-RFT, and the CLI through a real `startd`.
//!
//! One binary, grouped by theme (as wasmtime's `tests/all`); the sandbox's own tests live in
//! `crates/start-sandbox/tests`. The runtime comes from the cache
//! (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod huge_lines;
mod infer;
mod judge;
mod rft;
mod via_daemon;

use std::sync::OnceLock;

use start_daemon::testutil::TestCommand;
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

/// The `start` binary, as a command whose assertions report the whole run on failure.
pub fn start() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_start"))
}
