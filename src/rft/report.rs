//! A round's report (what came in, how good it was, what the filters did) and the record of
//! each dropped trajectory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{RftError, file_err};
use super::filter::FilterName;

/// A round's report: what came in, how good it was, what the filters did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Distinct problems.
    pub problems: usize,
    /// Trajectories read.
    pub trajectories: usize,
    /// Lines that were not scored trajectories (skipped).
    pub bad_lines: usize,
    /// Trajectories whose answer is right.
    pub correct: usize,
    /// Fraction of trajectories that are right (after hints: the final answer).
    pub pass_rate: f64,
    /// Fraction of problems with at least one right trajectory.
    pub problem_pass_rate: f64,
    /// Fraction right of the answers given before the first hint, over trajectories that had
    /// one (math); `None` when none had.
    pub pass_rate_before_hints: Option<f64>,
    /// Trajectories with an answer before the first hint.
    pub answered_before_hints: usize,
    /// Mean tool calls per trajectory.
    pub tool_calls_per_trajectory: f64,
    /// Mean hints per trajectory.
    pub hints_per_trajectory: f64,
    /// Trajectories kept.
    pub kept: usize,
    /// Problems with a kept trajectory.
    #[serde(default)]
    pub kept_problems: usize,
    /// The plain run (no hints) of the paper's seed selection, when the round made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineReport>,
    /// How the round sampled (set by `start rft`), e.g. "temperature 0.6, top-p 0.95".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<String>,
    /// Drops per filter (every filter listed, zero included).
    pub drops: BTreeMap<String, usize>,
    /// Lines exported as SFT data (set by the export step).
    pub exported: Option<usize>,
    /// Lines exported as pre-rendered prompt/completion pairs (set by the export step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_prompt_completion: Option<usize>,
    /// Of those, prompts rendered here as ChatML because the trajectory had no rendered prompt.
    #[serde(default)]
    pub chatml_fallbacks: usize,
}

/// The plain run of the paper's seed selection: the same model, no hints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// Problems with a plain trajectory.
    pub problems: usize,
    /// Plain trajectories.
    pub trajectories: usize,
    /// Problems the plain run solves (their hinted trajectories are dropped).
    pub solved: usize,
}

impl Report {
    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} problems, {} trajectories ({} bad lines)\npass rate {:.1}% ({} right), problems solved {:.1}%",
            self.problems,
            self.trajectories,
            self.bad_lines,
            100.0 * self.pass_rate,
            self.correct,
            100.0 * self.problem_pass_rate
        );
        if let Some(before) = self.pass_rate_before_hints {
            s.push_str(&format!(
                "\nbefore hints {:.1}% of {} answered",
                100.0 * before,
                self.answered_before_hints
            ));
        }
        if let Some(sampling) = &self.sampling {
            s.push_str(&format!("\nsampling: {sampling}"));
        }
        if let Some(b) = &self.baseline {
            s.push_str(&format!(
                "\nselection: hinted right and plain wrong (the paper's seed selection): the plain \
                 run (no hints, {} trajectories) solves {} of {} problems; their hinted \
                 trajectories are dropped",
                b.trajectories, b.solved, b.problems
            ));
        }
        s.push_str(&format!(
            "\n{:.2} tool calls, {:.2} hints per trajectory\nkept {} trajectories of {} problems",
            self.tool_calls_per_trajectory,
            self.hints_per_trajectory,
            self.kept,
            self.kept_problems
        ));
        let dropped: Vec<String> = self
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !dropped.is_empty() {
            s.push_str(&format!("; dropped: {}", dropped.join(", ")));
        }
        if let Some(n) = self.exported {
            s.push_str(&format!("\nexported {n}"));
        }
        if let Some(n) = self.exported_prompt_completion {
            s.push_str(&format!(", and {n} as prompt/completion"));
            if self.chatml_fallbacks > 0 {
                s.push_str(&format!(
                    " ({} prompts rendered as ChatML: their trajectories carry no rendered prompt)",
                    self.chatml_fallbacks
                ));
            }
        }
        s.push('\n');
        s
    }
}

/// One line of `dropped.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    /// The problem.
    pub id: String,
    /// The sample.
    pub sample: u32,
    /// The filter that dropped it.
    pub filter: FilterName,
    /// Why.
    pub reason: String,
}

impl Report {
    /// Writes the report as `json` (pretty JSON) and, beside it, the same path with a `.txt`
    /// extension ([`Report::summary`]), each atomically.
    ///
    /// # Errors
    /// When either file cannot be written.
    pub fn write(&self, json: &Path) -> Result<(), RftError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(crate::jsonl::JsonlError::from)?;
        write_file(json, &bytes)?;
        write_file(&json.with_extension("txt"), self.summary().as_bytes())
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RftError> {
    start_runtime::write_atomic(path, |f| {
        f.write_all(bytes)
            .map_err(|e| start_runtime::Error::io("cannot write", path, e))
    })
    .map_err(|e| file_err(path)(std::io::Error::other(e)))
}
