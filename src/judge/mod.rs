//! Judging programs against tests in the sandbox: stdin/stdout programs, functional tests (a
//! function or a `Solution` method with arguments), and HumanEval-style `check(candidate)`.
//!
//! This is the hot path of code rewards, so one program's whole suite runs in one interpreter
//! (a [`Session`]): each test is one turn that runs the program in a fresh namespace with its own
//! stdin and captured stdout. Per-test limits are the turn's limits; a test that traps (time) ends
//! that interpreter and the next test opens a new one, so one bad test never stops the others.

mod batch;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use start_sandbox::{Limit, Limits, Sandbox, Session, SessionLimits, Status, TurnLimits};

use start_grade::compare::{CompareOptions, Comparison, compare_stdout, compare_values};

pub use batch::{BatchError, BatchSummary, MAX_BATCH_LINE_BYTES, judge_stream};
pub use start_grade::testcase::{FnTest, StdioTest, Tests};

/// Default wall time per test.
pub const DEFAULT_TEST_TIME: Duration = Duration::from_secs(4);
/// Default memory cap for the program's interpreter: 256 MiB.
pub const DEFAULT_TEST_MEMORY_BYTES: u64 = 256 << 20;
/// Default cap on a test's captured stdout: 1 MiB.
pub const DEFAULT_TEST_OUTPUT_BYTES: usize = 1 << 20;
/// The most tests judged for one program.
pub const MAX_TESTS: usize = 1000;
/// The longest error text kept per test.
const MAX_ERROR_CHARS: usize = 2000;

/// How to judge.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// Wall time per test.
    pub time_per_test: Duration,
    /// Memory cap for the program.
    pub memory_bytes: u64,
    /// Captured stdout per test.
    pub output_bytes: usize,
    /// Stop at the first failing test (the rest are reported as not run).
    pub stop_on_first_failure: bool,
    /// Output comparison rules.
    pub compare: CompareOptions,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions {
            time_per_test: DEFAULT_TEST_TIME,
            memory_bytes: DEFAULT_TEST_MEMORY_BYTES,
            output_bytes: DEFAULT_TEST_OUTPUT_BYTES,
            stop_on_first_failure: false,
            compare: CompareOptions::default(),
        }
    }
}

/// What happened in one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestStatus {
    /// Output matched.
    Passed,
    /// Output differed.
    WrongAnswer {
        /// A short first-difference report.
        diff: String,
    },
    /// The program raised (or exited non-zero).
    RuntimeError {
        /// The error, as Python printed it.
        error: String,
    },
    /// A limit stopped the program.
    LimitExceeded {
        /// Which one.
        limit: Limit,
    },
    /// Not run (an earlier test failed and early stop was asked for).
    Skipped,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Its index in the suite.
    pub index: usize,
    /// What happened.
    pub status: TestStatus,
    /// Wall time, in milliseconds.
    pub wall_ms: f64,
    /// Whether the captured stdout was cut at the cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_truncated: bool,
}

/// A program's results over its suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// Whether every test passed (and there was at least one).
    pub passed: bool,
    /// Passed tests.
    pub passed_count: usize,
    /// Per-test results.
    pub tests: Vec<TestResult>,
    /// Wall time of the whole suite, in milliseconds.
    pub wall_ms: f64,
}

/// The in-guest harness for functional and check tests: runs the program in a fresh namespace
/// per test, with captured, capped stdout, and prints one JSON line with what happened. (Stdio
/// tests need no harness: each runs as a fresh execution of its own, see [`stdio_test`].) Its own frames are `<start>` so
/// tracebacks begin at the program.
const HARNESS: &str = r#"
import sys, io, json, traceback
class _Capped(io.TextIOBase):
    def __init__(self, cap):
        self.parts, self.size, self.cap, self.truncated = [], 0, cap, False
    def writable(self):
        return True
    def write(self, s):
        room = self.cap - self.size
        if len(s) > room:
            self.truncated = True
            s = s[: max(room, 0)]
        if s:
            self.parts.append(s)
            self.size += len(s)
        return len(s)
    def getvalue(self):
        return ''.join(self.parts)
def _err(e):
    if isinstance(e, MemoryError):
        return 'MemoryError'
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == '<start>':
        tb = tb.tb_next
    text = ''.join(traceback.format_exception(type(e), e, tb))
    return text[-2000:]
def _load(src):
    ns = {'__name__': '__main__'}
    exec(compile(src, '<program>', 'exec'), ns)
    return ns
def _go(body, stdin, cap):
    out = _Capped(cap)
    old = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO(stdin), out
    res = {'err': None}
    try:
        res.update(body())
    except SystemExit as e:
        if e.code not in (None, 0):
            res['err'] = 'SystemExit: %r' % (e.code,)
    except BaseException as e:
        res['err'] = _err(e)
    finally:
        sys.stdin, sys.stdout = old
    res['out'] = out.getvalue()
    res['trunc'] = out.truncated
    print(json.dumps(res, default=repr))
def call(src, fn_name, args_json, cap):
    def body():
        ns = _load(src)
        args = json.loads(args_json)
        if 'Solution' in ns and hasattr(ns['Solution'], fn_name):
            fn = getattr(ns['Solution'](), fn_name)
        elif fn_name in ns:
            fn = ns[fn_name]
        else:
            raise NameError('the program defines no function or Solution method %r' % fn_name)
        value = fn(*args)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)
        return {'value': value}
    _go(body, '', cap)
def check(src, test_src, entry_point):
    def body():
        ns = _load(src)
        tns = {'__name__': '__check__'}
        exec(compile(test_src, '<tests>', 'exec'), tns)
        tns['check'](ns[entry_point])
        return {}
    _go(body, '', 1 << 16)
"#;

#[derive(Deserialize)]
struct GuestResult {
    err: Option<String>,
    #[serde(default)]
    trunc: bool,
    value: Option<Value>,
}

/// An interpreter with the harness loaded, reopened after a test ends it.
struct Runner<'a> {
    sandbox: &'a Sandbox,
    opts: &'a JudgeOptions,
    session: Option<Session>,
}

impl Runner<'_> {
    fn session(&mut self) -> Result<&mut Session, start_sandbox::Error> {
        if self.session.as_ref().is_none_or(|s| s.ended().is_some()) {
            let mut s = Session::open(
                self.sandbox,
                SessionLimits {
                    memory_bytes: self.opts.memory_bytes,
                    max_turns: u32::MAX,
                    ..SessionLimits::default()
                },
            )?;
            let define = format!(
                "import types as _t, sys as _s\n_h = _t.ModuleType('_judge')\n\
                 exec(compile({}, '<start>', 'exec'), _h.__dict__)\n_s.modules['_judge'] = _h\ndel _t, _s, _h",
                start_runtime::guest::python_str_literal(HARNESS)
            );
            let out = s.run(&define, &TurnLimits::default())?;
            if out.status != Status::Finished {
                return Err(start_sandbox::Error::Invalid(format!(
                    "the judge harness failed to load: {}",
                    out.stderr
                )));
            }
            self.session = Some(s);
        }
        self.session
            .as_mut()
            .ok_or_else(|| start_sandbox::Error::SessionEnded("no session".into()))
    }

    /// Runs one harness call; maps limits and crashes to a status.
    fn run(
        &mut self,
        call: &str,
    ) -> Result<(Result<GuestResult, TestStatus>, f64), start_sandbox::Error> {
        let limits = TurnLimits {
            wall_time: self.opts.time_per_test,
            stdout_bytes: self
                .opts
                .output_bytes
                .saturating_mul(6)
                .saturating_add(4096),
            ..TurnLimits::default()
        };
        let outcome = self.session()?.run(call, &limits)?;
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

fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_ERROR_CHARS {
        text.to_string()
    } else {
        text.chars().skip(n - MAX_ERROR_CHARS).collect()
    }
}

fn error_status(err: String) -> TestStatus {
    if err.trim() == "MemoryError" || err.trim_end().ends_with("MemoryError") {
        TestStatus::LimitExceeded {
            limit: Limit::Memory,
        }
    } else {
        TestStatus::RuntimeError { error: clip(&err) }
    }
}

/// Runs one stdio test as a fresh execution of `program` with the test's input as stdin, and
/// compares the program's own stdout (captured by the host: nothing the program does can
/// forge it, and `sys.stdout.buffer` is the real one). Returns the status, the wall time in
/// milliseconds and whether stdout was cut at [`JudgeOptions::output_bytes`].
fn stdio_test(
    sandbox: &Sandbox,
    program: &str,
    test: &StdioTest,
    opts: &JudgeOptions,
) -> Result<(TestStatus, f64, bool), start_sandbox::Error> {
    let limits = Limits {
        wall_time: opts.time_per_test,
        memory_bytes: opts.memory_bytes,
        stdout_bytes: opts.output_bytes,
        stderr_bytes: STDIO_STDERR_BYTES,
        stdin: test.input.clone(),
        ..Limits::default()
    };
    let out = sandbox.exec(program, &limits)?;
    let status = match &out.status {
        Status::Finished => match compare_stdout(&test.output, &out.stdout, &opts.compare) {
            Comparison::Match => TestStatus::Passed,
            Comparison::Mismatch { diff } => TestStatus::WrongAnswer { diff },
        },
        Status::Exception { traceback, .. } => error_status(traceback.clone()),
        Status::Exit { code } => TestStatus::RuntimeError {
            error: format!("SystemExit: {code}"),
        },
        Status::LimitExceeded { limit } => TestStatus::LimitExceeded { limit: *limit },
        Status::Crashed { message } => TestStatus::RuntimeError {
            error: format!("the interpreter crashed: {message}"),
        },
    };
    Ok((status, out.wall_ms, out.stdout_truncated))
}

/// Bytes of a stdio test's stderr kept: enough for its traceback's end.
const STDIO_STDERR_BYTES: usize = 64 << 10;

/// Judges `program` against `tests`.
///
/// # Errors
/// Host failures only (sandbox unavailable) and a suite over [`MAX_TESTS`]; every program
/// behaviour is a [`TestStatus`].
pub fn judge(
    sandbox: &Sandbox,
    program: &str,
    tests: &Tests,
    opts: &JudgeOptions,
) -> Result<JudgeReport, start_sandbox::Error> {
    if tests.len() > MAX_TESTS {
        return Err(start_sandbox::Error::Invalid(format!(
            "{} tests; the limit is {MAX_TESTS}",
            tests.len()
        )));
    }
    let started = Instant::now();
    let mut runner = Runner {
        sandbox,
        opts,
        session: None,
    };
    let lit = start_runtime::guest::python_str_literal;
    let src = lit(program);
    let mut results = Vec::with_capacity(tests.len());
    let mut failed = false;
    for index in 0..tests.len() {
        if failed && opts.stop_on_first_failure {
            results.push(TestResult {
                index,
                status: TestStatus::Skipped,
                wall_ms: 0.0,
                output_truncated: false,
            });
            continue;
        }
        let call = match tests {
            Tests::Stdio { tests } => {
                let (status, wall_ms, output_truncated) =
                    stdio_test(sandbox, program, &tests[index], opts)?;
                failed |= status != TestStatus::Passed;
                results.push(TestResult {
                    index,
                    status,
                    wall_ms,
                    output_truncated,
                });
                continue;
            }
            Tests::Functional { fn_name, tests } => {
                let args = serde_json::to_string(&tests[index].args)
                    .map_err(|e| start_sandbox::Error::Invalid(e.to_string()))?;
                format!(
                    "_judge.call({src}, {}, {}, {})",
                    lit(fn_name),
                    lit(&args),
                    opts.output_bytes
                )
            }
            Tests::Check { check, entry_point } => {
                format!("_judge.check({src}, {}, {})", lit(check), lit(entry_point))
            }
        };
        let (result, wall_ms) = runner.run(&format!("import _judge\n{call}"))?;
        let mut truncated = false;
        let status = match result {
            Err(status) => status,
            Ok(guest) => {
                truncated = guest.trunc;
                match (guest.err, tests) {
                    (Some(err), _) => error_status(err),
                    (None, Tests::Stdio { .. }) => TestStatus::RuntimeError {
                        error: "internal error: a stdio test reached the harness".into(),
                    },
                    (None, Tests::Functional { tests, .. }) => {
                        let value = guest.value.unwrap_or(Value::Null);
                        match compare_values(&tests[index].expected, &value, &opts.compare) {
                            Comparison::Match => TestStatus::Passed,
                            Comparison::Mismatch { diff } => TestStatus::WrongAnswer { diff },
                        }
                    }
                    (None, Tests::Check { .. }) => TestStatus::Passed,
                }
            }
        };
        failed |= status != TestStatus::Passed;
        results.push(TestResult {
            index,
            status,
            wall_ms,
            output_truncated: truncated,
        });
    }
    let passed_count = results
        .iter()
        .filter(|r| r.status == TestStatus::Passed)
        .count();
    Ok(JudgeReport {
        passed: !results.is_empty() && passed_count == results.len(),
        passed_count,
        tests: results,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_shapes_parse() {
        let stdio: Tests =
            serde_json::from_str(r#"{"tests": [{"input": "1\n", "output": "2\n"}]}"#).unwrap();
        assert!(matches!(stdio, Tests::Stdio { .. }));
        let func: Tests = serde_json::from_str(
            r#"{"fn_name": "twoSum", "tests": [{"args": [[2,7], 9], "expected": [0,1]}]}"#,
        )
        .unwrap();
        assert!(matches!(func, Tests::Functional { .. }));
        let check: Tests = serde_json::from_str(
            r#"{"check": "def check(c): assert c(1) == 2", "entry_point": "inc"}"#,
        )
        .unwrap();
        assert_eq!(check.len(), 1);
    }
}
