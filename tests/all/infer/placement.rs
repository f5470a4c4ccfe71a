//! Where hints go over many thoughts: 200 scripted thoughts of 2,000-12,000 tokens with 5-15
//! trigger words each, run through the driver with the default insertion policy and a real
//! sandbox session. Trigger hints spread over the thought (the distribution of their positions
//! is printed), the end-of-thinking hint goes in whenever its budget allows, and nothing follows
//! the end of thinking: no hint, and no run of the answer's code.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use start::infer::backend::scripted::ScriptedBackend;
use start::infer::driver::{Driver, GenerateOptions, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::problem::{self, Fields, ProblemKind};
use start::trajectory::{InsertPoint, Segment, THINK_END, Trajectory};

const THOUGHTS: usize = 200;
/// Filler words of a thought (none is, or holds, a trigger word).
const WORDS: &[&str] = &[
    "so", "the", "sum", "is", "even,", "then", "we", "check", "x", "and", "y.", "Hence",
];
/// What the model writes after its thinking: a second `</think>` after the end hint's code, a
/// trigger word and the answer's program, which must neither get a hint nor run.
const AFTER_THINK: &str = "So it is 42. </think>\n\nWait, the answer is \\boxed{42}.\n\
                           ```python\nprint(input())\n```\n";

/// A thought of 2,000-12,000 words (one scripted token each) with 5-15 trigger words at random
/// places, each followed by the code the model writes if a hint goes there.
fn thought(rng: &mut ChaCha8Rng) -> String {
    let words = rng.random_range(2_000..=12_000);
    let count = rng.random_range(5..=15);
    let mut at = index::sample(rng, words, count).into_vec();
    at.sort_unstable();
    let mut script = String::new();
    let mut next = at.iter().peekable();
    for i in 0..words {
        if next.next_if_eq(&&i).is_some() {
            let word = if rng.random_bool(0.7) {
                "Wait"
            } else {
                "Alternatively"
            };
            script.push_str(&format!("{word}, print({i})\n```\n"));
        } else {
            script.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            script.push(' ');
        }
    }
    script.push_str(&format!("\n{THINK_END}\nprint(42)\n```\n{AFTER_THINK}"));
    script
}

fn thoughts() -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    (0..THOUGHTS).map(|_| thought(&mut rng)).collect()
}

fn run(script: &str, sample: u32, options: &GenerateOptions) -> Trajectory {
    let backend = ScriptedBackend::new(script);
    let hints = HintLibrary::bundled();
    let driver = Driver::new(&backend, &hints, options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), options);
    // Read as a dataset row is: every optional field absent.
    let row = r#"{"id": "thought", "problem": "What is 6*7?", "answer": "42"}"#;
    let (problems, _) = problem::read_jsonl(
        row.as_bytes(),
        "test",
        &Fields::default(),
        ProblemKind::Math,
    )
    .unwrap();
    driver.run(&problems[0], sample, &mut runner).unwrap()
}

fn options(policy: InsertPolicy) -> GenerateOptions {
    GenerateOptions {
        policy,
        // The hint policy is under test, not the token cap.
        max_tokens: 100_000,
        ..GenerateOptions::default()
    }
}

/// Each trigger hint's position as a fraction of the thought: the model's text before it over
/// the model's text before the end of thinking (the end hint, or the first `</think>`).
fn trigger_positions(t: &Trajectory) -> Vec<f64> {
    let (mut model, mut at_hints, mut thought) = (0usize, Vec::new(), None);
    for segment in &t.segments {
        match segment {
            Segment::Model { text } => {
                if thought.is_none()
                    && let Some(end) = text.find(THINK_END)
                {
                    thought = Some(model + end);
                }
                model += text.len();
            }
            Segment::Hint { point, .. } => match point {
                InsertPoint::AfterTrigger { .. } => at_hints.push(model),
                _ => {
                    thought.get_or_insert(model);
                }
            },
            Segment::Output { .. } => {}
        }
    }
    let thought = thought.unwrap_or(model).max(1) as f64;
    at_hints.iter().map(|&m| m as f64 / thought).collect()
}

/// Hints per tenth of the thought.
fn deciles(positions: &[f64]) -> [usize; 10] {
    let mut counts = [0; 10];
    for p in positions {
        counts[((p * 10.0) as usize).min(9)] += 1;
    }
    counts
}

fn median(positions: &[f64]) -> f64 {
    let mut sorted = positions.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn report(name: &str, positions: &[f64]) {
    let counts = deciles(positions);
    let total = positions.len().max(1);
    println!(
        "{name}: {} trigger hints, median position {:.2} of the thought",
        positions.len(),
        median(positions)
    );
    for (i, n) in counts.iter().enumerate() {
        println!(
            "  {:>3}-{:>3}%: {n:>4} {}",
            i * 10,
            i * 10 + 10,
            "#".repeat(n * 100 / total)
        );
    }
}

/// No hint, output block or run after the text's `</think>` (the one the thinking ended at).
fn nothing_after_think(t: &Trajectory) {
    let text = t.text();
    let end = text
        .find(THINK_END)
        .unwrap_or_else(|| panic!("the thinking never ended: {text}"));
    let mut at = 0;
    for segment in &t.segments {
        if !matches!(segment, Segment::Model { .. }) {
            assert!(at < end, "a {segment:?} follows </think> in {text}");
        }
        at += segment.text().len();
    }
    assert!(
        t.tool_calls.iter().all(|c| !c.code.contains("input()")),
        "the answer's program ran"
    );
    assert!(text.ends_with("```python\nprint(input())\n```\n"), "{text}");
}

#[test]
fn hints_spread_and_the_end_hint_is_never_starved() {
    let thoughts = thoughts();
    let policy = InsertPolicy::default();
    let mut positions = Vec::new();
    for (i, script) in thoughts.iter().enumerate() {
        let t = run(script, i as u32, &options(policy.clone()));
        let points: Vec<&InsertPoint> = t
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Hint { point, .. } => Some(point),
                _ => None,
            })
            .collect();
        let ends = points
            .iter()
            .filter(|p| !matches!(p, InsertPoint::AfterTrigger { .. }))
            .count();
        // Every thought has room for an end hint, whatever the trigger hints took.
        assert_eq!(ends, 1, "{points:?}");
        assert!(matches!(points.last(), Some(InsertPoint::BeforeThinkEnd)));
        assert!(points.len() - ends <= policy.max_trigger_hints as usize);
        // The end hint's code ran; the model's second `</think>` ended the thinking.
        assert!(t.tool_calls.iter().any(|c| c.code == "print(42)\n"));
        nothing_after_think(&t);
        positions.extend(trigger_positions(&t));
    }
    report("default policy", &positions);

    // The same thoughts with no gap: the first trigger words take the hints.
    let first = InsertPolicy {
        hint_gap_tokens: 0,
        ..InsertPolicy::default()
    };
    let mut early = Vec::new();
    for (i, script) in thoughts.iter().enumerate().take(THOUGHTS / 2) {
        early.extend(trigger_positions(&run(
            script,
            i as u32,
            &options(first.clone()),
        )));
    }
    report("no gap (the first trigger words)", &early);

    assert!(
        positions.len() >= THOUGHTS,
        "most thoughts get trigger hints"
    );
    let counts = deciles(&positions);
    let used = counts.iter().filter(|&&n| n > 0).count();
    assert!(used >= 7, "hints are spread over the thought: {counts:?}");
    assert!(
        counts.iter().all(|&n| n * 3 <= positions.len()),
        "no tenth of the thought holds a third of the hints: {counts:?}"
    );
    assert!(
        median(&positions) > 0.25,
        "the median hint is past the first quarter: {counts:?}"
    );
    assert!(median(&positions) > median(&early) + 0.1);
}

#[test]
fn without_end_hints_the_first_think_end_ends_the_thinking() {
    let policy = InsertPolicy {
        max_end_hints: 0,
        ..InsertPolicy::default()
    };
    for (i, script) in thoughts().iter().enumerate().take(THOUGHTS / 4) {
        let t = run(script, i as u32, &options(policy.clone()));
        nothing_after_think(&t);
        assert!(
            t.segments.iter().all(|s| !matches!(
                s,
                Segment::Hint {
                    point: InsertPoint::BeforeThinkEnd | InsertPoint::BeforeEos,
                    ..
                }
            )),
            "no end hint without its budget"
        );
        // The first `</think>` is still there: the text after it is the answer's.
        assert!(
            t.text()
                .contains(&format!("\n{THINK_END}\nprint(42)\n```\n"))
        );
    }
}
