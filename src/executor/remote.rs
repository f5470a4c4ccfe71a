//! A client of a SandboxFusion-compatible server (`startd --http`, bytedance's SandboxFusion):
//! `POST /run_code` for a fresh execution, `POST /run_jupyter` for cells in one interpreter,
//! each reply read back into the sandbox's own [`Outcome`], so the judge, the scorer and the
//! driver treat a remote run as a local one.
//!
//! What the wire cannot carry is said here once: the server's own limits apply to fuel, scratch
//! space, open files and seeds (only wall time, memory and stdin are sent); the stdout and stderr
//! caps are applied here to what comes back; a reply over [`MAX_REPLY_BYTES`] is not read and
//! reads as output past its cap. A non-zero exit is an exception when stderr ends with a
//! traceback, else an exit; `startd`'s notes (a limit, output cut at its cap; see
//! [`start_daemon::sandbox_fusion`]) are read back into the sandbox's statuses.
//!
//! Failures of the server are retried as SandboxFusion's own client does ([`DEFAULT_ATTEMPTS`]
//! tries, backoff from [`crate::retry`]): a refused connection, a 5xx, 408 or 429, and a reply
//! with status `SandboxError`. A 4xx is the request's fault and is not retried.

use std::io::Read;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use start_daemon::sandbox_fusion::{
    CommandRunStatus, NOTE_LIMIT, NOTE_STDERR_CUT, NOTE_STDOUT_CUT, RunCodeRequest,
    RunCodeResponse, RunJupyterRequest, RunJupyterResponse, RunStatus,
};
use start_sandbox::{Limit, Limits, Outcome, Status};

use crate::retry;

/// Default of [`RemoteOptions::attempts`]: 5, as SandboxFusion's PyPI client retries `run_code`.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Default of [`RemoteOptions::backoff`]: the first wait between attempts, doubled each time.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);
/// Default of [`RemoteOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`RemoteOptions::answer_margin`]: how long past a request's own timeouts an
/// answer may take (queueing, transfer) before the request is given up, as verl waits.
pub const DEFAULT_ANSWER_MARGIN: Duration = Duration::from_secs(10);
/// The largest reply read, in bytes; SandboxFusion does not cap a program's output.
pub const MAX_REPLY_BYTES: u64 = 64 << 20;
/// The longest time budget a request is given (a `total_timeout` past it is waited for this
/// long): a day.
const MAX_REQUEST_SECONDS: f64 = 86_400.0;
/// The most error-body bytes quoted from a refused request.
const MAX_ERROR_BODY_BYTES: u64 = 4096;

/// Where the server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The server's base URL (`http://host:port`, with any route prefix such as
    /// `/faas/sandbox`).
    pub url: String,
    /// A bearer token sent with every request (`startd --http-token-file`).
    pub token: Option<String>,
    /// Tries per request, counting the first. Default [`DEFAULT_ATTEMPTS`].
    pub attempts: u32,
    /// The first wait between tries. Default [`DEFAULT_BACKOFF`].
    pub backoff: Duration,
    /// How long a connection may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Added to a request's own timeouts to bound its wait. Default [`DEFAULT_ANSWER_MARGIN`].
    pub answer_margin: Duration,
}

impl RemoteOptions {
    /// Options for the server at `url`, with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        RemoteOptions {
            url: url.into(),
            token: None,
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            answer_margin: DEFAULT_ANSWER_MARGIN,
        }
    }
}

/// A remote run that did not give a result.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL is not one this client can use.
    #[error("--sandbox-url {url:?} is not usable: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No try reached the server.
    #[error(
        "cannot reach the sandbox server at {url} ({attempts} tries): {reason}; is it running (`startd --http ADDR`)?"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Tries made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The server answered, but only with failures of its own (5xx, `SandboxError`).
    #[error("the sandbox server at {url} failed {attempts} tries: {reason}")]
    Failing {
        /// The URL tried.
        url: String,
        /// Tries made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The server refused the request (a 4xx): retrying would not help.
    #[error("the sandbox server refused the request (HTTP {status}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What it said.
        detail: String,
    },
    /// The reply is not SandboxFusion's shape.
    #[error("the sandbox server at {url} sent a reply that is not SandboxFusion's: {reason}")]
    BadReply {
        /// The URL tried.
        url: String,
        /// What could not be read.
        reason: String,
    },
}

/// One try's failure, before retrying decides.
enum Try {
    /// Worth another try (`Retry-After` when the server gave one).
    Again {
        reason: String,
        reached: bool,
        retry_after: Option<Duration>,
    },
    /// Final.
    Fail(RemoteError),
    /// The reply was over [`MAX_REPLY_BYTES`].
    TooLarge,
}

/// A client of one SandboxFusion-compatible server; shared by every worker thread (its
/// connections are pooled).
#[derive(Debug)]
pub struct RemoteSandbox {
    options: RemoteOptions,
    base: String,
    agent: ureq::Agent,
}

/// What a `run_jupyter` call gave: the reply, or a reply too large to read.
#[derive(Debug)]
pub enum CellsReply {
    /// The server's reply.
    Reply(RunJupyterResponse),
    /// Over [`MAX_REPLY_BYTES`].
    TooLarge,
}

impl RemoteSandbox {
    /// A client for `options.url` (nothing is sent yet).
    ///
    /// # Errors
    /// [`RemoteError::BadUrl`] unless the URL is `http://` or `https://` with a host.
    pub fn new(options: RemoteOptions) -> Result<Self, RemoteError> {
        let url = options.url.trim();
        let bad = |reason: &str| RemoteError::BadUrl {
            url: options.url.clone(),
            reason: reason.into(),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("it names no host"));
        }
        if url.contains(['?', '#']) {
            return Err(bad("a query or fragment has no place in a base URL"));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .max_idle_connections(1024)
            .max_idle_connections_per_host(1024)
            .build();
        Ok(RemoteSandbox {
            base: url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
            options,
        })
    }

    /// The base URL requests go to.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Checks that a server answers `GET /v1/ping` with `pong` (SandboxFusion's liveness
    /// route), so a wrong URL fails before any work starts.
    ///
    /// # Errors
    /// [`RemoteError`] when it does not.
    pub fn ping(&self) -> Result<(), RemoteError> {
        let url = format!("{}/v1/ping", self.base);
        let text = self.with_retries(&url, |agent| {
            // A server that accepts and never answers must not hold the command forever.
            let mut request = agent
                .get(&url)
                .config()
                .timeout_global(Some(self.options.answer_margin))
                .build();
            if let Some(token) = &self.options.token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            read_reply::<serde_json::Value>(&url, request.call())
        })?;
        match text {
            Some(serde_json::Value::String(s)) if s == "pong" => Ok(()),
            Some(other) => Err(RemoteError::BadReply {
                url,
                reason: format!("/v1/ping answered {other}, not \"pong\""),
            }),
            None => Err(RemoteError::BadReply {
                url,
                reason: "/v1/ping answered more than a reply may hold".into(),
            }),
        }
    }

    /// Runs `code` in a fresh interpreter on the server under `limits` (wall time, memory and
    /// stdin are sent; output is cut here to the caps).
    ///
    /// # Errors
    /// [`RemoteError`] when the server gives no result; every program behaviour is an
    /// [`Outcome`].
    pub fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome, RemoteError> {
        let run_timeout = limits.wall_time.as_secs_f64();
        let request = RunCodeRequest {
            code: code.to_string(),
            language: "python".into(),
            compile_timeout: 0.0,
            run_timeout,
            memory_limit_mb: memory_mib(limits.memory_bytes),
            stdin: Some(limits.stdin.clone()),
            files: Default::default(),
            fetch_files: Vec::new(),
        };
        let url = format!("{}/run_code", self.base);
        let started = Instant::now();
        let reply: Option<RunCodeResponse> = self.post(&url, &request, limits.wall_time)?;
        let Some(reply) = reply else {
            return Ok(too_large(started));
        };
        run_code_outcome(&url, reply, limits.stdout_bytes, limits.stderr_bytes)
    }

    /// Runs `request`'s cells in one interpreter on the server.
    ///
    /// # Errors
    /// [`RemoteError`] when the server gives no result.
    pub fn run_cells(&self, request: &RunJupyterRequest) -> Result<CellsReply, RemoteError> {
        let url = format!("{}/run_jupyter", self.base);
        let budget = Duration::from_secs_f64(request.total_timeout.clamp(0.0, MAX_REQUEST_SECONDS));
        let reply: Option<RunJupyterResponse> = self.post(&url, request, budget)?;
        Ok(reply.map_or(CellsReply::TooLarge, CellsReply::Reply))
    }

    /// Posts `body` as JSON and reads the reply, retrying the server's failures; `None` when
    /// the reply is over [`MAX_REPLY_BYTES`]. `run_time` is the request's own time budget.
    fn post<T: DeserializeOwned + Retryable>(
        &self,
        url: &str,
        body: &impl Serialize,
        run_time: Duration,
    ) -> Result<Option<T>, RemoteError> {
        self.with_retries(url, |agent| {
            let mut request = agent
                .post(url)
                .config()
                .timeout_global(Some(run_time.saturating_add(self.options.answer_margin)))
                .build();
            if let Some(token) = &self.options.token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            match read_reply::<T>(url, request.send_json(body)) {
                Ok(Some(reply)) => match reply.sandbox_error() {
                    Some(message) => Err(Try::Again {
                        reason: format!("SandboxError: {message}"),
                        reached: true,
                        retry_after: None,
                    }),
                    None => Ok(Some(reply)),
                },
                other => other,
            }
        })
    }

    /// Calls `attempt` up to [`RemoteOptions::attempts`] times, waiting between tries.
    fn with_retries<T>(
        &self,
        url: &str,
        attempt: impl Fn(&ureq::Agent) -> Result<Option<T>, Try>,
    ) -> Result<Option<T>, RemoteError> {
        let attempts = self.options.attempts.max(1);
        let mut reached = false;
        let mut last = String::new();
        for n in 1..=attempts {
            match attempt(&self.agent) {
                Ok(reply) => return Ok(reply),
                Err(Try::TooLarge) => return Ok(None),
                Err(Try::Fail(e)) => return Err(e),
                Err(Try::Again {
                    reason,
                    reached: r,
                    retry_after,
                }) => {
                    reached |= r;
                    last = reason;
                    if n < attempts {
                        std::thread::sleep(retry::wait(self.options.backoff, n, retry_after));
                    }
                }
            }
        }
        let url = url.to_string();
        Err(if reached {
            RemoteError::Failing {
                url,
                attempts,
                reason: last,
            }
        } else {
            RemoteError::Unreachable {
                url,
                attempts,
                reason: last,
            }
        })
    }
}

/// Replies that can say the sandbox failed (and are then retried).
trait Retryable {
    /// The message of a `SandboxError` reply.
    fn sandbox_error(&self) -> Option<&str>;
}

impl Retryable for RunCodeResponse {
    fn sandbox_error(&self) -> Option<&str> {
        (self.status == RunStatus::SandboxError).then_some(self.message.as_str())
    }
}

impl Retryable for RunJupyterResponse {
    fn sandbox_error(&self) -> Option<&str> {
        (self.status == RunStatus::SandboxError).then_some(self.message.as_str())
    }
}

/// Reads one HTTP exchange's reply as `T` (`None`: over [`MAX_REPLY_BYTES`]).
fn read_reply<T: DeserializeOwned>(
    url: &str,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Option<T>, Try> {
    let response = sent.map_err(|e| Try::Again {
        reason: e.to_string(),
        reached: !matches!(
            e,
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Io(_)
        ),
        retry_after: None,
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(retry::parse_retry_after);
    let mut reader = response.into_body().into_reader();
    if !(200..300).contains(&status) {
        let mut text = String::new();
        let _ = reader.take(MAX_ERROR_BODY_BYTES).read_to_string(&mut text);
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("detail")
                    .map(|d| d.as_str().map_or(d.to_string(), str::to_string))
            })
            .unwrap_or_else(|| text.trim().to_string());
        if retry::is_transient(status) {
            return Err(Try::Again {
                reason: format!("HTTP {status}: {detail}"),
                reached: true,
                retry_after,
            });
        }
        return Err(Try::Fail(RemoteError::Refused { status, detail }));
    }
    let mut bytes = Vec::new();
    (&mut reader)
        .take(MAX_REPLY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Try::Again {
            reason: format!("reading the reply: {e}"),
            reached: true,
            retry_after: None,
        })?;
    if bytes.len() as u64 > MAX_REPLY_BYTES {
        return Err(Try::TooLarge);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Try::Fail(RemoteError::BadReply {
            url: url.to_string(),
            reason: e.to_string(),
        })
    })
}

/// `memory_bytes` as whole MiB for `memory_limit_MB`, rounded up (0 bytes: the server's
/// default).
fn memory_mib(bytes: u64) -> i64 {
    if bytes == 0 {
        -1
    } else {
        i64::try_from(bytes.div_ceil(1 << 20)).unwrap_or(i64::MAX)
    }
}

/// The outcome of a reply too large to read: its output was past any cap.
fn too_large(started: Instant) -> Outcome {
    Outcome {
        status: Status::Crashed {
            message: format!("the server's reply was over {MAX_REPLY_BYTES} bytes"),
        },
        stdout_truncated: true,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
        ..Outcome::finished("")
    }
}

/// `text` cut to `cap` bytes (at a character boundary), and whether it was cut.
pub(super) fn capped(mut text: String, cap: usize) -> (String, bool) {
    if text.len() <= cap {
        return (text, false);
    }
    text.truncate(text.floor_char_boundary(cap));
    (text, true)
}

/// The limit whose name (its `Display`, `memory limit`) is `name`.
pub(super) fn limit_named(name: &str) -> Option<Limit> {
    [
        Limit::WallTime,
        Limit::Fuel,
        Limit::Memory,
        Limit::Scratch,
        Limit::OpenFiles,
    ]
    .into_iter()
    .find(|l| l.to_string() == name.trim())
}

/// What `startd`'s notes at the end of a run's stderr say (see
/// [`start_daemon::sandbox_fusion::NOTE_LIMIT`]); none from other servers.
#[derive(Debug, Default, PartialEq)]
struct Notes {
    limit: Option<Limit>,
    stdout_cut: bool,
    stderr_cut: bool,
}

/// The notes at the end of `stderr`, and `stderr` without them.
fn startd_notes(stderr: &str) -> (Notes, String) {
    let mut notes = Notes::default();
    let mut rest = stderr.trim_end_matches('\n');
    loop {
        let (head, last) = rest.rsplit_once('\n').unwrap_or(("", rest));
        if last == NOTE_STDOUT_CUT {
            notes.stdout_cut = true;
        } else if last == NOTE_STDERR_CUT {
            notes.stderr_cut = true;
        } else if let Some(limit) = last.strip_prefix(NOTE_LIMIT).and_then(limit_named) {
            notes.limit = Some(limit);
        } else {
            break;
        }
        rest = head;
    }
    if notes == Notes::default() {
        return (notes, stderr.to_string());
    }
    let rest = rest.trim_end_matches('\n');
    (
        notes,
        if rest.is_empty() {
            String::new()
        } else {
            format!("{rest}\n")
        },
    )
}

/// The exception a script's stderr ends with, and its traceback (as the sandbox reads its own:
/// [`Outcome::last_traceback`], [`Outcome::exception_name_in`]): after a `Traceback` header,
/// or for a program that does not compile, after the `File` line of its report. A message of
/// `sys.exit("...")` is not one.
fn exception_in(stderr: &str) -> Option<(String, String)> {
    let traceback = Outcome::last_traceback(stderr);
    let name = Outcome::exception_name_in(&traceback)?;
    let framed = traceback.starts_with("Traceback (most recent call last):")
        || (traceback.starts_with("  File \"")
            && ["SyntaxError", "IndentationError", "TabError"].contains(&name.as_str()));
    framed.then_some((name, traceback))
}

/// A `run_code` reply as an [`Outcome`], output cut to the caps.
pub(super) fn run_code_outcome(
    url: &str,
    reply: RunCodeResponse,
    stdout_cap: usize,
    stderr_cap: usize,
) -> Result<Outcome, RemoteError> {
    let Some(run) = reply.run_result else {
        return Err(RemoteError::BadReply {
            url: url.to_string(),
            reason: format!("status {:?} without a run_result", reply.status),
        });
    };
    let (notes, stderr) = startd_notes(&run.stderr.unwrap_or_default());
    let status = match run.status {
        CommandRunStatus::TimeLimitExceeded => Status::LimitExceeded {
            limit: Limit::WallTime,
        },
        CommandRunStatus::Error => Status::Crashed {
            message: match stderr.trim() {
                "" => "the server could not run the program".to_string(),
                text => text.lines().last().unwrap_or(text).to_string(),
            },
        },
        CommandRunStatus::Finished => match (run.return_code.unwrap_or(1), notes.limit) {
            (0, _) => Status::Finished,
            (_, Some(limit)) => Status::LimitExceeded { limit },
            (code, None) => match exception_in(&stderr) {
                Some((name, traceback)) if code == 1 => Status::Exception { name, traceback },
                _ => Status::Exit { code },
            },
        },
    };
    let (stdout, stdout_cut) = capped(run.stdout.unwrap_or_default(), stdout_cap);
    let (stderr, stderr_cut) = capped(stderr, stderr_cap);
    let (stdout_truncated, stderr_truncated) = (
        stdout_cut || notes.stdout_cut,
        stderr_cut || notes.stderr_cut,
    );
    Ok(Outcome {
        status,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        wall_ms: run.execution_time.unwrap_or(0.0) * 1e3,
        fuel_used: None,
        memory_peak_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use start_daemon::sandbox_fusion::CommandRunResult;

    fn reply(status: CommandRunStatus, code: Option<i32>, stderr: &str) -> RunCodeResponse {
        RunCodeResponse {
            status: RunStatus::Failed,
            message: String::new(),
            compile_result: None,
            run_result: Some(CommandRunResult {
                status,
                execution_time: Some(0.5),
                return_code: code,
                stdout: Some("héllo".into()),
                stderr: Some(stderr.into()),
            }),
            executor_pod_name: None,
            files: Default::default(),
        }
    }

    fn status(r: RunCodeResponse) -> Status {
        run_code_outcome("u", r, 100, 100)
            .map(|o| o.status)
            .unwrap_or(Status::Crashed {
                message: "bad reply".into(),
            })
    }

    #[test]
    fn replies_read_back_into_the_sandboxs_statuses() {
        use CommandRunStatus::*;
        assert_eq!(status(reply(Finished, Some(0), "")), Status::Finished);
        let tb = "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad\n";
        assert_eq!(
            status(reply(Finished, Some(1), tb)),
            Status::Exception {
                name: "ValueError".into(),
                traceback: tb.into()
            }
        );
        assert_eq!(
            status(reply(Finished, Some(3), "")),
            Status::Exit { code: 3 }
        );
        assert_eq!(
            status(reply(Finished, Some(1), "bye\n")),
            Status::Exit { code: 1 }
        );
        assert_eq!(
            status(reply(TimeLimitExceeded, None, "")),
            Status::LimitExceeded {
                limit: Limit::WallTime
            }
        );
        assert!(
            matches!(status(reply(Error, None, "lost\n")), Status::Crashed { message } if message == "lost")
        );
        let note = "partial\nstartd: the program was stopped by its memory limit\n";
        let o = run_code_outcome("u", reply(Finished, Some(1), note), 100, 100).ok();
        assert_eq!(
            o.map(|o| (o.status, o.stderr)),
            Some((
                Status::LimitExceeded {
                    limit: Limit::Memory
                },
                "partial\n".into()
            ))
        );
        let cut = format!("tb\n{NOTE_STDOUT_CUT}\n");
        let o = run_code_outcome("u", reply(Finished, Some(0), &cut), 100, 100).ok();
        assert_eq!(
            o.map(|o| (o.status, o.stderr, o.stdout_truncated)),
            Some((Status::Finished, "tb\n".into(), true))
        );
        let mut no_run = reply(Finished, Some(0), "");
        no_run.run_result = None;
        assert!(run_code_outcome("u", no_run, 1, 1).is_err());
    }

    #[test]
    fn output_is_cut_to_the_caps_at_a_character_boundary() {
        let o = run_code_outcome("u", reply(CommandRunStatus::Finished, Some(0), ""), 2, 10).ok();
        assert_eq!(
            o.map(|o| (o.stdout, o.stdout_truncated)),
            Some(("h".into(), true))
        );
    }

    #[test]
    fn exceptions_are_read_as_python_prints_them() {
        let name = |stderr: &str| exception_in(stderr).map(|(n, _)| n);
        let tb = "Traceback (most recent call last):\n  File \"p\", line 1\n";
        assert_eq!(
            exception_in(&format!("noise\n{tb}KeyError: 'a'\n")),
            Some(("KeyError".into(), format!("{tb}KeyError: 'a'\n")))
        );
        assert_eq!(
            name(&format!("{tb}KeyboardInterrupt\n")).as_deref(),
            Some("KeyboardInterrupt")
        );
        assert_eq!(
            name(&format!("{tb}sympy.core.sympify.SympifyError: x")).as_deref(),
            Some("SympifyError")
        );
        assert_eq!(
            name("  File \"p\", line 1\n    def f(:\nSyntaxError: bad").as_deref(),
            Some("SyntaxError")
        );
        for not_one in ["Error: from sys.exit", "bye", "some words: here", ""] {
            assert_eq!(name(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn a_server_that_accepts_and_never_answers_is_given_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(stream);
        });
        let mut options = RemoteOptions::new(format!("http://{addr}"));
        options.attempts = 1;
        options.answer_margin = Duration::from_millis(200);
        let remote = RemoteSandbox::new(options).unwrap();
        let started = Instant::now();
        let err = remote.ping().unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{err}");
        assert!(
            matches!(
                err,
                RemoteError::Failing { .. } | RemoteError::Unreachable { .. }
            ),
            "{err}"
        );
        hold.join().unwrap();
    }

    /// Reads one HTTP request, head and `Content-Length` body, from a test server's stream.
    fn read_whole_request(stream: &mut std::net::TcpStream) {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }

    #[test]
    fn a_reply_over_the_cap_is_not_read_and_reads_as_output_past_it() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request is read first: closing with request bytes unread makes the
            // kernel send a reset, which discards the reply the client has not yet read.
            read_whole_request(&mut stream);
            let len = MAX_REPLY_BYTES + 1;
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            let chunk = vec![b' '; 1 << 20];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
        });
        let mut options = RemoteOptions::new(format!("http://{addr}"));
        options.attempts = 1;
        let remote = RemoteSandbox::new(options).unwrap();
        let outcome = remote.exec("print(1)", &Limits::default()).unwrap();
        assert!(outcome.stdout_truncated);
        assert!(
            matches!(outcome.status, Status::Crashed { .. }),
            "{:?}",
            outcome.status
        );
        serve.join().unwrap();
    }

    #[test]
    fn urls_are_checked_and_memory_rounds_up() {
        assert!(RemoteSandbox::new(RemoteOptions::new("http://127.0.0.1:8080/")).is_ok());
        let base = RemoteSandbox::new(RemoteOptions::new("https://h/faas/sandbox/")).ok();
        assert_eq!(
            base.as_ref().map(|r| r.url()),
            Some("https://h/faas/sandbox")
        );
        for bad in [
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http:///x",
            "http://h/?a=1",
        ] {
            assert!(
                RemoteSandbox::new(RemoteOptions::new(bad)).is_err(),
                "{bad}"
            );
        }
        assert_eq!(memory_mib(0), -1);
        assert_eq!(memory_mib(1), 1);
        assert_eq!(memory_mib(256 << 20), 256);
    }
}
