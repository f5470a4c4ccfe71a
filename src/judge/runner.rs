//! The interpreter that runs functional, HumanEval and MBPP tests: a [`Session`] with the
//! in-guest harness (`harness.py`) loaded as `_judge`, reopened after a test ends it (a trap
//! ends the interpreter; the next test must still run), or on a remote executor one fresh
//! execution per test; and the reading of the harness's one JSON result line into a
//! [`TestStatus`].

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use start_runtime::guest::python_str_literal;
use start_sandbox::{Limit, Limits, Outcome, Sandbox, Session, SessionLimits, Status, TurnLimits};

use crate::executor::{ExecError, Executor};

use super::{JudgeOptions, MAX_ERROR_CHARS, MAX_SHOWN_CHARS, TestStatus, clip};

/// The in-guest harness; see the file's own header.
const HARNESS: &str = include_str!("harness.py");

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
/// (which keeps no interpreter between requests), and for a suite of one test (HumanEval's
/// shape, where a session would be opened for one turn), each test is one fresh execution that
/// loads the harness and makes the call.
pub(super) struct Runner<'a> {
    executor: Executor<'a>,
    opts: &'a JudgeOptions,
    one_shot: bool,
    session: Option<Session>,
}

/// The code that loads the harness as the module `_judge`, compiling its source.
fn define_harness() -> String {
    format!(
        "import types as _t, sys as _s\n_h = _t.ModuleType('_judge')\n\
         exec(compile({}, '<start>', 'exec'), _h.__dict__)\n_s.modules['_judge'] = _h\ndel _t, _s, _h",
        python_str_literal(HARNESS)
    )
}

/// The harness compiled once, from the first sandbox that judges in this process: compiling
/// its ~200 lines takes ~4 ms in the guest and loading the marshalled code ~0.1 ms, and every
/// program's suite needs a fresh interpreter.
/// Held as the code that loads it (see [`define_compiled_harness`]), built once: it quotes
/// ~16 KB.
static COMPILED_HARNESS: OnceLock<Option<String>> = OnceLock::new();

/// Compiles the harness in `sandbox` and marshals it; `None` if that fails (the source is then
/// compiled each time).
fn compile_harness(sandbox: &Sandbox) -> Option<String> {
    let code = format!(
        "import sys, marshal, binascii\nprint(sys.version.encode().hex())\n\
         print(binascii.b2a_base64(marshal.dumps(compile({}, '<start>', 'exec')), newline=False).decode())",
        python_str_literal(HARNESS)
    );
    let limits = Limits {
        stdout_bytes: 4 << 20,
        ..Limits::default()
    };
    let out = sandbox.exec(&code, &limits).ok()?;
    if out.status != Status::Finished || out.stdout_truncated {
        return None;
    }
    let mut lines = out.stdout.lines();
    let version = lines.next()?.trim();
    let version = String::from_utf8(hex::decode(version).ok()?).ok()?;
    let marshalled = lines.next()?.trim();
    Some(format!(
        "import types as _t, sys as _s, marshal as _m, binascii as _b\n\
         if _s.version != {}: raise ImportError('{STALE}')\n\
         _h = _t.ModuleType('_judge')\nexec(_m.loads(_b.a2b_base64({})), _h.__dict__)\n\
         _s.modules['_judge'] = _h\ndel _t, _s, _m, _b, _h",
        python_str_literal(&version),
        python_str_literal(marshalled),
    ))
}

/// What the marshalled harness raises in an interpreter of another runtime.
const STALE: &str = "start-judge: the harness was compiled by another runtime";

/// Whether a run ended on [`STALE`] (the source is compiled instead).
fn is_stale(outcome: &Outcome) -> bool {
    matches!(&outcome.status, Status::Exception { traceback, .. } if traceback.contains(STALE))
}

/// The code that loads the harness's marshalled code in a local interpreter (`None` where
/// compiling it failed); it raises, defining nothing, unless the interpreter's `sys.version` is
/// the one that compiled it (another runtime in this process), and the source is compiled then.
fn define_compiled_harness(sandbox: &Sandbox) -> Option<&'static str> {
    COMPILED_HARNESS
        .get_or_init(|| compile_harness(sandbox))
        .as_deref()
}

impl<'a> Runner<'a> {
    /// A runner for a suite of `tests` tests.
    pub fn new(executor: Executor<'a>, opts: &'a JudgeOptions, tests: usize) -> Self {
        Runner {
            executor,
            opts,
            one_shot: tests == 1,
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
            let compiled = match define_compiled_harness(sandbox) {
                Some(code) => Some(s.run(code, &TurnLimits::default())?),
                None => None,
            };
            let out = match compiled {
                Some(out) if !is_stale(&out) => out,
                _ => s.run(&define_harness(), &TurnLimits::default())?,
            };
            if out.status != Status::Finished {
                return Err(start_sandbox::Error::Invalid(format!(
                    "the judge harness failed to load: {}",
                    out.stderr
                ))
                .into());
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
            Executor::Local(sandbox) if self.one_shot => {
                let run = |define: &str| {
                    sandbox.exec(&format!("{define}\nimport _judge\n{call}"), &exec_limits)
                };
                match define_compiled_harness(sandbox) {
                    Some(define) => match run(define)? {
                        o if is_stale(&o) => run(&define_harness())?,
                        o => o,
                    },
                    None => run(&define_harness())?,
                }
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
    fn the_marshalled_harness_defines_what_the_source_does_and_refuses_another_runtime() {
        let sandbox = start_sandbox::testutil::shared_sandbox();
        let names =
            "import _judge\nprint(sorted(n for n in vars(_judge) if not n.startswith('__')))";
        let via = |define: &str| {
            sandbox
                .exec(&format!("{define}\n{names}"), &Limits::default())
                .unwrap()
        };
        let compiled = define_compiled_harness(sandbox).expect("the harness compiles");
        let (fast, slow) = (via(compiled), via(&define_harness()));
        assert_eq!(fast.status, Status::Finished, "{}", fast.stderr);
        assert_eq!(fast.stdout, slow.stdout);
        assert!(fast.stdout.contains("'check'"), "{}", fast.stdout);
        // Code marshalled by another runtime is refused, not loaded.
        let version = sandbox
            .exec("import sys\nprint(sys.version, end='')", &Limits::default())
            .unwrap()
            .stdout;
        let other = compiled.replace(&python_str_literal(&version), "'0.0'");
        assert_ne!(other, compiled);
        assert!(is_stale(&via(&other)));
        assert!(!is_stale(&fast));
    }

    #[test]
    fn the_harness_defines_every_entry() {
        for entry in ["def call(", "def check(", "def asserts("] {
            assert!(HARNESS.contains(entry), "{entry}");
        }
    }
}
