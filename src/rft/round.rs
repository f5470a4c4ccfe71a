//! A Hint-RFT round folder, which makes `start rft` resumable.
//!
//! A round folder holds `trajectories.jsonl` (from `start infer`), `scored.jsonl`,
//! `kept.jsonl`, `dropped.jsonl` (one `{id, sample, filter, reason}` per drop), `sft.jsonl`
//! (chat messages), `sft-prompt-completion.jsonl` (pre-rendered prompt/completion pairs),
//! `report.json`, `report.txt`, and `round.json`, the steps finished so far. With the paper's
//! seed selection it also holds `plain.jsonl` (the same model without hints) and
//! `plain-scored.jsonl`. Each step writes a `.partial` file and renames it when done, so a
//! killed round redoes at most one step. A round's options are fixed by its first run: a
//! changed option needs a new folder.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{RftError, file_err};
use super::export::{ExportFormat, ExportOptions};
use super::filter::FilterConfig;
use super::report::Report;
use super::score::{Scorer, load_tests};
use super::stream::{ScoreSummary, baseline_stream, export_stream, filter_file, score_stream};
use crate::jsonl::{JsonlError, LineError, LineReader};

/// The steps of a round, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `start infer` into `trajectories.jsonl`.
    Sample,
    /// `start infer` without hints into `plain.jsonl` (the seed selection's plain run).
    SamplePlain,
    /// Scoring into `scored.jsonl`.
    Score,
    /// Scoring `plain.jsonl` into `plain-scored.jsonl`.
    ScorePlain,
    /// Filtering into `kept.jsonl` and `dropped.jsonl`, with the report.
    Filter,
    /// Exporting `sft.jsonl`.
    Export,
}

/// A round folder and the steps it has finished.
#[derive(Debug, Clone)]
pub struct Round {
    /// The folder.
    pub dir: PathBuf,
    /// Finished steps (read from and saved to `round.json`).
    pub done: Vec<Step>,
}

impl Round {
    /// Opens (creating it if needed) a round folder.
    ///
    /// # Errors
    /// When the folder cannot be created or `round.json` is unreadable.
    pub fn open(dir: &Path) -> Result<Self, RftError> {
        std::fs::create_dir_all(dir).map_err(file_err(dir))?;
        let state = dir.join("round.json");
        let done = match std::fs::read(&state) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RftError::File {
                path: state.clone(),
                source: std::io::Error::other(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(file_err(&state)(e)),
        };
        Ok(Round {
            dir: dir.to_path_buf(),
            done,
        })
    }

    /// A file of the round.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether `step` is finished.
    pub fn is_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// Records `step` as finished.
    ///
    /// # Errors
    /// When `round.json` cannot be written.
    pub fn finish(&mut self, step: Step) -> Result<(), RftError> {
        if !self.done.contains(&step) {
            self.done.push(step);
        }
        let state = self.path("round.json");
        let bytes = serde_json::to_vec_pretty(&self.done).map_err(JsonlError::from)?;
        start_runtime::write_atomic(&state, |f| {
            f.write_all(&bytes)
                .map_err(|e| start_runtime::Error::io("cannot write", &state, e))
        })
        .map_err(|e| file_err(&state)(std::io::Error::other(e)))
    }

    /// Creates `name.partial` for writing; [`Round::commit`] renames it to `name`.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn create(&self, name: &str) -> Result<BufWriter<File>, RftError> {
        let p = self.path(&format!("{name}.partial"));
        Ok(BufWriter::new(File::create(&p).map_err(file_err(&p))?))
    }

    /// Renames `name.partial` to `name`.
    ///
    /// # Errors
    /// When the rename fails.
    pub fn commit(&self, name: &str) -> Result<(), RftError> {
        let from = self.path(&format!("{name}.partial"));
        let to = self.path(name);
        std::fs::rename(&from, &to).map_err(file_err(&to))
    }
}

/// What a round's steps need besides the folder.
#[derive(Debug)]
pub struct RoundSteps<'a, 's> {
    /// Scores trajectories (its tests come from the problems file).
    pub scorer: Scorer<'s>,
    /// The problems file (source of the code tests).
    pub problems: &'a Path,
    /// Threads scoring at once.
    pub jobs: usize,
    /// Which trajectories are kept.
    pub filter: FilterConfig,
    /// How kept trajectories are exported (both forms are written; `format` is ignored).
    pub export: ExportOptions,
    /// Keep only problems a plain run (`plain.jsonl`, no hints) gets wrong: the paper's seed
    /// selection.
    pub plain_baseline: bool,
    /// How the round sampled, for the report.
    pub sampling: Option<String>,
}

/// What the steps run now reported (`None` for a step finished before).
#[derive(Debug, Clone, Default)]
pub struct StepsDone {
    /// The score step's counts.
    pub scored: Option<ScoreSummary>,
    /// The plain run's score counts (seed selection).
    pub plain_scored: Option<ScoreSummary>,
    /// The round's report after filtering (and export).
    pub report: Option<Report>,
}

impl Round {
    /// Runs the score, filter and export steps that are not finished yet, each into its
    /// `.partial` file, renamed and recorded in `round.json` when done. `progress` gets each
    /// step and the bytes of its input read so far; `skipped` each over-long line skipped.
    ///
    /// # Errors
    /// [`RftError`] when a step's files cannot be read or written; finished steps stay done.
    pub fn run_steps(
        &mut self,
        mut steps: RoundSteps<'_, '_>,
        progress: &(dyn Fn(Step, u64) + Sync),
        skipped: impl Fn(&LineError) + Send + Sync + Clone + 'static,
    ) -> Result<StepsDone, RftError> {
        let mut done = StepsDone::default();
        let trajectories = self.path("trajectories.jsonl");
        let report_path = self.path("report.json");
        let open = |path: &Path| -> Result<LineReader<BufReader<File>>, RftError> {
            let file = File::open(path).map_err(file_err(path))?;
            let skipped = skipped.clone();
            Ok(
                LineReader::new(BufReader::new(file), path.display().to_string())
                    .with_skip_report(move |e| skipped(e)),
            )
        };
        if !self.is_done(Step::Score) {
            let (tests, _) = load_tests(open(steps.problems)?)?;
            steps.scorer.tests = tests;
            let mut out = self.create("scored.jsonl")?;
            let bytes = |b: u64| progress(Step::Score, b);
            let summary = score_stream(
                &steps.scorer,
                open(&trajectories)?,
                &mut out,
                steps.jobs,
                &bytes,
            )?;
            drop(out);
            self.commit("scored.jsonl")?;
            self.finish(Step::Score)?;
            done.scored = Some(summary);
        }
        if steps.plain_baseline && !self.is_done(Step::ScorePlain) {
            if steps.scorer.tests.is_empty() {
                let (tests, _) = load_tests(open(steps.problems)?)?;
                steps.scorer.tests = tests;
            }
            let mut out = self.create("plain-scored.jsonl")?;
            let bytes = |b: u64| progress(Step::ScorePlain, b);
            let summary = score_stream(
                &steps.scorer,
                open(&self.path("plain.jsonl"))?,
                &mut out,
                steps.jobs,
                &bytes,
            )?;
            drop(out);
            self.commit("plain-scored.jsonl")?;
            self.finish(Step::ScorePlain)?;
            done.plain_scored = Some(summary);
        }
        if !self.is_done(Step::Filter) {
            let baseline = if steps.plain_baseline {
                Some(baseline_stream(open(&self.path("plain-scored.jsonl"))?)?.0)
            } else {
                None
            };
            let mut kept = self.create("kept.jsonl")?;
            let mut dropped = self.create("dropped.jsonl")?;
            let bytes = |b: u64| progress(Step::Filter, b);
            let skipped = skipped.clone();
            let mut report = filter_file(
                &self.path("scored.jsonl"),
                &steps.filter,
                baseline.as_ref(),
                &mut kept,
                &mut dropped,
                &bytes,
                move |e| skipped(e),
            )?;
            drop((kept, dropped));
            report.sampling = steps.sampling.clone();
            self.commit("kept.jsonl")?;
            self.commit("dropped.jsonl")?;
            report.write(&report_path)?;
            self.finish(Step::Filter)?;
            done.report = Some(report);
        }
        if !self.is_done(Step::Export) {
            let bytes = |b: u64| progress(Step::Export, b / 2);
            let mut out = self.create("sft.jsonl")?;
            let messages = ExportOptions {
                format: ExportFormat::Messages,
                ..steps.export.clone()
            };
            let n = export_stream(open(&self.path("kept.jsonl"))?, &mut out, &messages, &bytes)?;
            drop(out);
            let kept_bytes = std::fs::metadata(self.path("kept.jsonl")).map_or(0, |m| m.len());
            let bytes = |b: u64| progress(Step::Export, kept_bytes / 2 + b / 2);
            let mut out = self.create("sft-prompt-completion.jsonl")?;
            let pairs = ExportOptions {
                format: ExportFormat::PromptCompletion,
                ..steps.export.clone()
            };
            let pc = export_stream(open(&self.path("kept.jsonl"))?, &mut out, &pairs, &bytes)?;
            drop(out);
            self.commit("sft.jsonl")?;
            self.commit("sft-prompt-completion.jsonl")?;
            let mut report: Report = match std::fs::read(&report_path) {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .map_err(|e| file_err(&report_path)(std::io::Error::other(e)))?,
                Err(e) => return Err(file_err(&report_path)(e)),
            };
            report.exported = Some(n.exported);
            report.exported_prompt_completion = Some(pc.exported);
            report.chatml_fallbacks = pc.chatml_fallbacks;
            report.write(&report_path)?;
            self.finish(Step::Export)?;
            done.report = Some(report);
        }
        Ok(done)
    }
}
