//! Hint-RFT: score self-generated trajectories, keep the good ones, export them as fine-tuning
//! data, and run those steps as resumable rounds.
//!
//! - [`score`]: the verdict of one trajectory (math answer or code tests).
//! - [`filter`]: which scored trajectories are kept, and why the others are dropped.
//! - [`export`]: kept trajectories as SFT examples.
//! - [`round`]: the streaming steps over JSONL files, the round report, the resumable round.

pub mod export;
pub mod filter;
pub mod round;
pub mod score;

pub use round::{
    DropRecord, Progress, Report, RftError, Round, SCORE_CHUNK, ScoreSummary, Step, export_stream,
    filter_file, pairs_stream, score_parallel, score_stream,
};
