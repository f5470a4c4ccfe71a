//! `start infer` is resumable: a run killed mid-way and rerun loses nothing and duplicates
//! nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use start::trajectory::Trajectory;

const PROBLEMS: usize = 10;

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn killed_run_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    let mut rows = String::new();
    for i in 0..PROBLEMS {
        rows.push_str(&format!(
            "{{\"id\": \"p{i}\", \"problem\": \"What is {i} + {i}?\"}}\n"
        ));
    }
    rows.push_str("this line is not JSON\n");
    std::fs::write(&input, rows).unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(
        &script,
        "I add. Wait, print(2 + 2)\n```\nThe answer follows.",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let command = || {
        let mut c = crate::start();
        c.args(["infer", "--quiet", "--no-end-hints", "--samples", "2"])
            .args(["--hint-gap-tokens", "0"])
            .arg("--model")
            .arg(format!("scripted:{}", script.display()))
            .arg("--scripted-delay-ms")
            .arg("25")
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output);
        c
    };

    // First run: kill it (SIGKILL) once a few trajectories are written.
    let mut child = command().spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&output).len() < 3 {
        assert!(Instant::now() < deadline, "the first run wrote nothing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended too early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = lines(&output);
    assert!(first.len() < 2 * PROBLEMS, "the run was not interrupted");

    // Second run: finishes the rest.
    let out = command().assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 11: not JSON"),
        "a bad line is reported: {stderr}"
    );
    let all = lines(&output);
    assert_eq!(all.len(), 2 * PROBLEMS, "{stderr}");
    // Nothing from the first run is lost: its complete lines are still the file's first lines.
    let complete_first: Vec<_> = first
        .iter()
        .filter(|l| serde_json::from_str::<Trajectory>(l).is_ok())
        .collect();
    for (a, b) in complete_first.iter().zip(&all) {
        assert_eq!(*a, b);
    }
    let mut keys = HashSet::new();
    for line in &all {
        let t: Trajectory = serde_json::from_str(line).unwrap();
        assert!(
            keys.insert((t.id.clone(), t.sample)),
            "duplicate {} {}",
            t.id,
            t.sample
        );
        assert_eq!(t.tool_calls.len(), 1);
        assert_eq!(t.tool_calls[0].stdout, "4\n");
    }
    assert_eq!(keys.len(), 2 * PROBLEMS);

    // Third run: nothing left to do.
    let out = command().assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("nothing to do: all {} trajectories", 2 * PROBLEMS)),
        "{stderr}"
    );
    assert_eq!(lines(&output).len(), 2 * PROBLEMS);
}

#[test]
fn shards_split_the_input_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    let rows: String = (0..5)
        .map(|i| format!("{{\"id\": \"q{i}\", \"problem\": \"Say {i}.\"}}\n"))
        .collect();
    std::fs::write(&input, rows).unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(&script, "Done.").unwrap();
    let mut ids = Vec::new();
    for shard in ["0/2", "1/2"] {
        let output = dir.path().join(format!("out{}.jsonl", &shard[..1]));
        crate::start()
            .args(["infer", "--quiet", "--no-end-hints", "--shard", shard])
            .arg("--model")
            .arg(format!("scripted:{}", script.display()))
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .assert_success();
        let shard_ids: Vec<String> = lines(&output)
            .iter()
            .map(|l| serde_json::from_str::<Trajectory>(l).unwrap().id)
            .collect();
        ids.push(shard_ids);
    }
    // By id (start::problem::Shard), not position: each shard holds exactly its ids.
    for (i, shard_ids) in ids.iter().enumerate() {
        let want: Vec<String> = (0..5)
            .map(|n| format!("q{n}"))
            .filter(|id| start::problem::Shard::of(id, 2) == i as u32)
            .collect();
        assert_eq!(shard_ids, &want, "shard {i}/2");
    }
    assert_eq!(ids[0].len() + ids[1].len(), 5);
}

#[test]
fn missing_model_and_strict_input_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"problem\": \"x\"}\n{bad\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let out = crate::start()
        .args(["infer", "--quiet", "--model", "/nonexistent/model.gguf"])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_code(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/model.gguf does not exist"),
        "{stderr}"
    );
    let out = crate::start()
        .args([
            "infer",
            "--quiet",
            "--strict",
            "--model",
            "/nonexistent/model.gguf",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_failure();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2: not JSON") && stderr.contains("--strict"),
        "{stderr}"
    );
}
