//! Tool-integrated reasoning trajectories: what one Hint-infer run produced, segment by segment,
//! and the resumable JSONL file they are appended to.
//!
//! A [`Trajectory`]'s segments, concatenated, are exactly the assistant's text: model text,
//! inserted hints (which one, where, why) and output blocks; every executed code block is also a
//! [`ToolCall`] with its outcome and timing. [`TrajectoryWriter`] appends one JSON line per
//! trajectory and flushes it; reopening a file skips the finished `(id, sample)` pairs and drops
//! a torn last line, so a killed run resumes without loss or duplicates.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::infer::backend::Counters;
use crate::infer::hints::ProblemKind;

/// Longest trajectory line read back when resuming, in bytes.
pub const MAX_TRAJECTORY_LINE_BYTES: usize = 64 << 20;

/// Where a hint was inserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InsertPoint {
    /// Right after a trigger word.
    AfterTrigger {
        /// The word.
        word: String,
    },
    /// Just before `</think>`.
    BeforeThinkEnd,
    /// Where the model ended its sequence.
    BeforeEos,
}

/// One part of the assistant's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Segment {
    /// Text the model wrote (code blocks included).
    Model {
        /// The text.
        text: String,
    },
    /// A hint the driver inserted.
    Hint {
        /// The hint's id in the library.
        hint_id: String,
        /// Where and why.
        point: InsertPoint,
        /// The text inserted (separator and hint).
        text: String,
        /// Byte offset of the insertion in the assistant's text.
        offset: usize,
    },
    /// An output block the driver appended after running code.
    Output {
        /// The block as inserted (```` ```output ```` fence included).
        text: String,
        /// Index into [`Trajectory::tool_calls`].
        call: usize,
    },
}

impl Segment {
    /// The segment's text.
    pub fn text(&self) -> &str {
        match self {
            Segment::Model { text } | Segment::Hint { text, .. } | Segment::Output { text, .. } => {
                text
            }
        }
    }
}

/// One executed code block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The code.
    pub code: String,
    /// `finished`, `exception`, `exit`, `limit_exceeded`, `crashed` or `session_ended`.
    pub status: String,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr (tracebacks).
    pub stderr: String,
    /// What was shown to the model (after truncation).
    pub shown: String,
    /// Time the code ran, in milliseconds.
    pub exec_ms: f64,
    /// Driver time for this call besides the code runner (opening the session and running the
    /// code): extracting, formatting and appending, in milliseconds.
    pub driver_ms: f64,
}

/// Why a trajectory ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended (no more hints to insert).
    Eos,
    /// The context window was full.
    Length,
    /// The cap on generated tokens was reached.
    TokenCap,
    /// The cap on wall time was reached.
    TimeCap,
}

/// One Hint-infer run on one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// The problem's id.
    pub id: String,
    /// Which sample of the problem (0-based).
    pub sample: u32,
    /// Math or code.
    pub kind: ProblemKind,
    /// The problem text.
    pub problem: String,
    /// The gold answer, if the input had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The backend that generated it.
    pub backend: String,
    /// The sampler seed.
    pub seed: u64,
    /// The prompt's text as the user saw it.
    pub prompt: String,
    /// The assistant's text, in order.
    pub segments: Vec<Segment>,
    /// Every executed code block.
    pub tool_calls: Vec<ToolCall>,
    /// Why it ended.
    pub stop: StopReason,
    /// Token accounting from the backend.
    pub counters: Counters,
    /// Wall time of the whole run, in milliseconds.
    pub wall_ms: f64,
    /// Time spent generating (in the backend), in milliseconds.
    pub generate_ms: f64,
}

impl Trajectory {
    /// The whole assistant text.
    pub fn text(&self) -> String {
        self.segments.iter().map(Segment::text).collect()
    }

    /// How many hints were inserted.
    pub fn hints(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Hint { .. }))
            .count()
    }

    /// A human-readable rendering with hints, code outputs and notes marked.
    pub fn render(&self) -> String {
        let mut out = format!(
            "══════ {} (sample {}, {}) ══════\n{}\n────── model ──────\n",
            self.id,
            self.sample,
            self.kind,
            self.problem.trim_end()
        );
        for segment in &self.segments {
            match segment {
                Segment::Model { text } => out.push_str(text),
                Segment::Hint {
                    hint_id,
                    point,
                    text,
                    ..
                } => {
                    let why = match point {
                        InsertPoint::AfterTrigger { word } => format!("after {word:?}"),
                        InsertPoint::BeforeThinkEnd => "before </think>".to_string(),
                        InsertPoint::BeforeEos => "before end of sequence".to_string(),
                    };
                    out.push_str(&format!("⟦hint {hint_id}, {why}⟧"));
                    out.push_str(text);
                }
                Segment::Output { text, call } => {
                    let status = self
                        .tool_calls
                        .get(*call)
                        .map(|c| format!("{}, {:.1} ms", c.status, c.exec_ms))
                        .unwrap_or_default();
                    out.push_str(&format!("\n⟦executed: {status}⟧"));
                    out.push_str(text);
                }
            }
        }
        out.push_str(&format!(
            "\n────── end: {:?}; {} hint(s), {} tool call(s), {} tokens generated, {:.1} s ──────\n",
            self.stop,
            self.hints(),
            self.tool_calls.len(),
            self.counters.generated_tokens,
            self.wall_ms / 1e3
        ));
        out
    }
}

/// Why the trajectory file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WriterError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The key of a finished trajectory in the output file.
#[derive(Debug, Deserialize)]
struct Key {
    id: String,
    sample: u32,
}

/// Appends trajectories to a JSONL file, one flushed line each; resumable.
#[derive(Debug)]
pub struct TrajectoryWriter {
    file: File,
    path: PathBuf,
    done: HashSet<(String, u32)>,
    /// Lines in the file that could not be read back (kept, not counted as done).
    pub unreadable_lines: usize,
}

impl TrajectoryWriter {
    /// Opens (creating it if needed) `path` for appending and reads which `(id, sample)` pairs
    /// it already holds. A torn last line (a run killed while writing) is cut off.
    ///
    /// # Errors
    /// [`WriterError`] when the file cannot be opened, read or trimmed.
    pub fn open(path: &Path) -> Result<Self, WriterError> {
        let err = |source| WriterError {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let mut done = HashSet::new();
        let mut unreadable_lines = 0;
        let mut complete_len = 0u64;
        {
            let mut reader = BufReader::new(&mut file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .by_ref()
                    .take(MAX_TRAJECTORY_LINE_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(err)?;
                if n == 0 {
                    break;
                }
                if line.last() != Some(&b'\n') {
                    if n > MAX_TRAJECTORY_LINE_BYTES {
                        return Err(err(std::io::Error::other(format!(
                            "a line is over {MAX_TRAJECTORY_LINE_BYTES} bytes"
                        ))));
                    }
                    break; // torn last line
                }
                complete_len += n as u64;
                match serde_json::from_slice::<Key>(&line) {
                    Ok(key) => {
                        done.insert((key.id, key.sample));
                    }
                    Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                    Err(_) => unreadable_lines += 1,
                }
            }
        }
        if file.metadata().map_err(err)?.len() != complete_len {
            file.set_len(complete_len).map_err(err)?;
        }
        file.seek(SeekFrom::End(0)).map_err(err)?;
        Ok(TrajectoryWriter {
            file,
            path: path.to_path_buf(),
            done,
            unreadable_lines,
        })
    }

    /// Whether `(id, sample)` is already in the file.
    pub fn is_done(&self, id: &str, sample: u32) -> bool {
        self.done.contains(&(id.to_string(), sample))
    }

    /// How many trajectories the file holds.
    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Appends one trajectory as a single line and flushes it.
    ///
    /// # Errors
    /// [`WriterError`] on an I/O failure.
    pub fn write(&mut self, trajectory: &Trajectory) -> Result<(), WriterError> {
        let mut line = serde_json::to_vec(trajectory).map_err(|e| WriterError {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        // One write call per line: a kill leaves at most one torn line, which `open` removes.
        self.file.write_all(&line).map_err(|source| WriterError {
            path: self.path.clone(),
            source,
        })?;
        self.file.flush().map_err(|source| WriterError {
            path: self.path.clone(),
            source,
        })?;
        self.done.insert((trajectory.id.clone(), trajectory.sample));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, sample: u32) -> Trajectory {
        Trajectory {
            id: id.into(),
            sample,
            kind: ProblemKind::Math,
            problem: "1+1?".into(),
            answer: Some("2".into()),
            backend: "test".into(),
            seed: 1,
            prompt: "1+1?".into(),
            segments: vec![Segment::Model { text: "2".into() }],
            tool_calls: Vec::new(),
            stop: StopReason::Eos,
            counters: Counters::default(),
            wall_ms: 1.0,
            generate_ms: 1.0,
        }
    }

    #[test]
    fn resume_skips_done_and_drops_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        {
            let mut w = TrajectoryWriter::open(&path).unwrap();
            w.write(&sample("a", 0)).unwrap();
            w.write(&sample("b", 0)).unwrap();
        }
        // A run killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":\"c\",\"sam").unwrap();
        drop(f);
        let mut w = TrajectoryWriter::open(&path).unwrap();
        assert!(w.is_done("a", 0) && w.is_done("b", 0) && !w.is_done("c", 0));
        w.write(&sample("c", 0)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            let t: Trajectory = serde_json::from_str(line).unwrap();
            assert_eq!(t.text(), "2");
        }
    }
}
