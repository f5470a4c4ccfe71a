//! Sharding by id and `start merge` (issue 15, acceptance 4): three shards of `start infer`,
//! run locally with a scripted model, each reading its own copy of the problems in its own
//! order, merged, equal one unsharded run: the same (id, sample) set, no duplicates, the same
//! trajectories. The merge is idempotent and reports what it drops.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use start::problem::Shard;
use start::trajectory::Trajectory;

const PROBLEMS: usize = 15;
const SAMPLES: u32 = 2;
const SHARDS: u32 = 3;

/// The problems file with its rows in `order`.
fn problems(dir: &Path, name: &str, order: &[usize]) -> PathBuf {
    let path = dir.join(name);
    let rows: String = order
        .iter()
        .map(|i| format!("{{\"id\": \"q{i}\", \"problem\": \"What is {i} + {i}?\"}}\n"))
        .collect();
    std::fs::write(&path, rows).unwrap();
    path
}

fn infer(script: &Path, input: &Path, output: &Path, shard: Option<u32>) {
    let mut c = crate::start();
    c.args(["infer", "--quiet", "--samples", &SAMPLES.to_string()])
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    if let Some(i) = shard {
        c.arg("--shard").arg(format!("{i}/{SHARDS}"));
    }
    c.assert_success();
}

/// The trajectories of a file by (id, sample), with timings zeroed (they differ run to run),
/// and the number of lines.
fn trajectories(path: &Path) -> (BTreeMap<(String, u32), Trajectory>, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut all = BTreeMap::new();
    for line in text.lines() {
        let mut t: Trajectory = serde_json::from_str(line).unwrap();
        t.wall_ms = 0.0;
        t.generate_ms = 0.0;
        for call in &mut t.tool_calls {
            call.exec_ms = 0.0;
            call.driver_ms = 0.0;
        }
        all.insert((t.id.clone(), t.sample), t);
    }
    (all, text.lines().count())
}

#[test]
fn three_shards_in_any_row_order_merge_into_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = d.join("script.txt");
    std::fs::write(&script, "I add. Wait, print(2 + 2)\n```\nSo \\boxed{4}.").unwrap();
    let forward: Vec<usize> = (0..PROBLEMS).collect();

    let whole = d.join("whole.jsonl");
    infer(&script, &problems(d, "in.jsonl", &forward), &whole, None);
    let (expected, lines) = trajectories(&whole);
    assert_eq!(lines, PROBLEMS * SAMPLES as usize);
    assert_eq!(expected.len(), lines);

    // Each shard reads its own copy of the rows, in its own order.
    let mut reversed = forward.clone();
    reversed.reverse();
    let mut rotated = forward.clone();
    rotated.rotate_left(PROBLEMS / 2);
    let orders = [forward, reversed, rotated];
    let mut shard_files = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let input = problems(d, &format!("in-{i}.jsonl"), order);
        let output = d.join(format!("shard-{i}.jsonl"));
        infer(&script, &input, &output, Some(i as u32));
        let (got, lines) = trajectories(&output);
        assert!(lines > 0, "shard {i} is empty: pick other ids");
        assert_eq!(got.len(), lines);
        for (id, _) in got.keys() {
            assert_eq!(Shard::of(id, SHARDS), i as u32, "{id} is not shard {i}'s");
        }
        shard_files.push(output);
    }

    let merged = d.join("merged.jsonl");
    let out = crate::start()
        .arg("merge")
        .arg("--output")
        .arg(&merged)
        .args(&shard_files)
        .assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 were there, 30 added"), "{stderr}");
    let (got, lines) = trajectories(&merged);
    assert_eq!(lines, got.len(), "no duplicates");
    let want: BTreeSet<_> = expected.keys().collect();
    assert_eq!(got.keys().collect::<BTreeSet<_>>(), want);
    for (key, t) in &expected {
        assert_eq!(&got[key], t, "{key:?} differs from the unsharded run");
    }

    // Idempotent: merging again, or with the unsharded file too, adds nothing and says why.
    let skipped = d.join("skipped.jsonl");
    let out = crate::start()
        .arg("merge")
        .arg("--output")
        .arg(&merged)
        .arg("--skipped")
        .arg(&skipped)
        .args(&shard_files)
        .arg(&whole)
        .assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("30 were there, 0 added"), "{stderr}");
    assert!(stderr.contains("dropped 60 duplicates"), "{stderr}");
    assert!(stderr.contains("the output already holds it"), "{stderr}");
    let reasons: Vec<serde_json::Value> = std::fs::read_to_string(&skipped)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reasons.len(), 60);
    assert!(reasons.iter().all(|r| r["reason"] == "duplicate"));
    assert_eq!(trajectories(&merged).1, lines);
}

#[test]
fn merge_skips_torn_and_malformed_lines_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = d.join("script.txt");
    std::fs::write(&script, "Two. \\boxed{2}").unwrap();
    let input = problems(d, "in.jsonl", &[1, 2, 3]);
    let shard = d.join("shard.jsonl");
    infer(&script, &input, &shard, None);
    let text = std::fs::read_to_string(&shard).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().unwrap();
    // A shard still being written: five trajectories, a malformed line, and half of its
    // last trajectory.
    let partial = format!(
        "{}\nnot json\n{}",
        lines.join("\n"),
        &last[..last.len() / 2]
    );
    let writing = d.join("writing.jsonl");
    std::fs::write(&writing, partial).unwrap();
    let merged = d.join("merged.jsonl");
    let merge = || {
        crate::start()
            .arg("merge")
            .arg("--output")
            .arg(&merged)
            .arg(&writing)
            .assert_success()
    };
    let out = merge();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("writing.jsonl: line 6: not a trajectory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 7: the last line has no newline"),
        "{stderr}"
    );
    assert!(stderr.contains("5 added"), "{stderr}");
    assert_eq!(trajectories(&merged).1, 5);

    // --strict fails on them, after merging the rest.
    let st = crate::start()
        .arg("merge")
        .arg("--strict")
        .arg("--output")
        .arg(&merged)
        .arg(&writing)
        .output();
    assert_eq!(st.status.code(), Some(1));

    // The shard finishes: the next merge adds just its last trajectory.
    std::fs::write(&writing, &text).unwrap();
    let out = merge();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 were there, 1 added"), "{stderr}");
    let (got, lines) = trajectories(&merged);
    assert_eq!((got.len(), lines), (6, 6));
    assert_eq!(trajectories(&shard).0, got);
}
