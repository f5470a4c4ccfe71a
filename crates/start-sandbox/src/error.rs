//! Errors of the host: the runtime is missing, I/O failed, or the caller asked for something
//! invalid. What the guest does is never an `Error`; it is an [`crate::Outcome`].

/// A failure of the host, not of the guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Obtaining, verifying, caching or compiling the runtime failed.
    #[error(transparent)]
    Runtime(#[from] start_runtime::Error),
    /// wasmtime refused a host-side operation (engine set-up, linking, instantiation).
    #[error("{stage}: {message}")]
    Engine {
        /// What we were doing.
        stage: &'static str,
        /// wasmtime's explanation.
        message: String,
    },
    /// A host I/O failure (scratch folder, threads).
    #[error("{action}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The request itself is invalid (too large, out of range).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The session has ended and runs no more turns.
    #[error("the session has ended ({0}); open a new one")]
    SessionEnded(String),
}

impl Error {
    pub(crate) fn engine(stage: &'static str, e: impl std::fmt::Display) -> Self {
        Error::Engine {
            stage,
            message: format!("{e:#}"),
        }
    }
}
