//! SandboxFusion's wire models (its `sandbox/server/sandbox_api.py` and
//! `sandbox/runners/types.py`), as `startd --http` reads and writes them and as a client of any
//! SandboxFusion-compatible server sends and reads them (built without the `server` feature:
//! only serde). Unknown request fields are ignored, as pydantic does; every reply field is
//! always present (`null` where empty), because clients index them directly.
//!
//! What the models have no field for, `startd` says in notes: a last stderr line of a run
//! ([`NOTE_LIMIT`], [`NOTE_STDOUT_CUT`], [`NOTE_STDERR_CUT`]) and a cell error's `evalue`
//! ([`CELL_LIMIT`]), which a client reads back (`start --sandbox-url` does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The start of the stderr note of a run a limit other than time stopped, followed by the
/// limit's name (`memory limit`): SandboxFusion has no status for it, so it is a non-zero exit.
pub const NOTE_LIMIT: &str = "startd: the program was stopped by its ";
/// The stderr note of a run whose stdout went past the server's cap (the rest was dropped).
pub const NOTE_STDOUT_CUT: &str = "startd: stdout went past the output cap and was cut";
/// The stderr note of a run whose stderr went past the server's cap (the rest was dropped).
pub const NOTE_STDERR_CUT: &str = "startd: stderr went past the output cap and was cut";
/// The start of a cell error's `evalue` (name `TimeoutError`) when a limit stopped the cell,
/// followed by the limit's name.
pub const CELL_LIMIT: &str = "the cell was stopped by its ";

/// The languages this server runs; anything else is refused with a reply naming these.
pub const SUPPORTED_LANGUAGES: &[&str] = &["python", "python3"];

fn ten() -> f64 {
    10.0
}

fn minus_one() -> i64 {
    -1
}

fn forty_five() -> f64 {
    45.0
}

fn python3() -> String {
    "python3".into()
}

/// `POST /run_code`'s body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCodeRequest {
    /// The program.
    pub code: String,
    /// `python` or `python3` (see [`SUPPORTED_LANGUAGES`]).
    pub language: String,
    /// Seconds a compiled language may compile; Python has no compile step, so this only
    /// widens the request's budget. Default 10.
    #[serde(default = "ten")]
    pub compile_timeout: f64,
    /// Wall seconds the program may run. Default 10.
    #[serde(default = "ten")]
    pub run_timeout: f64,
    /// Memory cap in MiB; zero or less (the default, -1) means the server's default.
    #[serde(default = "minus_one", rename = "memory_limit_MB")]
    pub memory_limit_mb: i64,
    /// What the program reads on stdin; `null` is an immediate end of file.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Files to place in the program's scratch folder before it runs: path -> base64
    /// content (`null`: an empty file).
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// Paths whose contents come back base64 in the reply's `files`, where they exist.
    #[serde(default)]
    pub fetch_files: Vec<String>,
}

/// The reply's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// The program ran and exited 0.
    Success,
    /// The program ran and failed: an exception, a non-zero exit, a timeout or a limit.
    Failed,
    /// The sandbox itself failed; clients retry these, so a user program never causes one.
    SandboxError,
}

/// How one command (compile or run) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandRunStatus {
    /// It ran to its end (with any exit code).
    Finished,
    /// It could not run, or crashed in a way no exit code describes.
    Error,
    /// Its wall time (or instruction budget) ran out; output so far is kept.
    TimeLimitExceeded,
}

/// One command's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRunResult {
    /// How it ended.
    pub status: CommandRunStatus,
    /// Wall seconds it took.
    pub execution_time: Option<f64>,
    /// Its exit code; `null` on a timeout.
    pub return_code: Option<i32>,
    /// What it printed (partial on a timeout).
    pub stdout: Option<String>,
    /// What it printed on stderr (partial on a timeout).
    pub stderr: Option<String>,
}

/// `POST /run_code`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCodeResponse {
    /// The overall status.
    pub status: RunStatus,
    /// Empty unless `status` is `SandboxError`; never `null`.
    pub message: String,
    /// Always `null` for Python.
    pub compile_result: Option<CommandRunResult>,
    /// The run's result; `null` only with `SandboxError`.
    pub run_result: Option<CommandRunResult>,
    /// The serving pod (`MY_POD_NAME`), as SandboxFusion reports it.
    pub executor_pod_name: Option<String>,
    /// The fetched files: path -> base64 content.
    pub files: BTreeMap<String, String>,
}

/// `POST /run_jupyter`'s body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJupyterRequest {
    /// The cells, run in order in one interpreter.
    pub cells: Vec<String>,
    /// Wall seconds each cell may take; 0 (the default) means only the total applies.
    #[serde(default)]
    pub cell_timeout: f64,
    /// Wall seconds all cells may take together. Default 45.
    #[serde(default = "forty_five")]
    pub total_timeout: f64,
    /// Memory cap in MiB; zero or less (the default, -1) means the server's default.
    #[serde(default = "minus_one", rename = "memory_limit_MB")]
    pub memory_limit_mb: i64,
    /// Only `python3`.
    #[serde(default = "python3")]
    pub kernel: String,
    /// Files placed before the first cell: path -> base64 content.
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// Paths returned base64 after the last cell.
    #[serde(default)]
    pub fetch_files: Vec<String>,
}

/// One cell's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRunResult {
    /// What the cell printed, including the echo of a final expression.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// Rich display data; always empty here (a final expression's value is echoed on stdout).
    pub display: Vec<serde_json::Value>,
    /// The cell's uncaught exception, if any (at most one).
    pub error: Vec<CellError>,
}

/// An exception a cell raised, in Jupyter's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellError {
    /// Its type name.
    pub ename: String,
    /// Its message.
    pub evalue: String,
    /// The traceback, one line per entry.
    pub traceback: Vec<String>,
}

/// `POST /run_jupyter`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJupyterResponse {
    /// `Success` when every cell ran (cells may have raised), `Failed` when a cell's time or
    /// the total ran out or the interpreter ended early.
    pub status: RunStatus,
    /// Empty unless `status` is `SandboxError`.
    pub message: String,
    /// The kernel as one command: how the whole run ended.
    pub driver: Option<CommandRunResult>,
    /// One entry per cell that ran.
    pub cells: Vec<CellRunResult>,
    /// The serving pod (`MY_POD_NAME`).
    pub executor_pod_name: Option<String>,
    /// The fetched files: path -> base64 content.
    pub files: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn verls_payload_parses_and_unknown_fields_are_ignored() {
        let r: RunCodeRequest = serde_json::from_str(
            r#"{"compile_timeout": 10, "run_timeout": 10, "code": "print(1)", "stdin": null,
                "memory_limit_MB": 1024, "language": "python", "files": {}, "fetch_files": [],
                "extra": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(r.memory_limit_mb, 1024);
        assert_eq!(r.stdin, None);
        let r: RunCodeRequest =
            serde_json::from_str(r#"{"code": "1", "language": "python"}"#).unwrap();
        assert_eq!((r.run_timeout, r.memory_limit_mb), (10.0, -1));
        assert!(serde_json::from_str::<RunCodeRequest>(r#"{"language": "python"}"#).is_err());
    }

    #[test]
    fn every_reply_key_is_present() {
        let r = RunCodeResponse {
            status: RunStatus::SandboxError,
            message: "x".into(),
            compile_result: None,
            run_result: None,
            executor_pod_name: None,
            files: BTreeMap::new(),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "compile_result",
                "executor_pod_name",
                "files",
                "message",
                "run_result",
                "status"
            ]
        );
    }
}
