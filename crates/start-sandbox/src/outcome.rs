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

impl Limit {
    /// The Python-like line shown (to a model, in a terminal) when this limit stops a guest,
    /// or `None` where the guest's own traceback already says it (scratch space and open
    /// files end on the `OSError` Python raised). `wall_time` is the limit that was set.
    ///
    /// The lines, in full: `TimeoutError: execution exceeded 10 s` (wall time, in the
    /// limit's own units), `TimeoutError: execution exceeded its instruction budget` (fuel),
    /// `MemoryError` (memory).
    ///
    /// ```
    /// use std::time::Duration;
    /// use start_sandbox::Limit;
    /// let line = Limit::WallTime.message(Duration::from_millis(500));
    /// assert_eq!(line.as_deref(), Some("TimeoutError: execution exceeded 0.5 s"));
    /// assert_eq!(Limit::Memory.message(Duration::ZERO).as_deref(), Some("MemoryError"));
    /// ```
    pub fn message(self, wall_time: std::time::Duration) -> Option<String> {
        match self {
            Limit::WallTime => Some(format!(
                "TimeoutError: execution exceeded {} s",
                seconds(wall_time)
            )),
            Limit::Fuel => {
                Some("TimeoutError: execution exceeded its instruction budget".to_string())
            }
            Limit::Memory => Some("MemoryError".to_string()),
            Limit::Scratch | Limit::OpenFiles => None,
        }
    }
}

/// `d` in seconds as a person writes them: `10`, `0.5`, `2.25` (at most three decimals).
fn seconds(d: std::time::Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The line that says output was cut after `kept_bytes`: `[output truncated after 4,096
/// bytes]`. The one wording every path (library, daemon, REPL, driver) shows.
///
/// ```
/// assert_eq!(
///     start_sandbox::truncation_message(4096),
///     "[output truncated after 4,096 bytes]"
/// );
/// ```
pub fn truncation_message(kept_bytes: usize) -> String {
    let digits = kept_bytes.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("[output truncated after {grouped} bytes]")
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

    /// What the guest showed, as a terminal would show it: stdout, then stderr, then one
    /// Python-like line for how it ended when Python itself printed nothing for it (a limit, a
    /// crash) and a note where output was cut (see [`Limit::message`], [`truncation_message`]).
    /// `wall_time`, `stdout_bytes` and `stderr_bytes` are the limits the run had. Every path that shows an
    /// outcome as text (the REPL, `start exec`, the driver's output blocks) uses this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use start_sandbox::{Limit, Outcome, Status};
    /// let mut outcome = Outcome::finished("1\n");
    /// outcome.status = Status::LimitExceeded { limit: Limit::WallTime };
    /// assert_eq!(
    ///     outcome.transcript(Duration::from_secs(10), 1 << 20, 1 << 20),
    ///     "1\nTimeoutError: execution exceeded 10 s\n"
    /// );
    /// ```
    pub fn transcript(
        &self,
        wall_time: std::time::Duration,
        stdout_bytes: usize,
        stderr_bytes: usize,
    ) -> String {
        let mut shown = String::new();
        let mut add = |s: &str| {
            if !s.is_empty() {
                if !shown.is_empty() && !shown.ends_with('\n') {
                    shown.push('\n');
                }
                shown.push_str(s);
            }
        };
        add(&self.stdout);
        if self.stdout_truncated {
            add(&truncation_message(stdout_bytes));
        }
        add(&self.stderr);
        if self.stderr_truncated {
            add(&truncation_message(stderr_bytes));
        }
        match &self.status {
            Status::LimitExceeded { limit } => {
                if let Some(line) = limit.message(wall_time) {
                    add(&line);
                }
            }
            Status::Crashed { message } => {
                add(&format!("RuntimeError: the interpreter crashed: {message}"));
            }
            _ => {}
        }
        if !shown.is_empty() && !shown.ends_with('\n') {
            shown.push('\n');
        }
        shown
    }

    /// Parses the exception name from the last line of a traceback (`ValueError: bad` ->
    /// `ValueError`).
    pub fn exception_name(traceback: &str) -> String {
        Self::exception_name_in(traceback).unwrap_or_else(|| "Exception".to_string())
    }

    /// The last traceback in `stderr`: from its last `Traceback` header, else (a syntax error
    /// has no frames) from its last `File "..."` line, else its last line.
    pub fn last_traceback(stderr: &str) -> String {
        if let Some(at) = stderr.rfind("Traceback (most recent call last):") {
            return stderr[at..].to_string();
        }
        if let Some(at) = stderr.rfind("  File \"") {
            return stderr[at..].to_string();
        }
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    }

    /// The exception's name from the last line of `traceback`, if that line starts with one.
    pub fn exception_name_in(traceback: &str) -> Option<String> {
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
    fn limit_lines_are_short_and_python_like() {
        use std::time::Duration;
        let line = |l: Limit, d| l.message(d).unwrap_or_default();
        assert_eq!(
            line(Limit::WallTime, Duration::from_secs(10)),
            "TimeoutError: execution exceeded 10 s"
        );
        assert_eq!(
            line(Limit::WallTime, Duration::from_millis(2250)),
            "TimeoutError: execution exceeded 2.25 s"
        );
        assert_eq!(line(Limit::Memory, Duration::ZERO), "MemoryError");
        assert!(Limit::Scratch.message(Duration::ZERO).is_none());
        assert_eq!(truncation_message(0), "[output truncated after 0 bytes]");
        assert_eq!(
            truncation_message(1_048_576),
            "[output truncated after 1,048,576 bytes]"
        );
        let mut o = Outcome::finished("x".repeat(3));
        o.stdout_truncated = true;
        o.stderr = "Traceback\nE: 1\n".into();
        assert_eq!(
            o.transcript(Duration::from_secs(1), 3, 3),
            "xxx\n[output truncated after 3 bytes]\nTraceback\nE: 1\n"
        );
    }

    #[test]
    fn status_serializes_with_kind_tag() {
        let s = Status::LimitExceeded { limit: Limit::Fuel };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"kind":"limit_exceeded","limit":"fuel"}"#);
        assert_eq!(s.exit_code(), 124);
    }
}
