//! The `start score --pairs`, `start filter` and `start export` commands on small files.

use crate::start;

#[test]
fn pairs_are_written_back_with_equal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\"}\n{\"gold\": \"(1,2)\", \"pred\": \"[1,2]\"}\n\nbad\n",
    )
    .unwrap();
    let st = start()
        .args(["score", "--no-sandbox", "--pairs"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_success();
    let text = std::fs::read_to_string(&output).unwrap();
    let equal: Vec<bool> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["equal"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(equal, [true, false]);
    assert!(String::from_utf8_lossy(&st.stderr).contains("2 pairs, 1 equal, 1 bad lines"));
}

/// Predictions are whole responses: the answer is extracted (boxed, "the answer is", the last
/// math span), and `--bare` compares them whole instead.
#[test]
fn pairs_extract_from_responses_unless_bare() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs.jsonl");
    let rows = [
        (
            "\\frac{1}{2}",
            "We add them up, so the result is \\boxed{0.5}.",
        ),
        ("11", "Counting: $x = 5+5+1 = 11$"),
        ("28\\%", "The answer is 28 percent."),
        ("x \\leq 5", "Hence \\[5 \\geq x\\]"),
        ("7", "First $x=3$, then we get \\(x = 4\\)"),
        ("12", "12"),
    ];
    let text: String = rows
        .iter()
        .map(|(g, p)| serde_json::json!({"gold": g, "pred": p}).to_string() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let run = |bare: bool| {
        let output = dir.path().join(format!("out-{bare}.jsonl"));
        let mut cmd = start();
        cmd.args(["score", "--no-sandbox", "--pairs"]).arg(&input);
        if bare {
            cmd.arg("--bare");
        }
        cmd.arg("--output").arg(&output).assert_success();
        jsonl(&output)
    };
    let extracted = run(false);
    let equal: Vec<bool> = extracted
        .iter()
        .map(|v| v["equal"].as_bool().unwrap())
        .collect();
    assert_eq!(equal, [true, true, true, true, false, true]);
    assert_eq!(extracted[1]["extracted"], "x = 5+5+1 = 11");
    assert_eq!(extracted[4]["extracted"], "x = 4");
    let bare = run(true);
    let equal: Vec<bool> = bare.iter().map(|v| v["equal"].as_bool().unwrap()).collect();
    // Compared whole, prose around an answer fails, except what normalizing a bare answer
    // already forgives (a box, `$..$`, a chain of equalities).
    assert_eq!(equal, [true, true, false, false, false, true]);
    assert!(bare[0].get("extracted").is_none());
}

/// A problems file of math rows `(id, gold)`.
fn math_rows(dir: &std::path::Path, rows: &[(&str, &str)]) -> std::path::PathBuf {
    let path = dir.join("problems.jsonl");
    let text: String = rows
        .iter()
        .map(|(id, gold)| {
            format!("{{\"id\": \"{id}\", \"problem\": \"What is it?\", \"answer\": \"{gold}\"}}\n")
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `start rft --plain-baseline`: the hinted run answers 4 (the `\boxed{5}` after the hint is
/// inside the executed code block, which answer extraction skips); the plain run, whose text has
/// no code block, answers 5. So "four" is kept (hinted right, plain wrong) and "five" is not.
#[test]
fn rft_selects_problems_the_hints_solve_and_exports_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = math_rows(d, &[("four", "4"), ("five", "5")]);
    let script = d.join("script.txt");
    std::fs::write(
        &script,
        "Answer: \\boxed{4}. Wait, print(4) # \\boxed{5}\n```\n",
    )
    .unwrap();
    let round = d.join("round");
    let run = || {
        start()
            .args(["rft", "--quiet", "--samples", "2", "--plain-baseline"])
            .arg("--round-dir")
            .arg(&round)
            .arg("--input")
            .arg(&input)
            .args(["--", "--no-end-hints", "--hint-gap-tokens", "0", "--model"])
            .arg(format!("scripted:{}", script.display()))
            .assert_success()
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("selection: hinted right and plain wrong"),
        "{stderr}"
    );
    assert!(
        stderr.contains("scored the plain run (no hints) 2"),
        "{stderr}"
    );
    // Several samples: the round sampled, and says how.
    assert!(
        stderr.contains("sampling: 2 samples per problem, temperature 0.6, top-p 0.95"),
        "{stderr}"
    );
    for t in jsonl(&round.join("plain.jsonl")) {
        assert!(
            t["segments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["type"] != "hint"),
            "the plain run has no hints: {t}"
        );
    }
    let report = json(&round.join("report.json"));
    assert_eq!(report["baseline"]["problems"], 2, "{report}");
    assert_eq!(report["baseline"]["solved"], 1, "{report}");
    // One kept trajectory per problem by default.
    assert_eq!(report["kept"], 1, "{report}");
    assert_eq!(report["kept_problems"], 1, "{report}");
    // The other sample of "four" goes as a duplicate (same hint drawn) or beyond the cap.
    let extra =
        report["drops"]["top_k"].as_u64().unwrap() + report["drops"]["duplicate"].as_u64().unwrap();
    assert_eq!(extra, 1, "{report}");
    assert_eq!(report["drops"]["wrong_answer"], 2, "{report}");
    let kept = jsonl(&round.join("kept.jsonl"));
    assert_eq!(kept[0]["id"], "four");

    // Both export forms; the prompt/completion one keeps the whole assistant text.
    let messages = jsonl(&round.join("sft.jsonl"));
    assert_eq!(messages.len(), 1);
    let pairs = jsonl(&round.join("sft-prompt-completion.jsonl"));
    assert_eq!(pairs.len(), 1);
    let assistant = messages[0]["messages"][1]["content"].as_str().unwrap();
    assert_eq!(pairs[0]["completion"], assistant);
    assert!(assistant.contains("```output\n4\n```"), "{assistant}");
    match kept[0]["rendered_prompt"].as_str() {
        Some(rendered) => assert_eq!(pairs[0]["prompt"], rendered),
        None => {
            assert!(
                pairs[0]["prompt"]
                    .as_str()
                    .unwrap()
                    .starts_with("<|im_start|>")
            );
            assert_eq!(report["chatml_fallbacks"], 1, "{report}");
        }
    }

    // Rerunning resumes: nothing is redone.
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("scored the plain run"), "{stderr}");

    // `start filter --baseline`: with the hinted run as its own "plain" run, "four" is solved
    // without hints, so nothing is kept.
    let report_path = d.join("filter-report.json");
    let out = start()
        .args(["filter", "--quiet", "--input"])
        .arg(round.join("scored.jsonl"))
        .arg("--baseline")
        .arg(round.join("scored.jsonl"))
        .arg("--output")
        .arg(d.join("kept-again.jsonl"))
        .arg("--report")
        .arg(&report_path)
        .assert_success();
    let report = json(&report_path);
    assert_eq!(
        report["kept"],
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["drops"]["solved_without_hints"], 2, "{report}");
}

#[test]
fn rft_refuses_greedy_sampling_with_several_samples() {
    let dir = tempfile::tempdir().unwrap();
    let input = math_rows(dir.path(), &[("a", "1")]);
    let out = start()
        .args(["rft", "--quiet", "--samples", "4"])
        .arg("--round-dir")
        .arg(dir.path().join("round"))
        .arg("--input")
        .arg(&input)
        .args(["--", "--model", "scripted:/dev/null", "--temperature", "0"])
        .output();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("greedy decoding"), "{stderr}");
    assert!(!dir.path().join("round/trajectories.jsonl").exists());
}

#[test]
fn export_writes_prompt_completion_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.jsonl");
    let t = start::trajectory::TrajectoryBuilder::math("p")
        .prompt("Q?")
        .model("<think>\nHmm.\n</think>\n\\boxed{1}")
        .build();
    std::fs::write(&input, serde_json::to_string(&t).unwrap() + "\n").unwrap();
    let output = dir.path().join("pc.jsonl");
    let out = start()
        .args([
            "export",
            "--quiet",
            "--format",
            "prompt-completion",
            "--input",
        ])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rendered here as ChatML"), "{stderr}");
    let line = &jsonl(&output)[0];
    assert_eq!(line["completion"], "<think>\nHmm.\n</think>\n\\boxed{1}");
    assert_eq!(
        line["prompt"],
        "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    );
}
