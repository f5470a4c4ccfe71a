//! Run untrusted Python in CPython-on-WASI, inside wasmtime, under hard limits.
//!
//! A [`Sandbox`] is built once (engine, compiled snapshot, pre-linked instance) and shared by
//! threads; [`Sandbox::exec`] runs code in an interpreter in the exact state of a
//! pre-initialized snapshot (a new instance, or a finished one restored byte for byte), and
//! returns an [`Outcome`]. A guest that fails or hits a limit is an
//! `Outcome`, never an `Err`: `Err` is for the host's own failures.
//!
//! The defaults are secure: the guest sees the read-only standard library and an empty private
//! scratch folder emptied after the call; no host environment, no network, no subprocesses, no
//! other host files; stdin is empty; output is capped.
//!
//! Modules: `limits` ([`Limits`]), `outcome` ([`Outcome`], [`Status`]), `error` ([`Error`]),
//! `engine` (wasmtime configuration and the epoch ticker), `output` (capped output pipes),
//! `exec` ([`Sandbox`] and fresh executions), `instance` (one live guest), `recycle` (restoring
//! a finished guest to the snapshot's exact state so the next execution reuses it), `pagemap`
//! (which pages a guest wrote, from Linux's `PAGEMAP_SCAN`), `preseed` (fresh random generator
//! states the host writes before an execution), `scratch` (the guest's private
//! folder, emptied and removed without recursion, however deep the guest made it), `quota`
//! (the file budget, [`FileLimits`], metered in the WASI calls), `session` ([`Session`]: a
//! persistent interpreter across turns).
//!
//! With the `test-util` feature (on by default), `testutil` holds the fixture tests share: one
//! sandbox per test binary. Without the default `runtime` feature only the wire types ([`Limits`], [`Outcome`]) are
//! built, so a client of the daemon does not link wasmtime.

mod limits;
mod outcome;

pub use limits::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_TURNS, DEFAULT_MEMORY_BYTES, DEFAULT_OPEN_FILES,
    DEFAULT_OUTPUT_BYTES, DEFAULT_SCRATCH_BYTES, DEFAULT_SCRATCH_ENTRIES, DEFAULT_TURN_WALL_TIME,
    DEFAULT_WALL_TIME, FileLimits, Limits, MAX_CODE_BYTES, MAX_MEMORY_BYTES, MAX_OPEN_FILES,
    MAX_SCRATCH_BYTES, MAX_SCRATCH_ENTRIES, MAX_STDIN_BYTES, SessionLimits, TurnLimits,
};
pub use outcome::{Limit, MAX_EXCEPTION_NAME_BYTES, Outcome, Status, truncation_message};

#[cfg(feature = "test-util")]
pub mod testutil;

#[cfg(feature = "runtime")]
mod engine;
#[cfg(feature = "runtime")]
mod error;
#[cfg(feature = "runtime")]
mod exec;
#[cfg(feature = "runtime")]
mod faults;
#[cfg(feature = "runtime")]
mod instance;
#[cfg(feature = "runtime")]
mod output;
#[cfg(feature = "runtime")]
mod pagemap;
#[cfg(feature = "runtime")]
mod preseed;
#[cfg(feature = "runtime")]
mod quota;
#[cfg(feature = "runtime")]
mod recycle;
#[cfg(feature = "runtime")]
mod scratch;
#[cfg(feature = "runtime")]
mod session;

#[cfg(feature = "runtime")]
pub use error::Error;
#[cfg(feature = "runtime")]
pub use exec::{
    Cleanup, DEFAULT_MAX_RESTORE_BYTES, DEFAULT_REUSE_INSTANCES, Sandbox, SandboxOptions,
};
#[cfg(feature = "runtime")]
pub use scratch::{QUARANTINE_PREFIX, SCRATCH_PREFIX, remove_dir_tree};
#[cfg(feature = "runtime")]
pub use session::Session;
#[cfg(feature = "runtime")]
pub use start_runtime::{RuntimeOptions, SnapshotSpec};
