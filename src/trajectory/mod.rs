//! Tool-integrated reasoning trajectories: what one Hint-infer run produced, segment by segment,
//! and the resumable JSONL file they are appended to.
//!
//! A [`Trajectory`]'s segments, concatenated, are exactly the assistant's text: model text,
//! inserted hints (which one, where, why) and output blocks; every executed code block is also a
//! [`ToolCall`] with its outcome and timing. [`TrajectoryWriter`] appends one JSON line per
//! trajectory and flushes it; reopening a file skips the finished `(id, sample)` pairs and drops
//! a torn last line, so a killed run resumes without loss or duplicates. [`merge`] joins such
//! files (one per shard) into one, by the same key.

mod builder;
pub mod merge;
mod writer;

use serde::{Deserialize, Serialize};

use crate::problem::ProblemKind;

pub use builder::TrajectoryBuilder;
pub use writer::{TrajectoryWriter, WriterError};

/// Longest trajectory line read back when resuming, in bytes.
pub const MAX_TRAJECTORY_LINE_BYTES: usize = 64 << 20;
/// The end-of-thinking marker of reasoning models (QwQ, DeepSeek-R1).
pub const THINK_END: &str = "</think>";

/// Token accounting of one generation, recorded in the trajectory. With KV-cache reuse,
/// `decoded_tokens == context_tokens + discarded_tokens`: every position is decoded once, and
/// only the tokens cut off by a truncation were decoded in vain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens the model sampled.
    pub generated_tokens: u64,
    /// Tokens of text the driver appended (hints, outputs) and re-tokenized cut tokens.
    pub appended_tokens: u64,
    /// Tokens run through the model (prompt, sampled, appended), in all.
    pub decoded_tokens: u64,
    /// Tokens removed from the cache by truncation.
    pub discarded_tokens: u64,
    /// Tokens in the context (prompt plus kept text) at the end.
    pub context_tokens: u64,
    /// Requests sent (remote backends; 1 for in-process ones).
    pub requests: u64,
}

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

/// How a code block's run ended, as recorded in a [`ToolCall`] (serialized in snake case:
/// `"finished"`, `"exception"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// It ran to the end.
    Finished,
    /// An uncaught exception ended it (the traceback is in `stderr`).
    Exception,
    /// It called `sys.exit` (or `exit()`).
    Exit,
    /// A limit stopped it (wall time, fuel, memory or output).
    LimitExceeded,
    /// The interpreter itself crashed; the session is gone.
    Crashed,
    /// It was not run (the tool-call budget was spent, or the session had ended).
    NotRun,
}

impl ToolStatus {
    /// Whether the code ran to the end.
    pub fn is_success(self) -> bool {
        self == ToolStatus::Finished
    }

    /// The name written in trajectories.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Finished => "finished",
            ToolStatus::Exception => "exception",
            ToolStatus::Exit => "exit",
            ToolStatus::LimitExceeded => "limit_exceeded",
            ToolStatus::Crashed => "crashed",
            ToolStatus::NotRun => "not_run",
        }
    }
}

impl std::fmt::Display for ToolStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One executed code block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The code.
    pub code: String,
    /// How the run ended.
    pub status: ToolStatus,
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
    /// The backend refused to go on with this trajectory (a server's HTTP 4xx that is not a
    /// context overflow, or a stream it kept garbling); [`Trajectory::error`] says why. The text
    /// is what was generated until then. A resume does not retry it (delete its line to).
    Error,
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
    /// The exact text the model was given before the assistant's text (the chat template
    /// applied), when the backend renders one: what a trainer's prompt/completion export uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_prompt: Option<String>,
    /// The assistant's text, in order.
    pub segments: Vec<Segment>,
    /// Every executed code block.
    pub tool_calls: Vec<ToolCall>,
    /// Why it ended.
    pub stop: StopReason,
    /// The backend's message when `stop` is [`StopReason::Error`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
