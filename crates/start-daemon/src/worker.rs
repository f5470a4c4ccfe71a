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

/// A worker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum JobResult {
    /// Sent once, when the sandbox is ready.
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
        // The reply goes out before the interpreter is restored for reuse.
        let (result, cleanup) = run_job(&sandbox, &mut sessions, job);
        send(&mut out, &result)?;
        drop(cleanup);
    }
    Ok(())
}

fn send(out: &mut impl Write, result: &JobResult) -> Result<(), WorkerError> {
    let body = serde_json::to_vec(result)?;
    frame::write_frame_sync(out, &body)?;
    Ok(())
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
