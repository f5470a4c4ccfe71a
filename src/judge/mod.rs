//! Judging programs against tests in the sandbox, each test shape the way its benchmark's own
//! harness judges it, so that a reward trained on agrees with the benchmark's score:
//!
//! - stdin/stdout (APPS, LiveCodeBench, CodeContests): each test a fresh execution with the
//!   test's stdin, the host-captured stdout compared by the suite's rule
//!   ([`start_grade::harness::StdoutRule`]; `livecodebench` and `apps` also run their harness's
//!   imports first); see `stdio`.
//! - functional (LeetCode, LiveCodeBench): the program loaded as a module after LiveCodeBench's
//!   imports, the function or `Solution` method called with the JSON arguments, the returned
//!   value (a tuple read as a list) compared as JSON ([`compare_values`]).
//! - HumanEval: `prompt + program`, the check code and `check(entry_point)` in one namespace, as
//!   HumanEval's `check_correctness` runs them as one program: a check sees the prompt's
//!   helpers, imports and globals (`METADATA`), and a candidate may call other top-level
//!   functions.
//! - MBPP: `test_imports`, the program, `test_setup_code`, then each assert of `test_list` in
//!   order, all in one namespace; each assert is one test.
//!
//! Each test ends as one [`TestStatus`]: passed, a wrong answer (differing output, or a failed
//! assert of the tests), a runtime error (an exception or exit of the program), a syntax error
//! (the program does not compile), a limit (time, memory) or the output limit; a failed test
//! also keeps its input, the expected value and what the program gave ([`TestResult`]).
//!
//! This is the hot path of code rewards, so a functional suite runs in one interpreter (a
//! [`start_sandbox::Session`] with the in-guest harness, see `runner`): each test is one turn.
//! Per-test limits are the turn's limits; a test that traps (time) ends that interpreter and the
//! next test opens a new one, so one bad test never stops the others. A functional test's
//! verdict is the host's (it compares the returned value), so what the program changes in the
//! interpreter cannot make a later test pass. An assert's verdict is the harness's report from
//! inside the interpreter, which a program could rewrite for the turns after its own, so every
//! HumanEval or MBPP test is a fresh execution of its own (MBPP's namespace is rebuilt for each
//! assert: the imports, the program and the setup run again), and within one the report is
//! written only with what the harness bound before the program ran.

mod batch;
mod runner;
mod stdio;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use start_sandbox::Limit;

use crate::executor::{ExecError, Executor};

use start_grade::compare::{CompareOptions, Comparison, compare_values};

pub use batch::{BatchError, BatchSummary, MAX_BATCH_LINE_BYTES, judge_stream};
pub use start_grade::harness::StdoutRule;
pub use start_grade::testcase::{FnTest, StdioTest, Tests};

use runner::Runner;

/// Default wall time per test.
pub const DEFAULT_TEST_TIME: Duration = Duration::from_secs(4);
/// Default memory cap for the program's interpreter: 256 MiB.
pub const DEFAULT_TEST_MEMORY_BYTES: u64 = 256 << 20;
/// Default cap on a test's captured stdout (and a functional test's returned value, as JSON):
/// 1 MiB.
pub const DEFAULT_TEST_OUTPUT_BYTES: usize = 1 << 20;
/// The most tests judged for one program.
pub const MAX_TESTS: usize = 1000;
/// The longest error text kept per test, in characters.
pub const MAX_ERROR_CHARS: usize = 2000;
/// The longest input, expected value or answer a failed test keeps, in characters.
pub const MAX_SHOWN_CHARS: usize = 1000;

/// How to judge.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// Wall time per test.
    pub time_per_test: Duration,
    /// Memory cap for the program.
    pub memory_bytes: u64,
    /// Captured stdout per test, and the largest value a functional test may return.
    pub output_bytes: usize,
    /// Stop at the first failing test (the rest are reported as not run).
    pub stop_on_first_failure: bool,
    /// Tolerances of the `lines` stdout rule and of functional values.
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
    /// Output matched (or every assert held).
    Passed,
    /// Output differed, or an assert of the tests failed.
    WrongAnswer {
        /// A short first-difference report, or the failed assert's traceback.
        diff: String,
    },
    /// The program raised (or exited) instead of answering.
    RuntimeError {
        /// The error, as Python printed it.
        error: String,
    },
    /// The program does not compile.
    SyntaxError {
        /// The compiler's report.
        error: String,
    },
    /// A limit stopped the program.
    LimitExceeded {
        /// Which one.
        limit: Limit,
    },
    /// The program printed (or a functional test returned) more than the output cap.
    OutputLimitExceeded {
        /// The cap, [`JudgeOptions::output_bytes`].
        output_bytes: usize,
    },
    /// Not run (an earlier test failed and early stop was asked for).
    Skipped,
}

impl TestStatus {
    /// Whether this is a wrong answer (the program answered, wrongly).
    pub fn is_wrong_answer(&self) -> bool {
        matches!(self, TestStatus::WrongAnswer { .. })
    }
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
    /// A failed test's input: its stdin, its JSON arguments, or the failed assert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A failed test's expected output or value, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the program gave instead, where it gave anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub got: Option<String>,
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

fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_ERROR_CHARS {
        text.to_string()
    } else {
        text.chars().skip(n - MAX_ERROR_CHARS).collect()
    }
}

/// The first [`MAX_SHOWN_CHARS`] characters of a shown input, expectation or answer.
fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

impl TestResult {
    fn new(index: usize, status: TestStatus, wall_ms: f64) -> Self {
        TestResult {
            index,
            status,
            wall_ms,
            output_truncated: false,
            input: None,
            expected: None,
            got: None,
        }
    }

    fn truncated(mut self, truncated: bool) -> Self {
        self.output_truncated = truncated;
        self
    }

    /// Keeps what the failing test was, clipped; a passed or skipped test keeps nothing (a
    /// suite's results stay small where everything passed).
    fn showing(mut self, input: Option<&str>, expected: Option<&str>, got: Option<&str>) -> Self {
        if !matches!(self.status, TestStatus::Passed | TestStatus::Skipped) {
            self.input = input.map(shown);
            self.expected = expected.map(shown);
            // An answer that never came (a crash, a timeout) is not shown as an empty one.
            self.got = got
                .filter(|g| !g.is_empty() || self.status.is_wrong_answer())
                .map(shown);
        }
        self
    }
}

/// The imports a functional test runs first: LiveCodeBench's, much what LeetCode's judge
/// pre-imports (so `List[int]` in a signature needs no import, as there).
const FUNCTIONAL_IMPORTS: &str = start_grade::harness::LIVECODEBENCH_IMPORTS;

/// One functional test: a call with JSON arguments, its value compared as JSON.
fn functional(
    runner: &mut Runner<'_>,
    src: &str,
    fn_name: &str,
    index: usize,
    test: &FnTest,
    opts: &JudgeOptions,
) -> Result<TestResult, ExecError> {
    let lit = start_runtime::guest::python_str_literal;
    let args = serde_json::to_string(&test.args)
        .map_err(|e| start_sandbox::Error::Invalid(e.to_string()))?;
    let call = format!(
        "_judge.call({src}, {}, {}, {}, {})",
        lit(FUNCTIONAL_IMPORTS),
        lit(fn_name),
        lit(&args),
        runner.caps()
    );
    let (result, wall_ms) = runner.run(&call)?;
    let (status, truncated, got) = match result {
        Err(status) => (status, false, None),
        Ok(guest) => match guest.failure(opts.output_bytes) {
            Some(status) => (status, guest.trunc, None),
            None => {
                let value = guest.value.unwrap_or(Value::Null);
                let status = match compare_values(&test.expected, &value, &opts.compare) {
                    Comparison::Match => TestStatus::Passed,
                    Comparison::Mismatch { diff } => TestStatus::WrongAnswer { diff },
                };
                (status, guest.trunc, Some(value.to_string()))
            }
        },
    };
    let expected = test.expected.to_string();
    Ok(TestResult::new(index, status, wall_ms)
        .truncated(truncated)
        .showing(Some(&args), Some(&expected), got.as_deref()))
}

/// One HumanEval check or MBPP assert: the harness call's result, passed when the tests ran
/// to their end. `test_text` is shown when the harness could not name the failed assert.
fn asserted(
    runner: &mut Runner<'_>,
    call: &str,
    index: usize,
    test_text: Option<&str>,
    opts: &JudgeOptions,
) -> Result<TestResult, ExecError> {
    let (result, wall_ms) = runner.run(call)?;
    Ok(match result {
        Err(status) => TestResult::new(index, status, wall_ms).showing(test_text, None, None),
        Ok(guest) => {
            let status = guest
                .failure(opts.output_bytes)
                .unwrap_or(TestStatus::Passed);
            let input = guest.input.as_deref().or(test_text);
            TestResult::new(index, status, wall_ms)
                .truncated(guest.trunc)
                .showing(input, guest.expected.as_deref(), guest.got.as_deref())
        }
    })
}

/// Judges `program` against `tests` on `executor` (the local sandbox, or a server with
/// `--sandbox-url`), each shape as its benchmark's harness does (see the module doc).
///
/// # Errors
/// Host failures only (sandbox or server unavailable) and a suite over [`MAX_TESTS`]; every
/// program behaviour is a [`TestStatus`].
pub fn judge<'a>(
    executor: impl Into<Executor<'a>>,
    program: &str,
    tests: &Tests,
    opts: &JudgeOptions,
) -> Result<JudgeReport, ExecError> {
    let executor = executor.into();
    if tests.len() > MAX_TESTS {
        return Err(start_sandbox::Error::Invalid(format!(
            "{} tests; the limit is {MAX_TESTS}",
            tests.len()
        ))
        .into());
    }
    let started = Instant::now();
    // Asserts are judged inside the guest: never in an interpreter an earlier test's program
    // ran in (see the module doc).
    let fresh_per_test =
        tests.len() == 1 || matches!(tests, Tests::Check { .. } | Tests::Asserts { .. });
    let mut runner = Runner::new(executor, opts, fresh_per_test);
    let lit = start_runtime::guest::python_str_literal;
    let src = lit(program);
    // A stdio program that does not compile fails every test the same way, without running.
    let syntax = match tests {
        Tests::Stdio { tests, .. } if !tests.is_empty() => {
            stdio::syntax_error(executor, program, opts)?
        }
        _ => None,
    };
    let mut results = Vec::with_capacity(tests.len());
    let mut failed = false;
    for index in 0..tests.len() {
        if failed && opts.stop_on_first_failure {
            results.push(TestResult::new(index, TestStatus::Skipped, 0.0));
            continue;
        }
        let result = match tests {
            Tests::Stdio { tests, compare } => match &syntax {
                Some(status) => TestResult::new(index, status.clone(), 0.0).showing(
                    Some(&tests[index].input),
                    Some(&tests[index].output),
                    None,
                ),
                None => stdio::run(executor, program, index, &tests[index], *compare, opts)?,
            },
            Tests::Functional { fn_name, tests } => {
                functional(&mut runner, &src, fn_name, index, &tests[index], opts)?
            }
            Tests::Check {
                check,
                entry_point,
                prompt,
            } => {
                let call = format!(
                    "_judge.check({src}, {}, {}, {}, {})",
                    lit(prompt),
                    lit(check),
                    lit(entry_point),
                    runner.caps()
                );
                asserted(&mut runner, &call, index, None, opts)?
            }
            Tests::Asserts {
                test_list,
                test_setup_code,
                test_imports,
            } => {
                let call = format!(
                    "_judge.asserts({src}, {}, {}, {}, {}, {})",
                    lit(&test_imports.join("\n")),
                    lit(test_setup_code),
                    lit(&test_list[index]),
                    if index == 0 { "True" } else { "False" },
                    runner.caps()
                );
                asserted(&mut runner, &call, index, Some(&test_list[index]), opts)?
            }
        };
        failed |= result.status != TestStatus::Passed;
        results.push(result);
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

    #[test]
    fn failed_tests_keep_what_they_were_clipped_and_passed_ones_nothing() {
        let long = "é".repeat(MAX_SHOWN_CHARS + 50);
        let wrong = TestStatus::WrongAnswer { diff: "d".into() };
        let r = TestResult::new(0, wrong, 1.0).showing(Some(&long), Some("2"), Some(""));
        let input = r.input.unwrap();
        assert_eq!(
            input.chars().count(),
            MAX_SHOWN_CHARS + 1,
            "clipped, with an ellipsis"
        );
        assert_eq!(r.got.as_deref(), Some(""), "an empty answer is an answer");
        let crash = TestStatus::RuntimeError { error: "e".into() };
        let r = TestResult::new(0, crash, 1.0).showing(Some("1"), Some("2"), Some(""));
        assert_eq!(r.got, None, "a crash gave nothing");
        let r =
            TestResult::new(0, TestStatus::Passed, 1.0).showing(Some("1"), Some("2"), Some("2"));
        assert_eq!((r.input, r.expected, r.got), (None, None, None));
        let json = serde_json::to_string(&TestResult::new(3, TestStatus::Passed, 1.0)).unwrap();
        assert_eq!(
            json,
            r#"{"index":3,"status":{"kind":"passed"},"wall_ms":1.0}"#
        );
    }

    #[test]
    fn error_text_is_clipped_from_its_end() {
        let text = format!("head{}tail", "x".repeat(MAX_ERROR_CHARS));
        let clipped = clip(&text);
        assert_eq!(clipped.chars().count(), MAX_ERROR_CHARS);
        assert!(clipped.ends_with("tail"));
    }
}
