//! Scripted trajectories for 5 math and 3 code problems through score, filter and export.

use std::collections::BTreeMap;
use std::io::BufReader;

use serde_json::Value;
use start::jsonl::LineReader;
use start::problem::ProblemKind;
use start::rft::export::ExportOptions;
use start::rft::filter::FilterConfig;
use start::rft::score::{Scored, Scorer, load_tests};
use start::rft::{self, DropRecord};
use start::trajectory::{InsertPoint, StopReason, Trajectory, TrajectoryBuilder};

use crate::sandbox;

/// A trajectory from text pieces: `"#out:TEXT"` is an output block of the next tool call
/// (status `finished`, or `exception` when TEXT starts with `!`), `"#hint:TEXT"` a hint,
/// anything else model text. Tool call codes are taken from the preceding python block.
fn traj(id: &str, sample: u32, kind: ProblemKind, parts: &[&str]) -> TrajectoryBuilder {
    let mut t = TrajectoryBuilder::new(id, kind)
        .sample(sample)
        .prompt(format!("Solve problem {id}."))
        .backend("scripted")
        .seed(u64::from(sample))
        .wall_ms(1.0)
        .generate_ms(1.0);
    let mut text = String::new();
    for part in parts {
        if let Some(out) = part.strip_prefix("#out:") {
            let code = text
                .rfind("```python\n")
                .map(|o| {
                    text[o + 10..]
                        .trim_end()
                        .trim_end_matches("```")
                        .to_string()
                })
                .unwrap_or_default();
            t = match out.strip_prefix('!') {
                Some(err) => {
                    t.failed_tool_call(code, start::trajectory::ToolStatus::Exception, err)
                }
                None => t.tool_call(code, format!("{out}\n")),
            };
            text.push_str(&format!(
                "```output\n{}\n```\n",
                out.trim_start_matches('!')
            ));
        } else if let Some(hint) = part.strip_prefix("#hint:") {
            text.push_str(hint);
            let point = InsertPoint::AfterTrigger {
                word: "Wait".into(),
            };
            t = t.hint("general", point, hint);
        } else {
            text.push_str(part);
            t = t.model(*part);
        }
    }
    t
}

fn math(id: &str, sample: u32, gold: &str, parts: &[&str]) -> Trajectory {
    traj(id, sample, ProblemKind::Math, parts)
        .answer(gold)
        .build()
}

fn code(id: &str, sample: u32, parts: &[&str]) -> Trajectory {
    traj(id, sample, ProblemKind::Code, parts).build()
}

fn trajectories() -> Vec<Trajectory> {
    let m1_good: &[&str] = &[
        "I think the answer is \\boxed{2}.\nWait",
        "#hint:, let me check with Python.\n```python\n",
        "print(1+1)\n```\n",
        "#out:2",
        "Confirmed: \\boxed{2}.",
    ];
    let mut truncated = math(
        "m4",
        1,
        "10",
        &["```python\nprint(5*2)\n```\n", "#out:10", "So \\boxed{10}"],
    );
    truncated.stop = StopReason::Length;
    vec![
        // m1: kept, duplicate, wrong.
        math("m1", 0, "2", m1_good),
        math("m1", 1, "2", m1_good),
        math(
            "m1",
            2,
            "2",
            &["```python\nprint(1+2)\n```\n", "#out:3", "So \\boxed{3}."],
        ),
        // m2: kept (0.5 = 1/2 on the fast path), no tool call.
        math(
            "m2",
            0,
            "\\frac{1}{2}",
            &[
                "```python\nprint(1/2)\n```\n",
                "#out:0.5",
                "The answer is \\boxed{0.5}.",
            ],
        ),
        math("m2", 1, "\\frac{1}{2}", &["Clearly \\boxed{\\frac12}."]),
        // m3: kept through the sympy fallback; an ignored exception.
        math(
            "m3",
            0,
            "i",
            &[
                "```python\nimport sympy\nprint(sympy.solve('x+y-1','y'))\n```\n",
                "#out:[1 - x]",
                "Thus \\boxed{e^{i\\pi/2}}.",
            ],
        ),
        math(
            "m3",
            1,
            "i",
            &[
                "```python\n1/0\n```\n",
                "#out:!ZeroDivisionError: division by zero",
                "Thus \\boxed{e^{i\\pi/2}}.",
            ],
        ),
        // m4: answer missing, truncated, looping code, kept.
        math(
            "m4",
            0,
            "10",
            &["```python\nprint(10)\n```\n", "#out:10", "I am not sure."],
        ),
        truncated,
        math(
            "m4",
            2,
            "10",
            &[
                "```python\nprint(5*2)\n```\n",
                "#out:10",
                "Again.\n",
                "```python\nprint(5*2)\n```\n",
                "#out:10",
                "Again.\n",
                "```python\nprint(5*2)\n```\n",
                "#out:10",
                "So \\boxed{10}",
            ],
        ),
        math(
            "m4",
            3,
            "10",
            &[
                "```python\nprint(sum(range(5)))\n```\n",
                "#out:10",
                "So \\boxed{10}",
            ],
        ),
        // m5: four right ones (two kept as the most diverse), a bracket-kind hard negative.
        math(
            "m5",
            0,
            "(1,2)",
            &[
                "Solving the linear system by substitution gives x one and y two.\n```python\nprint((1,2))\n```\n",
                "#out:(1, 2)",
                "\\boxed{(1,2)}",
            ],
        ),
        math(
            "m5",
            1,
            "(1,2)",
            &[
                "Solving the linear system by substitution gives x one and y two!\n```python\nprint((1,2))\n```\n",
                "#out:(1, 2)",
                "\\boxed{(1,2)}",
            ],
        ),
        math(
            "m5",
            2,
            "(1,2)",
            &[
                "Using Cramer's rule with determinants we obtain the pair below.\n```python\nimport numpy as np\nprint(np.linalg.solve([[1,1],[1,-1]],[3,-1]))\n```\n",
                "#out:[1. 2.]",
                "\\boxed{(1, 2)}",
            ],
        ),
        math(
            "m5",
            3,
            "(1,2)",
            &[
                "Elimination: add the equations, halve, back substitute.\n```python\nprint(3-2)\n```\n",
                "#out:1",
                "\\boxed{\\left(1,2\\right)}",
            ],
        ),
        math(
            "m5",
            4,
            "(1,2)",
            &[
                "```python\nprint([1,2])\n```\n",
                "#out:[1, 2]",
                "\\boxed{[1,2]}",
            ],
        ),
        // c1 (stdin/stdout): kept; off by one.
        code(
            "c1",
            0,
            &[
                "<think>Test the sample.\n```python\nprint(sum(map(int, '1 2'.split())))\n```\n",
                "#out:3",
                "Works.\n</think>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n",
            ],
        ),
        code(
            "c1",
            1,
            &[
                "<think>Test.\n```python\nprint(1 + 2 + 1)\n```\n",
                "#out:4",
                "Fine.\n</think>\n```python\na, b = map(int, input().split())\nprint(a + b + 1)\n```\n",
            ],
        ),
        // c2 (functional): kept; no final program.
        code(
            "c2",
            0,
            &[
                "```python\ndef add(a, b):\n    return a + b\nprint(add(1, 2))\n```\n",
                "#out:3",
                "</think>\n```python\ndef add(a, b):\n    return a + b\n```\n",
            ],
        ),
        code("c2", 1, &["I would add them."]),
        // c3 (HumanEval check): kept.
        code(
            "c3",
            0,
            &[
                "```python\nprint(3 ** 2)\n```\n",
                "#out:9",
                "</think>\n```python\ndef square(x):\n    return x * x\n```\n",
            ],
        ),
    ]
}

const PROBLEMS: &str = r#"{"id": "c1", "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12\n"}]}
{"id": "c2", "fn_name": "add", "tests": [{"args": [1, 2], "expected": 3}, {"args": [-4, 4], "expected": 0}]}
{"id": "c3", "check": "def check(candidate):\n    assert candidate(3) == 9\n    assert candidate(-2) == 4\n", "entry_point": "square"}
{"id": "m1", "problem": "1+1?"}
"#;

#[test]
fn score_filter_export() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("trajectories.jsonl");
    let mut lines = String::new();
    for t in trajectories() {
        lines.push_str(&serde_json::to_string(&t).unwrap());
        lines.push('\n');
    }
    lines.push_str("not json\n");
    std::fs::write(&input, lines).unwrap();

    // Score.
    let mut scorer = Scorer::new(Some(sandbox().into()));
    let (tests, bad) = load_tests(LineReader::new(PROBLEMS.as_bytes(), "problems")).unwrap();
    assert_eq!((tests.len(), bad), (3, 0));
    scorer.tests = tests;
    let scored_path = dir.path().join("scored.jsonl");
    let mut out = std::fs::File::create(&scored_path).unwrap();
    let summary = rft::score_stream(
        &scorer,
        LineReader::new(
            BufReader::new(std::fs::File::open(&input).unwrap()),
            "trajectories",
        ),
        &mut out,
        2,
        &|_| {},
    )
    .unwrap();
    drop(out);
    assert_eq!(summary.trajectories, 21);
    assert_eq!(summary.bad_lines, 1);
    assert_eq!(summary.sympy, 2, "{summary:?}");
    let scored: BTreeMap<(String, u32), Scored> = std::fs::read_to_string(&scored_path)
        .unwrap()
        .lines()
        .map(|l| {
            let s: Scored = serde_json::from_str(l).unwrap();
            ((s.trajectory.id.clone(), s.trajectory.sample), s)
        })
        .collect();
    let correct = |id: &str, sample| scored[&(id.to_string(), sample)].score.correct;
    assert_eq!(correct("m3", 0), Some(true));
    assert_eq!(correct("m5", 4), Some(false));
    assert_eq!(correct("c1", 0), Some(true));
    assert_eq!(correct("c1", 1), Some(false));
    assert_eq!(
        scored[&("c1".to_string(), 1)].score.tests_passed,
        Some((0, 2))
    );
    assert_eq!(
        correct("c2", 0),
        Some(true),
        "{:?}",
        scored[&("c2".to_string(), 0)].score
    );
    assert_eq!(
        correct("c3", 0),
        Some(true),
        "{:?}",
        scored[&("c3".to_string(), 0)].score
    );
    assert_eq!(
        scored[&("m1".to_string(), 0)].score.correct_before_hints,
        Some(true)
    );

    // Filter.
    let config = FilterConfig {
        max_per_problem: Some(2),
        ..FilterConfig::default()
    };
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    let report = rft::filter_file(
        &scored_path,
        &config,
        None,
        &mut kept,
        &mut dropped,
        &|_| {},
        |_| {},
    )
    .unwrap();
    let drops: Vec<DropRecord> = String::from_utf8(dropped)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for d in &drops {
        assert!(!d.reason.trim().is_empty(), "{d:?}");
    }
    let by: BTreeMap<(String, u32), String> = drops
        .iter()
        .map(|d| ((d.id.clone(), d.sample), d.filter.to_string()))
        .collect();
    let expect = [
        ("m1", 1, "duplicate"),
        ("m1", 2, "wrong_answer"),
        ("m2", 1, "no_tool_call"),
        ("m3", 1, "ignored_tool_failure"),
        ("m4", 0, "answer_missing"),
        ("m4", 1, "truncated"),
        ("m4", 2, "repeated_code"),
        ("m5", 4, "wrong_answer"),
        ("c1", 1, "wrong_answer"),
        ("c2", 1, "answer_missing"),
    ];
    for (id, sample, filter) in expect {
        assert_eq!(
            by.get(&(id.to_string(), sample)).map(String::as_str),
            Some(filter),
            "{id}/{sample}: {drops:?}"
        );
    }
    assert_eq!(report.drops["top_k"], 2);
    assert_eq!(drops.len(), 12);
    assert_eq!(report.trajectories, 21);
    assert_eq!(report.bad_lines, 0, "score already skipped the bad line");
    assert_eq!(report.problems, 8);
    assert_eq!(report.kept, 9);
    assert_eq!(
        report.kept + report.drops.values().sum::<usize>(),
        report.trajectories
    );
    assert_eq!(report.pass_rate_before_hints, Some(1.0));
    let json: Value = serde_json::to_value(&report).unwrap();
    assert!(json["tool_calls_per_trajectory"].as_f64().unwrap() > 0.9);
    assert!(report.summary().contains("21 trajectories"));

    // Export.
    let mut sft = Vec::new();
    let summary = rft::export_stream(
        LineReader::new(&kept[..], "kept"),
        &mut sft,
        &ExportOptions {
            mark_tool_output: true,
            ..ExportOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!((summary.exported, summary.bad_lines), (9, 0));
    let sft = String::from_utf8(sft).unwrap();
    assert_eq!(sft.lines().count(), 9);
    for line in sft.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let messages = v["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "user");
        assert_eq!(messages[1]["role"], "assistant");
        let content = messages[1]["content"].as_str().unwrap();
        assert!(content.contains("```output\n"));
        let chars: Vec<char> = content.chars().collect();
        for span in messages[1]["tool_output_spans"].as_array().unwrap() {
            let (a, b) = (
                span[0].as_u64().unwrap() as usize,
                span[1].as_u64().unwrap() as usize,
            );
            let s: String = chars[a..b].iter().collect();
            assert!(
                s.starts_with("```output\n") && s.ends_with("```\n"),
                "{s:?}"
            );
        }
    }
}
