//! Hint-RFT: score self-generated trajectories, keep the good ones, export them as fine-tuning
//! data, and run those steps as resumable rounds.
//!
//! - [`score`]: the verdict of one trajectory (math answer or code tests).
//! - [`filter`]: which scored trajectories are kept, and why the others are dropped.
//! - [`export`]: kept trajectories as SFT examples (chat messages, or prompt/completion).
//! - [`stream`]: those steps over JSONL files, line by line, in bounded memory.
//! - [`report`]: a round's report and the record of each drop.
//! - [`round`]: the resumable round folder and its steps.
//! - [`error`]: what stops a step.

pub mod error;
pub mod export;
pub mod filter;
pub mod report;
pub mod round;
pub mod score;
pub mod stream;

pub use error::RftError;
pub use report::{DropRecord, Report};
pub use round::{Round, RoundSteps, Step, StepsDone};
pub use stream::{
    ExportSummary, PredForm, Progress, SCORE_CHUNK, ScoreSummary, baseline_stream, export_stream,
    filter_file, pairs_stream, score_parallel, score_stream,
};
