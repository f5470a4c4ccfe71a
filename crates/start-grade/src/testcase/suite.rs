//! The one test-case schema: how a program's tests are written wherever they are read (a
//! problem row for `start infer`, a `start judge` test file or batch line, a `start score`
//! problem row), in one of four JSON shapes, each judged as its benchmark's harness does:
//!
//! - stdin/stdout (APPS, LiveCodeBench, CodeContests): `{"tests": [{"input": "...", "output":
//!   "..."}]}`, with an optional `"compare"` naming the benchmark's output rule
//!   ([`StdoutRule`]: `lines`, the default, `exact`, `livecodebench`, `apps`, `codecontests`);
//! - functional (LeetCode, LiveCodeBench): `{"fn_name": "twoSum", "tests": [{"args": [...],
//!   "expected": ...}]}` (a function, or a method of a `Solution` class);
//! - HumanEval: `{"check": "def check(candidate): ...", "entry_point": "name"}`, with an
//!   optional `"prompt"`: the code the harness runs before the program (HumanEval runs
//!   `prompt + completion + test + check(entry_point)` as one program);
//! - MBPP: `{"test_list": ["assert f(1) == 2", ...]}`, with optional `"test_setup_code"` and
//!   `"test_imports"`.
//!
//! ```
//! use start_grade::testcase::Tests;
//!
//! let tests: Tests = serde_json::from_str(r#"{"fn_name": "add", "tests": [{"args": [1, 2], "expected": 3}]}"#).unwrap();
//! assert_eq!(tests.len(), 1);
//! assert!(matches!(tests, Tests::Functional { .. }));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{TestCase, TestKind};
use crate::harness::StdoutRule;

/// One stdin/stdout test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StdioTest {
    /// The program's stdin.
    pub input: String,
    /// The expected stdout.
    pub output: String,
}

/// One functional test: arguments and the expected return value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FnTest {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// The expected return value.
    pub expected: Value,
}

/// A program's tests, in one of the documented JSON shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tests {
    /// `{"fn_name": "twoSum", "tests": [{"args": [...], "expected": ...}]}`
    Functional {
        /// The function (or `Solution` method) to call.
        fn_name: String,
        /// The calls.
        tests: Vec<FnTest>,
    },
    /// `{"tests": [{"input": "...", "output": "..."}], "compare": "livecodebench"}`
    Stdio {
        /// The tests.
        tests: Vec<StdioTest>,
        /// How output is compared (and which imports run first): the benchmark's rule.
        #[serde(default, skip_serializing_if = "StdoutRule::is_default")]
        compare: StdoutRule,
    },
    /// `{"check": "def check(candidate): ...", "entry_point": "name", "prompt": "..."}`
    /// (HumanEval).
    Check {
        /// Test code defining `check(candidate)`; it runs in the program's own namespace.
        check: String,
        /// The function under test.
        entry_point: String,
        /// Code run before the program in the same namespace (HumanEval's prompt: the
        /// helpers, imports and globals a check may use); empty when absent.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prompt: String,
    },
    /// `{"test_list": ["assert ..."], "test_setup_code": "...", "test_imports": [...]}` (MBPP).
    Asserts {
        /// Assert statements, each one test, run in order in the program's namespace.
        test_list: Vec<String>,
        /// Code run before the program (MBPP's `test_setup_code`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        test_setup_code: String,
        /// Import lines run before everything else (sanitized MBPP's `test_imports`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        test_imports: Vec<String>,
    },
}

impl Tests {
    /// How many tests there are (a `check` counts as one).
    pub fn len(&self) -> usize {
        match self {
            Tests::Stdio { tests, .. } => tests.len(),
            Tests::Functional { tests, .. } => tests.len(),
            Tests::Check { .. } => 1,
            Tests::Asserts { test_list, .. } => test_list.len(),
        }
    }

    /// Whether there are no tests.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tests as sample cases to show a model (the debug hint's `{testcase}` slot): stdio
    /// tests as they are, functional ones as their JSON arguments and expected value; a
    /// `check` or an assert list has no cases to show.
    pub fn to_cases(&self) -> Vec<TestCase> {
        match self {
            Tests::Stdio { tests, .. } => tests
                .iter()
                .map(|t| TestCase {
                    input: t.input.clone(),
                    output: t.output.clone(),
                    kind: TestKind::Stdio,
                })
                .collect(),
            Tests::Functional { fn_name, tests } => tests
                .iter()
                .map(|t| {
                    let args: Vec<String> = t.args.iter().map(Value::to_string).collect();
                    TestCase {
                        input: format!("{fn_name}({})", args.join(", ")),
                        output: t.expected.to_string(),
                        kind: TestKind::Functional,
                    }
                })
                .collect(),
            Tests::Check { .. } | Tests::Asserts { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse_and_show() {
        let stdio: Tests =
            serde_json::from_str(r#"{"tests": [{"input": "1\n", "output": "2\n"}], "id": 7}"#)
                .unwrap();
        assert_eq!(stdio.to_cases()[0].input, "1\n");
        let functional: Tests = serde_json::from_str(
            r#"{"fn_name": "f", "tests": [{"args": [[1, 2], "x"], "expected": true}]}"#,
        )
        .unwrap();
        let case = &functional.to_cases()[0];
        assert_eq!(
            (case.input.as_str(), case.output.as_str()),
            ("f([1,2], \"x\")", "true")
        );
        let check: Tests =
            serde_json::from_str(r#"{"check": "def check(c): pass", "entry_point": "f"}"#).unwrap();
        assert_eq!((check.len(), check.to_cases().len()), (1, 0));
        assert!(serde_json::from_str::<Tests>(r#"{"tests": [{"inp": 1}]}"#).is_err());
        let Tests::Check { prompt, .. } = serde_json::from_str(
            r#"{"check": "def check(c): pass", "entry_point": "f", "prompt": "def g(): pass\n"}"#,
        )
        .unwrap() else {
            panic!("a check")
        };
        assert_eq!(prompt, "def g(): pass\n");
    }

    #[test]
    fn compare_rules_and_assert_lists_parse() {
        let lcb: Tests = serde_json::from_str(
            r#"{"tests": [{"input": "", "output": "1"}], "compare": "livecodebench"}"#,
        )
        .unwrap();
        assert!(matches!(
            lcb,
            Tests::Stdio {
                compare: StdoutRule::LiveCodeBench,
                ..
            }
        ));
        // The default rule is not written back.
        let plain: Tests = serde_json::from_str(r#"{"tests": []}"#).unwrap();
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"tests":[]}"#);
        assert!(
            serde_json::from_str::<Tests>(r#"{"tests": [], "compare": "fuzzy"}"#).is_err(),
            "an unknown rule is refused, not read as the default"
        );
        let mbpp: Tests = serde_json::from_str(
            r#"{"test_list": ["assert f(1) == 2", "assert f(2) == 3"], "test_setup_code": "x = 1", "test_imports": ["import math"]}"#,
        )
        .unwrap();
        assert_eq!((mbpp.len(), mbpp.to_cases().len()), (2, 0));
        let Tests::Asserts { test_imports, .. } = mbpp else {
            panic!("an assert list")
        };
        assert_eq!(test_imports, ["import math"]);
    }
}
