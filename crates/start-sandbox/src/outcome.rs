//! [`Outcome`]: everything one execution produced, whatever the guest did.

use serde::{Deserialize, Serialize};

/// Which limit stopped an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The wall-time limit ([`crate::Limits::wall_time`]).
    WallTime,
    /// The fuel budget ([`crate::Limits::fuel`]).
    Fuel,
    /// The memory cap, where it stopped the guest outright rather than as a `MemoryError`.
    Memory,
    /// The scratch folder's byte or entry budget ([`crate::FileLimits`]): the execution ended
    /// on the `OSError` a refused write or creation raised.
    Scratch,
    /// The open-descriptor cap ([`crate::FileLimits::open_files`]): the execution ended on the
    /// `OSError` a refused open raised.
    OpenFiles,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::WallTime => "wall-time limit",
            Limit::Fuel => "fuel limit",
            Limit::Memory => "memory limit",
            Limit::Scratch => "scratch-space limit",
            Limit::OpenFiles => "open-files limit",
        })
    }
}

/// The longest exception name [`Outcome::exception_name`] accepts, dots included.
pub const MAX_EXCEPTION_NAME_BYTES: usize = 200;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Status {
    /// The code ran to its end (or called `sys.exit(0)`).
    Finished,
    /// An uncaught Python exception; its traceback is also at the end of stderr.
    Exception {
        /// The exception's type name, e.g. `ZeroDivisionError`.
        name: String,
        /// The formatted traceback, starting at the user's code.
        traceback: String,
    },
    /// `sys.exit(code)` with a non-zero code.
    Exit {
        /// The exit code.
        code: i32,
    },
    /// A limit stopped the guest.
    LimitExceeded {
        /// Which one.
        limit: Limit,
    },
    /// The guest faulted in a way Python could not report (e.g. wasm stack exhausted).
    Crashed {
        /// wasmtime's description of the fault.
        message: String,
    },
}

impl Status {
    /// A process-style exit code: 0 finished, 1 exception, `n` for `sys.exit(n)`, 124 for a
    /// limit (like `timeout(1)`), 134 for a crash.
    pub fn exit_code(&self) -> i32 {
        match self {
            Status::Finished => 0,
            Status::Exception { .. } => 1,
            Status::Exit { code } => *code,
            Status::LimitExceeded { .. } => 124,
            Status::Crashed { .. } => 134,
        }
    }

    /// Whether the code ran to its end without error.
    pub fn is_success(&self) -> bool {
        matches!(self, Status::Finished)
    }
}

/// Everything one execution produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Captured stdout (invalid UTF-8 replaced), at most `Limits::stdout_bytes` bytes.
    pub stdout: String,
    /// Captured stderr (invalid UTF-8 replaced), at most `Limits::stderr_bytes` bytes.
    pub stderr: String,
    /// Whether stdout went past its cap (the excess was dropped).
    pub stdout_truncated: bool,
    /// Whether stderr went past its cap (the excess was dropped).
    pub stderr_truncated: bool,
    /// Wall time of the call, in milliseconds.
    pub wall_ms: f64,
    /// Fuel consumed, when a fuel budget was set.
    pub fuel_used: Option<u64>,
    /// The guest's peak linear memory, in bytes.
    pub memory_peak_bytes: u64,
}

impl Outcome {
    /// A run that finished and printed `stdout`, with nothing else to report: what a code
    /// runner standing in for the sandbox (in tests and benches) returns.
    ///
    /// ```
    /// let outcome = start_sandbox::Outcome::finished("42\n");
    /// assert_eq!(outcome.status, start_sandbox::Status::Finished);
    /// ```
    pub fn finished(stdout: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Finished,
            stdout: stdout.into(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            wall_ms: 0.0,
            fuel_used: None,
            memory_peak_bytes: 0,
        }
    }

    /// Parses the exception name from the last line of a traceback (`ValueError: bad` ->
    /// `ValueError`).
    pub fn exception_name(traceback: &str) -> String {
        Self::exception_name_in(traceback).unwrap_or_else(|| "Exception".to_string())
    }

    /// The exception's name from the last line of `traceback`, if that line starts with one.
    pub(crate) fn exception_name_in(traceback: &str) -> Option<String> {
        let last = traceback
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let name = last.split(':').next().unwrap_or("").trim();
        // A dotted Python identifier of sane length: a huge message whose start was cut from
        // the kept stderr tail is one long "word", and is not a name.
        let identifier = |part: &str| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        };
        let looks_like_name = name.len() <= MAX_EXCEPTION_NAME_BYTES
            && !last.starts_with(' ')
            && name.split('.').all(identifier);
        looks_like_name.then(|| name.rsplit('.').next().unwrap_or(name).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_name_from_last_line() {
        let tb = "Traceback (most recent call last):\n  File \"<string>\", line 1\nZeroDivisionError: division by zero\n";
        assert_eq!(Outcome::exception_name(tb), "ZeroDivisionError");
        assert_eq!(
            Outcome::exception_name("KeyboardInterrupt\n"),
            "KeyboardInterrupt"
        );
        assert_eq!(
            Outcome::exception_name("numpy.linalg.LinAlgError: x"),
            "LinAlgError"
        );
        assert_eq!(Outcome::exception_name(""), "Exception");
        let cut = "m".repeat(8191);
        assert_eq!(Outcome::exception_name(&cut), "Exception");
        assert_eq!(Outcome::exception_name("  File x, line 1"), "Exception");
        assert_eq!(Outcome::exception_name("3rd: x"), "Exception");
    }

    #[test]
    fn status_serializes_with_kind_tag() {
        let s = Status::LimitExceeded { limit: Limit::Fuel };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"kind":"limit_exceeded","limit":"fuel"}"#);
        assert_eq!(s.exit_code(), 124);
    }
}
