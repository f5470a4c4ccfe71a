//! The driver with the scripted backend and a real sandbox session.

use std::time::Duration;

use start::infer::backend::scripted::ScriptedBackend;
use start::infer::driver::{Driver, GenerateOptions, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::problem::Problem;
use start::trajectory::{Segment, ToolStatus, Trajectory};
use start_sandbox::TurnLimits;

fn run(script: &str, options: &GenerateOptions) -> Trajectory {
    let backend = ScriptedBackend::new(script);
    let hints = HintLibrary::bundled();
    let driver = Driver::new(&backend, &hints, options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), options);
    let problem = Problem::math("p", "Compute something.");
    driver.run(&problem, 0, &mut runner).unwrap()
}

/// Up to `n` hints, after trigger words only, with no gap (the scripts are short).
fn options(n: u32) -> GenerateOptions {
    GenerateOptions {
        policy: InsertPolicy {
            before_end: false,
            max_trigger_hints: n,
            max_hints: n,
            hint_gap_tokens: 0,
            ..InsertPolicy::default()
        },
        ..GenerateOptions::default()
    }
}

fn outputs(t: &Trajectory) -> Vec<String> {
    t.segments
        .iter()
        .filter_map(|s| match s {
            Segment::Output { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn state_carries_across_blocks() {
    let t = run(
        "Let x be 5. Wait, x = 5\nimport math\n```\nWait, print(x * 2, math.factorial(x))\n```\nSo 10.",
        &options(2),
    );
    assert_eq!(t.tool_calls.len(), 2);
    assert_eq!(t.tool_calls[1].stdout, "10 120\n");
    let out = outputs(&t);
    assert_eq!(out[0], "\n```output\n(no output)\n```\n");
    assert_eq!(out[1], "\n```output\n10 120\n```\n");
    assert!(t.text().ends_with("```output\n10 120\n```\nSo 10."));
}

#[test]
fn error_is_shown_in_the_output_block() {
    let t = run("Wait, print('before')\n1/0\n```\nOops.", &options(1));
    assert_eq!(t.tool_calls[0].status, ToolStatus::Exception);
    let out = &outputs(&t)[0];
    assert!(out.contains("before\n"), "{out}");
    assert!(out.contains("ZeroDivisionError"), "{out}");
    assert!(out.contains("Traceback"), "{out}");
}

#[test]
fn infinite_loop_is_cut_by_the_limit_and_reported() {
    let mut opts = options(2);
    opts.turn_limits = TurnLimits {
        wall_time: Duration::from_millis(500),
        ..opts.turn_limits
    };
    let t = run(
        "Wait, y = 1\nwhile True:\n    pass\n```\nWait, print('after')\n```\nDone.",
        &opts,
    );
    assert_eq!(t.tool_calls[0].status, ToolStatus::LimitExceeded);
    assert!(t.tool_calls[0].exec_ms < 5_000.0);
    let out = outputs(&t);
    assert!(
        out[0].contains("TimeoutError: execution exceeded 0.5 s\n"),
        "{}",
        out[0]
    );
    // The session ended with the trap; the next block runs in a fresh one, and says so.
    assert_eq!(t.tool_calls[1].status, ToolStatus::Finished);
    assert!(
        out[1].contains("after") && out[1].contains("restarted"),
        "{}",
        out[1]
    );
    assert!(t.text().ends_with("Done."));
}

#[test]
fn output_is_truncated_to_the_set_size() {
    let mut opts = options(1);
    opts.output_bytes = 100;
    let t = run("Wait, print('x' * 10000)\n```\n", &opts);
    let out = &outputs(&t)[0];
    assert!(out.len() < 200, "{}", out.len());
    assert!(out.contains("[output truncated after 100 bytes]"), "{out}");
}

/// Every output block the trajectory file records shows only what Python prints: no frame of
/// the runtime (`<reactor>`, `<start>`, `ast.py`), and cells numbered by the model's blocks
/// alone (the session's own set-up turns are not counted).
#[test]
fn output_blocks_show_only_the_models_frames() {
    let t = run(
        "Wait, def f(x):\n    return 10 / x\n```\nWait, f(0)\n```\n\
         Wait, [A code template]\n```\nWait, import sympy\nsympy.sympify('x +* 2')\n```\n\
         Wait, import numpy as np\nnp.ones((2, 3)) @ np.ones((4, 5))\n```\n\
         Wait, raise SystemExit(1)\n```\nDone.",
        &options(6),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trajectories.jsonl");
    std::fs::write(&file, serde_json::to_string(&t).unwrap() + "\n").unwrap();
    let line = std::fs::read_to_string(&file).unwrap();
    let back: Trajectory = serde_json::from_str(line.trim()).unwrap();
    let out = outputs(&back);
    assert_eq!(out.len(), 6, "{out:?}");
    for block in &out {
        for frame in ["<reactor>", "<start>", "ast.py", "<turn ", "_run_turn"] {
            assert!(!block.contains(frame), "{frame:?} in\n{block}");
        }
    }
    assert!(
        out[1].contains("File \"<cell 2>\", line 1, in <module>\n    f(0)\n")
            && out[1].contains("File \"<cell 1>\", line 2, in f\n    return 10 / x\n")
            && out[1].contains("ZeroDivisionError: division by zero"),
        "{}",
        out[1]
    );
    assert!(
        out[2].starts_with("\n```output\n  File \"<cell 3>\", line 1\n    [A code template]\n")
            && out[2].contains("SyntaxError: invalid syntax. Perhaps you forgot a comma?"),
        "{}",
        out[2]
    );
    // Library frames stay; the last traceback's first frame is the model's own line (sympy's
    // error is raised while handling one of its own, whose frames are all sympy's).
    let first_frame = |b: &str| {
        let last = b.rfind("Traceback (most recent call last):").unwrap_or(0);
        b[last..]
            .lines()
            .find(|l| l.starts_with("  File "))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        first_frame(&out[3]),
        "  File \"<cell 4>\", line 2, in <module>"
    );
    assert!(out[3].contains("sympy"), "{}", out[3]);
    assert_eq!(
        first_frame(&out[4]),
        "  File \"<cell 5>\", line 2, in <module>"
    );
    assert!(out[4].contains("ValueError: matmul"), "{}", out[4]);
    // `raise SystemExit(1)` is an exit, as `sys.exit(1)`, not an exception.
    assert_eq!(back.tool_calls[5].status, ToolStatus::Exit);
}
