//! A session on a SandboxFusion-compatible server, whose API keeps no interpreter between
//! requests: each turn sends the session's earlier cells and the new one to `POST
//! /run_jupyter`, which runs them in order in one interpreter, and keeps the new cell's result.
//! State carries from turn to turn as in a local [`start_sandbox::Session`] for deterministic
//! code; what differs is stated once: earlier cells run again each turn (their time counts
//! toward the request's total, not the turn's; random draws and clocks differ), and a session
//! holds at most [`MAX_REPLAYED_CELLS`] cells.
//!
//! A turn that hits a limit, exits or crashes ends the session, as locally: the next turn
//! starts from an empty interpreter.

use std::time::{Duration, Instant};

use start_daemon::sandbox_fusion::{
    CELL_LIMIT, CellRunResult, CommandRunStatus, RunJupyterRequest,
};
use start_sandbox::{Limit, Outcome, SessionLimits, Status, TurnLimits};

use super::remote::{CellsReply, RemoteError, RemoteSandbox, capped, limit_named};

/// The most cells a remote session sends in one turn (its earlier cells and the new one); a
/// turn past it is refused as a local session refuses one past its turns.
pub const MAX_REPLAYED_CELLS: usize = 64;

/// What a turn on a remote session could not do.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSessionError {
    /// The session ended (a limit, an exit, its turns); open a new one.
    #[error("the session ended: {0}")]
    Ended(String),
    /// The server gave no result.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// One remote interpreter session.
#[derive(Debug)]
pub struct RemoteSession<'a> {
    remote: &'a RemoteSandbox,
    limits: SessionLimits,
    cells: Vec<String>,
    turns: u32,
    opened: Instant,
    ended: Option<String>,
}

impl<'a> RemoteSession<'a> {
    /// A session on `remote` under `limits` (memory, total wall time, turns); nothing is sent
    /// until the first turn.
    pub fn open(remote: &'a RemoteSandbox, limits: SessionLimits) -> Self {
        RemoteSession {
            remote,
            limits,
            cells: Vec::new(),
            turns: 0,
            opened: Instant::now(),
            ended: None,
        }
    }

    /// Why the session ended, if it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Runs `code` after the session's earlier cells; the outcome is the new cell's.
    ///
    /// # Errors
    /// [`RemoteSessionError::Ended`] after the session ended or past its turns or cells;
    /// [`RemoteSessionError::Remote`] when the server gives no result.
    pub fn run(&mut self, code: &str, turn: &TurnLimits) -> Result<Outcome, RemoteSessionError> {
        if let Some(why) = &self.ended {
            return Err(RemoteSessionError::Ended(why.clone()));
        }
        if self.turns >= self.limits.max_turns || self.cells.len() + 1 > MAX_REPLAYED_CELLS {
            let why = format!(
                "its {} turns are used",
                self.turns
                    .min(u32::try_from(MAX_REPLAYED_CELLS).unwrap_or(u32::MAX))
            );
            self.ended = Some(why.clone());
            return Err(RemoteSessionError::Ended(why));
        }
        let mut total = turn
            .wall_time
            .saturating_mul(u32::try_from(self.cells.len() + 1).unwrap_or(u32::MAX));
        if let Some(session_total) = self.limits.total_wall_time {
            total = total.min(session_total.saturating_sub(self.opened.elapsed()));
        }
        self.turns += 1;
        let mut cells = self.cells.clone();
        cells.push(code.to_string());
        let request = RunJupyterRequest {
            cells,
            cell_timeout: turn.wall_time.as_secs_f64(),
            total_timeout: total.max(Duration::from_millis(1)).as_secs_f64(),
            memory_limit_mb: i64::try_from(self.limits.memory_bytes.div_ceil(1 << 20))
                .unwrap_or(i64::MAX),
            kernel: "python3".into(),
            files: Default::default(),
            fetch_files: Vec::new(),
        };
        let started = Instant::now();
        let reply = self.remote.run_cells(&request)?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut outcome = match reply {
            CellsReply::TooLarge => Outcome {
                status: Status::Crashed {
                    message: "the server's reply was too large to read".into(),
                },
                stdout_truncated: true,
                ..Outcome::finished("")
            },
            CellsReply::Reply(reply) => {
                let timed_out = reply
                    .driver
                    .as_ref()
                    .is_some_and(|d| d.status == CommandRunStatus::TimeLimitExceeded);
                match reply.cells.into_iter().nth(request.cells.len() - 1) {
                    Some(cell) => cell_outcome(cell, timed_out, turn),
                    // The new cell did not run: an earlier one stopped the interpreter this
                    // time, or the total ran out.
                    None if timed_out => Outcome {
                        status: Status::LimitExceeded {
                            limit: Limit::WallTime,
                        },
                        ..Outcome::finished("")
                    },
                    None => Outcome {
                        status: Status::Crashed {
                            message: "the server stopped before this cell (an earlier cell of \
                                      the session did not finish when run again)"
                                .into(),
                        },
                        ..Outcome::finished("")
                    },
                }
            }
        };
        outcome.wall_ms = wall_ms;
        match &outcome.status {
            Status::Finished | Status::Exception { .. } => self.cells.push(code.to_string()),
            Status::LimitExceeded { limit } => self.end(format!("a turn hit its {limit}")),
            Status::Exit { code } => self.end(format!("the code exited with status {code}")),
            Status::Crashed { message } => self.end(format!("the interpreter crashed: {message}")),
        }
        Ok(outcome)
    }

    fn end(&mut self, why: String) {
        self.ended = Some(why);
        self.cells.clear();
    }
}

/// One cell's result as an [`Outcome`]; `timed_out` when the run as a whole ran out of time
/// (the last cell that ran is the one it stopped).
fn cell_outcome(cell: CellRunResult, timed_out: bool, turn: &TurnLimits) -> Outcome {
    let mut stdout = cell.stdout;
    // A final expression's value: `startd` echoes it on stdout, Jupyter sends it as display
    // data.
    for display in &cell.display {
        if let Some(text) = display
            .get("text/plain")
            .or_else(|| display.get("data").and_then(|d| d.get("text/plain")))
            .and_then(|t| t.as_str())
        {
            stdout.push_str(text);
            stdout.push('\n');
        }
    }
    let status = match cell.error.into_iter().next() {
        None if timed_out => Status::LimitExceeded {
            limit: Limit::WallTime,
        },
        None => Status::Finished,
        Some(e) if e.ename == "SystemExit" => Status::Exit {
            code: e.evalue.trim().parse().unwrap_or(1),
        },
        Some(e) if e.ename == "KernelCrash" => Status::Crashed { message: e.evalue },
        Some(e) if e.ename == "TimeoutError" && e.evalue.starts_with(CELL_LIMIT) => {
            Status::LimitExceeded {
                limit: limit_named(&e.evalue[CELL_LIMIT.len()..]).unwrap_or(Limit::WallTime),
            }
        }
        Some(e) => {
            let mut traceback: String = e
                .traceback
                .iter()
                .map(|l| strip_ansi(l))
                .collect::<Vec<_>>()
                .join("\n");
            if traceback.is_empty() {
                traceback = format!("{}: {}", e.ename, e.evalue);
            }
            traceback.push('\n');
            Status::Exception {
                name: e.ename,
                traceback,
            }
        }
    };
    let (stdout, stdout_truncated) = capped(stdout, turn.stdout_bytes);
    let (stderr, stderr_truncated) = capped(cell.stderr, turn.stderr_bytes);
    Outcome {
        status,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        ..Outcome::finished("")
    }
}

/// `text` without ANSI escape sequences (Jupyter colours its tracebacks).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use start_daemon::sandbox_fusion::CellError;

    fn cell(error: Option<(&str, &str)>) -> CellRunResult {
        CellRunResult {
            stdout: "out\n".into(),
            stderr: String::new(),
            display: Vec::new(),
            error: error
                .map(|(ename, evalue)| CellError {
                    ename: ename.into(),
                    evalue: evalue.into(),
                    traceback: vec![
                        "\u{1b}[0;31mTraceback\u{1b}[0m".into(),
                        format!("{ename}: {evalue}"),
                    ],
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn cells_read_back_into_the_sandboxs_statuses() {
        let turn = TurnLimits::default();
        let status = |c, t| cell_outcome(c, t, &turn).status;
        assert_eq!(status(cell(None), false), Status::Finished);
        assert_eq!(
            status(cell(None), true),
            Status::LimitExceeded {
                limit: Limit::WallTime
            }
        );
        assert_eq!(
            status(cell(Some(("SystemExit", "3"))), false),
            Status::Exit { code: 3 }
        );
        assert_eq!(
            status(
                cell(Some((
                    "TimeoutError",
                    "the cell was stopped by its memory limit"
                ))),
                false
            ),
            Status::LimitExceeded {
                limit: Limit::Memory
            }
        );
        assert_eq!(
            status(cell(Some(("ValueError", "x"))), false),
            Status::Exception {
                name: "ValueError".into(),
                traceback: "Traceback\nValueError: x\n".into()
            }
        );
    }

    #[test]
    fn display_data_is_shown_as_stdout() {
        let mut c = cell(None);
        c.display = vec![serde_json::json!({"text/plain": "42"})];
        assert_eq!(
            cell_outcome(c, false, &TurnLimits::default()).stdout,
            "out\n42\n"
        );
    }
}
