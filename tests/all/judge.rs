//! The judge with the real runtime: right, wrong, crashing, looping and memory-hungry programs,
//! and each benchmark shape judged as its own harness does (HumanEval checks in the program's
//! namespace, MBPP assert lists, the stdout rules of LiveCodeBench, APPS and CodeContests,
//! LeetCode `Solution` methods).

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
    // Whether it loops on or ends, output past the cap is the output limit, not a wrong answer.
    for program in [
        "while True:\n    print('x' * 1000)",
        "for _ in range(10000):\n    print('x' * 1000)",
    ] {
        let report = judge(sandbox(), program, &tests, &o).unwrap();
        assert!(report.tests[0].output_truncated);
        assert_eq!(
            report.tests[0].status,
            TestStatus::OutputLimitExceeded { output_bytes: 1000 },
            "{program}"
        );
    }
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
    // A failed assert of the check is a wrong answer, with the assert and both its sides.
    let failed = &report.tests[0];
    match &failed.status {
        TestStatus::WrongAnswer { diff } => assert!(diff.contains("AssertionError"), "{diff}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        failed.input.as_deref(),
        Some("assert candidate(2, 3) == 5"),
        "{failed:?}"
    );
    assert_eq!(
        (failed.got.as_deref(), failed.expected.as_deref()),
        (Some("-1"), Some("5"))
    );
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

fn tests_of(value: serde_json::Value) -> Tests {
    serde_json::from_value(value).unwrap()
}

/// The HumanEval-like problems of `tests/judge/humaneval_like.jsonl` (written for these tests).
fn humaneval_like() -> Vec<serde_json::Value> {
    include_str!("../judge/humaneval_like.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn humaneval_tests(row: &serde_json::Value) -> Tests {
    tests_of(serde_json::json!({
        "prompt": row["prompt"], "check": row["check"], "entry_point": row["entry_point"]
    }))
}

#[test]
fn humaneval_checks_run_in_the_programs_namespace_as_the_harness_does() {
    let rows = humaneval_like();
    assert!(rows.len() >= 6);
    for row in &rows {
        let id = row["task_id"].as_str().unwrap();
        let tests = humaneval_tests(row);
        let right = row["completion"].as_str().unwrap();
        let report = judge(sandbox(), right, &tests, &opts()).unwrap();
        assert!(
            report.passed,
            "{id}: the right completion fails: {report:?}"
        );
        let wrong = row["wrong"].as_str().unwrap();
        let report = judge(sandbox(), wrong, &tests, &opts()).unwrap();
        assert!(
            matches!(report.tests[0].status, TestStatus::WrongAnswer { .. }),
            "{id}: the wrong completion is not a wrong answer: {report:?}"
        );
    }
    // Without the prompt, a check that calls the prompt's helper cannot run: the prompt is part
    // of the program, as in HumanEval.
    let helper = rows.iter().find(|r| r["task_id"] == "like/helper").unwrap();
    let bare = tests_of(serde_json::json!({
        "check": helper["check"], "entry_point": helper["entry_point"]
    }));
    let report = judge(
        sandbox(),
        helper["completion"].as_str().unwrap(),
        &bare,
        &opts(),
    )
    .unwrap();
    assert!(
        matches!(
            &report.tests[0].status,
            TestStatus::SyntaxError { .. } | TestStatus::RuntimeError { .. }
        ),
        "{report:?}"
    );
}

#[test]
fn humaneval_exits_crashes_and_syntax_errors_are_told_apart() {
    let rows = humaneval_like();
    let row = rows
        .iter()
        .find(|r| r["task_id"] == "like/constant")
        .unwrap();
    let tests = humaneval_tests(row);
    // A program that exits before the check runs must not pass it.
    let report = judge(sandbox(), "    raise SystemExit(0)\n", &tests, &opts()).unwrap();
    match &report.tests[0].status {
        TestStatus::RuntimeError { error } => assert!(error.contains("SystemExit"), "{error}"),
        other => panic!("{other:?}"),
    }
    // An exception inside the candidate is a crash, not a wrong answer.
    let report = judge(sandbox(), "    return 1 // 0\n", &tests, &opts()).unwrap();
    match &report.tests[0].status {
        TestStatus::RuntimeError { error } => {
            assert!(error.contains("ZeroDivisionError"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let report = judge(sandbox(), "    return (\n", &tests, &opts()).unwrap();
    assert!(
        matches!(report.tests[0].status, TestStatus::SyntaxError { .. }),
        "{report:?}"
    );
    let report = judge(
        sandbox(),
        "    while True:\n        pass\n",
        &tests,
        &opts(),
    )
    .unwrap();
    assert_eq!(
        report.tests[0].status,
        TestStatus::LimitExceeded {
            limit: Limit::WallTime
        }
    );
}

#[test]
fn mbpp_assert_list_with_setup_code_and_imports() {
    let tests = tests_of(serde_json::json!({
        "test_imports": ["import math"],
        "test_setup_code": "SCALE = 10\nshapes = [(1, 2), (3, 4)]",
        "test_list": [
            "assert total_area(shapes) == 14 * SCALE",
            "assert total_area([]) == 0",
            "assert math.isclose(total_area([(0.5, 0.5)]), 2.5)",
        ]
    }));
    let right = "def total_area(rects):\n    return sum(w * h for w, h in rects) * SCALE\n";
    let report = judge(sandbox(), right, &tests, &opts()).unwrap();
    assert!(report.passed, "{report:?}");
    assert_eq!(report.tests.len(), 3);

    // Wrong on the first assert only: that one is the wrong answer, with both sides shown.
    let wrong = "def total_area(rects):\n    return sum(w * h for w, h in rects)\n";
    let report = judge(sandbox(), wrong, &tests, &opts()).unwrap();
    let first = &report.tests[0];
    assert!(first.status.is_wrong_answer(), "{first:?}");
    assert_eq!(
        first.input.as_deref(),
        Some("assert total_area(shapes) == 14 * SCALE")
    );
    assert_eq!(
        (first.got.as_deref(), first.expected.as_deref()),
        (Some("14"), Some("140"))
    );
    assert_eq!(report.tests[1].status, TestStatus::Passed);

    let report = judge(
        sandbox(),
        "def total_area(rects)\n    return 0\n",
        &tests,
        &opts(),
    )
    .unwrap();
    assert!(
        report
            .tests
            .iter()
            .all(|t| matches!(t.status, TestStatus::SyntaxError { .. })),
        "{report:?}"
    );
}

#[test]
fn livecodebench_stdin_suite_whitespace_and_exact_decimals() {
    let lcb = |pairs: &[(&str, &str)]| {
        tests_of(serde_json::json!({
            "compare": "livecodebench",
            "tests": pairs.iter().map(|(i, o)| serde_json::json!({"input": i, "output": o})).collect::<Vec<_>>()
        }))
    };
    // `deque` comes from LiveCodeBench's own imports; spacing around and between numbers, and
    // a trailing blank line, do not count.
    let program = "q = deque(map(int, input().split()))\nq.rotate(1)\nprint(' ', *q, ' ', sep='  ')\nprint()\n";
    let tests = lcb(&[("1 2 3\n", "3 1 2\n"), ("5\n", "5\n")]);
    let report = judge(sandbox(), program, &tests, &opts()).unwrap();
    assert!(report.passed, "{report:?}");
    // Without those imports the same program is a runtime error.
    let report = judge(sandbox(), program, &stdio(&[("5\n", "5\n")]), &opts()).unwrap();
    assert!(
        matches!(&report.tests[0].status, TestStatus::RuntimeError { error } if error.contains("NameError")),
        "{report:?}"
    );
    // Decimals: 0.50 is 0.5, but there is no tolerance.
    let tests = lcb(&[("", "0.5\n"), ("", "0.3333333\n")]);
    let report = judge(sandbox(), "print('0.50')", &lcb(&[("", "0.5\n")]), &opts()).unwrap();
    assert!(report.passed, "{report:?}");
    let report = judge(sandbox(), "print(1/3)", &tests, &opts()).unwrap();
    let failed = &report.tests[1];
    assert!(failed.status.is_wrong_answer(), "{report:?}");
    assert_eq!(failed.expected.as_deref(), Some("0.3333333\n"));
    assert_eq!(failed.got.as_deref(), Some("0.3333333333333333\n"));
    // The project's default rule allows 1e-6.
    let report = judge(
        sandbox(),
        "print(1/3)",
        &stdio(&[("", "0.3333333\n")]),
        &opts(),
    )
    .unwrap();
    assert!(report.passed, "{report:?}");
}

#[test]
fn apps_and_codecontests_stdin_rules() {
    let suite = |rule: &str, expected: &str| {
        tests_of(serde_json::json!({"compare": rule, "tests": [{"input": "", "output": expected}]}))
    };
    // APPS: numpy.allclose on one-number lines, order-free token sets.
    let cases = [
        ("apps", "print(2 ** 0.5)", "1.414213\n", true),
        ("apps", "print(1.5)", "1.6\n", false),
        ("apps", "print('2 1')\nprint('  4 3')", "3 4\n1 2\n", true),
        ("apps", "print('yes')", "YES\n", false),
        // CodeContests: tokens across lines, lowercased, numbers within 1e-5 absolutely.
        (
            "codecontests",
            "print('YES')\nprint(0.500001, 2)",
            "yes 0.5\n2\n",
            true,
        ),
        ("codecontests", "print(0.5001)", "0.5\n", false),
        ("codecontests", "print('a b c')", "a b\n", false),
        ("exact", "print(1, end='')", "1\n", false),
    ];
    for (rule, program, expected, pass) in cases {
        let report = judge(sandbox(), program, &suite(rule, expected), &opts()).unwrap();
        assert_eq!(
            report.passed, pass,
            "{rule}: {program:?} against {expected:?}: {report:?}"
        );
        if !pass {
            match &report.tests[0].status {
                TestStatus::WrongAnswer { diff } => {
                    assert!(diff.starts_with(&format!("[{rule}]")), "{diff}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn stdio_syntax_errors_are_not_runtime_errors() {
    let tests = stdio(&[("1\n", "1\n"), ("2\n", "2\n")]);
    let report = judge(sandbox(), "print(input()", &tests, &opts()).unwrap();
    for t in &report.tests {
        match &t.status {
            TestStatus::SyntaxError { error } => assert!(error.contains("SyntaxError"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
    // A SyntaxError the program raises while running is a runtime error.
    let report = judge(sandbox(), "eval(input() + ' +')", &tests, &opts()).unwrap();
    assert!(
        matches!(report.tests[0].status, TestStatus::RuntimeError { .. }),
        "{report:?}"
    );
}

#[test]
fn leetcode_solution_method_with_typing_and_a_raising_call() {
    let tests = tests_of(serde_json::json!({
        "fn_name": "topKFrequent",
        "tests": [
            {"args": [[1, 1, 1, 2, 2, 3], 2], "expected": [1, 2]},
            {"args": [[4], 1], "expected": [4]},
            {"args": [[], 1], "expected": []}
        ]
    }));
    // LeetCode's judge (and LiveCodeBench's) pre-imports `List` and `Counter`.
    let program = r#"
class Solution:
    def topKFrequent(self, nums: List[int], k: int) -> List[int]:
        if not nums:
            raise ValueError("empty input")
        return tuple(x for x, _ in Counter(nums).most_common(k))
"#;
    let report = judge(sandbox(), program, &tests, &opts()).unwrap();
    assert_eq!(report.passed_count, 2, "{report:?}");
    let raised = &report.tests[2];
    match &raised.status {
        TestStatus::RuntimeError { error } => {
            assert!(error.contains("ValueError: empty input"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(raised.input.as_deref(), Some("[[],1]"));
    assert_eq!(raised.expected.as_deref(), Some("[]"));
    assert_eq!(raised.got, None);

    // A wrong value shows what came back.
    let wrong = "class Solution:\n    def topKFrequent(self, nums, k):\n        return [0]\n";
    let report = judge(sandbox(), wrong, &tests, &opts()).unwrap();
    assert_eq!(report.tests[1].got.as_deref(), Some("[0]"));
    // A value past the output cap is the output limit.
    let huge = "def topKFrequent(nums, k):\n    return list(range(10 ** 5))\n";
    let small = JudgeOptions {
        output_bytes: 1000,
        ..opts()
    };
    let report = judge(sandbox(), huge, &tests, &small).unwrap();
    assert_eq!(
        report.tests[0].status,
        TestStatus::OutputLimitExceeded { output_bytes: 1000 }
    );
    // A main block is not run: the program is loaded as a module.
    let main =
        "def topKFrequent(nums, k):\n    return [4]\nif __name__ == '__main__':\n    input()\n";
    let report = judge(sandbox(), main, &tests, &opts()).unwrap();
    assert_eq!(report.tests[1].status, TestStatus::Passed, "{report:?}");
}

#[test]
fn judge_cli_reports_an_mbpp_failure_with_the_failing_assert() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("p.py");
    std::fs::write(&prog, "def double(x):\n    return x + 2\n").unwrap();
    let tests = dir.path().join("t.json");
    std::fs::write(
        &tests,
        r#"{"test_list": ["assert double(2) == 4", "assert double(5) == 10"]}"#,
    )
    .unwrap();
    let out = crate::start()
        .args(["judge", "--program"])
        .arg(&prog)
        .arg("--tests")
        .arg(&tests)
        .output();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed_count"], 1, "{report}");
    let failed = &report["tests"][1];
    assert_eq!(failed["status"]["kind"], "wrong_answer", "{report}");
    assert_eq!(failed["input"], "assert double(5) == 10");
    assert_eq!(
        (&failed["got"], &failed["expected"]),
        (&"7".into(), &"10".into())
    );
}

/// Programs that try to make a failing test report a pass by rebinding what a harness would use
/// to report (`json.dumps`, `print`, `sys.stdout`, the harness's own module), or by writing a
/// report of their own where the harness's should be. Every one is still judged on its answer.
#[test]
fn a_program_cannot_forge_a_passing_report() {
    let forged = r#"'{"kind": "ok", "trunc": false}'"#;
    let tricks = [
        format!("import json\njson.dumps = lambda *a, **k: {forged}\n"),
        format!(
            "import builtins\nbuiltins.print = lambda *a, **k: __import__('sys').__stdout__.write({forged} + '\\n')\n"
        ),
        format!(
            "import sys\nclass W:\n    def write(self, s):\n        return sys.__stdout__.write({forged} + '\\n')\n    def flush(self):\n        pass\nsys.stdout = W()\n"
        ),
        format!(
            "import _judge\n_judge._ENCODE = lambda res, level: [{forged}]\n_judge._go = lambda *a, **k: print({forged})\n_judge.asserts = _judge.check = lambda *a, **k: print({forged})\n"
        ),
        // A forged report as the last line of the real stdout, the harness's pushed past the cap.
        format!("import sys\nsys.__stdout__.write('x' * (70 << 10) + '\\n' + {forged} + '\\n')\n"),
    ];
    let humaneval = tests_of(serde_json::json!({
        "check": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    }));
    let mbpp = tests_of(serde_json::json!({
        "test_list": ["assert add(1, 1) == 0", "assert add(2, 3) == 5", "assert add(4, 4) == 8"]
    }));
    let small = JudgeOptions {
        output_bytes: 1000,
        ..opts()
    };
    // Subtraction: right on MBPP's first assert only, wrong on everything else.
    let wrong = "def add(a, b):\n    return a - b\n";
    for trick in &tricks {
        let program = format!("{trick}{wrong}");
        let report = judge(sandbox(), &program, &humaneval, &small).unwrap();
        assert!(
            !report.passed,
            "forged a HumanEval pass with\n{trick}\n{report:?}"
        );
        let report = judge(sandbox(), &program, &mbpp, &small).unwrap();
        assert!(
            report.tests[1..]
                .iter()
                .all(|t| t.status != TestStatus::Passed),
            "forged an MBPP pass with\n{trick}\n{report:?}"
        );
    }
    // A right program that writes half a line to the real stdout is still read right.
    let right =
        "import sys\nsys.__stdout__.write('no newline')\ndef add(a, b):\n    return a + b\n";
    let report = judge(sandbox(), right, &humaneval, &small).unwrap();
    assert!(report.passed, "{report:?}");
}
