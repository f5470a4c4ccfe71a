//! Hint-RFT end to end, with the real CPython-on-WASI runtime: answer checks that need the
//! symbolic (sympy) fallback, and scripted trajectories for 5 math and 3 code problems through
//! score, filter and export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod pipeline;
mod sympy;

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
