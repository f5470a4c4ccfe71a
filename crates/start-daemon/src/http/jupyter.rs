//! `POST /run_jupyter`: cells run in order in one persistent interpreter (a daemon session),
//! as a Jupyter kernel runs them. An exception in a cell is reported in its `error` and the
//! later cells still run; a cell that runs out of time ends the interpreter, so the run stops
//! there with `Failed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use start_sandbox::{Outcome, SessionLimits, Status, TurnLimits};
use tokio::time::Instant;

use super::budget;
use super::error::ApiError;
use super::files;
use super::{Http, read_json};
use crate::pool::Failure;
use crate::protocol::ErrorKind;
use crate::sandbox_fusion::{
    CELL_LIMIT, CellError, CellRunResult, CommandRunResult, CommandRunStatus, RunJupyterRequest,
    RunJupyterResponse, RunStatus,
};

/// The most cells one request may run.
pub const MAX_CELLS: usize = 1000;
/// How long an HTTP session may sit unused before the daemon reaps it: only a request that
/// was abandoned mid-run leaves one behind.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The handler.
pub async fn handle(
    State(http): State<Arc<Http>>,
    req: Request,
) -> Result<Json<RunJupyterResponse>, ApiError> {
    let started = Instant::now();
    let request: RunJupyterRequest = read_json(&http, req).await?;
    if request.kernel != "python3" {
        return Err(ApiError::invalid(format!(
            "kernel {:?} is not supported; supported: python3",
            request.kernel
        )));
    }
    if request.cells.len() > MAX_CELLS {
        return Err(ApiError::invalid(format!(
            "{} cells sent; at most {MAX_CELLS} are accepted",
            request.cells.len()
        )));
    }
    let ceilings = http.ctx.ceilings.clone();
    let cell_timeout = budget::seconds(
        "cell_timeout",
        request.cell_timeout,
        true,
        ceilings.wall_time,
    )?;
    // The total is spread over many cells, so it may exceed one execution's ceiling; the
    // session's idle ceiling bounds it.
    let total = budget::seconds(
        "total_timeout",
        request.total_timeout,
        false,
        ceilings.idle_timeout,
    )?;
    let files_in = files::check_files(&request.files)?;
    files::check_fetch(&request.fetch_files)?;
    if let Some(cell) = request
        .cells
        .iter()
        .find(|c| c.len() > start_sandbox::MAX_CODE_BYTES)
    {
        return Err(ApiError::invalid(format!(
            "a cell is {} bytes; the limit is {}",
            cell.len(),
            start_sandbox::MAX_CODE_BYTES
        )));
    }
    let budget_total = total + http.config.budget_margin;
    let deadline = budget::deadline(started, budget_total);
    let mut limits = SessionLimits {
        memory_bytes: budget::memory_bytes(
            request.memory_limit_mb,
            start_sandbox::DEFAULT_MEMORY_BYTES,
            ceilings.memory_bytes,
        ),
        total_wall_time: Some(total),
        idle_timeout: SESSION_IDLE_TIMEOUT,
        // The cells, plus the opening turn, one for the files in and one for the files out.
        max_turns: u32::try_from(request.cells.len() + 3).unwrap_or(u32::MAX),
        ..SessionLimits::default()
    };
    ceilings.clamp_session(&mut limits);
    let uid = http.ctx.own_uid;
    let pool = &http.ctx.pool;
    let opened = tokio::select! {
        r = budget::queued(deadline, budget_total, &http.metrics.queue_retries, || pool.open_session(limits.clone(), uid)) => r?,
        _ = http.shutdown.forced() => return Err(ApiError::shutting_down()),
    };
    let session = match opened {
        Ok(s) => s,
        Err(failure) => return Ok(Json(sandbox_error(failure, http.config.pod_name.clone()))),
    };
    // The cells run in a task of their own, so that the session is closed even when the
    // client goes away or the request is given up mid-run.
    let run = Run {
        http: http.clone(),
        session: session.clone(),
        uid,
        cell_timeout,
        total,
        started,
    };
    let task = tokio::spawn(async move {
        let reply = run.cells(request, files_in).await;
        let _ = run.http.ctx.pool.close_session(&run.session, run.uid).await;
        reply
    });
    tokio::select! {
        r = tokio::time::timeout_at(deadline, task) => match r {
            Ok(Ok(reply)) => {
                http.metrics.record_status("run_jupyter", reply.status);
                Ok(Json(reply))
            }
            Ok(Err(_)) => Ok(Json(sandbox_error(
                (ErrorKind::Internal, "the cells' task failed".into()),
                http.config.pod_name.clone(),
            ))),
            Err(_) => Err(ApiError::budget(budget_total)),
        },
        _ = http.shutdown.forced() => Err(ApiError::shutting_down()),
    }
}

struct Run {
    http: Arc<Http>,
    session: String,
    uid: u32,
    cell_timeout: Duration,
    total: Duration,
    started: Instant,
}

impl Run {
    /// Runs one turn with what is left of the total (and at most the cell timeout).
    async fn turn(&self, code: String) -> Result<Outcome, Failure> {
        let left = self.total.saturating_sub(self.started.elapsed());
        let wall_time = if self.cell_timeout.is_zero() {
            left
        } else {
            self.cell_timeout.min(left)
        };
        let mut limits = TurnLimits {
            wall_time: wall_time.max(Duration::from_millis(1)),
            ..TurnLimits::default()
        };
        self.http.ctx.ceilings.clamp_turn(&mut limits);
        let r = self
            .http
            .ctx
            .pool
            .run_session(&self.session, code, limits, self.uid)
            .await;
        let error = r.as_ref().err().map(|(k, _)| *k);
        self.http.ctx.counters.record("session.run", error, None);
        r
    }

    async fn cells(
        &self,
        request: RunJupyterRequest,
        files_in: Vec<(String, String)>,
    ) -> RunJupyterResponse {
        let pod = self.http.config.pod_name.clone();
        let mut reply = RunJupyterResponse {
            status: RunStatus::Success,
            message: String::new(),
            driver: None,
            cells: Vec::new(),
            executor_pod_name: pod.clone(),
            files: BTreeMap::new(),
        };
        let mut driver = CommandRunStatus::Finished;
        if !files_in.is_empty() {
            match self.turn(files::put_code(&files_in)).await {
                Ok(o) if o.status == Status::Finished => {}
                Ok(o) => {
                    reply.status = RunStatus::Failed;
                    reply.driver = Some(driver_result(
                        CommandRunStatus::Error,
                        self.started,
                        o.stderr,
                    ));
                    return reply;
                }
                Err(f) => return sandbox_error(f, pod),
            }
        }
        for cell in request.cells {
            match self.turn(cell).await {
                Ok(outcome) => {
                    let stopped = matches!(
                        outcome.status,
                        Status::LimitExceeded { .. } | Status::Crashed { .. }
                    );
                    let exited = matches!(outcome.status, Status::Exit { .. });
                    reply.cells.push(cell_result(outcome.clone()));
                    if stopped {
                        driver = match outcome.status {
                            Status::LimitExceeded {
                                limit: start_sandbox::Limit::WallTime | start_sandbox::Limit::Fuel,
                            } => CommandRunStatus::TimeLimitExceeded,
                            _ => CommandRunStatus::Error,
                        };
                        break;
                    }
                    if exited {
                        // The kernel is gone after `sys.exit`; the later cells cannot run.
                        driver = CommandRunStatus::Error;
                        break;
                    }
                }
                // The interpreter ended (its total time, an exit); the later cells cannot run.
                Err((
                    ErrorKind::SessionEnded | ErrorKind::NoSuchSession | ErrorKind::WorkerLost,
                    _,
                )) => {
                    driver = CommandRunStatus::Error;
                    break;
                }
                Err(f) => return sandbox_error(f, pod),
            }
        }
        if driver == CommandRunStatus::Finished && !request.fetch_files.is_empty() {
            let marker = files::marker();
            if let Ok(o) = self
                .turn(files::fetch_code(&request.fetch_files, &marker))
                .await
            {
                reply.files = files::take_fetched(&o.stdout, &marker).1;
            }
        }
        if driver != CommandRunStatus::Finished {
            reply.status = RunStatus::Failed;
        }
        reply.driver = Some(driver_result(driver, self.started, String::new()));
        reply
    }
}

fn driver_result(status: CommandRunStatus, started: Instant, stderr: String) -> CommandRunResult {
    CommandRunResult {
        status,
        execution_time: Some(started.elapsed().as_secs_f64()),
        return_code: (status == CommandRunStatus::Finished).then_some(0),
        stdout: Some(String::new()),
        stderr: Some(stderr),
    }
}

/// One cell's outcome in Jupyter's shape.
pub fn cell_result(outcome: Outcome) -> CellRunResult {
    let error = match &outcome.status {
        Status::Exception { name, traceback } => {
            let last = traceback
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let evalue = last
                .strip_prefix(name.as_str())
                .and_then(|r| r.strip_prefix(':'))
                .map(|r| r.trim().to_string())
                .unwrap_or_default();
            vec![CellError {
                ename: name.clone(),
                evalue,
                traceback: traceback.lines().map(str::to_string).collect(),
            }]
        }
        Status::Exit { code } => vec![CellError {
            ename: "SystemExit".into(),
            evalue: code.to_string(),
            traceback: Vec::new(),
        }],
        Status::LimitExceeded { limit } => vec![CellError {
            ename: "TimeoutError".into(),
            evalue: format!("{CELL_LIMIT}{limit}"),
            traceback: Vec::new(),
        }],
        Status::Crashed { message } => vec![CellError {
            ename: "KernelCrash".into(),
            evalue: message.clone(),
            traceback: Vec::new(),
        }],
        Status::Finished => Vec::new(),
    };
    CellRunResult {
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        display: Vec::new(),
        error,
    }
}

fn sandbox_error((kind, message): Failure, pod: Option<String>) -> RunJupyterResponse {
    RunJupyterResponse {
        status: RunStatus::SandboxError,
        message: format!("{kind}: {message}"),
        driver: None,
        cells: Vec::new(),
        executor_pod_name: pod,
        files: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_become_jupyter_errors() {
        let o = Outcome {
            status: Status::Exception {
                name: "RuntimeError".into(),
                traceback: "Traceback (most recent call last):\n  File \"<turn 1>\", line 1\nRuntimeError: boom\n".into(),
            },
            ..Outcome::finished("")
        };
        let c = cell_result(o);
        assert_eq!(c.error[0].ename, "RuntimeError");
        assert_eq!(c.error[0].evalue, "boom");
        assert_eq!(c.error[0].traceback.len(), 3);
    }
}
