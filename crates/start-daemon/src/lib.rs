//! `startd`: a local daemon that keeps the Python sandbox warm and serves executions and
//! sessions to many clients over a unix socket, and the client library to talk to it.
//!
//! Modules: `frame` (length-prefixed frames, [`MAX_FRAME_BYTES`]), `protocol` (the wire types:
//! [`Request`], [`Reply`], [`ErrorKind`], [`Stats`]), `client` ([`Client`], [`BlockingClient`]),
//! `sandbox_fusion` (SandboxFusion's HTTP request and reply types, for the server and for
//! clients of any SandboxFusion-compatible server).
//! With the default `server` feature also: `server` ([`serve`], [`Config`]), `connection` (one
//! client connection, peer-credential check), `pool` (worker processes, parent side), `worker`
//! (worker processes, child side: [`serve_worker`]), `shutdown` (graceful shutdown), `stats`
//! (counters), `http` (the SandboxFusion-compatible HTTP API: [`http::HttpConfig`]). Without it nothing links wasmtime: a client needs only the wire types. With
//! the `test-util` feature, `testutil` holds the fixtures other crates' tests share: a spawned
//! `startd` (`testutil::TestDaemon`) and a command runner whose failed assertions show the
//! whole command (`testutil::TestCommand`).
//!
//! The protocol is documented in `PROTOCOL.md`.

mod client;
mod frame;
mod protocol;
pub mod sandbox_fusion;

pub use client::{
    BlockingClient, Client, ClientError, ConnectOptions, DAEMON_UID_ENV, SOCKET_ENV,
    default_socket_path,
};
pub use frame::{
    FrameError, HEADER_BYTES, MAX_FRAME_BYTES, decode as decode_frame, encode as encode_frame,
    read_frame, read_frame_sync, write_frame, write_frame_sync,
};
pub use protocol::{
    ErrorKind, ErrorReply, Latency, Op, Reply, ReplyResult, Request, Response, Stats, WorkerStats,
};

#[cfg(feature = "test-util")]
pub mod testutil;

#[cfg(feature = "server")]
mod connection;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
mod pool;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod shutdown;
#[cfg(feature = "server")]
mod stats;
#[cfg(feature = "server")]
mod worker;

#[cfg(feature = "server")]
pub use connection::uid_allowed;
#[cfg(feature = "server")]
pub use pool::{
    CLEANUP_TIMEOUT, FUEL_FIRST_USE_GRACE, HANG_GRACE, RUN_FOLDER_PREFIX, SCRATCH_ROOT_ARG,
    STOP_TIMEOUT, WorkerCommand, WorkerTimeouts,
};
#[cfg(feature = "server")]
pub use server::{
    Ceilings, Config, DEFAULT_BODY_TIMEOUT, DEFAULT_CONNECTION_IDLE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_REPLY_BUFFER_BYTES, DEFAULT_MAX_TOTAL_REPLY_BUFFER_BYTES,
    DEFAULT_WRITE_TIMEOUT, DESCRIPTOR_HEADROOM, MIN_OPEN_FILES_CEILING, ServerError, SocketAccess,
    bind, prepare_socket_path, raise_descriptor_limit, serve,
};
#[cfg(feature = "server")]
pub use worker::{WorkerError, serve_stdio as serve_worker};
