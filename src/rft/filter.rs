//! Filtering scored trajectories into fine-tuning data: named filters, each with its config and
//! a reason recorded for every trajectory it drops.
//!
//! Per-trajectory filters run in this order and the first that fires is the recorded reason:
//! [`FilterName::AnswerMissing`], [`FilterName::WrongAnswer`], [`FilterName::Truncated`],
//! [`FilterName::OverLength`], [`FilterName::NoToolCall`], [`FilterName::IgnoredToolFailure`],
//! [`FilterName::RepeatedCode`], [`FilterName::RepeatedText`], and, when a plain run is given
//! ([`Baseline`], the paper's seed selection), [`FilterName::SolvedWithoutHints`]. Then, per
//! problem, among the survivors: exact duplicates go ([`FilterName::Duplicate`]) and at most
//! `max_per_problem` are kept (one by default), chosen greedily to be far apart (MinHash
//! Jaccard distance of their word 3-grams), the rest dropped as [`FilterName::TopK`].
//!
//! The per-problem step needs only a small [`Candidate`] per surviving trajectory (hashes and
//! counts, about 200 bytes), never the trajectory itself, so a file can be filtered in two
//! streaming passes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::rft::score::Scored;
use crate::trajectory::{Segment, StopReason, Trajectory};

/// MinHash signature length used for diversity.
pub const MINHASH_LEN: usize = 16;
/// Bytes of a trajectory's text looked at for its diversity signature.
pub const MAX_SIGNATURE_BYTES: usize = 256 * 1024;
/// Default number of kept trajectories per problem: one, as the paper keeps (several
/// near-identical traces of one problem weigh it several times in fine-tuning).
pub const DEFAULT_MAX_PER_PROBLEM: usize = 1;
/// Default length, in words, of the passages counted by the text-repetition filter.
pub const DEFAULT_REPEAT_NGRAM_WORDS: usize = 20;
/// Default number of times one passage of that many words may occur in the model's text
/// before the trajectory counts as repeating itself (a loop writes it again and again; an
/// honest re-check rarely copies 20 words verbatim more than a few times).
pub const DEFAULT_MAX_NGRAM_REPEATS: usize = 4;
/// Default shortest line (trimmed, in bytes) the line-repetition check counts.
pub const DEFAULT_MIN_REPEAT_LINE_BYTES: usize = 24;
/// Default number of times one such line may occur in the model's text.
pub const DEFAULT_MAX_LINE_REPEATS: usize = 8;
/// Bytes of the model's text the repetition checks look at (they cost one hash per word).
pub const MAX_REPETITION_SCAN_BYTES: usize = 1 << 20;
/// Default number of times one code may be executed before the trajectory counts as looping.
pub const DEFAULT_MAX_SAME_CODE_RUNS: usize = 2;
/// Default bytes of model text after a failed tool call searched for an acknowledgement.
pub const DEFAULT_ACK_WINDOW_BYTES: usize = 800;
/// Default words that show the model noticed a failed or empty tool output.
pub const DEFAULT_ACK_WORDS: &[&str] = &[
    "error",
    "exception",
    "traceback",
    "fail",
    "bug",
    "fix",
    "wrong",
    "mistake",
    "oops",
    "issue",
    "typo",
    "no output",
    "nothing",
    "empty",
    "didn't print",
    "did not print",
    "forgot",
    "print",
    "timed out",
    "timeout",
    "too slow",
];

/// A filter's name, as recorded in drop reasons and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterName {
    /// No final answer (math) or program (code) could be extracted.
    AnswerMissing,
    /// The answer is wrong, or could not be decided.
    WrongAnswer,
    /// The trajectory did not end on its own (context full, token or time cap).
    Truncated,
    /// Longer than the configured caps.
    OverLength,
    /// The model never called the tool.
    NoToolCall,
    /// A tool call failed or printed nothing, and the model carried on as if it had not.
    IgnoredToolFailure,
    /// The same code was executed too many times (a degenerate loop).
    RepeatedCode,
    /// The model's text repeats itself: a long passage or line written again and again.
    RepeatedText,
    /// The plain run (same model, no hints) already solves the problem: the paper's seed
    /// selection keeps only problems the hints made the difference on.
    SolvedWithoutHints,
    /// The same text as a trajectory already kept for the problem.
    Duplicate,
    /// Beyond the per-problem cap (the kept ones are the most diverse).
    TopK,
}

impl FilterName {
    /// Every filter, in the order they apply.
    pub const ALL: [FilterName; 11] = [
        FilterName::AnswerMissing,
        FilterName::WrongAnswer,
        FilterName::Truncated,
        FilterName::OverLength,
        FilterName::NoToolCall,
        FilterName::IgnoredToolFailure,
        FilterName::RepeatedCode,
        FilterName::RepeatedText,
        FilterName::SolvedWithoutHints,
        FilterName::Duplicate,
        FilterName::TopK,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterName::AnswerMissing => "answer_missing",
            FilterName::WrongAnswer => "wrong_answer",
            FilterName::Truncated => "truncated",
            FilterName::OverLength => "over_length",
            FilterName::NoToolCall => "no_tool_call",
            FilterName::IgnoredToolFailure => "ignored_tool_failure",
            FilterName::RepeatedCode => "repeated_code",
            FilterName::RepeatedText => "repeated_text",
            FilterName::SolvedWithoutHints => "solved_without_hints",
            FilterName::Duplicate => "duplicate",
            FilterName::TopK => "top_k",
        }
    }
}

impl std::fmt::Display for FilterName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a trajectory was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Which filter.
    pub filter: FilterName,
    /// Why, in words (with the numbers that decided it).
    pub reason: String,
}

/// Which filters run, and their knobs. Every field has a default, so a config file may set
/// only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Drop trajectories without an extracted answer.
    pub answer_missing: bool,
    /// Drop trajectories whose answer is not known to be right (wrong or undecided).
    pub wrong_answer: bool,
    /// Drop trajectories that stopped for a cap rather than on their own.
    pub truncated: bool,
    /// Drop trajectories with more generated tokens than this.
    pub max_generated_tokens: Option<u64>,
    /// Drop trajectories whose assistant text is longer than this many bytes.
    pub max_text_bytes: Option<usize>,
    /// Drop trajectories without a tool call.
    pub no_tool_call: bool,
    /// Drop trajectories that ignored a failed or empty tool output.
    pub ignored_tool_failure: bool,
    /// Bytes after such an output searched for an acknowledgement.
    pub ack_window_bytes: usize,
    /// Words (case-insensitive) that count as acknowledging it; a new code block also does.
    pub ack_words: Vec<String>,
    /// Drop trajectories that ran one code (whitespace-normalized) more than this many times;
    /// `None` switches the filter off.
    pub max_same_code_runs: Option<usize>,
    /// Length, in words, of the passages the text-repetition check counts.
    pub repeat_ngram_words: usize,
    /// Drop trajectories whose model text holds one passage of `repeat_ngram_words` words more
    /// than this many times; `None` switches the check off.
    pub max_ngram_repeats: Option<usize>,
    /// Shortest line, trimmed, in bytes, the line-repetition check counts.
    pub min_repeat_line_bytes: usize,
    /// Drop trajectories whose model text holds one line (of at least `min_repeat_line_bytes`)
    /// more than this many times; `None` switches the check off.
    pub max_line_repeats: Option<usize>,
    /// Drop exact duplicates (same assistant text) within a problem.
    pub duplicate: bool,
    /// Keep at most this many per problem (the most diverse); `None` keeps all.
    pub max_per_problem: Option<usize>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            answer_missing: true,
            wrong_answer: true,
            truncated: true,
            max_generated_tokens: None,
            max_text_bytes: Some(512 * 1024),
            no_tool_call: true,
            ignored_tool_failure: true,
            ack_window_bytes: DEFAULT_ACK_WINDOW_BYTES,
            ack_words: DEFAULT_ACK_WORDS.iter().map(|w| w.to_string()).collect(),
            max_same_code_runs: Some(DEFAULT_MAX_SAME_CODE_RUNS),
            repeat_ngram_words: DEFAULT_REPEAT_NGRAM_WORDS,
            max_ngram_repeats: Some(DEFAULT_MAX_NGRAM_REPEATS),
            min_repeat_line_bytes: DEFAULT_MIN_REPEAT_LINE_BYTES,
            max_line_repeats: Some(DEFAULT_MAX_LINE_REPEATS),
            duplicate: true,
            max_per_problem: Some(DEFAULT_MAX_PER_PROBLEM),
        }
    }
}

fn drop(filter: FilterName, reason: impl Into<String>) -> Option<Dropped> {
    Some(Dropped {
        filter,
        reason: reason.into(),
    })
}

/// Runs the per-trajectory filters; `None` means it survives them.
pub fn check(config: &FilterConfig, scored: &Scored) -> Option<Dropped> {
    let t = &scored.trajectory;
    let score = &scored.score;
    if config.answer_missing && score.extracted.is_none() {
        return drop(
            FilterName::AnswerMissing,
            score
                .note
                .clone()
                .unwrap_or_else(|| "no final answer".into()),
        );
    }
    if config.wrong_answer && score.correct != Some(true) {
        let why = match (score.correct, score.tests_passed) {
            (None, _) => format!(
                "could not be decided ({})",
                score.note.as_deref().unwrap_or("undecided")
            ),
            (_, Some((passed, total))) => format!("{passed}/{total} tests passed"),
            _ => format!(
                "answer {:?} is not {:?}",
                clip(score.extracted.as_deref().unwrap_or(""), 80),
                clip(t.answer.as_deref().unwrap_or(""), 80)
            ),
        };
        return drop(FilterName::WrongAnswer, why);
    }
    if config.truncated && t.stop != StopReason::Eos {
        return drop(FilterName::Truncated, format!("stopped by {:?}", t.stop));
    }
    if let Some(max) = config.max_generated_tokens
        && t.counters.generated_tokens > max
    {
        return drop(
            FilterName::OverLength,
            format!("{} generated tokens > {max}", t.counters.generated_tokens),
        );
    }
    if let Some(max) = config.max_text_bytes {
        let len: usize = t.segments.iter().map(|s| s.text().len()).sum();
        if len > max {
            return drop(FilterName::OverLength, format!("{len} bytes > {max}"));
        }
    }
    if config.no_tool_call && t.tool_calls.is_empty() {
        return drop(FilterName::NoToolCall, "no code was executed");
    }
    if config.ignored_tool_failure
        && let Some(why) = ignored_failure(t, config)
    {
        return drop(FilterName::IgnoredToolFailure, why);
    }
    if let Some(max) = config.max_same_code_runs {
        let mut runs: HashMap<String, usize> = HashMap::new();
        for call in &t.tool_calls {
            let n = runs.entry(normalize_code(&call.code)).or_default();
            *n += 1;
            if *n > max {
                return drop(
                    FilterName::RepeatedCode,
                    format!("the same code ran {} times (max {max})", *n),
                );
            }
        }
    }
    if let Some(why) = repeated_text(t, config) {
        return drop(FilterName::RepeatedText, why);
    }
    None
}

/// The model's own text (hints and output blocks left out: the driver wrote those), at most
/// [`MAX_REPETITION_SCAN_BYTES`], segments separated by a newline.
fn model_text(t: &Trajectory) -> String {
    let mut text = String::new();
    for segment in &t.segments {
        if let Segment::Model { text: part } = segment {
            if text.len() >= MAX_REPETITION_SCAN_BYTES {
                break;
            }
            text.push_str(clip(part, MAX_REPETITION_SCAN_BYTES - text.len()));
            text.push('\n');
        }
    }
    text
}

/// Why the model's text counts as repeating itself, if it does: a passage of
/// `repeat_ngram_words` words occurring more than `max_ngram_repeats` times (overlapping
/// occurrences count, so a short phrase looping catches too), or a line of at least
/// `min_repeat_line_bytes` occurring more than `max_line_repeats` times.
pub fn repeated_text(t: &Trajectory, config: &FilterConfig) -> Option<String> {
    if config.max_ngram_repeats.is_none() && config.max_line_repeats.is_none() {
        return None;
    }
    let text = model_text(t);
    if let Some(max) = config.max_ngram_repeats {
        let n = config.repeat_ngram_words.max(1);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut counts: HashMap<&[&str], usize> = HashMap::new();
        for gram in words.windows(n) {
            let count = counts.entry(gram).or_default();
            *count += 1;
            if *count > max {
                return Some(format!(
                    "a {n}-word passage occurs more than {max} times: {:?}",
                    clip(&gram.join(" "), 120)
                ));
            }
        }
    }
    if let Some(max) = config.max_line_repeats {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.len() < config.min_repeat_line_bytes {
                continue;
            }
            let count = counts.entry(line).or_default();
            *count += 1;
            if *count > max {
                return Some(format!(
                    "a line occurs more than {max} times: {:?}",
                    clip(line, 120)
                ));
            }
        }
    }
    None
}

/// The paper's seed selection: how a plain run (the same model, no hints) did on each problem,
/// so that only problems it gets wrong, and the hinted run gets right, are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Per problem id: (plain trajectories, how many of them are right).
    pub problems: HashMap<String, (usize, usize)>,
}

impl Baseline {
    /// Records one scored plain trajectory.
    pub fn add(&mut self, id: &str, right: bool) {
        let entry = self.problems.entry(id.to_string()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(right);
    }

    /// Problems some plain trajectory solves.
    pub fn solved(&self) -> usize {
        self.problems
            .values()
            .filter(|(_, right)| *right > 0)
            .count()
    }

    /// Drops a trajectory of a problem the plain run solves, or has no trajectory for (it
    /// cannot show that the hints made the difference).
    pub fn check(&self, id: &str) -> Option<Dropped> {
        match self.problems.get(id) {
            None => drop(
                FilterName::SolvedWithoutHints,
                "no plain run of this problem to compare with",
            ),
            Some((n, right)) if *right > 0 => drop(
                FilterName::SolvedWithoutHints,
                format!("the plain run (no hints) solves it: {right} of {n} right"),
            ),
            Some(_) => None,
        }
    }
}

/// A tool call that failed or printed nothing and was not followed by any acknowledgement.
fn ignored_failure(t: &Trajectory, config: &FilterConfig) -> Option<String> {
    for (i, segment) in t.segments.iter().enumerate() {
        let Segment::Output { call, .. } = segment else {
            continue;
        };
        let Some(tc) = t.tool_calls.get(*call) else {
            continue;
        };
        let failed = !tc.status.is_success();
        let empty = tc.stdout.trim().is_empty() && tc.stderr.trim().is_empty();
        if !failed && !empty {
            continue;
        }
        // The model's text after the output, up to the next output, within the window.
        let mut after = String::new();
        for s in &t.segments[i + 1..] {
            if matches!(s, Segment::Output { .. }) || after.len() >= config.ack_window_bytes {
                break;
            }
            after.push_str(s.text());
        }
        let after = clip(&after, config.ack_window_bytes).to_lowercase();
        let acknowledged = after.contains(start_grade::fence::CODE_FENCE)
            || config
                .ack_words
                .iter()
                .any(|w| !w.is_empty() && after.contains(&w.to_lowercase()));
        if !acknowledged {
            let what = if failed {
                format!("tool call {call} ended {}", tc.status)
            } else {
                format!("tool call {call} printed nothing")
            };
            return Some(format!("{what} and the model did not react"));
        }
    }
    None
}

fn normalize_code(code: &str) -> String {
    code.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest prefix of `s` of at most `max` bytes, on a char boundary.
fn clip(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// What the per-problem step needs to know of a surviving trajectory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its position in the input (0-based record number).
    pub index: usize,
    /// The problem.
    pub id: String,
    /// The sample number (ties are broken by it).
    pub sample: u32,
    /// Hash of the whole assistant text (duplicates).
    pub text_hash: u64,
    /// MinHash of word 3-grams (diversity).
    pub minhash: [u64; MINHASH_LEN],
}

impl Candidate {
    /// The candidate for record `index`.
    pub fn new(index: usize, t: &Trajectory) -> Self {
        let text = t.text();
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        Candidate {
            index,
            id: t.id.clone(),
            sample: t.sample,
            text_hash: h.finish(),
            minhash: minhash(clip(&text, MAX_SIGNATURE_BYTES)),
        }
    }
}

fn minhash(text: &str) -> [u64; MINHASH_LEN] {
    let mut sig = [u64::MAX; MINHASH_LEN];
    let words: Vec<&str> = text.split_whitespace().collect();
    let grams = words.windows(3.min(words.len().max(1)));
    for gram in grams {
        let mut h = DefaultHasher::new();
        gram.hash(&mut h);
        let base = h.finish();
        for (k, slot) in sig.iter_mut().enumerate() {
            // Cheap independent permutations: multiply-xorshift of the base hash per slot.
            let mut x = base ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            *slot = (*slot).min(x);
        }
    }
    sig
}

/// Estimated Jaccard distance of two signatures (0 same, 1 disjoint).
pub fn distance(a: &[u64; MINHASH_LEN], b: &[u64; MINHASH_LEN]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    1.0 - same as f64 / MINHASH_LEN as f64
}

/// The per-problem step: returns the drops (by record index) among `candidates`; the rest are
/// kept.
pub fn select(config: &FilterConfig, candidates: Vec<Candidate>) -> BTreeMap<usize, Dropped> {
    let mut drops = BTreeMap::new();
    let mut by_problem: HashMap<String, Vec<Candidate>> = HashMap::new();
    for c in candidates {
        by_problem.entry(c.id.clone()).or_default().push(c);
    }
    for (_, mut group) in by_problem {
        group.sort_by_key(|c| (c.sample, c.index));
        let mut unique = Vec::with_capacity(group.len());
        let mut seen = HashSet::new();
        for c in group {
            if config.duplicate && !seen.insert(c.text_hash) {
                drops.insert(
                    c.index,
                    Dropped {
                        filter: FilterName::Duplicate,
                        reason: format!("same text as an earlier sample of {:?}", c.id),
                    },
                );
            } else {
                unique.push(c);
            }
        }
        let Some(k) = config.max_per_problem else {
            continue;
        };
        if unique.len() <= k {
            continue;
        }
        // Greedy farthest-point selection, starting from the first sample.
        let mut picked: Vec<Candidate> = Vec::with_capacity(k);
        let mut rest = unique;
        while picked.len() < k && !rest.is_empty() {
            let best = if picked.is_empty() {
                0
            } else {
                let mut best = 0;
                let mut best_d = -1.0;
                for (i, c) in rest.iter().enumerate() {
                    let d = picked
                        .iter()
                        .map(|p| distance(&p.minhash, &c.minhash))
                        .fold(f64::INFINITY, f64::min);
                    if d > best_d {
                        best = i;
                        best_d = d;
                    }
                }
                best
            };
            picked.push(rest.remove(best));
        }
        for c in rest {
            drops.insert(
                c.index,
                Dropped {
                    filter: FilterName::TopK,
                    reason: format!(
                        "{:?} already has {k} more diverse correct trajectories",
                        c.id
                    ),
                },
            );
        }
    }
    drops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rft::score::{Method, Score};
    use crate::trajectory::{InsertPoint, ToolStatus, TrajectoryBuilder};

    /// A math trajectory whose gold answer is 2.
    fn traj() -> TrajectoryBuilder {
        TrajectoryBuilder::math("p").answer("2")
    }

    /// `t`, scored as extracting 2, `correct` or not.
    fn scored(t: TrajectoryBuilder, correct: Option<bool>) -> Scored {
        Scored {
            trajectory: t.build(),
            score: Score {
                extracted: Some("2".into()),
                correct,
                method: Method::Fast,
                correct_before_hints: None,
                tests_passed: None,
                note: None,
            },
        }
    }

    #[test]
    fn each_filter_fires_with_a_reason() {
        let cfg = FilterConfig::default();
        let good_run = traj()
            .model("```python\nprint(2)\n```\n")
            .tool_call("print(2)", "2\n")
            .model("\\boxed{2}");
        let good = scored(good_run.clone(), Some(true));
        assert_eq!(check(&cfg, &good), None);

        let wrong = scored(good_run, Some(false));
        assert_eq!(check(&cfg, &wrong).unwrap().filter, FilterName::WrongAnswer);

        let mut missing = good.clone();
        missing.score.extracted = None;
        assert_eq!(
            check(&cfg, &missing).unwrap().filter,
            FilterName::AnswerMissing
        );

        let mut cut = good.clone();
        cut.trajectory.stop = StopReason::Length;
        assert_eq!(check(&cfg, &cut).unwrap().filter, FilterName::Truncated);

        let no_tool = scored(traj().model("\\boxed{2}"), Some(true));
        assert_eq!(
            check(&cfg, &no_tool).unwrap().filter,
            FilterName::NoToolCall
        );

        let ignored = scored(
            traj()
                .model("```python\n1/0\n```\n")
                .failed_tool_call("1/0", ToolStatus::Exception, "ZeroDivisionError")
                .model("So \\boxed{2}"),
            Some(true),
        );
        let d = check(&cfg, &ignored).unwrap();
        assert_eq!(d.filter, FilterName::IgnoredToolFailure);
        assert!(d.reason.contains("exception"), "{}", d.reason);

        let noticed = scored(
            traj()
                .model("```python\n1/0\n```\n")
                .failed_tool_call("1/0", ToolStatus::Exception, "ZeroDivisionError")
                .model("That error is mine. So \\boxed{2}"),
            Some(true),
        );
        assert_eq!(check(&cfg, &noticed), None);

        // The same code three times, but for whitespace.
        let looping = scored(
            traj()
                .model("```python\nprint(2)\n```\n")
                .tool_call("print(2)", "2")
                .model("```python\nprint(2) \n```\n")
                .tool_call("print(2) ", "2")
                .model("```python\nprint(2)\n\n```\n")
                .tool_call("print(2)\n", "2")
                .model("\\boxed{2}"),
            Some(true),
        );
        assert_eq!(
            check(&cfg, &looping).unwrap().filter,
            FilterName::RepeatedCode
        );
    }

    #[test]
    fn repeated_text_catches_loops_not_rechecks() {
        let cfg = FilterConfig::default();
        let ok = |t: TrajectoryBuilder| repeated_text(&t.build(), &cfg);
        let passage = "so the sum of the first ten squares is three hundred and eighty five which \
                       we can verify by adding them one at a time";
        // An honest re-check may repeat a passage a few times...
        let recheck = (0..DEFAULT_MAX_NGRAM_REPEATS)
            .map(|i| format!("{passage}. Check {i}.\n"))
            .collect::<String>();
        assert_eq!(ok(traj().model(recheck.clone())), None);
        // ...one more is a loop.
        let looped = recheck + passage;
        let why = ok(traj().model(looped)).unwrap();
        assert!(why.contains("20-word passage"), "{why}");
        // A short phrase looping: its overlapping windows repeat at once.
        let why = ok(traj().model("Wait, no. ".repeat(40))).unwrap();
        assert!(why.contains("more than 4 times"), "{why}");
        // A line repeated, with other text between (not one passage).
        let line = "Let me double-check this result carefully.";
        let mut text = String::new();
        for i in 0..=DEFAULT_MAX_LINE_REPEATS {
            text.push_str(&format!("{line}\nstep {i} gives {}\n", i * i));
        }
        let why = ok(traj().model(text.clone())).unwrap();
        assert!(why.starts_with("a line occurs more than 8 times"), "{why}");
        // Hints and outputs are the driver's text: they never count.
        let hinted = (0..10).fold(traj(), |t, _| {
            t.model("x ").hint(
                "h",
                InsertPoint::BeforeThinkEnd,
                format!("{line}\n{passage}\n"),
            )
        });
        assert_eq!(ok(hinted), None);
        // Off switches.
        let off = FilterConfig {
            max_line_repeats: None,
            max_ngram_repeats: None,
            ..FilterConfig::default()
        };
        assert_eq!(repeated_text(&traj().model(text).build(), &off), None);
        // Through `check`, with its filter name.
        let s = scored(
            traj().model("Wait, no. ".repeat(40)).tool_call("1", "1"),
            Some(true),
        );
        assert_eq!(check(&cfg, &s).unwrap().filter, FilterName::RepeatedText);
    }

    #[test]
    fn the_baseline_keeps_problems_only_the_hints_solve() {
        let mut b = Baseline::default();
        b.add("easy", false);
        b.add("easy", true);
        b.add("hard", false);
        assert_eq!(b.solved(), 1);
        let d = b.check("easy").unwrap();
        assert_eq!(d.filter, FilterName::SolvedWithoutHints);
        assert!(d.reason.contains("1 of 2 right"), "{}", d.reason);
        assert_eq!(b.check("hard"), None);
        assert!(b.check("unseen").unwrap().reason.contains("no plain run"));
    }

    #[test]
    fn select_drops_duplicates_and_keeps_diverse() {
        let cfg = FilterConfig {
            max_per_problem: Some(2),
            ..FilterConfig::default()
        };
        let texts = [
            "we compute the sum of the first ten squares with a loop and get 385",
            "we compute the sum of the first ten squares with a loop and get 385",
            "we compute the sum of the first ten squares with a loop and get 385 ok",
            "by the closed formula n(n+1)(2n+1)/6 the total is 385 as expected",
        ];
        let cands: Vec<Candidate> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let s = scored(traj().sample(i as u32).model(*t), Some(true));
                Candidate::new(i, &s.trajectory)
            })
            .collect();
        let drops = select(&cfg, cands);
        assert_eq!(drops[&1].filter, FilterName::Duplicate);
        assert_eq!(drops[&2].filter, FilterName::TopK);
        assert!(!drops.contains_key(&0) && !drops.contains_key(&3));
    }
}
