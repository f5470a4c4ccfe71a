//! The interpreter that runs functional, HumanEval and MBPP tests: a [`Session`] in which the
//! in-guest harness ([`GUEST_HARNESS`], which the snapshot defines as `_judge`) is imported,
//! reopened after a test ends it (a trap ends the interpreter; the next test must still run),
//! or one fresh execution per test (on a remote executor, and for a suite of one test); and the
//! reading of the harness's one JSON result line into a [`TestStatus`].

use serde::Deserialize;
use serde_json::Value;
use start_grade::harness::{GUEST_HARNESS, GUEST_HARNESS_MODULE};
use start_runtime::define_module;
use start_runtime::guest::python_str_literal;
use start_sandbox::{Limit, Limits, Sandbox, Session, SessionLimits, Status, TurnLimits};

use crate::executor::{ExecError, Executor};

use super::{JudgeOptions, MAX_ERROR_CHARS, MAX_SHOWN_CHARS, TestStatus, clip};

/// Bytes of a harness turn's stdout beyond the returned value: its error text, the failed
/// assert and both its sides, JSON-escaped (at most 6 bytes a character).
pub(super) const RESULT_OVERHEAD_BYTES: usize = 64 << 10;

/// What the harness says happened in one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum GuestKind {
    /// Ran to its end (for a functional test: returned `value`).
    Ok,
    /// An assert in the tests failed.
    Wrong,
    /// The program (or its call) raised or exited.
    Error,
    /// The program does not compile.
    Syntax,
    /// A `MemoryError`: the memory cap.
    Memory,
    /// A functional test's returned value is over the output cap.
    Output,
}

/// The harness's result line.
#[derive(Debug, Deserialize)]
pub(super) struct GuestResult {
    pub kind: GuestKind,
    #[serde(default)]
    pub err: Option<String>,
    /// Whether the program's own prints went past the cap (they are not judged).
    #[serde(default)]
    pub trunc: bool,
    #[serde(default)]
    pub value: Option<Value>,
    /// The failed assert, for check and assert tests.
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub expected: Option<String>,
    #[serde(default)]
    pub got: Option<String>,
}

impl GuestResult {
    /// The status of every kind but [`GuestKind::Ok`], whose meaning depends on the test.
    pub fn failure(&self, output_bytes: usize) -> Option<TestStatus> {
        let err = || clip(self.err.as_deref().unwrap_or(""));
        match self.kind {
            GuestKind::Ok => None,
            GuestKind::Wrong => Some(TestStatus::WrongAnswer {
                diff: format!("an assert failed:\n{}", err()),
            }),
            GuestKind::Error => Some(TestStatus::RuntimeError { error: err() }),
            GuestKind::Syntax => Some(TestStatus::SyntaxError { error: err() }),
            GuestKind::Memory => Some(TestStatus::LimitExceeded {
                limit: Limit::Memory,
            }),
            GuestKind::Output => Some(TestStatus::OutputLimitExceeded { output_bytes }),
        }
    }
}

/// An interpreter with the harness loaded, reopened after a test ends it. On a remote executor
/// (which keeps no interpreter between requests), and where each test needs an interpreter of
/// its own (asserts, and a suite of one test, where a session would be opened for one turn),
/// each test is one fresh execution that loads the harness and makes the call.
pub(super) struct Runner<'a> {
    executor: Executor<'a>,
    opts: &'a JudgeOptions,
    fresh_per_test: bool,
    /// Whether a local snapshot defines the harness ([`snapshot_has_harness`]), checked once.
    harness_in_snapshot: bool,
    session: Option<Session>,
}

/// The code that defines the harness where a remote interpreter lacks it (a server whose
/// snapshot was built without it, such as an older one's), compiling its source (~4 ms); where
/// the snapshot defines it, as ours does, it costs one dictionary lookup.
fn define_harness() -> String {
    format!(
        "import sys as _s\nif {name} not in _s.modules: exec({define}, {{}})\ndel _s",
        name = python_str_literal(GUEST_HARNESS_MODULE),
        define = python_str_literal(&define_module(GUEST_HARNESS_MODULE, GUEST_HARNESS)),
    )
}

/// Whether `sandbox`'s snapshot defines this harness, byte for byte: then a test only imports
/// it. Otherwise each fresh execution (or session) defines it first, replacing whatever the
/// snapshot holds under its name ([`define_module`], unguarded).
fn snapshot_has_harness(sandbox: &Sandbox) -> bool {
    sandbox
        .snapshot_spec()
        .modules
        .iter()
        .any(|m| m.name == GUEST_HARNESS_MODULE && m.source == GUEST_HARNESS)
}

impl<'a> Runner<'a> {
    /// A runner that gives each test a fresh execution when `fresh_per_test`, else one session
    /// for the suite.
    pub fn new(executor: Executor<'a>, opts: &'a JudgeOptions, fresh_per_test: bool) -> Self {
        let harness_in_snapshot = match &executor {
            Executor::Local(sandbox) => snapshot_has_harness(sandbox),
            Executor::Remote(_) => false,
        };
        Runner {
            executor,
            opts,
            fresh_per_test,
            harness_in_snapshot,
            session: None,
        }
    }

    /// The arguments every harness entry takes last: the caps on captured output, on each
    /// shown value and on error text.
    pub fn caps(&self) -> String {
        format!(
            "{}, {MAX_SHOWN_CHARS}, {MAX_ERROR_CHARS}",
            self.opts.output_bytes
        )
    }

    fn session(&mut self, sandbox: &Sandbox) -> Result<&mut Session, ExecError> {
        if self.session.as_ref().is_none_or(|s| s.ended().is_some()) {
            let mut s = Session::open(
                sandbox,
                SessionLimits {
                    memory_bytes: self.opts.memory_bytes,
                    max_turns: u32::MAX,
                    ..SessionLimits::default()
                },
            )?;
            if !self.harness_in_snapshot {
                let define = define_module(GUEST_HARNESS_MODULE, GUEST_HARNESS);
                let out = s.run(&define, &TurnLimits::default())?;
                if out.status != Status::Finished {
                    return Err(start_sandbox::Error::Invalid(format!(
                        "the judge harness failed to load: {}",
                        out.stderr
                    ))
                    .into());
                }
            }
            self.session = Some(s);
        }
        self.session
            .as_mut()
            .ok_or_else(|| start_sandbox::Error::SessionEnded("no session".into()).into())
    }

    /// Runs one harness call (`call`, `check` or `asserts` with its arguments); maps limits and
    /// crashes to a status. Returns the result and the wall time in milliseconds.
    pub fn run(&mut self, call: &str) -> Result<(Result<GuestResult, TestStatus>, f64), ExecError> {
        let stdout_bytes = self.opts.output_bytes.saturating_add(RESULT_OVERHEAD_BYTES);
        let exec_limits = Limits {
            wall_time: self.opts.time_per_test,
            memory_bytes: self.opts.memory_bytes,
            stdout_bytes,
            ..Limits::default()
        };
        let outcome = match self.executor {
            Executor::Local(sandbox) if self.fresh_per_test => {
                let code = if self.harness_in_snapshot {
                    format!("import _judge\n{call}")
                } else {
                    let define = define_module(GUEST_HARNESS_MODULE, GUEST_HARNESS);
                    format!("{define}\nimport _judge\n{call}")
                };
                sandbox.exec(&code, &exec_limits)?
            }
            Executor::Local(sandbox) => {
                let limits = TurnLimits {
                    wall_time: self.opts.time_per_test,
                    stdout_bytes,
                    ..TurnLimits::default()
                };
                self.session(sandbox)?
                    .run(&format!("import _judge\n{call}"), &limits)?
            }
            Executor::Remote(_) => self.executor.exec(
                &format!("{}\nimport _judge\n{call}", define_harness()),
                &exec_limits,
            )?,
        };
        let wall = outcome.wall_ms;
        let result = match &outcome.status {
            // The harness writes its report last; cut off, the last line may be the
            // program's own.
            Status::Finished if outcome.stdout_truncated => Err(TestStatus::RuntimeError {
                error: "the program's result could not be read (it wrote past the harness's \
                        output limit)"
                    .into(),
            }),
            Status::Finished => {
                let line = outcome.stdout.lines().last().unwrap_or("");
                serde_json::from_str::<GuestResult>(line).map_err(|_| TestStatus::RuntimeError {
                    error: "the program's result could not be read (it wrote past the harness)"
                        .into(),
                })
            }
            Status::LimitExceeded { limit } => Err(TestStatus::LimitExceeded { limit: *limit }),
            Status::Exception { traceback, .. } => Err(TestStatus::RuntimeError {
                error: clip(traceback),
            }),
            Status::Exit { code } => Err(TestStatus::RuntimeError {
                error: format!("the program ended the interpreter (exit code {code})"),
            }),
            Status::Crashed { message } => Err(TestStatus::RuntimeError {
                error: format!("the interpreter crashed: {message}"),
            }),
        };
        Ok((result, wall))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_results_map_to_statuses() {
        let read = |line: &str| serde_json::from_str::<GuestResult>(line).unwrap();
        assert_eq!(read(r#"{"kind": "ok", "trunc": false}"#).failure(10), None);
        assert!(matches!(
            read(r#"{"kind": "wrong", "err": "AssertionError"}"#).failure(10),
            Some(TestStatus::WrongAnswer { .. })
        ));
        assert!(matches!(
            read(r#"{"kind": "syntax", "err": "SyntaxError: x"}"#).failure(10),
            Some(TestStatus::SyntaxError { .. })
        ));
        assert_eq!(
            read(r#"{"kind": "memory"}"#).failure(10),
            Some(TestStatus::LimitExceeded {
                limit: Limit::Memory
            })
        );
        assert_eq!(
            read(r#"{"kind": "output"}"#).failure(10),
            Some(TestStatus::OutputLimitExceeded { output_bytes: 10 })
        );
        assert!(serde_json::from_str::<GuestResult>(r#"{"kind": "passed"}"#).is_err());
    }

    #[test]
    fn the_result_overhead_fits_the_shown_fields_escaped() {
        // Error text plus three shown fields, each character escaped to at most 6 bytes.
        const {
            assert!(
                RESULT_OVERHEAD_BYTES >= 6 * (MAX_ERROR_CHARS + 3 * (MAX_SHOWN_CHARS + 1)) + 256
            )
        };
    }

    #[test]
    fn the_snapshot_defines_the_harness_and_the_fallback_defines_the_same() {
        let sandbox = start_sandbox::testutil::shared_sandbox();
        assert!(snapshot_has_harness(sandbox));
        let names =
            "import _judge\nprint(sorted(n for n in vars(_judge) if not n.startswith('__')))";
        let run = |code: &str| {
            let out = sandbox.exec(code, &Limits::default()).unwrap();
            assert_eq!(out.status, Status::Finished, "{}", out.stderr);
            out.stdout
        };
        let from_snapshot = run(names);
        assert!(from_snapshot.contains("'check'"), "{from_snapshot}");
        // An interpreter without it (an older server's) gets the same module from the fallback.
        let defined = run(&format!(
            "import sys\ndel sys.modules['_judge']\n{}\n{names}",
            define_harness()
        ));
        assert_eq!(defined, from_snapshot);
        // The next execution starts from the snapshot again: the harness is back.
        assert_eq!(run(names), from_snapshot);
    }

    #[test]
    fn the_harness_defines_every_entry() {
        for entry in ["def call(", "def check(", "def asserts("] {
            assert!(GUEST_HARNESS.contains(entry), "{entry}");
        }
    }
}
