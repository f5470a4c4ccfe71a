//! The one test-case schema: how a program's tests are written wherever they are read (a
//! problem row for `start infer`, a `start judge` test file or batch line, a `start score`
//! problem row), in one of three JSON shapes:
//!
//! - stdin/stdout: `{"tests": [{"input": "...", "output": "..."}]}`;
//! - functional: `{"fn_name": "twoSum", "tests": [{"args": [...], "expected": ...}]}` (a
//!   function, or a method of a `Solution` class);
//! - HumanEval: `{"check": "def check(candidate): ...", "entry_point": "name"}`.
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
    /// `{"tests": [{"input": "...", "output": "..."}]}`
    Stdio {
        /// The tests.
        tests: Vec<StdioTest>,
    },
    /// `{"check": "def check(candidate): ...", "entry_point": "name"}` (HumanEval).
    Check {
        /// Test code defining `check(candidate)`.
        check: String,
        /// The function under test.
        entry_point: String,
    },
}

impl Tests {
    /// How many tests there are (a `check` counts as one).
    pub fn len(&self) -> usize {
        match self {
            Tests::Stdio { tests } => tests.len(),
            Tests::Functional { tests, .. } => tests.len(),
            Tests::Check { .. } => 1,
        }
    }

    /// Whether there are no tests.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tests as sample cases to show a model (the debug hint's `{testcase}` slot): stdio
    /// tests as they are, functional ones as their JSON arguments and expected value; a
    /// `check` has no cases to show.
    pub fn to_cases(&self) -> Vec<TestCase> {
        match self {
            Tests::Stdio { tests } => tests
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
            Tests::Check { .. } => Vec::new(),
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
    }
}
