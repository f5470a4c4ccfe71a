//! Merging trajectory files (one per shard, from `start infer --shard I/N`) into one, the way
//! [`TrajectoryWriter`] resumes: keyed by `(id, sample)`.
//!
//! Every line of every input is accounted for: it is appended to the output, or it is reported
//! to the caller as a [`Skipped`] line with its file, line number and why: a duplicate of a
//! trajectory already merged (the first complete one wins, in the order the inputs are given),
//! a line that is not a trajectory, one over [`MAX_TRAJECTORY_LINE_BYTES`] (never read whole),
//! or a torn last line (no newline: its shard is still writing, or was killed; its writer cuts
//! it off and redoes it on resume). Lines are copied byte for byte, so fields this version does
//! not know survive.
//!
//! Merging is resumable and idempotent: the output is opened like a trajectory file (a torn last
//! line, left by a killed merge, is cut off; the pairs it holds are done), and only what it
//! lacks is appended. Merging the same inputs twice adds nothing the second time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{MAX_TRAJECTORY_LINE_BYTES, Trajectory, TrajectoryWriter, WriterError};
use crate::jsonl::{Line, LineReader};

/// Bytes buffered before the output is written (whole lines only reach the file, but for the
/// last one a kill may tear, which the next merge cuts off).
const OUTPUT_BUFFER_BYTES: usize = 1 << 20;

/// A merge that could not go on. What was appended before it stays in the output, whole.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The output could not be opened, read back or trimmed.
    #[error(transparent)]
    Output(#[from] WriterError),
    /// An input could not be opened or read.
    #[error("cannot read the input {path}: {source}")]
    Input {
        /// The input.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The output is also one of the inputs.
    #[error("{path} is the output; give a new file (or another one) as --output")]
    OutputIsInput {
        /// The file.
        path: PathBuf,
    },
    /// Appending to the output failed.
    #[error("cannot write {path}: {source}; rerun the merge to finish it")]
    Write {
        /// The output.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a line was not merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `(id, sample)` was merged already (or was in the output before).
    Duplicate,
    /// Not a trajectory (not JSON, or not the trajectory schema).
    Malformed,
    /// Longer than [`MAX_TRAJECTORY_LINE_BYTES`]; skipped without being read whole.
    TooLong,
    /// The input's last line has no newline: it may still be being written.
    Torn,
}

/// One input line that was not merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The input file.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: SkipReason,
    /// The trajectory's id, when the line is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its sample, when the line is a trajectory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    /// In words (for a duplicate: where the kept one came from).
    pub detail: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: line {}: {}",
            self.source_name, self.line, self.detail
        )
    }
}

/// What one input contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InputSummary {
    /// The input.
    pub path: PathBuf,
    /// Non-blank lines read.
    pub lines: usize,
    /// Trajectories appended to the output.
    pub added: usize,
    /// Lines skipped, by reason (each also reported one by one).
    pub duplicates: usize,
    /// Lines that are not trajectories (malformed or too long).
    pub malformed: usize,
    /// A torn last line (0 or 1).
    pub torn: usize,
}

/// What a merge did; `lines == added + duplicates + malformed + torn` for every input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeSummary {
    /// Trajectories the output held before.
    pub already: usize,
    /// Lines of the output that are not trajectories (kept as they are, not counted as done).
    pub unreadable_in_output: usize,
    /// Each input, in order.
    pub inputs: Vec<InputSummary>,
}

impl MergeSummary {
    /// Trajectories appended, over all inputs.
    pub fn added(&self) -> usize {
        self.inputs.iter().map(|i| i.added).sum()
    }

    /// Duplicates dropped, over all inputs.
    pub fn duplicates(&self) -> usize {
        self.inputs.iter().map(|i| i.duplicates).sum()
    }

    /// Malformed or over-long lines skipped, over all inputs.
    pub fn malformed(&self) -> usize {
        self.inputs.iter().map(|i| i.malformed).sum()
    }

    /// Torn last lines skipped, over all inputs.
    pub fn torn(&self) -> usize {
        self.inputs.iter().map(|i| i.torn).sum()
    }

    /// Trajectories in the output now.
    pub fn total(&self) -> usize {
        self.already + self.added()
    }
}

/// Where a merged trajectory came from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    input: usize,
    line: usize,
}

/// Appends to `output` every trajectory of `inputs` (in order, each file in its order) whose
/// `(id, sample)` it does not hold yet; `on_skip` hears of every line that was not appended.
///
/// # Errors
/// [`MergeError`] when the output cannot be opened or written, or an input cannot be read; the
/// output then holds whole lines only and a rerun finishes the merge.
pub fn merge(
    output: &Path,
    inputs: &[PathBuf],
    mut on_skip: impl FnMut(&Skipped),
) -> Result<MergeSummary, MergeError> {
    let input_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Input { path, source }
    };
    if let Ok(out) = std::fs::canonicalize(output) {
        for input in inputs {
            if std::fs::canonicalize(input).map_err(input_err(input))? == out {
                return Err(MergeError::OutputIsInput {
                    path: input.clone(),
                });
            }
        }
    }
    // The writer's open is the resume: it cuts a torn last line and reads the pairs held.
    let existing = TrajectoryWriter::open(output)?;
    let mut summary = MergeSummary {
        already: existing.done_count(),
        unreadable_in_output: existing.unreadable_lines,
        inputs: Vec::with_capacity(inputs.len()),
    };
    let write_err = |source| MergeError::Write {
        path: output.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .append(true)
        .open(output)
        .map_err(write_err)?;
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
    let mut merged: HashMap<(String, u32), Origin> = HashMap::new();
    // The current line, copied out of the reader so the reader can be asked about it.
    let mut record = Vec::new();
    for (index, path) in inputs.iter().enumerate() {
        let name = path.display().to_string();
        let file = File::open(path).map_err(input_err(path))?;
        let mut reader = LineReader::new(BufReader::new(file), name.clone())
            .with_max_line_bytes(MAX_TRAJECTORY_LINE_BYTES);
        let mut counts = InputSummary {
            path: path.clone(),
            ..InputSummary::default()
        };
        let mut skip = |counts: &mut InputSummary, skipped: Skipped| {
            match skipped.reason {
                SkipReason::Duplicate => counts.duplicates += 1,
                SkipReason::Malformed | SkipReason::TooLong => counts.malformed += 1,
                SkipReason::Torn => counts.torn += 1,
            }
            on_skip(&skipped);
        };
        loop {
            let line = reader
                .next_line()
                .map_err(|e| input_err(path)(std::io::Error::other(e)))?;
            let Some(line) = line else { break };
            counts.lines += 1;
            match line {
                Line::Record(bytes) => {
                    record.clear();
                    record.extend_from_slice(bytes);
                }
                Line::TooLong(e) => {
                    let skipped = Skipped {
                        source_name: name.clone(),
                        line: e.line,
                        reason: SkipReason::TooLong,
                        id: None,
                        sample: None,
                        detail: format!("{}; skipped", e.reason),
                    };
                    skip(&mut counts, skipped);
                    continue;
                }
            };
            let line_number = reader.line_number();
            let parsed = serde_json::from_slice::<Trajectory>(&record);
            let skipped = |reason, id: Option<&str>, sample, detail: String| Skipped {
                source_name: name.clone(),
                line: line_number,
                reason,
                id: id.map(str::to_string),
                sample,
                detail,
            };
            if !reader.terminated() {
                let detail = "the last line has no newline (its shard is still writing, or was \
                              killed and will redo it on resume); skipped: merge again later"
                    .to_string();
                let (id, sample) = match &parsed {
                    Ok(t) => (Some(t.id.as_str()), Some(t.sample)),
                    Err(_) => (None, None),
                };
                skip(&mut counts, skipped(SkipReason::Torn, id, sample, detail));
                continue;
            }
            let t = match parsed {
                Ok(t) => t,
                Err(e) => {
                    let detail = format!("not a trajectory ({e}); skipped");
                    skip(
                        &mut counts,
                        skipped(SkipReason::Malformed, None, None, detail),
                    );
                    continue;
                }
            };
            let key = (t.id, t.sample);
            let earlier = if existing.is_done(&key.0, key.1) {
                Some("the output already holds it".to_string())
            } else {
                merged.get(&key).map(|o| {
                    format!(
                        "already merged from {} line {}",
                        inputs[o.input].display(),
                        o.line
                    )
                })
            };
            if let Some(earlier) = earlier {
                let detail = format!(
                    "duplicate of {:?} sample {}: {earlier}; dropped",
                    key.0, key.1
                );
                let s = skipped(SkipReason::Duplicate, Some(&key.0), Some(key.1), detail);
                skip(&mut counts, s);
                continue;
            }
            out.write_all(&record).map_err(write_err)?;
            out.write_all(b"\n").map_err(write_err)?;
            counts.added += 1;
            merged.insert(
                key,
                Origin {
                    input: index,
                    line: line_number,
                },
            );
        }
        out.flush().map_err(write_err)?;
        summary.inputs.push(counts);
    }
    out.flush().map_err(write_err)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::TrajectoryBuilder;

    fn line(id: &str, sample: u32, text: &str) -> String {
        let t = TrajectoryBuilder::math(id)
            .sample(sample)
            .model(text)
            .build();
        serde_json::to_string(&t).unwrap() + "\n"
    }

    fn keys(path: &Path) -> Vec<(String, u32, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let t: Trajectory = serde_json::from_str(l).unwrap();
                (t.id.clone(), t.sample, t.text())
            })
            .collect()
    }

    #[test]
    fn first_complete_wins_and_every_line_is_accounted_for() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        let out = dir.path().join("all.jsonl");
        std::fs::write(
            &a,
            line("p1", 0, "one") + &line("p2", 0, "two") + "not json\n" + "{\"id\":\"p3\"}\n",
        )
        .unwrap();
        // b repeats p2 (differently), adds p2 sample 1 and ends with a torn line.
        let torn = line("p4", 0, "four");
        std::fs::write(
            &b,
            line("p2", 0, "TWO") + &line("p2", 1, "two again") + &torn[..torn.len() / 2],
        )
        .unwrap();
        let mut skipped = Vec::new();
        let s = merge(&out, &[a.clone(), b.clone()], |x| skipped.push(x.clone())).unwrap();
        assert_eq!(
            keys(&out),
            [
                ("p1".into(), 0, "one".into()),
                ("p2".into(), 0, "two".into()),
                ("p2".into(), 1, "two again".into())
            ]
        );
        let reasons: Vec<_> = skipped.iter().map(|x| (x.line, x.reason)).collect();
        assert_eq!(
            reasons,
            [
                (3, SkipReason::Malformed),
                (4, SkipReason::Malformed),
                (1, SkipReason::Duplicate),
                (3, SkipReason::Torn)
            ]
        );
        assert!(
            skipped[2].detail.contains("a.jsonl line 2"),
            "{}",
            skipped[2]
        );
        for i in &s.inputs {
            assert_eq!(i.lines, i.added + i.duplicates + i.malformed + i.torn);
        }
        assert_eq!(
            (s.added(), s.duplicates(), s.malformed(), s.torn()),
            (3, 1, 2, 1)
        );

        // The torn shard finishes; merging again adds only what is missing.
        std::fs::write(&b, line("p2", 0, "TWO") + &line("p2", 1, "x") + &torn).unwrap();
        let s = merge(&out, &[a, b], |_| {}).unwrap();
        assert_eq!((s.already, s.added(), s.duplicates()), (3, 1, 4));
        assert_eq!(keys(&out).len(), 4);
        assert_eq!(keys(&out)[3].0, "p4");
    }

    #[test]
    fn a_killed_merge_resumes_and_the_output_cannot_be_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let out = dir.path().join("all.jsonl");
        std::fs::write(&a, line("p1", 0, "one") + &line("p2", 0, "two")).unwrap();
        // A merge killed mid-line: the output ends with half of p2.
        let p2 = line("p2", 0, "two");
        std::fs::write(&out, line("p1", 0, "one") + &p2[..10]).unwrap();
        let s = merge(&out, std::slice::from_ref(&a), |_| {}).unwrap();
        assert_eq!((s.already, s.added(), s.duplicates()), (1, 1, 1));
        assert_eq!(keys(&out).len(), 2);
        let err = merge(&out, &[a, out.clone()], |_| {}).unwrap_err();
        assert!(matches!(err, MergeError::OutputIsInput { .. }), "{err}");
    }

    #[test]
    fn unknown_fields_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let out = dir.path().join("all.jsonl");
        let mut row: serde_json::Value = serde_json::from_str(&line("p1", 0, "one")).unwrap();
        row["from_a_newer_version"] = serde_json::json!([1, 2]);
        std::fs::write(&a, format!("{row}\n")).unwrap();
        merge(&out, &[a], |_| {}).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
        assert_eq!(back, row);
    }
}
