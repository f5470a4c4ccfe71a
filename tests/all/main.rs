//! The `start` package's behaviour end to end, with the real CPython-on-WASI runtime in every
//! test: the CLI, judging, the hostile-guest suite (through the library, `start judge` and
//! `startd`), Hint-infer (the driver with a real sandbox session, the resumable CLI killed and
//! rerun, the `openai` backend against a local streaming server, the `llama` backend on a real
//! small GGUF model), sharding and merging, Hint-RFT, the cluster files in `deploy/`, and the
//! CLI through a real `startd`.
//!
//! One binary, grouped by theme (as wasmtime's `tests/all`); the sandbox's own tests live in
//! `crates/start-sandbox/tests`. The runtime comes from the cache
//! (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod deploy;
mod hostile;
mod huge_lines;
mod infer;
mod judge;
mod math_verify;
mod rft;
mod sandbox_url;
mod shards;
mod venv;
mod via_daemon;

use start_daemon::testutil::TestCommand;
pub use start_sandbox::testutil::shared_sandbox as sandbox;

/// The `start` binary, as a command whose assertions report the whole run on failure.
pub fn start() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_start"))
}
