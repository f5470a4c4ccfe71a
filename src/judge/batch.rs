//! Judging many programs: a JSONL stream of `{"id": ..., "program": "...", ...test fields}`
//! lines, judged on the worker [`crate::pool`], one result line each (the report with
//! the line's `id`), written in completion order as each finishes.
//!
//! Lines are untrusted: each is read through the bounded [`LineReader`] (at most
//! [`MAX_BATCH_LINE_BYTES`]); an over-long or malformed line is reported and skipped, never
//! fatal. A host failure (the sandbox itself) stops the batch.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;

use serde::Deserialize;

use super::{JudgeOptions, Tests, judge};
use crate::executor::{ExecError, Executor};
use crate::jsonl::{self, JsonlError, Line, LineError, LineReader};
use crate::pool::{self, Done};

/// The longest line accepted in a batch, in bytes.
pub const MAX_BATCH_LINE_BYTES: usize = 16 << 20;

/// One line of a batch.
#[derive(Debug, Deserialize)]
struct BatchLine {
    id: serde_json::Value,
    program: String,
    #[serde(flatten)]
    tests: Tests,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Programs judged.
    pub programs: usize,
    /// Programs that passed every test.
    pub passed: usize,
    /// Lines skipped (over-long or malformed).
    pub skipped: usize,
}

/// A batch that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading the input or writing a result failed.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// The sandbox (or the sandbox server) failed (not a program: every program behaviour is
    /// a result).
    #[error("the sandbox failed: {0}")]
    Sandbox(#[from] ExecError),
    /// A judging thread panicked.
    #[error("a judge worker panicked: {0}")]
    Panicked(String),
}

/// Judges every line of `reader` on `jobs` threads, on `executor`, and writes one JSON result line per
/// program to `out` (flushed each time). `progress` gets the bytes read so far; `skipped`
/// gets each line that could not be used.
///
/// # Errors
/// [`BatchError`] on I/O, sandbox and worker failures.
pub fn judge_stream(
    executor: Executor<'_>,
    reader: LineReader<impl BufRead + Send>,
    out: &mut impl Write,
    opts: &JudgeOptions,
    jobs: usize,
    progress: &dyn Fn(u64),
    skipped: &mut dyn FnMut(&LineError),
) -> Result<BatchSummary, BatchError> {
    let mut reader = reader.with_max_line_bytes(MAX_BATCH_LINE_BYTES);
    let mut read_error = None;
    let next = || -> Option<(Result<BatchLine, LineError>, u64)> {
        let parsed = match reader.next_line() {
            Ok(None) => return None,
            Err(e) => {
                read_error = Some(e);
                return None;
            }
            Ok(Some(Line::TooLong(e))) => Err(Ok(e)),
            Ok(Some(Line::Record(bytes))) => {
                serde_json::from_slice::<BatchLine>(bytes).map_err(|e| Err(e.to_string()))
            }
        };
        let parsed = parsed.map_err(|e| e.unwrap_or_else(|reason| reader.error(reason)));
        Some((parsed, reader.bytes_read()))
    };
    let work = |(line, bytes): (Result<BatchLine, LineError>, u64)| {
        let judged = line.map(|l| (judge(executor, &l.program, &l.tests, opts), l.id));
        (judged, bytes)
    };
    let mut summary = BatchSummary::default();
    let stopped = pool::run(jobs, next, work, |done| {
        let (judged, bytes) = match done {
            Done::Finished(r) => r,
            Done::Panicked(why) => return ControlFlow::Break(BatchError::Panicked(why)),
        };
        progress(bytes);
        let (report, id) = match judged {
            Ok((Ok(report), id)) => (report, id),
            Ok((Err(e), _)) => return ControlFlow::Break(BatchError::Sandbox(e)),
            Err(e) => {
                summary.skipped += 1;
                skipped(&e);
                return ControlFlow::Continue(());
            }
        };
        summary.programs += 1;
        summary.passed += usize::from(report.passed);
        let mut record = match serde_json::to_value(&report) {
            Ok(v) => v,
            Err(e) => return ControlFlow::Break(JsonlError::from(e).into()),
        };
        if let Some(obj) = record.as_object_mut() {
            obj.insert("id".into(), id);
        }
        match jsonl::write_line(out, &record).and_then(|()| Ok(out.flush()?)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e.into()),
        }
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    if let Some(e) = read_error {
        return Err(e.into());
    }
    Ok(summary)
}
