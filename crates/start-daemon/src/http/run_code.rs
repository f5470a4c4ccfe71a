//! `POST /run_code`: one program in a fresh interpreter, answered in SandboxFusion's shape.
//!
//! Whatever the program does (raise, exit non-zero, run out of time or memory) the reply is
//! HTTP 200 with `Failed`: clients retry `SandboxError` and score it as the sandbox's fault,
//! so only a failure of the server itself is one.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use start_sandbox::{Limit, Limits, Outcome, Status};
use tokio::time::Instant;

use super::budget;
use super::error::ApiError;
use super::files;
use super::{Http, read_json};
use crate::pool::Failure;
use crate::protocol::ErrorKind;
use crate::sandbox_fusion::{
    CommandRunResult, CommandRunStatus, NOTE_LIMIT, NOTE_STDERR_CUT, NOTE_STDOUT_CUT,
    RunCodeRequest, RunCodeResponse, RunStatus, SUPPORTED_LANGUAGES,
};

/// Refuses a language this server cannot run, naming those it can.
pub fn check_language(language: &str) -> Result<(), ApiError> {
    if SUPPORTED_LANGUAGES.contains(&language) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "language {language:?} is not supported by this sandbox (startd runs Python only); \
         supported: {}",
        SUPPORTED_LANGUAGES.join(", ")
    )))
}

/// The handler.
pub async fn handle(
    State(http): State<Arc<Http>>,
    req: Request,
) -> Result<Json<RunCodeResponse>, ApiError> {
    let started = Instant::now();
    let request: RunCodeRequest = read_json(&http, req).await?;
    let ceilings = &http.ctx.ceilings;
    check_language(&request.language)?;
    let wall_time = budget::seconds(
        "run_timeout",
        request.run_timeout,
        false,
        ceilings.wall_time,
    )?;
    let compile = budget::seconds(
        "compile_timeout",
        request.compile_timeout,
        true,
        ceilings.wall_time,
    )?;
    let files_in = files::check_files(&request.files)?;
    files::check_fetch(&request.fetch_files)?;
    let marker = files::marker();
    let code = if files_in.is_empty() && request.fetch_files.is_empty() {
        request.code
    } else {
        files::wrap(&request.code, &files_in, &request.fetch_files, &marker)
    };
    let stdin = request.stdin.unwrap_or_default();
    if code.len() > start_sandbox::MAX_CODE_BYTES {
        return Err(ApiError::invalid(format!(
            "the code (with its files) is {} bytes; the limit is {}",
            code.len(),
            start_sandbox::MAX_CODE_BYTES
        )));
    }
    if stdin.len() > start_sandbox::MAX_STDIN_BYTES {
        return Err(ApiError::invalid(format!(
            "stdin is {} bytes; the limit is {}",
            stdin.len(),
            start_sandbox::MAX_STDIN_BYTES
        )));
    }
    let mut limits = Limits {
        wall_time,
        memory_bytes: budget::memory_bytes(
            request.memory_limit_mb,
            start_sandbox::DEFAULT_MEMORY_BYTES,
            ceilings.memory_bytes,
        ),
        stdin,
        ..Limits::default()
    };
    ceilings.clamp_exec(&mut limits);
    let budget_total = compile + wall_time + http.config.budget_margin;
    let deadline = budget::deadline(started, budget_total);
    let pool = &http.ctx.pool;
    let result = tokio::select! {
        r = budget::queued(deadline, budget_total, &http.metrics.queue_retries, || pool.exec(code.clone(), limits.clone())) => r?,
        _ = http.shutdown.forced() => return Err(ApiError::shutting_down()),
    };
    // The unix socket's counters see these executions too.
    let error = result.as_ref().err().map(|(k, _)| *k);
    http.ctx
        .counters
        .record("exec", error, error.is_none().then(|| started.elapsed()));
    let fetching = !request.fetch_files.is_empty();
    let reply = reply(
        result,
        fetching.then_some(marker.as_str()),
        http.config.pod_name.clone(),
    );
    http.metrics.record_status("run_code", reply.status);
    Ok(Json(reply))
}

/// The run's result in SandboxFusion's terms.
pub fn command_result(outcome: &Outcome, stdout: String) -> CommandRunResult {
    let execution_time = Some(outcome.wall_ms / 1e3);
    let (status, return_code, stderr) = match &outcome.status {
        Status::Finished | Status::Exception { .. } | Status::Exit { .. } => (
            CommandRunStatus::Finished,
            Some(outcome.status.exit_code()),
            outcome.stderr.clone(),
        ),
        Status::LimitExceeded {
            limit: Limit::WallTime | Limit::Fuel,
        } => (
            CommandRunStatus::TimeLimitExceeded,
            None,
            outcome.stderr.clone(),
        ),
        // The program ended on a limit Python reports as an error: like a process killed for
        // it, a non-zero exit.
        Status::LimitExceeded { limit } => (
            CommandRunStatus::Finished,
            Some(1),
            format!("{}\n{NOTE_LIMIT}{limit}\n", outcome.stderr),
        ),
        Status::Crashed { message } => (
            CommandRunStatus::Error,
            Some(outcome.status.exit_code()),
            format!(
                "{}\nstartd: the interpreter crashed: {message}\n",
                outcome.stderr
            ),
        ),
    };
    let mut stderr = stderr;
    for (cut, note) in [
        (outcome.stdout_truncated, NOTE_STDOUT_CUT),
        (outcome.stderr_truncated, NOTE_STDERR_CUT),
    ] {
        if cut {
            if !stderr.is_empty() && !stderr.ends_with('\n') {
                stderr.push('\n');
            }
            stderr.push_str(note);
            stderr.push('\n');
        }
    }
    CommandRunResult {
        status,
        execution_time,
        return_code,
        stdout: Some(stdout),
        stderr: Some(stderr),
    }
}

/// The whole reply for a pool's answer; `marker` when files were fetched.
pub fn reply(
    result: Result<Outcome, Failure>,
    marker: Option<&str>,
    pod: Option<String>,
) -> RunCodeResponse {
    match result {
        Ok(outcome) => {
            let (stdout, files) = match marker {
                Some(m) => files::take_fetched(&outcome.stdout, m),
                None => (outcome.stdout.clone(), BTreeMap::new()),
            };
            let run = command_result(&outcome, stdout);
            let ok = run.status == CommandRunStatus::Finished && run.return_code == Some(0);
            RunCodeResponse {
                status: if ok {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                },
                message: String::new(),
                compile_result: None,
                run_result: Some(run),
                executor_pod_name: pod,
                files,
            }
        }
        // A worker dies or hangs because of the program it ran (the pool replaces it): the
        // program's failure, not the sandbox's.
        Err((ErrorKind::WorkerLost, message)) => RunCodeResponse {
            status: RunStatus::Failed,
            message: String::new(),
            compile_result: None,
            run_result: Some(CommandRunResult {
                status: CommandRunStatus::Error,
                execution_time: None,
                return_code: None,
                stdout: Some(String::new()),
                stderr: Some(format!("startd: {message}\n")),
            }),
            executor_pod_name: pod,
            files: BTreeMap::new(),
        },
        Err((kind, message)) => RunCodeResponse {
            status: RunStatus::SandboxError,
            message: format!("{kind}: {message}"),
            compile_result: None,
            run_result: None,
            executor_pod_name: pod,
            files: BTreeMap::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Status) -> Outcome {
        Outcome {
            status,
            stdout: "partial".into(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            wall_ms: 1500.0,
            fuel_used: None,
            memory_peak_bytes: 0,
        }
    }

    #[test]
    fn user_failures_are_failed_never_sandbox_errors() {
        let r = reply(Ok(outcome(Status::Finished)), None, None);
        assert_eq!(r.status, RunStatus::Success);
        let r = reply(Ok(outcome(Status::Exit { code: 3 })), None, None);
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.run_result.as_ref().and_then(|r| r.return_code), Some(3));
        let r = reply(
            Ok(outcome(Status::LimitExceeded {
                limit: Limit::WallTime,
            })),
            None,
            None,
        );
        let run = r
            .run_result
            .as_ref()
            .map(|r| (r.status, r.return_code, r.stdout.clone()));
        assert_eq!(
            run,
            Some((
                CommandRunStatus::TimeLimitExceeded,
                None,
                Some("partial".into())
            ))
        );
        let r = reply(Err((ErrorKind::WorkerLost, "lost".into())), None, None);
        assert_eq!(r.status, RunStatus::Failed);
        let r = reply(Err((ErrorKind::Internal, "bug".into())), None, None);
        assert_eq!(r.status, RunStatus::SandboxError);
        assert!(!r.message.is_empty());
        assert!(check_language("python3").is_ok());
        let e = check_language("cpp").unwrap_err();
        assert!(e.detail.contains("python"), "{}", e.detail);
    }
}
