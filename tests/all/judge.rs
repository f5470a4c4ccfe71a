//! The judge with the real runtime: right, wrong, crashing, looping and memory-hungry programs.

use std::time::Duration;

use start::judge::{JudgeOptions, TestStatus, Tests, judge};
use start_sandbox::Limit;

use crate::sandbox;

fn stdio(pairs: &[(&str, &str)]) -> Tests {
    serde_json::from_value(serde_json::json!({
        "tests": pairs.iter().map(|(i, o)| serde_json::json!({"input": i, "output": o})).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn opts() -> JudgeOptions {
    JudgeOptions {
        time_per_test: Duration::from_millis(1500),
        ..JudgeOptions::default()
    }
}

#[test]
fn correct_program_passes_and_off_by_one_fails_with_a_diff() {
    let tests = stdio(&[("3\n", "6\n"), ("10\n", "55\n"), ("1\n", "1\n")]);
    let good = "n = int(input())\nprint(n * (n + 1) // 2)";
    let report = judge(sandbox(), good, &tests, &opts()).unwrap();
    assert!(report.passed, "{report:?}");
    assert_eq!(report.passed_count, 3);

    let off = "n = int(input())\nprint(n * (n + 1) // 2 + 1)";
    let report = judge(sandbox(), off, &tests, &opts()).unwrap();
    assert!(!report.passed);
    match &report.tests[0].status {
        TestStatus::WrongAnswer { diff } => assert!(diff.contains("line 1"), "{diff}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn crash_loop_and_memory_bomb_are_reported_and_do_not_stop_the_others() {
    let tests = stdio(&[
        ("crash\n", "ok\n"),
        ("loop\n", "ok\n"),
        ("bomb\n", "ok\n"),
        ("fine\n", "ok\n"),
    ]);
    let program = r#"
s = input()
if s == 'crash':
    raise ValueError('boom')
if s == 'loop':
    while True:
        pass
if s == 'bomb':
    x = bytearray(2**31 - 1)
print('ok')
"#;
    let report = judge(sandbox(), program, &tests, &opts()).unwrap();
    let statuses: Vec<_> = report.tests.iter().map(|t| t.status.clone()).collect();
    match &statuses[0] {
        TestStatus::RuntimeError { error } => {
            assert!(error.contains("ValueError: boom"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        statuses[1],
        TestStatus::LimitExceeded {
            limit: Limit::WallTime
        }
    );
    assert_eq!(
        statuses[2],
        TestStatus::LimitExceeded {
            limit: Limit::Memory
        }
    );
    assert_eq!(statuses[3], TestStatus::Passed);
    assert!(!report.passed);
}

#[test]
fn stdout_flood_is_capped() {
    let tests = stdio(&[("", "x\n")]);
    let o = JudgeOptions {
        output_bytes: 1000,
        ..opts()
    };
    let report = judge(sandbox(), "while True:\n    print('x' * 1000)", &tests, &o).unwrap();
    assert!(matches!(
        report.tests[0].status,
        TestStatus::LimitExceeded { .. }
    ));
    let report = judge(
        sandbox(),
        "for _ in range(10000):\n    print('x' * 1000)",
        &tests,
        &o,
    )
    .unwrap();
    assert!(report.tests[0].output_truncated);
    assert!(matches!(
        report.tests[0].status,
        TestStatus::WrongAnswer { .. }
    ));
}

#[test]
fn functional_solution_method_and_plain_function() {
    let tests: Tests = serde_json::from_str(
        r#"{"fn_name": "twoSum", "tests": [
            {"args": [[2,7,11,15], 9], "expected": [0,1]},
            {"args": [[3,2,4], 6], "expected": [1,2]}]}"#,
    )
    .unwrap();
    let program = r#"
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, n in enumerate(nums):
            if target - n in seen:
                return [seen[target - n], i]
            seen[n] = i
"#;
    let report = judge(sandbox(), program, &tests, &opts()).unwrap();
    assert!(report.passed, "{report:?}");
    let plain = "def twoSum(nums, target):\n    return [0, 1]";
    let report = judge(sandbox(), plain, &tests, &opts()).unwrap();
    assert_eq!(report.passed_count, 1);
}

#[test]
fn humaneval_check_candidate() {
    let tests: Tests = serde_json::from_str(
        r#"{"check": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n", "entry_point": "add"}"#,
    )
    .unwrap();
    let report = judge(
        sandbox(),
        "def add(a, b):\n    return a + b",
        &tests,
        &opts(),
    )
    .unwrap();
    assert!(report.passed);
    let report = judge(
        sandbox(),
        "def add(a, b):\n    return a - b",
        &tests,
        &opts(),
    )
    .unwrap();
    match &report.tests[0].status {
        TestStatus::RuntimeError { error } => assert!(error.contains("AssertionError"), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn early_stop_skips_the_rest() {
    let tests = stdio(&[("1\n", "2\n"), ("2\n", "3\n")]);
    let o = JudgeOptions {
        stop_on_first_failure: true,
        ..opts()
    };
    let report = judge(sandbox(), "print(0)", &tests, &o).unwrap();
    assert_eq!(report.tests[1].status, TestStatus::Skipped);
}
