//! The server: prepares the socket (stale-socket detection, mode 0600), starts the worker
//! pool, accepts connections under a cap, and shuts down gracefully when told to.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
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
    /// How long workers may take past a job's wall time, cleaning up after one, and exiting.
    pub worker_timeouts: WorkerTimeouts,
}

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
            worker_timeouts: WorkerTimeouts::default(),
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
}

/// What every connection shares.
pub(crate) struct Context {
    pub pool: Pool,
    pub counters: Arc<Counters>,
    pub ceilings: Ceilings,
    pub own_uid: u32,
    pub allow_uids: Vec<u32>,
    pub max_in_flight: usize,
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

/// Makes `path` free for a new socket: creates its folder (mode 0700) if missing, removes a
/// stale socket left by a crashed daemon, and refuses when a live daemon answers there.
///
/// # Errors
/// [`ServerError::AlreadyRunning`], [`ServerError::NotASocket`] or an I/O failure.
pub fn prepare_socket_path(path: &Path) -> Result<(), ServerError> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(socket_error("cannot create the folder for", path))?;
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

/// Binds the socket with mode 0600 (the umask is tightened around `bind`, so it is never
/// reachable with wider permissions).
///
/// # Errors
/// As [`prepare_socket_path`], or when binding fails.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    prepare_socket_path(path)?;
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(socket_error("cannot listen on", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(socket_error("cannot set permissions on", path))?;
    Ok(listener)
}

/// Runs the daemon until `signal` resolves, then shuts down gracefully: stops accepting and
/// removes the socket file, lets in-flight requests finish for up to
/// [`Config::shutdown_grace`], answers the rest with `shutting_down`, and stops the workers.
///
/// # Errors
/// When the socket or the workers cannot be set up.
pub async fn serve(config: Config, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
    // Fail fast on a live daemon before starting workers.
    prepare_socket_path(&config.socket)?;
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
    let listener = match bind(&config.socket) {
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
        own_uid: nix::unistd::geteuid().as_raw(),
        allow_uids: config.allow_uids.clone(),
        max_in_flight: config.max_in_flight,
    });
    tracing::info!(
        socket = %config.socket.display(),
        workers = config.workers,
        "startd is listening"
    );
    let (trigger, shutdown) = shutdown::channel();
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
