//! Stdin/stdout tests: each one a fresh execution of the program with the test's input as
//! stdin, its stdout captured by the host (nothing the program does can forge it, and
//! `sys.stdout.buffer` is the real one), compared by the suite's [`StdoutRule`].

use start_grade::compare::Comparison;
use start_grade::harness::StdoutRule;
use start_runtime::guest::python_str_literal;
use start_sandbox::{Limits, Status};

use crate::executor::{ExecError, Executor};

use super::{JudgeOptions, StdioTest, TestResult, TestStatus, clip};

/// Bytes of a stdio test's stderr kept: enough for its traceback's end.
pub(super) const STDIO_STDERR_BYTES: usize = 64 << 10;

/// Python's names for a program that does not compile.
const SYNTAX_ERRORS: [&str; 3] = ["SyntaxError", "IndentationError", "TabError"];

/// Whether `program` compiles: `Some(status)` with the compiler's report when it does not.
/// Done once per suite, so a syntax error is told apart from a `SyntaxError` the program raises
/// at run time (from `eval`, say), and its tests need not run.
pub(super) fn syntax_error(
    executor: Executor<'_>,
    program: &str,
    opts: &JudgeOptions,
) -> Result<Option<TestStatus>, ExecError> {
    let limits = Limits {
        wall_time: opts.time_per_test,
        memory_bytes: opts.memory_bytes,
        stderr_bytes: STDIO_STDERR_BYTES,
        ..Limits::default()
    };
    let code = format!(
        "compile({}, '<program>', 'exec')",
        python_str_literal(program)
    );
    let out = executor.exec(&code, &limits)?;
    Ok(match out.status {
        Status::Exception { name, traceback } if SYNTAX_ERRORS.contains(&name.as_str()) => {
            Some(TestStatus::SyntaxError {
                error: clip(&traceback),
            })
        }
        _ => None,
    })
}

/// The code one stdio test runs: the program, after the rule's harness imports when it has
/// them (compiled apart, so the program's line numbers stay its own).
fn code(program: &str, rule: StdoutRule) -> String {
    match rule.import_header() {
        None => program.to_string(),
        Some(header) => format!(
            "exec(compile({}, '<imports>', 'exec'))\nexec(compile({}, '<program>', 'exec'))\n",
            python_str_literal(header),
            python_str_literal(program)
        ),
    }
}

/// Runs one stdio test and judges it.
pub(super) fn run(
    executor: Executor<'_>,
    program: &str,
    index: usize,
    test: &StdioTest,
    rule: StdoutRule,
    opts: &JudgeOptions,
) -> Result<TestResult, ExecError> {
    let limits = Limits {
        wall_time: opts.time_per_test,
        memory_bytes: opts.memory_bytes,
        stdout_bytes: opts.output_bytes,
        stderr_bytes: STDIO_STDERR_BYTES,
        stdin: test.input.clone(),
        ..Limits::default()
    };
    let out = executor.exec(&code(program, rule), &limits)?;
    let status = match &out.status {
        // Past the cap nothing can be compared: the verdict is the limit, whatever followed.
        _ if out.stdout_truncated => TestStatus::OutputLimitExceeded {
            output_bytes: opts.output_bytes,
        },
        Status::Finished => match rule.compare(&test.output, &out.stdout, &opts.compare) {
            Comparison::Match => TestStatus::Passed,
            Comparison::Mismatch { diff } => TestStatus::WrongAnswer { diff },
        },
        Status::Exception { name, .. } if name == "MemoryError" => TestStatus::LimitExceeded {
            limit: start_sandbox::Limit::Memory,
        },
        Status::Exception { traceback, .. } => TestStatus::RuntimeError {
            error: clip(traceback),
        },
        Status::Exit { code } => TestStatus::RuntimeError {
            error: format!("SystemExit: {code}"),
        },
        Status::LimitExceeded { limit } => TestStatus::LimitExceeded { limit: *limit },
        Status::Crashed { message } => TestStatus::RuntimeError {
            error: format!("the interpreter crashed: {message}"),
        },
    };
    Ok(TestResult::new(index, status, out.wall_ms)
        .truncated(out.stdout_truncated)
        .showing(
            Some(test.input.as_str()),
            Some(test.output.as_str()),
            Some(out.stdout.as_str()),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_imports_are_compiled_apart_from_the_program() {
        assert_eq!(code("print(1)", StdoutRule::Lines), "print(1)");
        let lcb = code("print(1)", StdoutRule::LiveCodeBench);
        assert!(
            lcb.starts_with("exec(compile('from string import *"),
            "{lcb}"
        );
        assert!(lcb.ends_with("exec(compile('print(1)', '<program>', 'exec'))\n"));
    }

    #[test]
    fn stderr_keeps_a_traceback() {
        const { assert!(STDIO_STDERR_BYTES >= 4 * super::super::MAX_ERROR_CHARS) };
    }
}
