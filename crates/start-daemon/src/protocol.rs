//! The wire protocol: requests, replies and error kinds, shared by the daemon and its clients
//! (see `PROTOCOL.md`). Every request carries an `id` the reply repeats, so a client may
//! pipeline many requests on one connection and match replies as they come, in any order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use start_sandbox::{Limits, Outcome, SessionLimits, TurnLimits};

/// A request: an id chosen by the client and an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the reply.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// The operations, tagged by `"op"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Op {
    /// Run code in a fresh interpreter.
    #[serde(rename = "exec")]
    Exec {
        /// Python source.
        code: String,
        /// Limits asked for; the daemon lowers them to its ceilings.
        #[serde(default)]
        limits: Limits,
    },
    /// Open a persistent interpreter; the reply names it.
    #[serde(rename = "session.open")]
    SessionOpen {
        /// Limits for the whole session, lowered to the daemon's ceilings.
        #[serde(default)]
        limits: SessionLimits,
    },
    /// Run one cell in a session.
    #[serde(rename = "session.run")]
    SessionRun {
        /// The session, as returned by `session.open`.
        session: String,
        /// Python source.
        code: String,
        /// Limits for this turn, lowered to the daemon's ceilings.
        #[serde(default)]
        limits: TurnLimits,
    },
    /// Close a session and free its memory.
    #[serde(rename = "session.close")]
    SessionClose {
        /// The session to close.
        session: String,
    },
    /// The daemon's counters.
    #[serde(rename = "stats")]
    Stats,
    /// A liveness check.
    #[serde(rename = "ping")]
    Ping,
}

impl Op {
    /// The operation's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Exec { .. } => "exec",
            Op::SessionOpen { .. } => "session.open",
            Op::SessionRun { .. } => "session.run",
            Op::SessionClose { .. } => "session.close",
            Op::Stats => "stats",
            Op::Ping => "ping",
        }
    }
}

/// A reply: the request's id (`null` when the request was too malformed to carry one) and
/// either `"ok"` or `"error"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The id of the request answered.
    pub id: Option<u64>,
    /// The result.
    #[serde(flatten)]
    pub result: ReplyResult,
}

/// Success or failure of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyResult {
    /// The operation succeeded.
    Ok(Response),
    /// The operation failed; the guest's own failures are `Ok` outcomes, not this.
    Error(ErrorReply),
}

impl Reply {
    /// A success reply.
    pub fn ok(id: u64, response: Response) -> Self {
        Reply {
            id: Some(id),
            result: ReplyResult::Ok(response),
        }
    }

    /// An error reply.
    pub fn error(id: Option<u64>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Reply {
            id,
            result: ReplyResult::Error(ErrorReply {
                kind,
                message: message.into(),
            }),
        }
    }
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The outcome of an `exec` or a `session.run`.
    Outcome(Outcome),
    /// A session was opened: its name, for `session.run` and `session.close`.
    Session(String),
    /// A session was closed.
    Closed,
    /// The daemon's counters.
    Stats(Stats),
    /// The answer to `ping`.
    Pong,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// A stable, machine-readable kind.
    pub kind: ErrorKind,
    /// A sentence for people.
    pub message: String,
}

/// The kinds of error a reply may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The frame was not a valid request: bad JSON, unknown operation, missing field.
    BadRequest,
    /// A frame was over the size limit; the connection is closed after this reply.
    FrameTooLarge,
    /// The request is well formed but invalid (e.g. code over the size limit).
    Invalid,
    /// The queue is full; retry later.
    Busy,
    /// The daemon is shutting down and did not run the request.
    ShuttingDown,
    /// The worker running the request died or hung and was replaced.
    WorkerLost,
    /// No such session (never opened, closed, idle-timed-out, or lost with its worker).
    NoSuchSession,
    /// The session has ended (exit, a limit, its turn cap); open a new one.
    SessionEnded,
    /// The peer's uid is not allowed to use this daemon.
    Forbidden,
    /// The connection broke a time limit (a frame header or body that did not arrive in
    /// time, or an idle connection); it is closed after this reply.
    TimedOut,
    /// A failure inside the daemon.
    Internal,
}

impl ErrorKind {
    /// The kind's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::FrameTooLarge => "frame_too_large",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Busy => "busy",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::WorkerLost => "worker_lost",
            ErrorKind::NoSuchSession => "no_such_session",
            ErrorKind::SessionEnded => "session_ended",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The daemon's counters, as returned by `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Connections accepted so far.
    pub connections_total: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Requests answered, by operation.
    pub requests: BTreeMap<String, u64>,
    /// Error replies, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Jobs waiting for a worker now.
    pub queue_depth: u64,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Workers replaced after dying or hanging.
    pub worker_restarts: u64,
    /// One entry per worker slot.
    pub workers: Vec<WorkerStats>,
    /// Latency of `exec` and `session.run` requests, from frame read to reply queued, over the
    /// most recent requests.
    pub latency_ms: Latency,
}

/// One worker process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// The worker's slot number.
    pub slot: usize,
    /// Its process id (0 while it is starting).
    pub pid: u32,
    /// Whether it is running a job now.
    pub busy: bool,
    /// Jobs it completed (this process and its predecessors in the slot).
    pub jobs: u64,
    /// Sessions it holds.
    pub sessions: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples the percentiles come from.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_parse_from_the_documented_json() {
        let r: Request = serde_json::from_str(
            r#"{"id":7,"op":"exec","code":"print(1)","limits":{"wall_time_ms":500}}"#,
        )
        .unwrap();
        assert_eq!(r.id, 7);
        let Op::Exec { code, limits } = r.op else {
            panic!("not exec")
        };
        assert_eq!(code, "print(1)");
        assert_eq!(limits.wall_time.as_millis(), 500);
        let r: Request = serde_json::from_str(r#"{"id":1,"op":"ping"}"#).unwrap();
        assert_eq!(r.op, Op::Ping);
        let r: Request =
            serde_json::from_str(r#"{"id":2,"op":"session.run","session":"s1","code":"x"}"#)
                .unwrap();
        assert_eq!(r.op.name(), "session.run");
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"op":"nope"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"op":"exec"}"#).is_err());
    }

    #[test]
    fn replies_serialize_as_documented() {
        let json = serde_json::to_string(&Reply::ok(3, Response::Pong)).unwrap();
        assert_eq!(json, r#"{"id":3,"ok":"pong"}"#);
        let json =
            serde_json::to_string(&Reply::error(None, ErrorKind::Busy, "queue full")).unwrap();
        assert_eq!(
            json,
            r#"{"id":null,"error":{"kind":"busy","message":"queue full"}}"#
        );
        let back: Reply = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Reply::error(None, ErrorKind::Busy, "queue full"));
        let s = Reply::ok(4, Response::Session("s1".into()));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"id":4,"ok":{"session":"s1"}}"#);
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), s);
    }
}
