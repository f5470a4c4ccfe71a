//! Scoring trajectories: is the final answer right, do the tests pass.
//!
//! Math: the final answer is extracted from the assistant's text with the tool blocks (executed
//! ```` ```python ```` code and ```` ```output ```` blocks) removed, then compared with the gold
//! answer by [`answer::equivalent`]; only when that fast path says
//! [`Verdict::Undecided`] does a symbolic check ([`answer::sympy_check_code`]) run in the
//! sandbox, under [`Scorer::sympy_limits`]. Code: the final program is the last
//! ```` ```python ```` block after the end of thinking (else the last one at all), judged with
//! [`judge::judge`] against the problem's tests. Blocks are found by [`fence::blocks`], the rule
//! the driver ran them by, so the blocks read here are the tool calls the trajectory recorded.
//!
//! Everything here reads untrusted model text and dataset rows: texts are bounded by the
//! extraction limits of [`answer`], and a sandbox failure on one trajectory is reported in its
//! [`Score`], not by stopping the run.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use start_sandbox::{Limits, Sandbox};

use crate::executor::Executor;
use crate::judge::{self, JudgeOptions, Tests};
use crate::problem::ProblemKind;
use crate::trajectory::THINK_END;
use crate::trajectory::{Segment, Trajectory};
use start_grade::answer::{self, Verdict};
use start_grade::fence::{self, CODE_INFO, OUTPUT_INFO};

/// Wall time of one symbolic (sympy) equivalence check.
pub const DEFAULT_SYMPY_WALL_TIME: Duration = Duration::from_secs(5);
/// Memory cap of one symbolic check.
pub const DEFAULT_SYMPY_MEMORY_BYTES: u64 = 256 << 20;
/// The longest program extracted as a code answer, in bytes.
pub const MAX_PROGRAM_BYTES: usize = 64 * 1024;

/// How an answer was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The Rust fast path of [`answer::equivalent`].
    Fast,
    /// The symbolic check in the sandbox.
    Sympy,
    /// The program was judged against tests.
    Judge,
    /// Nothing to decide with (no answer, no gold, no tests).
    None,
}

/// The score of one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The extracted final answer (math) or program (code), if any.
    pub extracted: Option<String>,
    /// Whether it is right: `None` when it could not be decided (no answer, no gold, no tests,
    /// or an undecidable comparison).
    pub correct: Option<bool>,
    /// How the verdict was reached.
    pub method: Method,
    /// For math, whether the answer in the text before the first hint was right (the pass
    /// rate "before hints"); `None` when there was no hint or no answer there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_before_hints: Option<bool>,
    /// Tests passed / run, for code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<(usize, usize)>,
    /// Why the score is what it is, when that is not obvious (missing gold, sandbox error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Score {
    /// A score not decided yet, with what was extracted: the start of every verdict.
    pub fn undecided(extracted: Option<String>) -> Score {
        Score {
            extracted,
            correct: None,
            method: Method::None,
            correct_before_hints: None,
            tests_passed: None,
            note: None,
        }
    }
}

/// A trajectory with its score: the line format of `start score`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The trajectory, its fields inline.
    #[serde(flatten)]
    pub trajectory: Trajectory,
    /// Its score.
    pub score: Score,
}

/// The assistant's text without tool blocks: each executed ```` ```python ```` block through
/// the output block after it ([`fence::blocks`]) is removed, and so is any ```` ```output ````
/// block the model wrote itself (a Markdown fence with that info string); the rest is kept in
/// order. Hints are kept (they are prose).
pub fn text_outside_tools(trajectory: &Trajectory) -> String {
    let text = trajectory.text();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    let mut code_start = None;
    for block in fence::blocks(&text) {
        if block.info == CODE_INFO {
            code_start = Some(block.start);
        } else if let Some(start) = code_start.take() {
            out.push_str(&text[from..start]);
            from = block.end;
        }
    }
    out.push_str(&text[from..]);
    let mut prose = String::with_capacity(out.len());
    let mut from = 0;
    for block in fence::markdown_blocks(&out).filter(|b| b.info == OUTPUT_INFO) {
        prose.push_str(&out[from..block.start]);
        from = block.end;
    }
    prose.push_str(&out[from..]);
    prose
}

/// The closed ```` ```python ```` blocks of `text`, as code, in order: [`fence::blocks`], the
/// rule the driver runs blocks by, so in a trajectory's text these are its tool calls' code.
pub fn python_blocks(text: &str) -> Vec<&str> {
    fence::blocks(text)
        .filter(|b| b.info == CODE_INFO && b.closed)
        .map(|b| b.content)
        .collect()
}

/// The final program of a code trajectory: the last ```` ```python ```` block after the last
/// `</think>` if the text has one with a block after it, else the last block at all; at most
/// [`MAX_PROGRAM_BYTES`].
pub fn extract_program(text: &str) -> Option<String> {
    let think_end = text.rfind(THINK_END).map(|at| at + THINK_END.len());
    let (mut last, mut after_think) = (None, None);
    for block in fence::blocks(text).filter(|b| b.info == CODE_INFO && b.closed) {
        if think_end.is_some_and(|at| block.start >= at) {
            after_think = Some(block.content);
        }
        last = Some(block.content);
    }
    let program = after_think.or(last)?;
    if program.trim().is_empty() || program.len() > MAX_PROGRAM_BYTES {
        return None;
    }
    Some(program.to_string())
}

/// The final answer of a math trajectory, from its text outside tool blocks.
pub fn extract_math_answer(trajectory: &Trajectory) -> Option<String> {
    answer::extract_answer(&text_outside_tools(trajectory))
}

/// Scores trajectories; shared by threads (`Sync`).
#[derive(Debug)]
pub struct Scorer<'a> {
    /// Where symbolic checks and judging run (the local sandbox or a server); `None` scores
    /// with the fast path only (undecided answers stay undecided, code is not judged).
    pub executor: Option<Executor<'a>>,
    /// Limits of one symbolic check.
    pub sympy_limits: Limits,
    /// How programs are judged.
    pub judge: JudgeOptions,
    /// Tests of code problems, by problem id.
    pub tests: HashMap<String, Tests>,
}

impl<'a> Scorer<'a> {
    /// A scorer with default limits and no code tests, running its checks on `executor`.
    pub fn new(executor: Option<Executor<'a>>) -> Self {
        Scorer {
            executor,
            sympy_limits: Limits {
                wall_time: DEFAULT_SYMPY_WALL_TIME,
                memory_bytes: DEFAULT_SYMPY_MEMORY_BYTES,
                stdout_bytes: 4096,
                stderr_bytes: 4096,
                ..Limits::default()
            },
            judge: JudgeOptions::default(),
            tests: HashMap::new(),
        }
    }

    /// Decides whether `pred` equals `gold`: the fast path, then sympy in the sandbox if the
    /// fast path is undecided (and a sandbox is there). A sandbox failure is `Undecided`.
    pub fn equal(&self, gold: &str, pred: &str) -> (Verdict, Method) {
        match answer::equivalent(gold, pred) {
            Verdict::Undecided => {}
            decided => return (decided, Method::Fast),
        }
        let Some(executor) = self.executor else {
            return (Verdict::Undecided, Method::Fast);
        };
        let code = answer::sympy_check_code(gold, pred);
        match executor.exec(&code, &self.sympy_limits) {
            Ok(outcome) => (answer::parse_sympy_verdict(&outcome.stdout), Method::Sympy),
            Err(_) => (Verdict::Undecided, Method::Sympy),
        }
    }

    /// Scores one trajectory.
    pub fn score(&self, trajectory: &Trajectory) -> Score {
        match trajectory.kind {
            ProblemKind::Math => self.score_math(trajectory),
            ProblemKind::Code => self.score_code(trajectory),
        }
    }

    fn score_math(&self, trajectory: &Trajectory) -> Score {
        let extracted = extract_math_answer(trajectory);
        let mut score = Score::undecided(extracted.clone());
        let Some(gold) = trajectory.answer.as_deref() else {
            score.note = Some("no gold answer".into());
            return score;
        };
        let Some(pred) = extracted else {
            score.correct = Some(false);
            score.note = Some("no final answer".into());
            return score;
        };
        let (verdict, method) = self.equal(gold, &pred);
        score.method = method;
        score.correct = match verdict {
            Verdict::Equal => Some(true),
            Verdict::NotEqual => Some(false),
            Verdict::Undecided => None,
        };
        if verdict == Verdict::Undecided {
            score.note = Some("equivalence undecided".into());
        }
        // Before hints: the text the model wrote before the first hint was inserted.
        if let Some(first_hint) = trajectory
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Hint { .. }))
        {
            let before: String = trajectory.segments[..first_hint]
                .iter()
                .map(Segment::text)
                .collect();
            score.correct_before_hints = answer::extract_answer(&before).map(|p| {
                let (v, _) = self.equal(gold, &p);
                v == Verdict::Equal
            });
        }
        score
    }

    fn score_code(&self, trajectory: &Trajectory) -> Score {
        let extracted = extract_program(&trajectory.text());
        let mut score = Score::undecided(extracted.clone());
        let Some(program) = extracted else {
            score.correct = Some(false);
            score.note = Some("no final program".into());
            return score;
        };
        let Some(tests) = self.tests.get(&trajectory.id) else {
            score.note = Some("no tests for this problem".into());
            return score;
        };
        let Some(executor) = self.executor else {
            score.note = Some("no sandbox to judge with".into());
            return score;
        };
        score.method = Method::Judge;
        match judge::judge(executor, &program, tests, &self.judge) {
            Ok(report) => {
                score.correct = Some(report.passed);
                score.tests_passed = Some((report.passed_count, report.tests.len()));
            }
            Err(e) => score.note = Some(format!("judge failed: {e}")),
        }
        score
    }
}

/// One line of `start score --pairs`: a gold and a predicted answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// The reference answer.
    pub gold: String,
    /// The answer to check.
    pub pred: String,
    /// Whether they are equivalent (set by [`check_pair`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal: Option<bool>,
    /// The answer found in `pred` and compared (set by `start score --pairs` unless `--bare`);
    /// absent when `pred` was compared whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
}

/// Checks a pair of answers: fast path, then sympy in `sandbox` if given and needed. An
/// undecided comparison counts as not equal (the conservative choice for training data).
pub fn check_pair(sandbox: Option<&Sandbox>, gold: &str, pred: &str) -> bool {
    let scorer = Scorer::new(sandbox.map(Executor::Local));
    scorer.equal(gold, pred).0 == Verdict::Equal
}

/// The most code problems whose tests [`load_tests`] keeps.
pub const MAX_TEST_PROBLEMS: usize = 1_000_000;

/// Reads code tests by problem id from a problems JSONL file: each row has an `id` (string or
/// number) and test fields in one of [`Tests`]' shapes; rows without tests are skipped.
/// Returns the tests and the number of lines that could not be used.
///
/// # Errors
/// I/O errors (an over-long line is skipped and counted as bad).
pub fn load_tests(
    mut reader: crate::jsonl::LineReader<impl std::io::BufRead>,
) -> Result<(HashMap<String, Tests>, usize), crate::jsonl::JsonlError> {
    let mut tests = HashMap::new();
    let mut bad = 0;
    while let Some(line) = reader.next_record(&mut bad)? {
        let Ok(serde_json::Value::Object(row)) = serde_json::from_slice(line) else {
            bad += 1;
            continue;
        };
        let id = match row.get("id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                bad += 1;
                continue;
            }
        };
        match crate::problem::tests_in_row(&row, "tests") {
            Ok(Some(t)) if tests.len() < MAX_TEST_PROBLEMS => {
                tests.insert(id, t);
            }
            Ok(None) => {}
            _ => bad += 1,
        }
    }
    Ok((tests, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::{InsertPoint, TrajectoryBuilder};

    #[test]
    fn tool_blocks_are_not_answers() {
        let t = TrajectoryBuilder::math("p")
            .answer("3")
            .model("So the answer is \\boxed{3}.\nWait")
            .hint(
                "h",
                InsertPoint::AfterTrigger {
                    word: "Wait".into(),
                },
                ", let me check.\n```python\n",
            )
            .model("print('\\\\boxed{4}')\n```\n")
            .tool_call("print('\\\\boxed{4}')", "\\boxed{4}\n")
            .model("Confirmed.")
            .build();
        let outside = text_outside_tools(&t);
        assert!(!outside.contains("boxed{4}"), "{outside}");
        let s = Scorer::new(None).score(&t);
        assert_eq!(s.extracted.as_deref(), Some("3"));
        assert_eq!(s.correct, Some(true));
        assert_eq!(s.correct_before_hints, Some(true));
        assert_eq!(s.method, Method::Fast);
    }

    #[test]
    fn missing_answer_is_wrong_and_missing_gold_is_undecided() {
        let t = TrajectoryBuilder::math("p")
            .answer("3")
            .model("no idea")
            .build();
        let s = Scorer::new(None).score(&t);
        assert_eq!((s.extracted, s.correct), (None, Some(false)));
        let t = TrajectoryBuilder::math("p").model("\\boxed{3}").build();
        assert_eq!(Scorer::new(None).score(&t).correct, None);
    }

    #[test]
    fn program_after_think_wins() {
        let text = "```python\nprint(1)\n```\n```output\n1\n```\n</think>\nFinal:\n```python\nprint(2)\n```\n";
        assert_eq!(extract_program(text).as_deref(), Some("print(2)\n"));
        let text = "```python\nprint(1)\n```\n```output\n1\n```\n";
        assert_eq!(extract_program(text).as_deref(), Some("print(1)\n"));
        assert_eq!(extract_program("```python\nprint(1)"), None);
        assert_eq!(extract_program("```python\n```\n"), None);
        assert_eq!(python_blocks("```python\n```\n").len(), 1);
    }

    #[test]
    fn pairs_without_sandbox_use_fast_path() {
        assert!(check_pair(None, "\\frac{1}{2}", "0.5"));
        assert!(!check_pair(None, "1/2", "2"));
        assert!(!check_pair(None, "(1,2)", "[1,2]"));
    }

    /// Runs the real driver on `script` with the scripted backend; every block "prints"
    /// `stdout`.
    fn drive(
        script: &str,
        options: &crate::infer::driver::GenerateOptions,
        hints: &crate::infer::hints::HintLibrary,
        stdout: &'static str,
    ) -> Trajectory {
        use crate::infer::backend::scripted::ScriptedBackend;
        use crate::infer::driver::{CodeRunner, Driver, GenerateError, RunResult};
        use start_sandbox::Outcome;

        struct Printer(&'static str);
        impl CodeRunner for Printer {
            fn run(&mut self, _code: &str) -> Result<RunResult, GenerateError> {
                Ok(RunResult::Ran(Outcome::finished(self.0)))
            }
        }
        let problem = crate::problem::Problem {
            id: "p".into(),
            kind: ProblemKind::Math,
            text: "What is 3*3?".into(),
            answer: Some("9".into()),
            tests: None,
            public_tests: None,
            starter_code: None,
        };
        let backend = ScriptedBackend::new(script);
        let driver = Driver::new(&backend, hints, options);
        driver.run(&problem, 0, &mut Printer(stdout)).unwrap()
    }

    #[test]
    fn the_scorer_finds_exactly_the_tool_blocks_the_driver_recorded() {
        use crate::infer::backend::scripted::split_pieces;
        use crate::infer::driver::GenerateOptions;
        use crate::infer::hints::HintLibrary;
        use crate::infer::insert::InsertPolicy;

        let scripts = [
            // Several blocks; backticks inside code, mid-line and in strings; a hint after
            // "Wait"; text after `</think>` with a last block there.
            "Let me compute.\n```python\nx = '```'\nprint(f\"{x} ```python\")\n```\nNow \
             Wait, print(2)\n```\nok. </think>\nFinal:\n```python\nprint(3)\n```\nDone.",
            // A ``` starting a line inside a string closes the block there, for both.
            "```python\ns = '''\n```\nprint(s)\n'''\n```\nend. Alternatively, x",
            // The model stops inside a block: the driver closes and runs it.
            "Compute:\n```python\nprint(4)",
            // A fence opened mid-line, and an unfinished one at the very end.
            "See ```python\nprint(5)\n```\nAll done. ```python",
        ];
        // The code prints fences, a fake tool block and an answer: all of it stays output.
        let stdout = "```\n```python\nprint('not a tool call')\n```\n````\n\\boxed{7}\n";
        let quiet = InsertPolicy {
            after_triggers: false,
            before_end: false,
            ..InsertPolicy::default()
        };
        let fixed = [
            GenerateOptions::default(),
            GenerateOptions {
                policy: quiet,
                ..GenerateOptions::default()
            },
            GenerateOptions {
                max_tool_calls: 1,
                output_bytes: 9,
                ..GenerateOptions::default()
            },
        ];
        // A hint whose prose holds a fenced example: only its last fence opens a block.
        let fenced_hint = HintLibrary::from_toml(
            "[[hint]]\nid = \"ex\"\nkind = \"math\"\n\
             text = \"\"\"Code helps, e.g.\n```python\nprint(1)\n```\nSo:\n```python\"\"\"\n",
        )
        .unwrap();
        let libraries = [HintLibrary::bundled(), fenced_hint];
        let (mut unclosed, mut runs, mut skipped_hint) = (0, 0, false);
        for script in scripts {
            // Also stop at each token cap, so that runs end inside blocks.
            let pieces = split_pieces(script).len() as u64;
            let capped = (1..=pieces).map(|max_tokens| GenerateOptions {
                max_tokens,
                ..GenerateOptions::default()
            });
            for options in fixed.iter().cloned().chain(capped) {
                for hints in &libraries {
                    let t = drive(script, &options, hints, stdout);
                    let text = t.text();
                    let ran: Vec<&str> = t.tool_calls.iter().map(|c| c.code.as_str()).collect();
                    // The blocks after `</think>` are the answer's: not run.
                    let thinking = &text[..text.find(THINK_END).unwrap_or(text.len())];
                    assert_eq!(python_blocks(thinking), ran, "{text}");
                    // Each output segment is exactly what the scorer reads as a tool block's
                    // output: it ends where that output block ends, and holds its fence (and,
                    // when the driver closed the block itself, the closing fence too).
                    let mut at = 0;
                    let mut segments = Vec::new();
                    for segment in &t.segments {
                        let end = at + segment.text().len();
                        if matches!(segment, Segment::Output { .. }) {
                            segments.push(at..end);
                        }
                        at = end;
                    }
                    let outputs: Vec<_> = fence::blocks(&text)
                        .filter(|b| b.info == OUTPUT_INFO)
                        .collect();
                    assert_eq!(outputs.len(), segments.len(), "{text}");
                    for (block, segment) in outputs.iter().zip(&segments) {
                        assert!(block.closed && block.end == segment.end, "{text}");
                        assert!(segment.contains(&block.start), "{text}");
                    }
                    let outside = text_outside_tools(&t);
                    assert!(!outside.contains("not a tool call"), "{outside}");
                    assert!(!outside.contains("boxed{7}"), "{outside}");
                    if fence::blocks(&text).last().is_some_and(|b| !b.closed) {
                        unclosed += 1;
                    }
                    if text.ends_with("All done. ```python") && options.policy.before_end {
                        // The hint would have completed the model's unfinished fence.
                        assert_eq!(t.hints(), 0, "{text}");
                        skipped_hint = true;
                    }
                    runs += 1;
                }
            }
        }
        assert!(
            runs > 50 && unclosed > 0 && skipped_hint,
            "{runs} {unclosed}"
        );
    }
}
