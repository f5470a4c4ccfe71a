//! Where the pipelines' executions run: this process's [`Sandbox`], or a SandboxFusion-compatible
//! server (`--sandbox-url`: `startd --http`, a fleet of them behind a Service, or SandboxFusion
//! itself), so judging, scoring and Hint-infer scale with a fleet and not with one machine.
//!
//! Modules: `remote` (the HTTP client: [`RemoteSandbox`], `POST /run_code` and
//! `/run_jupyter` read back into [`Outcome`]s), `remote_session` (a session over the stateless
//! API: [`RemoteSession`]).
//!
//! ```no_run
//! use start::executor::{Executor, RemoteOptions, RemoteSandbox};
//! use start_sandbox::Limits;
//!
//! let remote = RemoteSandbox::new(RemoteOptions::new("http://127.0.0.1:8080"))?;
//! let outcome = Executor::Remote(&remote).exec("print(6 * 7)", &Limits::default())?;
//! assert_eq!(outcome.stdout, "42\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod remote;
mod remote_session;

use start_sandbox::{Limits, Outcome, Sandbox, Session, SessionLimits, TurnLimits};

pub use remote::{
    CellsReply, DEFAULT_ANSWER_MARGIN, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_CONNECT_TIMEOUT,
    MAX_REPLY_BYTES, RemoteError, RemoteOptions, RemoteSandbox,
};
pub use remote_session::{MAX_REPLAYED_CELLS, RemoteSession, RemoteSessionError};

/// Where executions run. Cheap to copy: it borrows the sandbox or the client.
#[derive(Debug, Clone, Copy)]
pub enum Executor<'a> {
    /// In this process.
    Local(&'a Sandbox),
    /// On a SandboxFusion-compatible server.
    Remote(&'a RemoteSandbox),
}

impl<'a> From<&'a Sandbox> for Executor<'a> {
    fn from(sandbox: &'a Sandbox) -> Self {
        Executor::Local(sandbox)
    }
}

impl<'a> From<&'a RemoteSandbox> for Executor<'a> {
    fn from(remote: &'a RemoteSandbox) -> Self {
        Executor::Remote(remote)
    }
}

/// An execution that gave no result (a program's own failure is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The local sandbox failed, or refused the input.
    #[error(transparent)]
    Sandbox(#[from] start_sandbox::Error),
    /// The server failed, or refused the request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A remote session ended.
    #[error("the interpreter session ended: {0}")]
    SessionEnded(String),
}

impl From<RemoteSessionError> for ExecError {
    fn from(e: RemoteSessionError) -> Self {
        match e {
            RemoteSessionError::Ended(why) => ExecError::SessionEnded(why),
            RemoteSessionError::Remote(e) => ExecError::Remote(e),
        }
    }
}

impl ExecError {
    /// Why the code was not run, when the failure concerns this input only (a session that
    /// ended, code or stdin over a limit, a request the server refused) rather than the
    /// executor: what a model is shown instead of output.
    pub fn not_run_reason(&self) -> Option<String> {
        match self {
            ExecError::Sandbox(start_sandbox::Error::SessionEnded(why))
            | ExecError::SessionEnded(why) => Some(format!("the interpreter session ended: {why}")),
            ExecError::Sandbox(start_sandbox::Error::Invalid(why)) => Some(why.to_string()),
            ExecError::Remote(e @ RemoteError::Refused { .. }) => Some(e.to_string()),
            _ => None,
        }
    }

    /// Whether every later execution will fail the same way (the server cannot be reached or
    /// keeps failing, the URL is wrong), so a batch should stop.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ExecError::Remote(
                RemoteError::Unreachable { .. }
                    | RemoteError::Failing { .. }
                    | RemoteError::BadUrl { .. }
            )
        )
    }
}

impl<'a> Executor<'a> {
    /// Runs `code` in a fresh interpreter under `limits`.
    ///
    /// # Errors
    /// [`ExecError`] when there is no result; every program behaviour is an [`Outcome`].
    pub fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome, ExecError> {
        Ok(match self {
            Executor::Local(sandbox) => sandbox.exec(code, limits)?,
            Executor::Remote(remote) => remote.exec(code, limits)?,
        })
    }

    /// Opens an interpreter session whose state carries from turn to turn.
    ///
    /// # Errors
    /// [`ExecError`] when the local sandbox cannot open one (a remote one opens on its first
    /// turn).
    pub fn open_session(&self, limits: SessionLimits) -> Result<ExecSession<'a>, ExecError> {
        Ok(match self {
            Executor::Local(sandbox) => {
                ExecSession::Local(Box::new(Session::open(sandbox, limits)?))
            }
            Executor::Remote(remote) => ExecSession::Remote(RemoteSession::open(remote, limits)),
        })
    }
}

/// An interpreter session of an [`Executor`].
#[derive(Debug)]
pub enum ExecSession<'a> {
    /// In this process (boxed: a local session is several times the size of a remote one).
    Local(Box<Session>),
    /// On a server.
    Remote(RemoteSession<'a>),
}

impl ExecSession<'_> {
    /// Runs one turn.
    ///
    /// # Errors
    /// [`ExecError`] when there is no result (see [`ExecError::not_run_reason`]).
    pub fn run(&mut self, code: &str, limits: &TurnLimits) -> Result<Outcome, ExecError> {
        Ok(match self {
            ExecSession::Local(s) => s.run(code, limits)?,
            ExecSession::Remote(s) => s.run(code, limits)?,
        })
    }

    /// Why the session ended, if it has.
    pub fn ended(&self) -> Option<&str> {
        match self {
            ExecSession::Local(s) => s.ended(),
            ExecSession::Remote(s) => s.ended(),
        }
    }
}
