//! `--sandbox-url`: judging, scoring and Hint-infer with their executions on a real
//! `startd --http` (a SandboxFusion-compatible server on a real TCP port), each compared with
//! the same work done in this process.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use start::executor::{
    ExecError, Executor, MAX_REPLAYED_CELLS, RemoteError, RemoteOptions, RemoteSandbox,
    RemoteSession, RemoteSessionError,
};
use start::infer::backend::scripted::ScriptedBackend;
use start::infer::driver::{Driver, GenerateOptions, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::judge::{JudgeOptions, JudgeReport, TestStatus, Tests, judge};
use start::problem::Problem;
use start::rft::score::{Method, Scorer};
use start::trajectory::{Segment, ToolStatus, Trajectory};
use start_daemon::testutil::TestDaemon;
use start_grade::answer::Verdict;
use start_sandbox::{Limit, Limits, SessionLimits, TurnLimits};

use crate::via_daemon::startd_binary;
use crate::{sandbox, start};

/// The URL of one `startd --http` with two workers for every test here, stopped when the
/// test process exits.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        sandbox(); // runtime prepared, so the daemon's workers start at once
        let (daemon, url) = TestDaemon::start_http(startd_binary(), &["--workers", "2"]);
        daemon.stop_at_exit();
        url
    })
}

fn remote() -> RemoteSandbox {
    RemoteSandbox::new(RemoteOptions::new(server())).unwrap()
}

fn opts() -> JudgeOptions {
    JudgeOptions {
        time_per_test: Duration::from_secs(2),
        memory_bytes: 128 << 20,
        ..JudgeOptions::default()
    }
}

/// A report without its timings, which differ from run to run.
fn untimed(mut report: JudgeReport) -> JudgeReport {
    report.wall_ms = 0.0;
    for t in &mut report.tests {
        t.wall_ms = 0.0;
        // Tracebacks name the same frames, but where the server ran the program its file may
        // be named apart; the kind of error is what a reward reads.
        if let TestStatus::RuntimeError { error } | TestStatus::SyntaxError { error } =
            &mut t.status
        {
            *error = error.lines().last().unwrap_or("").to_string();
        }
    }
    report
}

/// Every test shape, passing and failing every way a program can.
fn suites() -> Vec<(&'static str, &'static str, Value)> {
    let stdio = json!({"tests": [
        {"input": "2 3\n", "output": "5\n"},
        {"input": "10 -4\n", "output": "6\n"},
    ]});
    vec![
        (
            "stdio passes",
            "a, b = map(int, input().split())\nprint(a + b)",
            stdio.clone(),
        ),
        (
            "stdio wrong",
            "a, b = map(int, input().split())\nprint(a - b)",
            stdio.clone(),
        ),
        ("stdio raises", "raise ValueError('no')", stdio.clone()),
        ("stdio exits", "import sys\nsys.exit(4)", stdio.clone()),
        ("stdio syntax", "def f(:\n  pass", stdio.clone()),
        ("stdio loops", "while True: pass", stdio.clone()),
        (
            "stdio memory",
            "x = bytearray(1 << 30)\nprint(len(x))",
            stdio.clone(),
        ),
        (
            "stdio prints too much",
            "print('x' * (2 << 20))",
            json!({"tests": [{"input": "", "output": "x\n"}]}),
        ),
        (
            "functional",
            "class Solution:\n    def twoSum(self, nums: List[int], t: int) -> List[int]:\n        \
             seen = {}\n        for i, n in enumerate(nums):\n            if t - n in seen:\n                \
             return [seen[t - n], i]\n            seen[n] = i\n",
            json!({"fn_name": "twoSum", "tests": [
                {"args": [[2, 7, 11, 15], 9], "expected": [0, 1]},
                {"args": [[3, 3], 6], "expected": [1, 0]},
            ]}),
        ),
        (
            "functional loops",
            "def f(x):\n    while True: pass",
            json!({"fn_name": "f", "tests": [{"args": [1], "expected": 1}]}),
        ),
        (
            "humaneval",
            "def add(a, b):\n    return a + b\n",
            json!({"check": "def check(candidate):\n    assert candidate(1, 2) == 3\n    \
                   assert candidate(-1, 1) == 0\n", "entry_point": "add"}),
        ),
        (
            "humaneval wrong",
            "def add(a, b):\n    return a - b\n",
            json!({"check": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
                   "entry_point": "add"}),
        ),
        (
            "mbpp",
            "def sq(x):\n    return x * x\n",
            json!({"test_list": ["assert sq(2) == 4", "assert sq(3) == 10"],
                   "test_setup_code": "", "test_imports": []}),
        ),
    ]
}

#[test]
fn judging_on_a_server_gives_the_reports_of_judging_here() {
    let remote = remote();
    for (name, program, tests) in suites() {
        let tests: Tests = serde_json::from_value(tests).unwrap();
        let here = judge(sandbox(), program, &tests, &opts()).unwrap();
        let there = judge(&remote, program, &tests, &opts()).unwrap();
        assert_eq!(untimed(there), untimed(here), "{name}");
    }
    // Each failure is the one it should be, so the comparison above compares something.
    let status = |name: &str| {
        let (_, program, tests) = suites().into_iter().find(|s| s.0 == name).unwrap();
        let tests: Tests = serde_json::from_value(tests).unwrap();
        judge(&remote, program, &tests, &opts()).unwrap().tests[0]
            .status
            .clone()
    };
    assert_eq!(status("stdio passes"), TestStatus::Passed);
    assert!(status("stdio wrong").is_wrong_answer());
    assert!(
        matches!(status("stdio raises"), TestStatus::RuntimeError { error } if error.contains("ValueError: no"))
    );
    assert!(matches!(
        status("stdio syntax"),
        TestStatus::SyntaxError { .. }
    ));
    for (name, limit) in [
        ("stdio loops", Limit::WallTime),
        ("stdio memory", Limit::Memory),
        ("functional loops", Limit::WallTime),
    ] {
        assert_eq!(status(name), TestStatus::LimitExceeded { limit }, "{name}");
    }
    assert!(matches!(
        status("stdio prints too much"),
        TestStatus::OutputLimitExceeded { .. }
    ));
}

#[test]
fn a_fresh_remote_execution_reads_back_as_a_local_one() {
    let remote = Executor::Remote(&remote());
    let limits = |stdin: &str| Limits {
        wall_time: Duration::from_secs(2),
        stdin: stdin.into(),
        stdout_bytes: 64,
        ..Limits::default()
    };
    let cases: [(&str, &str); 6] = [
        ("print(input()[::-1])", "olleh"),
        ("import sys; sys.exit(3)", ""),
        ("1/0", ""),
        ("while True: pass", ""),
        ("print('y' * 1000)", ""),
        (
            "import sys; print('e', file=sys.stderr); print(sum(range(10)))",
            "",
        ),
    ];
    for (code, stdin) in cases {
        let here = Executor::Local(sandbox())
            .exec(code, &limits(stdin))
            .unwrap();
        let there = remote.exec(code, &limits(stdin)).unwrap();
        assert_eq!(
            (
                &there.status,
                &there.stdout,
                there.stdout_truncated,
                &there.stderr
            ),
            (
                &here.status,
                &here.stdout,
                here.stdout_truncated,
                &here.stderr
            ),
            "{code}"
        );
    }
}

fn problem() -> Problem {
    Problem::math("p", "Compute something.")
}

fn tool_outputs(t: &Trajectory) -> Vec<(ToolStatus, String)> {
    t.tool_calls
        .iter()
        .zip(t.segments.iter().filter_map(|s| match s {
            Segment::Output { text, .. } => Some(text.clone()),
            _ => None,
        }))
        .map(|(c, text)| (c.status, text))
        .collect()
}

#[test]
fn hint_infer_sessions_on_a_server_carry_state_as_here() {
    // Four blocks: state set, state used, an exception that keeps the state, a block that runs
    // out of time (ending the interpreter), then a block that finds the state gone.
    let script = "Let me compute. Wait, ```python\nx = 41\nimport math\n```\n\
                  Wait, ```python\nprint(x + 1, math.factorial(5))\n```\n\
                  Wait, ```python\nraise KeyError('k')\n```\n\
                  Wait, ```python\nprint(x)\nwhile True: pass\n```\n\
                  Wait, ```python\nprint(x)\n```\nDone.";
    let options = GenerateOptions {
        policy: InsertPolicy {
            max_hints: 0,
            max_trigger_hints: 0,
            before_end: false,
            ..InsertPolicy::default()
        },
        turn_limits: TurnLimits {
            wall_time: Duration::from_secs(1),
            ..GenerateOptions::default().turn_limits
        },
        ..GenerateOptions::default()
    };
    let backend = ScriptedBackend::new(script);
    let hints = HintLibrary::bundled();
    let driver = Driver::new(&backend, &hints, &options);
    let here = driver
        .run(
            &problem(),
            0,
            &mut SessionRunner::for_options(sandbox(), &options),
        )
        .unwrap();
    let remote = remote();
    let there = driver
        .run(
            &problem(),
            0,
            &mut SessionRunner::for_options(&remote, &options),
        )
        .unwrap();
    let (here, there) = (tool_outputs(&here), tool_outputs(&there));
    assert_eq!(there.len(), 5, "{there:?}");
    assert_eq!(
        there[1],
        (ToolStatus::Finished, "\n```output\n42 120\n```\n".into())
    );
    assert_eq!(there[2].0, ToolStatus::Exception);
    assert!(there[2].1.contains("KeyError: 'k'"), "{}", there[2].1);
    assert_eq!(there[3].0, ToolStatus::LimitExceeded);
    assert!(
        there[3].1.contains("TimeoutError: execution exceeded 1 s"),
        "{}",
        there[3].1
    );
    assert_eq!(there[4].0, ToolStatus::Exception);
    assert!(
        there[4].1.contains("restarted") && there[4].1.contains("NameError"),
        "{}",
        there[4].1
    );
    // Tracebacks name the cells alike; everything the model reads is the same.
    assert_eq!(there, here);
}

#[test]
fn a_remote_session_holds_at_most_its_replayed_cells() {
    let remote = remote();
    let mut session = RemoteSession::open(&remote, SessionLimits::default());
    let turn = TurnLimits::default();
    session.run("n = 0", &turn).unwrap();
    for _ in 1..MAX_REPLAYED_CELLS {
        session.run("n += 1", &turn).unwrap();
    }
    // A 65th cell is refused, and the session stays ended.
    let last = session.run("print(n)", &turn);
    assert!(
        matches!(last, Err(RemoteSessionError::Ended(_))),
        "{last:?}"
    );
    assert!(session.ended().is_some());
    // Up to the cap every turn runs the earlier cells again, each once, in a fresh interpreter.
    let mut session = RemoteSession::open(&remote, SessionLimits::default());
    for _ in 1..MAX_REPLAYED_CELLS {
        session.run("n = globals().get('n', 0) + 1", &turn).unwrap();
    }
    assert_eq!(
        session.run("print(n)", &turn).unwrap().stdout,
        format!("{}\n", MAX_REPLAYED_CELLS - 1)
    );
}

#[test]
fn sympy_checks_run_on_the_server() {
    let remote = remote();
    let scorer = Scorer::new(Some(Executor::Remote(&remote)));
    for (gold, pred, want) in [
        ("e^{i\\pi}", "-1", Verdict::Equal),
        ("e^{i\\pi}", "1", Verdict::NotEqual),
    ] {
        assert_eq!(
            scorer.equal(gold, pred),
            (want, Method::Sympy),
            "{gold} vs {pred}"
        );
    }
}

#[test]
fn the_cli_judges_scores_and_infers_through_the_server() {
    let url = server();
    let dir = tempfile::tempdir().unwrap();
    // A batch from the HumanEval-like problems: each right and wrong completion.
    let mut batch = std::fs::File::create(dir.path().join("batch.jsonl")).unwrap();
    let problems = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/judge/humaneval_like.jsonl"
    ))
    .unwrap();
    let mut lines = 0;
    for line in problems.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        for (which, program) in [("right", &p["completion"]), ("wrong", &p["wrong"])] {
            let id = format!("{}/{which}", p["task_id"].as_str().unwrap());
            let row = json!({"id": id, "program": program, "check": p["check"],
                "entry_point": p["entry_point"], "prompt": p["prompt"]});
            writeln!(batch, "{row}").unwrap();
            lines += 1;
        }
    }
    drop(batch);
    let verdicts = |extra: &[&str]| {
        let out = start()
            .args(["judge", "--quiet", "--input"])
            .arg(dir.path().join("batch.jsonl"))
            .args(extra)
            .stdout();
        let mut v: Vec<(String, bool)> = out
            .lines()
            .map(|l| {
                let r: Value = serde_json::from_str(l).unwrap();
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["passed"].as_bool().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let there = verdicts(&["--sandbox-url", url]);
    assert_eq!(there.len(), lines);
    assert!(
        there
            .iter()
            .all(|(id, passed)| *passed == id.ends_with("/right")),
        "{there:?}"
    );
    assert_eq!(there, verdicts(&[]));

    // Pairs that need sympy.
    std::fs::write(
        dir.path().join("pairs.jsonl"),
        "{\"gold\": \"e^{i\\\\pi}\", \"pred\": \"-1\"}\n{\"gold\": \"e^{i\\\\pi}\", \"pred\": \"2\"}\n",
    )
    .unwrap();
    let out = start()
        .args([
            "score",
            "--quiet",
            "--bare",
            "--sandbox-url",
            url,
            "--pairs",
        ])
        .arg(dir.path().join("pairs.jsonl"))
        .stdout();
    let equal: Vec<bool> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["equal"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(equal, [true, false]);

    // Hint-infer with a scripted model: the block runs on the server.
    std::fs::write(
        dir.path().join("script.txt"),
        "Wait, ```python\nprint(6 * 7)\n```\nDone.",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("problems.jsonl"),
        "{\"id\": \"q\", \"problem\": \"What is 6 * 7?\", \"answer\": \"42\"}\n",
    )
    .unwrap();
    let model = format!("scripted:{}", dir.path().join("script.txt").display());
    start()
        .args([
            "infer",
            "--quiet",
            "--model",
            &model,
            "--sandbox-url",
            url,
            "--input",
        ])
        .arg(dir.path().join("problems.jsonl"))
        .arg("--output")
        .arg(dir.path().join("t.jsonl"))
        .assert_success();
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap())
            .unwrap();
    assert_eq!(t["tool_calls"][0]["stdout"], "42\n", "{t}");
    let output = t["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "output")
        .unwrap();
    assert_eq!(output["text"], "\n```output\n42\n```\n", "{t}");
}

#[test]
fn a_server_that_is_not_there_or_refuses_fails_clearly() {
    // Nothing listens on port 1: the ping fails before any work, with the URL in the message.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.py"), "print(1)").unwrap();
    std::fs::write(
        dir.path().join("t.json"),
        r#"{"tests": [{"input": "", "output": "1\n"}]}"#,
    )
    .unwrap();
    let out = start()
        .args([
            "judge",
            "--quiet",
            "--sandbox-url",
            "http://127.0.0.1:1",
            "--program",
        ])
        .arg(dir.path().join("p.py"))
        .arg("--tests")
        .arg(dir.path().join("t.json"))
        .assert_failure();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http://127.0.0.1:1") && stderr.contains("cannot reach"),
        "{stderr}"
    );
    let out = start()
        .args(["judge", "--sandbox-url", "127.0.0.1:8080", "--program"])
        .arg(dir.path().join("p.py"))
        .arg("--tests")
        .arg(dir.path().join("t.json"))
        .assert_failure();
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));

    // In the library: unreachable is fatal to a batch; code over the server's limit is refused
    // (not retried) and shown to a model as not run.
    let mut options = RemoteOptions::new("http://127.0.0.1:1");
    options.attempts = 2;
    options.backoff = Duration::from_millis(1);
    let gone = RemoteSandbox::new(options).unwrap();
    let err = Executor::Remote(&gone)
        .exec("print(1)", &Limits::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExecError::Remote(RemoteError::Unreachable { attempts: 2, .. })
        ),
        "{err}"
    );
    assert!(err.is_fatal());
    let huge = "#".repeat(start_sandbox::MAX_CODE_BYTES + 1);
    let err = Executor::Remote(&remote())
        .exec(&huge, &Limits::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExecError::Remote(RemoteError::Refused { status: 422, .. })
        ),
        "{err}"
    );
    assert!(err.not_run_reason().is_some() && !err.is_fatal());
}

#[test]
fn a_token_protected_server_needs_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    sandbox();
    let (_daemon, url) = TestDaemon::start_http(
        startd_binary(),
        &[
            "--workers",
            "1",
            "--http-token-file",
            token.to_str().unwrap(),
        ],
    );
    std::fs::write(dir.path().join("p.py"), "print(input())").unwrap();
    std::fs::write(
        dir.path().join("t.json"),
        r#"{"tests": [{"input": "hi", "output": "hi\n"}]}"#,
    )
    .unwrap();
    let judge = |extra: &[&str]| {
        let mut cmd = start();
        cmd.args(["judge", "--quiet", "--sandbox-url", &url, "--program"])
            .arg(dir.path().join("p.py"))
            .arg("--tests")
            .arg(dir.path().join("t.json"))
            .args(extra);
        cmd
    };
    let out = judge(&[]).assert_failure();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&judge(&["--sandbox-token-file", token.to_str().unwrap()]).stdout())
            .unwrap();
    assert_eq!(report["passed"], true);
}
