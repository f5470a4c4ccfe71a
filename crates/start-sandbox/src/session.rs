//! [`Session`]: a persistent interpreter for one conversation or notebook. Each
//! [`Session::run`] executes one cell in the same interpreter, so later cells see the variables
//! and imports of earlier ones; like a REPL, the value of a final expression is printed.
//!
//! Lifecycle: a Python exception leaves the session usable; `exit()`, `quit()` or `sys.exit()`
//! end it cleanly; a trap (time or fuel limit) ends it with the limit named. After it ends,
//! `run` returns [`Error::SessionEnded`]. Dropping a session releases its interpreter: restored
//! to the snapshot for reuse when it can be (see `recycle`), else freed.

use std::time::{Duration, Instant};

use std::sync::Arc;

use start_runtime::TurnText;

use crate::exec::{Flavor, check_code, fresh_seed};
use crate::instance::{Guest, TurnBudget};
use crate::{Error, Limits, Outcome, Sandbox, SessionLimits, Status, TurnLimits};

/// A persistent interpreter. `Send`: a server may move it between tasks.
pub struct Session {
    guest: Option<Guest>,
    // Where the interpreter goes when the session ends: restored for reuse, or torn down.
    sandbox: Sandbox,
    flavor: Arc<Flavor>,
    limits: SessionLimits,
    turns: u32,
    used: Duration,
    last_active: Instant,
    ended: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("turns", &self.turns)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a session: a fresh interpreter from the snapshot, reseeded.
    ///
    /// # Errors
    /// Host failures only (runtime missing, instance pool exhausted).
    pub fn open(sandbox: &Sandbox, limits: SessionLimits) -> Result<Self, Error> {
        let probe = Limits {
            memory_bytes: limits.memory_bytes,
            fuel: limits.metered.then_some(u64::MAX / 2),
            files: limits.files.clone(),
            ..Limits::default()
        };
        let (mut guest, flavor) = sandbox.ready_guest(&probe)?;
        let seed = match limits.seed {
            Some(s) => s,
            None => fresh_seed()?,
        };
        let (outcome, alive) = guest.turn(
            &TurnText::reseed(seed),
            &TurnBudget {
                wall_time: Duration::from_secs(5),
                fuel: None,
                stdout_bytes: 0,
                stderr_bytes: 4096,
            },
        )?;
        if !alive || outcome.status != Status::Finished {
            sandbox.retire(guest, &flavor);
            return Err(Error::engine(
                "opening a session",
                format!("the interpreter failed to start: {:?}", outcome.status),
            ));
        }
        Ok(Session {
            guest: Some(guest),
            sandbox: sandbox.clone(),
            flavor,
            limits,
            turns: 0,
            used: Duration::ZERO,
            last_active: Instant::now(),
            ended: None,
        })
    }

    /// Runs one cell, named `<cell N>` in tracebacks (N counts this session's cells from 1).
    /// A Python exception is an `Ok` outcome and the session goes on; an uncaught
    /// `SystemExit` (however raised) ends it as `sys.exit` does.
    ///
    /// # Errors
    /// [`Error::SessionEnded`] once the session has ended (exit, trap, turn cap, total time);
    /// [`Error::Invalid`] for a cell over [`crate::MAX_CODE_BYTES`].
    pub fn run(&mut self, code: &str, limits: &TurnLimits) -> Result<Outcome, Error> {
        let name = format!("<cell {}>", self.turns + 1);
        self.run_as(code, &name, limits)
    }

    /// [`Session::run`] with the cell named `filename` in tracebacks instead (e.g. `<stdin>`
    /// or `solution.py`).
    ///
    /// # Errors
    /// As [`Session::run`], plus [`Error::Runtime`] for a name that cannot name code
    /// (empty, over 256 bytes, or with a control character).
    pub fn run_as(
        &mut self,
        code: &str,
        filename: &str,
        limits: &TurnLimits,
    ) -> Result<Outcome, Error> {
        let text = TurnText::cell(filename, code)?;
        if let Some(why) = &self.ended {
            return Err(Error::SessionEnded(why.clone()));
        }
        check_code(code)?;
        if self.turns >= self.limits.max_turns {
            self.end(format!(
                "it reached its cap of {} turns",
                self.limits.max_turns
            ));
            return Err(Error::SessionEnded(self.ended.clone().unwrap_or_default()));
        }
        let mut wall_time = limits.wall_time;
        if let Some(total) = self.limits.total_wall_time {
            let left = total.saturating_sub(self.used);
            if left.is_zero() {
                self.end("its total time budget is spent".into());
                return Err(Error::SessionEnded(self.ended.clone().unwrap_or_default()));
            }
            wall_time = wall_time.min(left);
        }
        let Some(guest) = self.guest.as_mut() else {
            return Err(Error::SessionEnded("it was closed".into()));
        };
        let budget = TurnBudget {
            wall_time,
            fuel: limits.fuel,
            stdout_bytes: limits.stdout_bytes,
            stderr_bytes: limits.stderr_bytes,
        };
        // The helper echoes a final expression like a prompt, and an uncaught `SystemExit`,
        // `exit()` and `quit()` reach the host through the runtime's quitter.
        let (outcome, alive) = guest.turn(&text, &budget)?;
        self.turns += 1;
        self.used += Duration::from_secs_f64(outcome.wall_ms / 1e3);
        self.last_active = Instant::now();
        if !alive {
            let why = match &outcome.status {
                Status::LimitExceeded { limit } => format!("a turn hit the {limit}"),
                Status::Crashed { message } => format!("the interpreter crashed: {message}"),
                Status::Exit { code } => format!("the program exited with code {code}"),
                _ => "the program exited".to_string(),
            };
            self.end(why);
        }
        Ok(outcome)
    }

    fn end(&mut self, why: String) {
        self.ended = Some(why);
        // Release the interpreter now rather than when the owner drops us.
        if let Some(guest) = self.guest.take() {
            self.sandbox.retire(guest, &self.flavor);
        }
    }

    /// Why the session ended, if it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Turns run so far.
    pub fn turns(&self) -> u32 {
        self.turns
    }

    /// Wall time used by all turns so far.
    pub fn time_used(&self) -> Duration {
        self.used
    }

    /// How long since the last turn (or the open).
    pub fn idle_for(&self) -> Duration {
        self.last_active.elapsed()
    }

    /// Whether the session has been idle longer than its idle timeout; its owner should close
    /// it (the session cannot close itself while nobody calls it).
    pub fn is_idle(&self) -> bool {
        self.idle_for() >= self.limits.idle_timeout
    }

    /// The limits the session was opened with.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            self.sandbox.retire(guest, &self.flavor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn session_is_send() {
        assert_send::<Session>();
    }
}
