//! Worker processes, child side. `startd --worker` holds one [`Sandbox`] and runs jobs one at a
//! time, read as frames from its stdin and answered as frames on its stdout. One process per
//! core: threads of one process contend on page faults, separate processes do not.
//!
//! The parent side (spawning, hang detection, replacement) is in `pool`.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Serialize};
use start_sandbox::{
    Cleanup, Limits, Outcome, Sandbox, SandboxOptions, Session, SessionLimits, TurnLimits,
};

use crate::frame::{self, FrameError};
use crate::protocol::ErrorKind;

/// One job for a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Job {
    /// Run code in a fresh interpreter.
    Exec { code: String, limits: Limits },
    /// Open a session under this number.
    Open { session: u64, limits: SessionLimits },
    /// Run a cell in a session.
    Run {
        session: u64,
        code: String,
        limits: TurnLimits,
    },
    /// Close a session.
    Close { session: u64 },
}

impl Job {
    /// Whether the worker has work left after answering this job (restoring or tearing down
    /// an interpreter, emptying its scratch folder) and so sends [`JobResult::Ready`] after
    /// its answer, once that work is done. Both sides decide by this one function.
    pub(crate) fn announces_ready(&self) -> bool {
        matches!(self, Job::Exec { .. } | Job::Close { .. })
    }
}

/// A worker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum JobResult {
    /// Sent once when the sandbox is ready, and again after the answer to each job that
    /// [`Job::announces_ready`], when the worker is ready to read its next job.
    Ready,
    /// An exec's or a turn's outcome.
    Outcome(Outcome),
    /// The session is open.
    Opened,
    /// The session is closed.
    Closed,
    /// The job failed on the host side.
    Failed { kind: ErrorKind, message: String },
}

/// Failures of a worker process itself.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The sandbox could not be built.
    #[error("cannot prepare the sandbox: {0}")]
    Sandbox(#[from] start_sandbox::Error),
    /// The pipe to the daemon failed.
    #[error("pipe to startd: {0}")]
    Frame(#[from] FrameError),
    /// Setting up the process's file descriptors failed.
    #[error("setting up the worker's pipes: {0}")]
    Setup(#[from] nix::Error),
    /// The daemon sent a job this worker cannot decode.
    #[error("undecodable job: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Runs a worker process on this process's stdin and stdout until stdin closes.
///
/// Stdout is moved to a private descriptor first and fd 1 pointed at stderr, so that nothing
/// printed by a library can corrupt the frames.
///
/// # Errors
/// When the sandbox cannot be built or the pipe to the daemon breaks.
pub fn serve_stdio(options: SandboxOptions) -> Result<(), WorkerError> {
    let protocol_out: OwnedFd = nix::unistd::dup(std::io::stdout().as_fd())?;
    nix::unistd::dup2_stdout(std::io::stderr().as_fd())?;
    let mut out = std::fs::File::from(protocol_out);
    let mut input = std::io::stdin().lock();

    let sandbox = match Sandbox::new(options) {
        Ok(s) => s,
        Err(e) => {
            send(
                &mut out,
                &JobResult::Failed {
                    kind: ErrorKind::Internal,
                    message: format!("cannot prepare the sandbox: {e}"),
                },
            )?;
            return Err(e.into());
        }
    };
    send(&mut out, &JobResult::Ready)?;
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    while let Some(body) = frame::read_frame_sync(&mut input)? {
        let job: Job = serde_json::from_slice(&body)?;
        let announces_ready = job.announces_ready();
        // The reply goes out before the interpreter is restored for reuse (or its scratch
        // folder emptied, which takes seconds for a guest that left a million files); the
        // daemon starts the next job's hang clock only once `Ready` says that work is done.
        let (result, cleanup) = run_job(&sandbox, &mut sessions, job);
        send(&mut out, &result)?;
        drop(cleanup);
        if announces_ready {
            send(&mut out, &JobResult::Ready)?;
        }
    }
    Ok(())
}

/// Room a worker's reply leaves under [`frame::MAX_FRAME_BYTES`] for what the daemon wraps
/// around an outcome on its way to the client (the request id, the reply envelope).
pub const REPLY_ENVELOPE_BYTES: usize = 64 << 10;
/// The largest reply a worker sends: an outcome that encodes larger (control characters grow
/// sixfold in JSON, and a traceback repeats stderr) has its texts cut until it fits.
pub const MAX_RESULT_BYTES: usize = frame::MAX_FRAME_BYTES - REPLY_ENVELOPE_BYTES;

/// Sends `result`; only a broken pipe to the daemon is an error, never the result's size.
fn send(out: &mut impl Write, result: &JobResult) -> Result<(), WorkerError> {
    frame::write_frame_sync(out, &encode_result(result, MAX_RESULT_BYTES))?;
    Ok(())
}

/// `result` as JSON of at most `max_bytes`: an outcome's stdout, stderr and traceback are
/// halved, longest first, until it fits (and flagged truncated); anything that still does not
/// fit becomes an `internal` failure of that job alone.
fn encode_result(result: &JobResult, max_bytes: usize) -> Vec<u8> {
    let too_large = || {
        let failed = JobResult::Failed {
            kind: ErrorKind::Internal,
            message: format!("the job's reply is over {max_bytes} bytes even when cut"),
        };
        serde_json::to_vec(&failed).unwrap_or_default()
    };
    let body = match serde_json::to_vec(result) {
        Ok(body) if body.len() <= max_bytes => return body,
        Ok(body) => body,
        Err(_) => return too_large(),
    };
    let JobResult::Outcome(outcome) = result else {
        return too_large();
    };
    let mut outcome = outcome.clone();
    let mut len = body.len();
    while len > max_bytes {
        if !halve_longest_text(&mut outcome) {
            return too_large();
        }
        match serde_json::to_vec(&JobResult::Outcome(outcome.clone())) {
            Ok(body) if body.len() <= max_bytes => return body,
            Ok(body) => len = body.len(),
            Err(_) => return too_large(),
        }
    }
    too_large()
}

/// Halves the longest of an outcome's texts, marking it cut; `false` when all are empty.
fn halve_longest_text(outcome: &mut Outcome) -> bool {
    let traceback_len = match &outcome.status {
        start_sandbox::Status::Exception { traceback, .. } => traceback.len(),
        _ => 0,
    };
    let longest = outcome
        .stdout
        .len()
        .max(outcome.stderr.len())
        .max(traceback_len);
    if longest == 0 {
        return false;
    }
    let halve = |text: &mut String| {
        text.truncate(text.floor_char_boundary(text.len() / 2));
    };
    if outcome.stdout.len() == longest {
        halve(&mut outcome.stdout);
        outcome.stdout_truncated = true;
    } else if outcome.stderr.len() == longest {
        halve(&mut outcome.stderr);
        outcome.stderr_truncated = true;
    } else if let start_sandbox::Status::Exception { traceback, .. } = &mut outcome.status {
        halve(traceback);
        traceback.push_str("\n... (traceback cut to fit the reply)");
    }
    true
}

fn failed(e: start_sandbox::Error) -> JobResult {
    let kind = match &e {
        start_sandbox::Error::Invalid(_) => ErrorKind::Invalid,
        start_sandbox::Error::SessionEnded(_) => ErrorKind::SessionEnded,
        _ => ErrorKind::Internal,
    };
    JobResult::Failed {
        kind,
        message: e.to_string(),
    }
}

fn run_job(
    sandbox: &Sandbox,
    sessions: &mut HashMap<u64, Session>,
    job: Job,
) -> (JobResult, Option<Later>) {
    let result = match job {
        Job::Exec { code, limits } => match sandbox.exec_deferring_cleanup(&code, &limits) {
            Ok((o, cleanup)) => return (JobResult::Outcome(o), Some(Later::Exec(cleanup))),
            Err(e) => failed(e),
        },
        Job::Open { session, limits } => match Session::open(sandbox, limits) {
            Ok(s) => {
                sessions.insert(session, s);
                JobResult::Opened
            }
            Err(e) => failed(e),
        },
        Job::Run {
            session,
            code,
            limits,
        } => match sessions.get_mut(&session) {
            Some(s) => match s.run(&code, &limits) {
                Ok(o) => JobResult::Outcome(o),
                Err(e) => failed(e),
            },
            None => JobResult::Failed {
                kind: ErrorKind::NoSuchSession,
                message: "no such session in this worker".into(),
            },
        },
        Job::Close { session } => {
            let closed = sessions.remove(&session);
            return (JobResult::Closed, closed.map(Later::Close));
        }
    };
    (result, None)
}

/// Work left for after the reply: restoring an interpreter for reuse, or freeing it.
enum Later {
    Exec(#[allow(dead_code)] Cleanup),
    Close(#[allow(dead_code)] Session),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_outcome_over_the_frame_cap_is_cut_to_fit() {
        // The audit's reply: 1 MiB of \x01 on stdout, and as much again in stderr and the
        // traceback; each byte becomes 6 in JSON (18.8 MB in all).
        let text = "\x01".repeat((1 << 20) - 4096);
        let mut outcome = Outcome::finished("\x01".repeat(1 << 20));
        outcome.stderr = text.clone();
        outcome.status = start_sandbox::Status::Exception {
            name: "Exception".into(),
            traceback: text,
        };
        let result = JobResult::Outcome(outcome);
        assert!(serde_json::to_vec(&result).unwrap().len() > frame::MAX_FRAME_BYTES);
        let body = encode_result(&result, MAX_RESULT_BYTES);
        assert!(body.len() <= MAX_RESULT_BYTES, "{}", body.len());
        let JobResult::Outcome(cut) = serde_json::from_slice(&body).unwrap() else {
            panic!("not an outcome");
        };
        assert!(cut.stdout_truncated, "the longest text is cut first");
        assert!(cut.stdout.len() > (1 << 18), "cut far more than needed");
        assert!(matches!(
            cut.status,
            start_sandbox::Status::Exception { .. }
        ));
    }

    #[test]
    fn small_results_are_sent_as_they_are() {
        let result = JobResult::Outcome(Outcome::finished("hi\n"));
        let body = encode_result(&result, MAX_RESULT_BYTES);
        assert_eq!(body, serde_json::to_vec(&result).unwrap());
        let body = encode_result(&JobResult::Opened, 2);
        let back: JobResult = serde_json::from_slice(&body).unwrap();
        assert!(matches!(
            back,
            JobResult::Failed {
                kind: ErrorKind::Internal,
                ..
            }
        ));
    }
}
