//! The streaming steps of Hint-RFT over JSONL: score, filter, export, and answer pairs.
//!
//! Every step reads JSONL one line at a time ([`LineReader`]) and writes as it goes, so memory
//! is bounded by a line and a chunk of [`SCORE_CHUNK`] trajectories, plus the small
//! per-problem state of filtering ([`filter::Candidate`]) and the report (one entry per
//! problem). A malformed or over-long line is counted and skipped, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use start_grade::answer::{Verdict, extract_answer_or_last_line};

use super::error::{RftError, file_err};
use super::export::{ExportFormat, ExportOptions, to_example, to_prompt_completion};
use super::filter::{self, Baseline, Candidate, FilterConfig, FilterName};
use super::report::{BaselineReport, DropRecord, Report};
use super::score::{Method, Pair, Scored, Scorer};
use crate::jsonl::{self, JsonlError, LineError, LineReader};
use crate::trajectory::{Segment, Trajectory};

/// Trajectories scored together (read, scored in parallel, written in order).
pub const SCORE_CHUNK: usize = 64;

/// Called with the bytes of input consumed so far (drives a progress bar).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Counts from `start score`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Trajectories scored.
    pub trajectories: usize,
    /// Right.
    pub correct: usize,
    /// Wrong (including no answer).
    pub wrong: usize,
    /// Could not be decided.
    pub undecided: usize,
    /// Decided by the symbolic check.
    pub sympy: usize,
    /// Lines that were not trajectories (skipped).
    pub bad_lines: usize,
}

/// Scores a trajectory stream into a scored stream, `jobs` trajectories at a time.
///
/// # Errors
/// I/O errors (an over-long line is skipped and counted as bad).
pub fn score_stream(
    scorer: &Scorer<'_>,
    mut reader: LineReader<impl BufRead>,
    output: &mut impl Write,
    jobs: usize,
    progress: Progress<'_>,
) -> Result<ScoreSummary, RftError> {
    let jobs = jobs.max(1);
    let mut summary = ScoreSummary::default();
    loop {
        let mut chunk: Vec<Trajectory> = Vec::with_capacity(SCORE_CHUNK);
        while chunk.len() < SCORE_CHUNK {
            let Some(line) = reader.next_record(&mut summary.bad_lines)? else {
                break;
            };
            match serde_json::from_slice::<Trajectory>(line) {
                Ok(t) => chunk.push(t),
                Err(_) => summary.bad_lines += 1,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let scores = score_parallel(scorer, &chunk, jobs);
        for (trajectory, score) in chunk.into_iter().zip(scores) {
            summary.trajectories += 1;
            match score.correct {
                Some(true) => summary.correct += 1,
                Some(false) => summary.wrong += 1,
                None => summary.undecided += 1,
            }
            if score.method == Method::Sympy {
                summary.sympy += 1;
            }
            jsonl::write_line(output, &Scored { trajectory, score })?;
        }
        progress(reader.bytes_read());
    }
    output.flush().map_err(JsonlError::from)?;
    Ok(summary)
}

/// Scores `chunk` on `jobs` threads, results in order. A trajectory whose scoring panicked gets
/// an undecided score that says so.
pub fn score_parallel(
    scorer: &Scorer<'_>,
    chunk: &[Trajectory],
    jobs: usize,
) -> Vec<crate::rft::score::Score> {
    crate::pool::map_ordered(jobs, chunk, |t| scorer.score(t))
        .into_iter()
        .map(|s| {
            s.unwrap_or_else(|why| crate::rft::score::Score {
                note: Some(format!("scoring failed: {why}")),
                ..crate::rft::score::Score::undecided(None)
            })
        })
        .collect()
}

/// How `start score --pairs` reads a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredForm {
    /// A whole model response: its final answer is extracted first
    /// ([`start_grade::answer::extract_answer_or_last_line`]: the last `\boxed{}`, an "answer
    /// is" phrase, the last math span, else the last line).
    Response,
    /// A bare answer, compared whole.
    Bare,
}

/// Reads `{"gold", "pred"}` lines and writes each back with `"equal"` (and `"extracted"`, the
/// answer found in a [`PredForm::Response`]); returns (pairs, equal, bad lines).
///
/// # Errors
/// I/O errors (an over-long line is skipped and counted as bad).
pub fn pairs_stream(
    scorer: &Scorer<'_>,
    mut reader: LineReader<impl BufRead>,
    output: &mut impl Write,
    form: PredForm,
    progress: Progress<'_>,
) -> Result<(usize, usize, usize), RftError> {
    let (mut n, mut equal, mut bad) = (0, 0, 0);
    while let Some(line) = reader.next_record(&mut bad)? {
        let Ok(mut pair) = serde_json::from_slice::<Pair>(line) else {
            bad += 1;
            continue;
        };
        pair.extracted = match form {
            PredForm::Response => extract_answer_or_last_line(&pair.pred),
            PredForm::Bare => None,
        };
        let pred = match (form, &pair.extracted) {
            (PredForm::Response, Some(answer)) => answer.as_str(),
            (PredForm::Response, None) => "",
            (PredForm::Bare, _) => pair.pred.as_str(),
        };
        let eq = scorer.equal(&pair.gold, pred).0 == Verdict::Equal;
        pair.equal = Some(eq);
        n += 1;
        equal += usize::from(eq);
        jsonl::write_line(output, &pair)?;
        progress(reader.bytes_read());
    }
    output.flush().map_err(JsonlError::from)?;
    Ok((n, equal, bad))
}

/// Filters a scored file (two streaming passes) into `kept` and `dropped` and reports. With a
/// `baseline` (a plain run's scores, [`baseline_stream`]), only problems it does not solve keep
/// trajectories: the paper's seed selection.
///
/// Over-long lines are skipped, counted in [`Report::bad_lines`] and given to `skip_report`.
///
/// # Errors
/// I/O errors (an over-long line is skipped and counted as bad).
pub fn filter_file(
    input: &Path,
    config: &FilterConfig,
    baseline: Option<&Baseline>,
    kept: &mut impl Write,
    dropped: &mut impl Write,
    progress: Progress<'_>,
    skip_report: impl FnMut(&LineError) + Send + 'static,
) -> Result<Report, RftError> {
    let open = || -> Result<LineReader<BufReader<File>>, RftError> {
        Ok(LineReader::new(
            BufReader::new(File::open(input).map_err(file_err(input))?),
            input.display().to_string(),
        ))
    };
    // Pass 1: statistics, per-trajectory filters, candidates.
    let mut report = Report::default();
    let mut solved: HashMap<String, bool> = HashMap::new();
    let mut drops: BTreeMap<usize, filter::Dropped> = BTreeMap::new();
    let mut candidates = Vec::new();
    let (mut tool_calls, mut hints, mut before_right) = (0usize, 0usize, 0usize);
    let mut reader = open()?.with_skip_report(skip_report);
    let mut index = 0usize;
    while let Some(line) = reader.next_record(&mut report.bad_lines)? {
        let Ok(s) = serde_json::from_slice::<Scored>(line) else {
            report.bad_lines += 1;
            continue;
        };
        let right = s.score.correct == Some(true);
        report.trajectories += 1;
        report.correct += usize::from(right);
        *solved.entry(s.trajectory.id.clone()).or_default() |= right;
        tool_calls += s.trajectory.tool_calls.len();
        hints += s
            .trajectory
            .segments
            .iter()
            .filter(|x| matches!(x, Segment::Hint { .. }))
            .count();
        if let Some(b) = s.score.correct_before_hints {
            report.answered_before_hints += 1;
            before_right += usize::from(b);
        }
        let verdict =
            filter::check(config, &s).or_else(|| baseline.and_then(|b| b.check(&s.trajectory.id)));
        match verdict {
            Some(d) => {
                drops.insert(index, d);
            }
            None => candidates.push(Candidate::new(index, &s.trajectory)),
        }
        index += 1;
        progress(reader.bytes_read() / 2);
    }
    let pass1_bytes = reader.bytes_read();
    drops.extend(filter::select(config, candidates));
    // Pass 2: write.
    let mut reader = open()?;
    let mut index = 0usize;
    let mut kept_problems = std::collections::HashSet::new();
    // Pass 1 counted the lines this pass skips.
    while let Some(line) = reader.next_record(&mut 0)? {
        let Ok(key) = serde_json::from_slice::<KeyOnly>(line) else {
            continue;
        };
        match drops.get(&index) {
            Some(d) => jsonl::write_line(
                dropped,
                &DropRecord {
                    id: key.id,
                    sample: key.sample,
                    filter: d.filter,
                    reason: d.reason.clone(),
                },
            )?,
            None => {
                kept.write_all(line).map_err(JsonlError::from)?;
                kept.write_all(b"\n").map_err(JsonlError::from)?;
                report.kept += 1;
                kept_problems.insert(key.id);
            }
        }
        index += 1;
        progress(pass1_bytes / 2 + reader.bytes_read() / 2);
    }
    kept.flush().map_err(JsonlError::from)?;
    dropped.flush().map_err(JsonlError::from)?;
    for name in FilterName::ALL {
        report.drops.insert(name.to_string(), 0);
    }
    for d in drops.values() {
        *report.drops.entry(d.filter.to_string()).or_default() += 1;
    }
    report.problems = solved.len();
    report.kept_problems = kept_problems.len();
    report.baseline = baseline.map(|b| BaselineReport {
        problems: b.problems.len(),
        trajectories: b.problems.values().map(|(n, _)| n).sum(),
        solved: b.solved(),
    });
    let n = report.trajectories.max(1) as f64;
    report.pass_rate = report.correct as f64 / n;
    report.problem_pass_rate =
        solved.values().filter(|v| **v).count() as f64 / solved.len().max(1) as f64;
    report.pass_rate_before_hints = (report.answered_before_hints > 0)
        .then(|| before_right as f64 / report.answered_before_hints as f64);
    report.tool_calls_per_trajectory = tool_calls as f64 / n;
    report.hints_per_trajectory = hints as f64 / n;
    Ok(report)
}

/// Just enough of a scored line to name it (a line that parsed in pass 1 parses here too).
#[derive(Deserialize)]
struct KeyOnly {
    id: String,
    sample: u32,
}

/// What [`export_stream`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    /// Examples written.
    pub exported: usize,
    /// Lines that were not trajectories (skipped).
    pub bad_lines: usize,
    /// Prompt/completion examples whose prompt is a ChatML rendering made here, because the
    /// trajectory carries no `rendered_prompt` (written by an older `start`, or a backend that
    /// does not render one): check that ChatML is the model's template.
    pub chatml_fallbacks: usize,
}

/// Exports a trajectory (or scored) stream as SFT JSONL in `opts.format`.
///
/// # Errors
/// I/O errors (an over-long line is skipped and counted as bad).
pub fn export_stream(
    mut reader: LineReader<impl BufRead>,
    output: &mut impl Write,
    opts: &ExportOptions,
    progress: Progress<'_>,
) -> Result<ExportSummary, RftError> {
    let mut summary = ExportSummary::default();
    while let Some(line) = reader.next_record(&mut summary.bad_lines)? {
        match serde_json::from_slice::<Trajectory>(line) {
            Ok(t) => {
                match opts.format {
                    ExportFormat::Messages => jsonl::write_line(output, &to_example(&t, opts))?,
                    ExportFormat::PromptCompletion => {
                        let (example, rendered) = to_prompt_completion(&t, opts)?;
                        summary.chatml_fallbacks += usize::from(!rendered);
                        jsonl::write_line(output, &example)?;
                    }
                }
                summary.exported += 1;
            }
            Err(_) => summary.bad_lines += 1,
        }
        progress(reader.bytes_read());
    }
    output.flush().map_err(JsonlError::from)?;
    Ok(summary)
}

/// Reads a plain run's scored trajectories (`start score` of a run without hints) into the
/// [`Baseline`] of the paper's seed selection; returns it and the lines skipped.
///
/// # Errors
/// I/O errors (an over-long or malformed line is skipped and counted).
pub fn baseline_stream(
    mut reader: LineReader<impl BufRead>,
) -> Result<(Baseline, usize), RftError> {
    #[derive(Deserialize)]
    struct PlainScore {
        correct: Option<bool>,
    }
    #[derive(Deserialize)]
    struct PlainLine {
        id: String,
        score: PlainScore,
    }
    let mut baseline = Baseline::default();
    let mut bad = 0;
    while let Some(line) = reader.next_record(&mut bad)? {
        match serde_json::from_slice::<PlainLine>(line) {
            Ok(p) => baseline.add(&p.id, p.score.correct == Some(true)),
            Err(_) => bad += 1,
        }
    }
    Ok((baseline, bad))
}
