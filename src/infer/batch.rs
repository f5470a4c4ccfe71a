//! A Hint-infer batch: every (problem, sample) of a shard that the trajectory file does not
//! hold yet, run on the worker [`crate::pool`], each trajectory appended (and flushed) as
//! soon as it is done, so a killed batch resumes where it stopped.
//!
//! A trajectory that fails is reported and the batch goes on, unless the failure will fail every
//! trajectory (the backend is unreachable or cannot load, the hint library lacks a kind): then
//! no new work starts, and the error is returned after the work in flight is written. A failure
//! that concerns one trajectory only (a server refusing its request) is not a failure here: the
//! driver ends that trajectory with stop `error` and its message, and it is written (and so
//! counted done on resume) like any other.

use std::ops::ControlFlow;

use super::backend::BackendError;
use super::driver::{Driver, GenerateError, SessionRunner};
use crate::executor::Executor;
use crate::pool::{self, Done};
use crate::problem::{Problem, Shard};
use crate::trajectory::{Trajectory, TrajectoryWriter, WriterError};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlan {
    /// The slice of the problems this machine runs.
    pub shard: Shard,
    /// Samples per problem.
    pub samples: u32,
}

/// One finished piece of work, as the batch reports it.
#[derive(Debug)]
pub enum Event<'a> {
    /// A trajectory was written.
    Written(&'a Trajectory),
    /// A trajectory failed; the batch goes on unless the error is fatal.
    Failed {
        /// Its problem.
        id: &'a str,
        /// Its sample number.
        sample: u32,
        /// Why.
        error: &'a GenerateError,
    },
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Trajectories written now.
    pub written: usize,
    /// Trajectories that failed.
    pub failed: usize,
    /// Tool calls in the written trajectories.
    pub tool_calls: usize,
    /// Hints in the written trajectories.
    pub hints: usize,
}

/// A batch that stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A failure that would fail every trajectory.
    #[error(transparent)]
    Fatal(GenerateError),
    /// The trajectory file could not be written.
    #[error(transparent)]
    Write(#[from] WriterError),
    /// A generating thread panicked.
    #[error("a generating thread panicked: {0}")]
    Panicked(String),
}

/// The (problem, sample) pairs of `plan` that `writer` does not hold yet, and how many it does.
pub fn pending<'p>(
    problems: &'p [Problem],
    plan: &BatchPlan,
    writer: &TrajectoryWriter,
) -> (Vec<(&'p Problem, u32)>, usize) {
    let mut work = Vec::new();
    let mut done = 0;
    for problem in problems {
        if !plan.shard.contains(&problem.id) {
            continue;
        }
        for sample in 0..plan.samples {
            if writer.is_done(&problem.id, sample) {
                done += 1;
            } else {
                work.push((problem, sample));
            }
        }
    }
    (work, done)
}

/// Whether an error will fail every trajectory, so the batch should stop: the backend or the
/// sandbox server is unreachable, the model cannot load, the hint library lacks a kind.
pub fn is_fatal(error: &GenerateError) -> bool {
    match error {
        GenerateError::Backend(BackendError::Unreachable { .. } | BackendError::Load { .. })
        | GenerateError::Hints(_) => true,
        GenerateError::Sandbox(e) => e.is_fatal(),
        GenerateError::Backend(_) => false,
    }
}

/// Runs `work` (from [`pending`]) with `driver`, each trajectory in its own session on
/// `executor`, appending each to `writer`; `observe` sees every written or failed trajectory
/// (for progress and printing) on the calling thread.
///
/// # Errors
/// [`BatchError`] when the batch stopped early; what was written stays in the file.
pub fn run<'p>(
    driver: &Driver<'_>,
    executor: Executor<'_>,
    work: Vec<(&'p Problem, u32)>,
    jobs: usize,
    writer: &mut TrajectoryWriter,
    mut observe: impl FnMut(Event<'_>),
) -> Result<BatchSummary, BatchError> {
    let options = driver.options();
    let mut work = work.into_iter();
    let mut summary = BatchSummary::default();
    let generate = |(problem, sample): (&'p Problem, u32)| {
        let mut runner = SessionRunner::for_options(executor, options);
        (problem, sample, driver.run(problem, sample, &mut runner))
    };
    let stopped = pool::run(
        jobs,
        || work.next(),
        generate,
        |done| {
            let (problem, sample, result) = match done {
                Done::Finished(r) => r,
                Done::Panicked(why) => return ControlFlow::Break(BatchError::Panicked(why)),
            };
            match result {
                Ok(t) => {
                    if let Err(e) = writer.write(&t) {
                        return ControlFlow::Break(e.into());
                    }
                    summary.written += 1;
                    summary.tool_calls += t.tool_calls.len();
                    summary.hints += t.hints();
                    observe(Event::Written(&t));
                }
                Err(error) => {
                    summary.failed += 1;
                    observe(Event::Failed {
                        id: &problem.id,
                        sample,
                        error: &error,
                    });
                    if is_fatal(&error) {
                        return ControlFlow::Break(BatchError::Fatal(error));
                    }
                }
            }
            ControlFlow::Continue(())
        },
    );
    match stopped {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
