//! The server: prepares the socket (a private folder, stale-socket detection, mode 0600),
//! starts the worker pool, accepts connections under a cap, and shuts down gracefully when
//! told to.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use start_sandbox::{Limits, SessionLimits, TurnLimits};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc};

use crate::connection;
use crate::pool::{Pool, PoolConfig, WorkerCommand, WorkerTimeouts};
use crate::protocol::Stats;
use crate::shutdown::{self, Shutdown};
use crate::stats::Counters;

/// Descriptors a worker keeps for itself when the open-files ceiling is fitted to its limit
/// ([`Ceilings::fit_descriptors`]).
pub const DESCRIPTOR_HEADROOM: u64 = 512;
/// The open-files ceiling is never fitted below this.
pub const MIN_OPEN_FILES_CEILING: u32 = 16;

/// Raises this process's soft descriptor limit to its hard limit (its workers inherit it) and
/// returns the limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Server-side maximums; every request's limits are lowered to these.
#[derive(Debug, Clone)]
pub struct Ceilings {
    /// Longest wall time of one exec or turn. Default 60 s.
    pub wall_time: Duration,
    /// Most linear memory of one interpreter. Default 2 GiB.
    pub memory_bytes: u64,
    /// Most bytes kept of each of stdout and stderr. Default 1 MiB (a reply must fit in one
    /// frame).
    pub output_bytes: usize,
    /// Longest idle timeout of a session. Default 10 minutes.
    pub idle_timeout: Duration,
    /// Most turns in one session. Default 10 000.
    pub max_turns: u32,
    /// Most scratch bytes, scratch entries and open files of one interpreter. Default: the
    /// sandbox's defaults ([`start_sandbox::FileLimits`]).
    pub files: start_sandbox::FileLimits,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            wall_time: Duration::from_secs(60),
            memory_bytes: 2 << 30,
            output_bytes: start_sandbox::DEFAULT_OUTPUT_BYTES,
            idle_timeout: start_sandbox::DEFAULT_IDLE_TIMEOUT,
            max_turns: 10_000,
            files: start_sandbox::FileLimits::default(),
        }
    }
}

impl Ceilings {
    /// Lowers an exec's limits to the ceilings.
    pub fn clamp_exec(&self, limits: &mut Limits) {
        limits.clamp_to(&Limits {
            wall_time: self.wall_time,
            fuel: None,
            memory_bytes: self.memory_bytes,
            stdout_bytes: self.output_bytes,
            stderr_bytes: self.output_bytes,
            stdin: String::new(),
            seed: None,
            files: self.files.clone(),
        });
    }

    /// Lowers a turn's limits to the ceilings.
    pub fn clamp_turn(&self, limits: &mut TurnLimits) {
        limits.wall_time = limits.wall_time.min(self.wall_time);
        limits.stdout_bytes = limits.stdout_bytes.min(self.output_bytes);
        limits.stderr_bytes = limits.stderr_bytes.min(self.output_bytes);
    }

    /// Lowers the open-files ceiling so that `guests` interpreters of one worker can each hold
    /// that many descriptors within the worker's `descriptor_limit`, keeping
    /// [`DESCRIPTOR_HEADROOM`] for the worker itself (pipes, scratch folders, the runtime's
    /// files): otherwise one tenant's descriptors could make another's opens fail. Returns the
    /// new ceiling when it was lowered (never below [`MIN_OPEN_FILES_CEILING`]).
    pub fn fit_descriptors(&mut self, descriptor_limit: u64, guests: u64) -> Option<u32> {
        // Each guest also holds its two preopened folders.
        let per_guest = descriptor_limit.saturating_sub(DESCRIPTOR_HEADROOM) / guests.max(1);
        let fits = u32::try_from(per_guest.saturating_sub(2))
            .unwrap_or(u32::MAX)
            .max(MIN_OPEN_FILES_CEILING);
        (fits < self.files.open_files).then(|| {
            self.files.open_files = fits;
            fits
        })
    }

    /// Lowers a session's limits to the ceilings.
    pub fn clamp_session(&self, limits: &mut SessionLimits) {
        limits.memory_bytes = limits.memory_bytes.min(self.memory_bytes);
        limits.idle_timeout = limits.idle_timeout.min(self.idle_timeout);
        limits.max_turns = limits.max_turns.min(self.max_turns);
        limits.files.clamp_to(&self.files);
    }
}

/// Everything `startd` is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket path.
    pub socket: PathBuf,
    /// Worker processes. Default: one per core.
    pub workers: usize,
    /// How a worker process is started (normally this binary with `--worker`).
    pub worker_command: WorkerCommand,
    /// Jobs that may wait for a worker; past that, requests get `busy` at once. Default 1024.
    pub queue_capacity: usize,
    /// Connections served at once; further ones wait in the listen backlog. Default 1024.
    pub max_connections: usize,
    /// Requests one connection may have in flight; past that it is not read. Default 64.
    pub max_in_flight: usize,
    /// Sessions open at once. Default 256.
    pub max_sessions: usize,
    /// Uids besides the daemon's own that may connect.
    pub allow_uids: Vec<u32>,
    /// Maximum limits.
    pub ceilings: Ceilings,
    /// How long in-flight requests may take to finish after SIGTERM. Default 10 s.
    pub shutdown_grace: Duration,
    /// How long a worker may take to start (the first may have to compile the runtime).
    pub startup_timeout: Duration,
    /// How long the rest of a frame header may take once its first byte has arrived; past
    /// it the connection gets `timed_out` and is closed. Default 10 s
    /// ([`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Duration,
    /// How long a frame's body may take to arrive once its header is read; past it the
    /// connection gets `timed_out` and is closed. Default 60 s ([`DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// How long a connection with nothing in flight (no request running, no reply waiting to
    /// be written) may send nothing before it is closed. Default 5 minutes
    /// ([`DEFAULT_CONNECTION_IDLE_TIMEOUT`]).
    pub connection_idle_timeout: Duration,
    /// How long one reply may take to be written (the client reading it); past it the
    /// connection is closed and the replies queued on it are dropped. Default 60 s
    /// ([`DEFAULT_WRITE_TIMEOUT`]).
    pub write_timeout: Duration,
    /// Reply bytes one connection may have waiting to be written; once they reach it, the
    /// daemon stops reading that connection's requests until its client reads them. Requests
    /// already running still queue their replies, so it may be passed by at most
    /// `max_in_flight` replies. Default 64 MiB ([`DEFAULT_MAX_REPLY_BUFFER_BYTES`]).
    pub max_reply_buffer_bytes: usize,
    /// Reply bytes all connections together may have waiting to be written; a reply that
    /// would pass it waits for others to be written (a reply larger than the whole budget
    /// takes all of it), and no connection's requests are read while it is used up. Default
    /// 1 GiB ([`DEFAULT_MAX_TOTAL_REPLY_BUFFER_BYTES`]).
    pub max_total_reply_buffer_bytes: usize,
    /// How long workers may take past a job's wall time, cleaning up after one, and exiting.
    pub worker_timeouts: WorkerTimeouts,
    /// The SandboxFusion-compatible HTTP API, served beside the socket when set (`--http`).
    /// Default: off.
    pub http: Option<crate::http::HttpConfig>,
}

/// The default [`Config::header_timeout`]: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`Config::body_timeout`]: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`Config::connection_idle_timeout`]: 5 minutes.
pub const DEFAULT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The default [`Config::write_timeout`]: 60 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default [`Config::max_reply_buffer_bytes`]: 64 MiB.
pub const DEFAULT_MAX_REPLY_BUFFER_BYTES: usize = 64 << 20;
/// The default [`Config::max_total_reply_buffer_bytes`]: 1 GiB.
pub const DEFAULT_MAX_TOTAL_REPLY_BUFFER_BYTES: usize = 1 << 30;

impl Config {
    /// The defaults, serving on `socket` with workers started by `worker_command`.
    pub fn new(socket: PathBuf, worker_command: WorkerCommand) -> Self {
        Config {
            socket,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            worker_command,
            queue_capacity: 1024,
            max_connections: 1024,
            max_in_flight: 64,
            max_sessions: 256,
            allow_uids: Vec::new(),
            ceilings: Ceilings::default(),
            shutdown_grace: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(900),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            connection_idle_timeout: DEFAULT_CONNECTION_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_reply_buffer_bytes: DEFAULT_MAX_REPLY_BUFFER_BYTES,
            max_total_reply_buffer_bytes: DEFAULT_MAX_TOTAL_REPLY_BUFFER_BYTES,
            worker_timeouts: WorkerTimeouts::default(),
            http: None,
        }
    }
}

/// A failure to start or run the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another daemon answers on the socket.
    #[error("another startd is already listening on {0}; stop it or pick another --socket")]
    AlreadyRunning(PathBuf),
    /// Something other than a socket is in the way.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The socket's folder is not one only this daemon's uid controls: another user could
    /// plant a fake daemon there, or replace the socket.
    #[error(
        "refusing to serve in {dir}: it {problem}, so another user could plant or replace the \
         socket there; remove it if it is not yours (or fix its owner and mode: the folder must \
         be owned by uid {uid} and not writable by group or others, e.g. `chmod 700`), or pick \
         another place with --socket or XDG_RUNTIME_DIR"
    )]
    UnsafeFolder {
        /// The socket's folder.
        dir: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The daemon's effective uid.
        uid: u32,
    },
    /// The socket did not come out of `bind` with the owner and mode asked for.
    #[error(
        "the socket {path} has owner uid {owner} and mode {mode:04o} after binding, not uid \
         {uid} and {expected:04o}; refusing to serve on it (is the folder shared with another \
         user?)"
    )]
    SocketMode {
        /// The socket.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its mode.
        mode: u32,
        /// The daemon's effective uid.
        uid: u32,
        /// The mode asked for.
        expected: u32,
    },
    /// Socket set-up failed.
    #[error("{action} {path}")]
    Socket {
        /// What we were doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The worker processes could not be started.
    #[error("cannot start the workers: {0}")]
    Workers(String),
    /// The HTTP API could not be set up (its address, its prefix).
    #[error("HTTP API: {0}")]
    Http(String),
}

/// What every connection shares.
pub(crate) struct Context {
    pub pool: Pool,
    pub counters: Arc<Counters>,
    pub ceilings: Ceilings,
    pub own_uid: u32,
    pub allow_uids: Vec<u32>,
    pub max_in_flight: usize,
    pub limits: connection::Limits,
    /// Reply bytes that may wait to be written, across all connections
    /// ([`Config::max_total_reply_buffer_bytes`]); each queued reply holds its bytes' worth.
    pub reply_budget: Arc<Semaphore>,
    /// Signalled whenever a reply's bytes go back to [`Context::reply_budget`].
    pub reply_space: tokio::sync::Notify,
}

impl Context {
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.counters.snapshot();
        s.queue_depth = self.pool.queue_depth();
        s.sessions_open = self.pool.sessions_open();
        s.workers = self.pool.worker_stats();
        s
    }
}

fn socket_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError {
    let path = path.to_path_buf();
    move |source| ServerError::Socket {
        action,
        path,
        source,
    }
}

/// Who may reach the socket file, and so its modes.
///
/// The peer-credential check in the connection handler is what decides who is served; the
/// modes only keep others from reaching the socket at all when nobody else is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketAccess {
    /// Only the daemon's uid: socket 0600, a folder it creates 0700. The default.
    Private,
    /// Other uids may connect (`--allow-uid`): socket 0666, a folder it creates 0711
    /// (others may pass through it to the socket, not list or change it). Everyone may then
    /// connect, and everyone not allowed gets `forbidden`.
    Shared,
}

impl SocketAccess {
    /// [`SocketAccess::Shared`] when any other uid is allowed.
    pub fn for_allowed(allow_uids: &[u32]) -> Self {
        if allow_uids.is_empty() {
            SocketAccess::Private
        } else {
            SocketAccess::Shared
        }
    }

    /// The socket file's mode.
    pub fn socket_mode(self) -> u32 {
        match self {
            SocketAccess::Private => 0o600,
            SocketAccess::Shared => 0o666,
        }
    }

    /// The mode of a socket folder the daemon creates.
    pub fn folder_mode(self) -> u32 {
        match self {
            SocketAccess::Private => 0o700,
            SocketAccess::Shared => 0o711,
        }
    }
}

/// The total reply budget as a semaphore can hold it (at least one byte).
fn total_budget(bytes: usize) -> usize {
    bytes.clamp(1, Semaphore::MAX_PERMITS)
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Checks the socket's folder (not following a symbolic link): it must be a folder, owned by
/// the daemon's effective uid, and not writable by group or others. Anything else would let
/// another user put a socket of their own where clients look for the daemon.
fn check_folder(dir: &Path) -> Result<std::fs::Metadata, ServerError> {
    let uid = euid();
    let unsafe_folder = |problem: String| ServerError::UnsafeFolder {
        dir: dir.to_path_buf(),
        problem,
        uid,
    };
    let m = std::fs::symlink_metadata(dir)
        .map_err(socket_error("cannot inspect the folder of", dir))?;
    if m.file_type().is_symlink() {
        return Err(unsafe_folder("is a symbolic link".into()));
    }
    if !m.is_dir() {
        return Err(unsafe_folder("is not a folder".into()));
    }
    if m.uid() != uid {
        return Err(unsafe_folder(format!(
            "is owned by uid {}, not by this daemon's uid {uid}",
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(unsafe_folder(format!(
            "has mode {:04o}: group or others may write to it",
            m.mode() & 0o7777
        )));
    }
    Ok(m)
}

/// Sets the mode of a folder the daemon just created, through a descriptor opened without
/// following symbolic links (the umask may have narrowed the mode `mkdir` was given).
fn set_folder_mode(dir: &Path, mode: u32) -> Result<(), ServerError> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::{Mode, fchmod};
    let fd = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| socket_error("cannot open the folder of", dir)(e.into()))?;
    fchmod(&fd, Mode::from_bits_truncate(mode))
        .map_err(|e| socket_error("cannot set the mode of the folder of", dir)(e.into()))
}

/// Makes `path` free for a new socket: creates its folder if missing (mode 0700, or 0711 for
/// [`SocketAccess::Shared`]), checks that the folder is safe (a real folder, not a symbolic
/// link, owned by the daemon's effective uid, not writable by group or others), removes a
/// stale socket left by a crashed daemon, and refuses when a live daemon answers there.
///
/// # Errors
/// [`ServerError::UnsafeFolder`], [`ServerError::AlreadyRunning`],
/// [`ServerError::NotASocket`] or an I/O failure.
pub fn prepare_socket_path(path: &Path, access: SocketAccess) -> Result<(), ServerError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let created = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(socket_error("cannot create the folder for", path))?;
            }
            // Not recursive: if someone else made the folder in the meantime this fails, and
            // the check below judges their folder like any other that was already there.
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(socket_error("cannot create the folder for", path)(e)),
            }
        }
        Err(e) => return Err(socket_error("cannot inspect the folder of", path)(e)),
        Ok(_) => false,
    };
    let meta = check_folder(dir)?;
    if created {
        set_folder_mode(dir, access.folder_mode())?;
    } else if access == SocketAccess::Shared && meta.mode() & 0o001 == 0 {
        tracing::warn!(
            folder = %dir.display(),
            mode = format!("{:04o}", meta.mode() & 0o7777),
            "other uids are allowed, but they cannot pass through the socket's folder; \
             `chmod o+x` it (and its parents), or let startd create a folder of its own"
        );
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(socket_error("cannot inspect", path)(e)),
        Ok(m) if !m.file_type().is_socket() => Err(ServerError::NotASocket(path.to_path_buf())),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(ServerError::AlreadyRunning(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing a stale socket");
                std::fs::remove_file(path).map_err(socket_error("cannot remove stale socket", path))
            }
            Err(e) => Err(socket_error("cannot probe", path)(e)),
        },
    }
}

/// Binds the socket with mode 0600 (0666 for [`SocketAccess::Shared`]): the umask is set
/// around `bind`, so the socket is never reachable with wider permissions, and its owner and
/// mode are checked afterwards without following symbolic links.
///
/// # Errors
/// As [`prepare_socket_path`], [`ServerError::SocketMode`], or when binding fails.
pub fn bind(path: &Path, access: SocketAccess) -> Result<UnixListener, ServerError> {
    prepare_socket_path(path, access)?;
    use nix::sys::stat::{Mode, umask};
    let expected = access.socket_mode();
    let old = umask(Mode::from_bits_truncate(0o777 & !expected));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(socket_error("cannot listen on", path))?;
    let m = std::fs::symlink_metadata(path).map_err(socket_error("cannot inspect", path))?;
    let uid = euid();
    if !m.file_type().is_socket() || m.uid() != uid || m.mode() & 0o777 != expected {
        return Err(ServerError::SocketMode {
            path: path.to_path_buf(),
            owner: m.uid(),
            mode: m.mode() & 0o7777,
            uid,
            expected,
        });
    }
    Ok(listener)
}

/// Runs the daemon until `signal` resolves, then shuts down gracefully: stops accepting and
/// removes the socket file, lets in-flight requests finish for up to
/// [`Config::shutdown_grace`], answers the rest with `shutting_down`, and stops the workers.
///
/// # Errors
/// When the socket or the workers cannot be set up.
pub async fn serve(config: Config, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
    let access = SocketAccess::for_allowed(&config.allow_uids);
    // Fail fast on a live daemon or an unsafe folder before starting workers.
    prepare_socket_path(&config.socket, access)?;
    // Likewise a taken or refused HTTP address.
    let http_listener = match &config.http {
        Some(h) => Some(crate::http::bind(h).await?),
        None => None,
    };
    let counters = Arc::new(Counters::default());
    let pool = Pool::start(
        PoolConfig {
            workers: config.workers,
            queue_capacity: config.queue_capacity,
            max_sessions: config.max_sessions,
            command: config.worker_command.clone(),
            startup_timeout: config.startup_timeout,
            timeouts: config.worker_timeouts.clone(),
        },
        counters.clone(),
    )
    .await
    .map_err(ServerError::Workers)?;
    let listener = match bind(&config.socket, access) {
        Ok(l) => l,
        Err(e) => {
            pool.shutdown().await;
            return Err(e);
        }
    };
    let ctx = Arc::new(Context {
        pool,
        counters,
        ceilings: config.ceilings.clone(),
        own_uid: euid(),
        allow_uids: config.allow_uids.clone(),
        max_in_flight: config.max_in_flight,
        limits: connection::Limits {
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            idle_timeout: config.connection_idle_timeout,
            write_timeout: config.write_timeout,
            max_reply_buffer_bytes: config.max_reply_buffer_bytes.max(1),
            max_total_reply_buffer_bytes: total_budget(config.max_total_reply_buffer_bytes),
        },
        reply_budget: Arc::new(Semaphore::new(total_budget(
            config.max_total_reply_buffer_bytes,
        ))),
        reply_space: tokio::sync::Notify::new(),
    });
    tracing::info!(
        socket = %config.socket.display(),
        workers = config.workers,
        "startd is listening"
    );
    let (trigger, shutdown) = shutdown::channel();
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_done = match (http_listener, &config.http) {
        (Some(listener), Some(h)) => {
            tracing::info!(addr = %h.addr, prefix = %h.prefix, "the HTTP API is listening");
            Some(crate::http::spawn(
                listener,
                ctx.clone(),
                h.clone(),
                shutdown.clone(),
                stop_rx,
            ))
        }
        _ => None,
    };
    let signal = async move {
        signal.await;
        stop_tx.send_replace(true);
    };
    let mut connections_done = accept_loop(listener, ctx.clone(), shutdown, &config, signal).await;

    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = std::fs::remove_file(&config.socket);
    trigger.begin(config.shutdown_grace);
    // Connections finish within the grace period; the margin covers clients that stop
    // reading their replies.
    let margin = config.shutdown_grace + Duration::from_secs(5);
    if tokio::time::timeout(margin, connections_done.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time");
    }
    if let Some(done) = &mut http_done
        && tokio::time::timeout(margin, done.recv()).await.is_err()
    {
        tracing::warn!("some HTTP connections did not finish in time");
    }
    ctx.pool.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Accepts connections until `signal` resolves; returns a receiver that yields `None` once
/// every connection handler has finished.
async fn accept_loop(
    listener: UnixListener,
    ctx: Arc<Context>,
    shutdown: Shutdown,
    config: &Config,
    signal: impl Future<Output = ()>,
) -> mpsc::Receiver<()> {
    tokio::pin!(signal);
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (done_tx, done_rx) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut signal => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut signal => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let (ctx, shutdown, done) = (ctx.clone(), shutdown.clone(), done_tx.clone());
                ctx.counters
                    .connections_total
                    .fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    ctx.counters
                        .connections_open
                        .fetch_add(1, Ordering::Relaxed);
                    connection::handle(stream, ctx.clone(), shutdown).await;
                    ctx.counters
                        .connections_open
                        .fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                    drop(done);
                });
            }
            Err(e) => {
                // E.g. out of file descriptors: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    done_rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_ceiling_is_fitted_to_the_descriptor_limit() {
        let mut c = Ceilings::default();
        assert_eq!(c.fit_descriptors(1 << 20, 129), None);
        assert_eq!(c.files.open_files, start_sandbox::DEFAULT_OPEN_FILES);
        // (20000 - 512) / 129 = 151, less the two preopens.
        assert_eq!(c.fit_descriptors(20_000, 129), Some(149));
        assert_eq!(c.files.open_files, 149);
        assert_eq!(c.fit_descriptors(1024, 1000), Some(MIN_OPEN_FILES_CEILING));
    }
}
