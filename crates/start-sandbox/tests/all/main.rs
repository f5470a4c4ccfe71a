//! The sandbox's own behaviour, with the real CPython-on-WASI runtime in every test: executions,
//! limits, escapes, instance reuse and sessions.
//!
//! One binary, grouped by theme (as wasmtime's `tests/all`). The runtime comes from the cache
//! (`$START_CACHE_DIR` or `~/.cache/start`), prepared on first use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cleanup;
mod escape;
mod exec;
mod files;
mod limits;
mod reuse;
mod session;
mod tracebacks;

pub use start_sandbox::testutil::{run, shared_sandbox as sandbox};
