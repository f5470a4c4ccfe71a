//! The client library: [`Client`] (async, pipelined: clone it and call from many tasks at once)
//! and [`BlockingClient`] (a wrapper with its own small runtime). Neither links wasmtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use start_sandbox::{Limits, Outcome, SessionLimits, TurnLimits};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;

use crate::frame::{self, FrameError};
use crate::protocol::{ErrorKind, ErrorReply, Op, Reply, ReplyResult, Request, Response, Stats};

/// The environment variable that names the daemon's socket.
pub const SOCKET_ENV: &str = "START_SOCKET";

/// The environment variable that names the uid the daemon must run as (a decimal number),
/// when [`ConnectOptions::expect_uid`] does not; without it, the client's own effective uid.
/// Set it to talk to a daemon run by another user (say root, with `--allow-uid`).
pub const DAEMON_UID_ENV: &str = "START_DAEMON_UID";

/// The socket path used when none is given: `$START_SOCKET`, else
/// `$XDG_RUNTIME_DIR/start/startd.sock`, else `<tmp>/start-<uid>/startd.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir).join("start").join("startd.sock");
    }
    std::env::temp_dir()
        .join(format!("start-{}", current_uid()))
        .join("startd.sock")
}

/// This process's effective uid, read without libc: the owner of `/proc/self`.
pub(crate) fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// How a client connects.
///
/// Right after connecting, the client asks the kernel who is listening (`SO_PEERCRED`) and
/// refuses to talk to a process of another uid than the expected one: anyone who got to the
/// socket's path first could otherwise receive the client's code and forge its results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The uid the daemon must run as. `None` (the default): `$START_DAEMON_UID`
    /// ([`DAEMON_UID_ENV`]) if set, else this process's effective uid.
    pub expect_uid: Option<u32>,
}

impl ConnectOptions {
    /// Options that expect the daemon to run as `uid`.
    pub fn expect_uid(uid: u32) -> Self {
        ConnectOptions {
            expect_uid: Some(uid),
        }
    }

    /// The uid the daemon must run as: [`ConnectOptions::expect_uid`], else
    /// `$START_DAEMON_UID`, else this process's effective uid.
    ///
    /// # Errors
    /// [`ClientError::BadDaemonUid`] when `$START_DAEMON_UID` is set but not a uid.
    pub fn expected_uid(&self) -> Result<u32, ClientError> {
        if let Some(uid) = self.expect_uid {
            return Ok(uid);
        }
        expected_uid_from(std::env::var_os(DAEMON_UID_ENV).as_deref())
    }
}

/// The expected daemon uid given the value of `$START_DAEMON_UID` (unset or empty: our own).
fn expected_uid_from(env: Option<&std::ffi::OsStr>) -> Result<u32, ClientError> {
    match env.filter(|v| !v.is_empty()) {
        None => Ok(current_uid()),
        Some(v) => v
            .to_str()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| ClientError::BadDaemonUid {
                value: v.to_string_lossy().into_owned(),
            }),
    }
}

/// Checks that the process at the other end of `stream` runs as `expected`.
fn check_peer(stream: &UnixStream, path: &Path, expected: u32) -> Result<(), ClientError> {
    let cred = stream
        .peer_cred()
        .map_err(|source| ClientError::PeerCredentials {
            path: path.to_path_buf(),
            source,
        })?;
    if cred.uid() != expected {
        return Err(ClientError::WrongDaemonUid {
            path: path.to_path_buf(),
            expected,
            actual: cred.uid(),
        });
    }
    Ok(())
}

/// A client-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon's socket could not be reached.
    #[error("cannot connect to startd at {path} (is it running? start it with `startd`)")]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a frame failed.
    #[error("talking to startd: {0}")]
    Frame(#[from] FrameError),
    /// The daemon answered with an error.
    #[error("startd refused the request ({kind}): {message}")]
    Server {
        /// Its kind.
        kind: ErrorKind,
        /// Its explanation.
        message: String,
    },
    /// The connection closed before the reply came.
    #[error("connection to startd closed: {0}")]
    Closed(String),
    /// The daemon sent something this client does not understand.
    #[error("unexpected reply from startd: {0}")]
    Protocol(String),
    /// The process answering on the socket runs as another uid than the expected one: it may
    /// be an impostor that another user started where the daemon was expected. Nothing was
    /// sent to it.
    #[error(
        "the process answering on {path} runs as uid {actual}, not uid {expected} as \
         expected; it may not be a real startd, so nothing was sent. Stop it or remove the \
         socket (and its folder, if it is not yours) and start startd as uid {expected}, use \
         another --socket or XDG_RUNTIME_DIR, or, if a daemon of uid {actual} is the one you \
         mean, set START_DAEMON_UID={actual}"
    )]
    WrongDaemonUid {
        /// The socket path.
        path: PathBuf,
        /// The uid the daemon was expected to run as.
        expected: u32,
        /// The uid of the process that answered.
        actual: u32,
    },
    /// The credentials of the process answering on the socket could not be read, so it could
    /// not be trusted. Nothing was sent to it.
    #[error("cannot check who answers on {path} (SO_PEERCRED); nothing was sent")]
    PeerCredentials {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `$START_DAEMON_UID` is set but is not a uid.
    #[error(
        "START_DAEMON_UID={value:?} is not a uid; set it to the daemon's numeric uid, or unset \
         it to expect a daemon of your own uid"
    )]
    BadDaemonUid {
        /// The variable's value.
        value: String,
    },
}

impl ClientError {
    /// The daemon's error kind, when the daemon answered with an error.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Server { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the daemon was too busy: retrying later may succeed.
    pub fn is_busy(&self) -> bool {
        self.kind() == Some(ErrorKind::Busy)
    }
}

impl From<ErrorReply> for ClientError {
    fn from(e: ErrorReply) -> Self {
        ClientError::Server {
            kind: e.kind,
            message: e.message,
        }
    }
}

type Pending = HashMap<u64, oneshot::Sender<Result<Response, ClientError>>>;

struct Shared {
    pending: Mutex<Option<Pending>>,
}

impl Shared {
    /// Fails every pending request and refuses new ones.
    fn close(&self, why: &str, kind: Option<&ErrorReply>) {
        let drained = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for (_, tx) in drained.into_iter().flatten() {
            let err = match kind {
                Some(e) => ClientError::from(e.clone()),
                None => ClientError::Closed(why.to_string()),
            };
            let _ = tx.send(Err(err));
        }
    }
}

struct Inner {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// An async connection to `startd`. Cheap to clone; clones share the connection and may send
/// requests concurrently (they are pipelined and matched by id).
///
/// ```no_run
/// # async fn f() -> Result<(), start_daemon::ClientError> {
/// let client = start_daemon::Client::connect(start_daemon::default_socket_path()).await?;
/// let outcome = client.exec("print(6 * 7)", &Default::default()).await?;
/// assert_eq!(outcome.stdout, "42\n");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the daemon at `path`, which must run as the uid the default
    /// [`ConnectOptions`] expect (`$START_DAEMON_UID`, else this process's own).
    ///
    /// # Errors
    /// [`ClientError::Connect`] when nothing listens there, [`ClientError::WrongDaemonUid`]
    /// when a process of another uid answers.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Self::connect_with(path, &ConnectOptions::default()).await
    }

    /// Connects to the daemon at `path` with `options`.
    ///
    /// # Errors
    /// As [`Client::connect`], and [`ClientError::BadDaemonUid`] or
    /// [`ClientError::PeerCredentials`].
    pub async fn connect_with(
        path: impl AsRef<Path>,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let expected = options.expected_uid()?;
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        check_peer(&stream, path, expected)?;
        let (mut read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
        });
        let reader_shared = shared.clone();
        let reader = tokio::spawn(async move {
            let shared = reader_shared;
            loop {
                let body = match frame::read_frame(&mut read).await {
                    Ok(Some(body)) => body,
                    Ok(None) => return shared.close("the daemon closed the connection", None),
                    Err(e) => return shared.close(&e.to_string(), None),
                };
                let reply: Reply = match serde_json::from_slice(&body) {
                    Ok(r) => r,
                    Err(e) => return shared.close(&format!("undecodable reply: {e}"), None),
                };
                let result = match reply.result {
                    ReplyResult::Ok(r) => Ok(r),
                    ReplyResult::Error(e) => Err(e),
                };
                let Some(id) = reply.id else {
                    // An error about the connection itself (forbidden, oversized frame).
                    let e = result.err();
                    return shared.close("the daemon closed the connection", e.as_ref());
                };
                let tx = shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                    .and_then(|p| p.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(result.map_err(ClientError::from));
                }
            }
        });
        Ok(Client {
            inner: Arc::new(Inner {
                writer: tokio::sync::Mutex::new(write),
                shared,
                next_id: AtomicU64::new(1),
                reader,
            }),
        })
    }

    /// Sends one operation and waits for its reply.
    ///
    /// # Errors
    /// [`ClientError::Server`] when the daemon answers with an error; the others when the
    /// connection fails.
    pub async fn call(&self, op: Op) -> Result<Response, ClientError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&Request { id, op })
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .inner
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match pending.as_mut() {
                Some(p) => p.insert(id, tx),
                None => return Err(ClientError::Closed("the connection has closed".into())),
            };
        }
        let written = {
            let mut w = self.inner.writer.lock().await;
            frame::write_frame(&mut *w, &body).await
        };
        if let Err(e) = written {
            if let Some(p) = self
                .inner
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                p.remove(&id);
            }
            return Err(e.into());
        }
        rx.await
            .map_err(|_| ClientError::Closed("the connection has closed".into()))?
    }

    /// Runs `code` in a fresh interpreter.
    ///
    /// # Errors
    /// As [`Client::call`]; the guest's own failures are in the [`Outcome`].
    pub async fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome, ClientError> {
        let op = Op::Exec {
            code: code.to_string(),
            limits: limits.clone(),
        };
        outcome(self.call(op).await?)
    }

    /// Opens a session and returns its name.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn open_session(&self, limits: &SessionLimits) -> Result<String, ClientError> {
        let op = Op::SessionOpen {
            limits: limits.clone(),
        };
        match self.call(op).await? {
            Response::Session(name) => Ok(name),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// Runs one cell in a session.
    ///
    /// # Errors
    /// As [`Client::call`]; `session_ended` once the session has ended.
    pub async fn run(
        &self,
        session: &str,
        code: &str,
        limits: &TurnLimits,
    ) -> Result<Outcome, ClientError> {
        let op = Op::SessionRun {
            session: session.to_string(),
            code: code.to_string(),
            limits: limits.clone(),
        };
        outcome(self.call(op).await?)
    }

    /// Closes a session.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn close_session(&self, session: &str) -> Result<(), ClientError> {
        let op = Op::SessionClose {
            session: session.to_string(),
        };
        match self.call(op).await? {
            Response::Closed => Ok(()),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// The daemon's counters.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn stats(&self) -> Result<Stats, ClientError> {
        match self.call(Op::Stats).await? {
            Response::Stats(s) => Ok(s),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// Checks that the daemon answers.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        match self.call(Op::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }
}

fn outcome(r: Response) -> Result<Outcome, ClientError> {
    match r {
        Response::Outcome(o) => Ok(o),
        other => Err(ClientError::Protocol(format!("{other:?}"))),
    }
}

/// A blocking [`Client`], for programs without an async runtime. Do not use it from inside a
/// tokio runtime (it runs its own).
///
/// ```no_run
/// let client = start_daemon::BlockingClient::connect(start_daemon::default_socket_path())?;
/// let outcome = client.exec("print(1 + 1)", &Default::default())?;
/// assert_eq!(outcome.stdout, "2\n");
/// # Ok::<(), start_daemon::ClientError>(())
/// ```
#[derive(Debug)]
pub struct BlockingClient {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl BlockingClient {
    /// Connects to the daemon at `path` (see [`Client::connect`]).
    ///
    /// # Errors
    /// As [`Client::connect`], or [`ClientError::Closed`] if the runtime cannot start.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Self::connect_with(path, &ConnectOptions::default())
    }

    /// Connects to the daemon at `path` with `options` (see [`Client::connect_with`]).
    ///
    /// # Errors
    /// As [`Client::connect_with`], or [`ClientError::Closed`] if the runtime cannot start.
    pub fn connect_with(
        path: impl AsRef<Path>,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Closed(format!("cannot start a runtime: {e}")))?;
        let client = rt.block_on(Client::connect_with(path, options))?;
        Ok(BlockingClient { rt, client })
    }

    /// See [`Client::exec`].
    ///
    /// # Errors
    /// As [`Client::exec`].
    pub fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome, ClientError> {
        self.rt.block_on(self.client.exec(code, limits))
    }

    /// See [`Client::open_session`].
    ///
    /// # Errors
    /// As [`Client::open_session`].
    pub fn open_session(&self, limits: &SessionLimits) -> Result<String, ClientError> {
        self.rt.block_on(self.client.open_session(limits))
    }

    /// See [`Client::run`].
    ///
    /// # Errors
    /// As [`Client::run`].
    pub fn run(
        &self,
        session: &str,
        code: &str,
        limits: &TurnLimits,
    ) -> Result<Outcome, ClientError> {
        self.rt.block_on(self.client.run(session, code, limits))
    }

    /// See [`Client::close_session`].
    ///
    /// # Errors
    /// As [`Client::close_session`].
    pub fn close_session(&self, session: &str) -> Result<(), ClientError> {
        self.rt.block_on(self.client.close_session(session))
    }

    /// See [`Client::stats`].
    ///
    /// # Errors
    /// As [`Client::stats`].
    pub fn stats(&self) -> Result<Stats, ClientError> {
        self.rt.block_on(self.client.stats())
    }

    /// See [`Client::ping`].
    ///
    /// # Errors
    /// As [`Client::ping`].
    pub fn ping(&self) -> Result<(), ClientError> {
        self.rt.block_on(self.client.ping())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_expected_daemon_uid_comes_from_the_options_the_environment_or_ourselves() {
        assert_eq!(expected_uid_from(None).unwrap(), current_uid());
        assert_eq!(
            expected_uid_from(Some(OsStr::new(""))).unwrap(),
            current_uid()
        );
        assert_eq!(expected_uid_from(Some(OsStr::new("0"))).unwrap(), 0);
        assert_eq!(
            expected_uid_from(Some(OsStr::new(" 1000\n"))).unwrap(),
            1000
        );
        let err = expected_uid_from(Some(OsStr::new("root"))).unwrap_err();
        assert!(matches!(&err, ClientError::BadDaemonUid { value } if value == "root"));
        assert!(err.to_string().contains("START_DAEMON_UID"), "{err}");
        assert_eq!(ConnectOptions::expect_uid(7).expected_uid().unwrap(), 7);
    }

    #[test]
    fn a_wrong_daemon_uid_says_who_answered_and_what_to_do() {
        let err = ClientError::WrongDaemonUid {
            path: "/tmp/start-0/startd.sock".into(),
            expected: 0,
            actual: 1000,
        };
        let msg = err.to_string();
        for needle in [
            "uid 1000",
            "not uid 0",
            "START_DAEMON_UID=1000",
            "nothing was sent",
        ] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }
}
