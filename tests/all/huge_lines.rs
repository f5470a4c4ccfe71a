//! A 200 MB single line in each JSONL input (problems, trajectories, judge batches, score pairs,
//! test files) is skipped without being read whole: the command names the file and the line,
//! goes on with the other lines, and its peak memory grows by far less than the line.
//!
//! The big line is a hole in a sparse file (NUL bytes, no newline), so it costs no disk.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HUGE_LINE_BYTES: u64 = 200 << 20;
/// More than any reader's limit may cost (the 64 MiB readers' buffer, doubled while growing),
/// far less than reading the 200 MB line.
const MAX_EXTRA_PEAK_BYTES: u64 = 160 << 20;

/// Writes `first`, then (if `huge`) a 200 MB line, then `last`: the huge one is line 2.
fn jsonl(dir: &Path, name: &str, first: &str, last: &str, huge: bool) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    writeln!(f, "{first}").unwrap();
    if huge {
        let at = f.stream_position().unwrap();
        f.set_len(at + HUGE_LINE_BYTES).unwrap();
        f.seek(SeekFrom::End(0)).unwrap();
    } else {
        f.write_all(b"{}").unwrap();
    }
    writeln!(f).unwrap();
    writeln!(f, "{last}").unwrap();
    path
}

/// Runs `cmd` and returns its output and its peak resident memory in bytes (from `wait4`, so
/// it is this child's own figure, whatever else the test binary runs).
fn run_measured(mut cmd: Command) -> (Output, u64) {
    use std::os::unix::process::ExitStatusExt;
    let shown = format!("{cmd:?}");
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let pid = child.id() as libc::pid_t;
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut child = child;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut b).unwrap();
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut b).unwrap();
        b
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are valid.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4 failed for {shown}");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, usage.ru_maxrss as u64 * 1024)
}

/// Runs `args` once on a small file and once on the huge one; checks the huge line is named
/// and skipped, the run succeeds, and memory stays bounded. Returns the huge run's stderr.
fn check(
    dir: &Path,
    args: &dyn Fn(&Path) -> Vec<String>,
    make: &dyn Fn(&Path, bool) -> PathBuf,
    limit: usize,
) -> String {
    let named = |input: &Path| format!("{}: line 2: longer than {limit} bytes", input.display());
    check_named(dir, args, make, &named)
}

/// As [`check`], with the message that must name the huge line.
fn check_named(
    dir: &Path,
    args: &dyn Fn(&Path) -> Vec<String>,
    make: &dyn Fn(&Path, bool) -> PathBuf,
    named: &dyn Fn(&Path) -> String,
) -> String {
    let run = |huge: bool| {
        let input = make(dir, huge);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_start"));
        cmd.args(args(&input)).current_dir(dir);
        let (out, peak) = run_measured(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "start {:?} failed ({}):\n{stderr}",
            args(&input),
            out.status
        );
        (stderr, peak, input)
    };
    let (_, small_peak, _) = run(false);
    let (stderr, huge_peak, input) = run(true);
    let named = named(&input);
    assert!(stderr.contains(&named), "expected {named:?} in:\n{stderr}");
    let extra = huge_peak.saturating_sub(small_peak);
    assert!(
        extra < MAX_EXTRA_PEAK_BYTES,
        "peak memory grew by {} MiB for a 200 MB line (small {} MiB, huge {} MiB)",
        extra >> 20,
        small_peak >> 20,
        huge_peak >> 20
    );
    stderr
}

/// `before`, then `input`, then `after`, as a command's arguments.
fn argv(before: &[&str], input: &Path, after: &[&str]) -> Vec<String> {
    let input = input.display().to_string();
    before
        .iter()
        .map(|s| s.to_string())
        .chain([input])
        .chain(after.iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn problems_for_infer() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.txt"), "The answer is \\boxed{2}.").unwrap();
    let make = |d: &Path, huge| {
        jsonl(
            d,
            "problems.jsonl",
            r#"{"id":"a","problem":"1+1?"}"#,
            r#"{"id":"b","problem":"2+0?"}"#,
            huge,
        )
    };
    let args = |input: &Path| {
        let out = input.with_file_name(format!("out-{}.jsonl", input.metadata().unwrap().len()));
        let _ = std::fs::remove_file(&out);
        let out = out.display().to_string();
        argv(
            &[
                "infer",
                "--quiet",
                "--model",
                "scripted:model.txt",
                "--input",
            ],
            input,
            &["--output", &out],
        )
    };
    let stderr = check(dir.path(), &args, &make, start::problem::MAX_LINE_BYTES);
    assert!(stderr.contains("wrote 2 trajectories"), "{stderr}");
}

#[test]
fn judge_batches() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let line = |id: u32| {
        format!(
            r#"{{"id":{id},"program":"print(input())","tests":[{{"input":"7\n","output":"7\n"}}]}}"#
        )
    };
    let make = |d: &Path, huge| jsonl(d, "batch.jsonl", &line(1), &line(2), huge);
    let args = |input: &Path| {
        argv(
            &["judge", "--quiet", "--input"],
            input,
            &["-o", "results.jsonl"],
        )
    };
    let stderr = check(dir.path(), &args, &make, start::judge::MAX_BATCH_LINE_BYTES);
    assert!(stderr.contains("2 of 2 programs passed"), "{stderr}");
}

#[test]
fn score_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let make = |d: &Path, huge| {
        jsonl(
            d,
            "pairs.jsonl",
            r#"{"gold":"1/2","pred":"0.5"}"#,
            r#"{"gold":"3","pred":"4"}"#,
            huge,
        )
    };
    let args = |input: &Path| {
        argv(
            &["score", "--no-sandbox", "--pairs"],
            input,
            &["--output", "out.jsonl"],
        )
    };
    let stderr = check(dir.path(), &args, &make, start::jsonl::MAX_LINE_BYTES);
    assert!(stderr.contains("2 pairs, 1 equal"), "{stderr}");
}

#[test]
fn trajectories_and_test_files_for_score() {
    let dir = tempfile::tempdir().unwrap();
    let trajectory = |id: &str| {
        let t = start::trajectory::TrajectoryBuilder::code(id)
            .model("```python\nprint(1)\n```")
            .build();
        serde_json::to_string(&t).unwrap()
    };
    // Trajectories.
    let make = |d: &Path, huge| {
        jsonl(
            d,
            "trajectories.jsonl",
            &trajectory("a"),
            &trajectory("b"),
            huge,
        )
    };
    let args = |input: &Path| {
        argv(
            &["score", "--no-sandbox", "--input"],
            input,
            &["--output", "scored.jsonl"],
        )
    };
    let stderr = check(dir.path(), &args, &make, start::jsonl::MAX_LINE_BYTES);
    assert!(stderr.contains("2 trajectories"), "{stderr}");
    // Test files (problems with tests).
    let small = jsonl(
        dir.path(),
        "t.jsonl",
        &trajectory("a"),
        &trajectory("b"),
        false,
    );
    let row = |id: &str| format!(r#"{{"id":"{id}","tests":[{{"input":"","output":"1\n"}}]}}"#);
    let make = |d: &Path, huge| jsonl(d, "problems.jsonl", &row("a"), &row("b"), huge);
    let small = small.display().to_string();
    let args = |input: &Path| {
        argv(
            &["score", "--no-sandbox", "--input", &small, "--problems"],
            input,
            &["--output", "scored.jsonl"],
        )
    };
    check(dir.path(), &args, &make, start::jsonl::MAX_LINE_BYTES);
}

#[test]
fn trajectory_file_resumed_by_infer() {
    crate::sandbox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.txt"), "The answer is \\boxed{2}.").unwrap();
    std::fs::write(
        dir.path().join("problems.jsonl"),
        "{\"id\":\"a\",\"problem\":\"1+1?\"}\n",
    )
    .unwrap();
    let trajectory = |id: &str| {
        let t = start::trajectory::TrajectoryBuilder::math(id)
            .model("2")
            .build();
        serde_json::to_string(&t).unwrap()
    };
    let make = |d: &Path, huge| jsonl(d, "out.jsonl", &trajectory("x"), &trajectory("y"), huge);
    let args = |output: &Path| {
        let before = [
            "infer",
            "--quiet",
            "--model",
            "scripted:model.txt",
            "--input",
            "problems.jsonl",
        ];
        argv(&[&before[..], &["--output"]].concat(), output, &[])
    };
    // The small run's line 2 is `{}`: also not a trajectory, so both runs say the same.
    let named = |output: &Path| {
        format!(
            "{}: 1 line(s) are not trajectories (malformed or over",
            output.display()
        )
    };
    let stderr = check_named(dir.path(), &args, &make, &named);
    assert!(
        stderr.contains("the first at line 2") && stderr.contains("wrote 1 trajectories"),
        "{stderr}"
    );
}
