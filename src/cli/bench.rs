//! `start bench`: execution throughput and latency of fresh executions, with worker threads or
//! worker processes (threads in one process contend on page faults; processes do not), or of
//! turns in live sessions (`--session`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use start_sandbox::{Limits, Sandbox, SandboxOptions, Session, SessionLimits, Status, TurnLimits};

use super::via_daemon::DaemonArgs;
use super::{RuntimeArgs, read_text};

/// A child reports progress every this many executions.
const CHILD_PROGRESS_EVERY: usize = 50;

/// How workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Threads sharing one sandbox in this process.
    Threads,
    /// One process per worker, each with its own sandbox.
    Processes,
    /// Through a running `startd` (`--daemon`): one connection per worker.
    #[value(skip)]
    Daemon,
    /// Turns in live sessions (`--session`), one session per worker thread.
    #[value(skip)]
    Session,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to run: trivial, sympy, numpy, pass, turn (`x = x + 1`), cell (`x = x + 1` then
    /// the final expression `x * 2`, echoed), or the path of a Python file.
    #[arg(long, short = 'w', default_value = "trivial")]
    workload: String,
    /// Total executions (after warm-up).
    #[arg(long, short = 'n', default_value_t = 2000)]
    iterations: usize,
    /// Concurrent workers (with `--daemon`: connections, each with one request in flight).
    #[arg(long, short = 'c', default_value_t = 1)]
    workers: usize,
    /// Workers as threads or as processes (ignored with `--daemon`).
    #[arg(long, value_enum, default_value_t = Mode::Processes)]
    mode: Mode,
    /// Warm-up executions per worker, not measured.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Instantiate afresh for every execution instead of restoring and reusing finished
    /// instances (the baseline that reuse is measured against).
    #[arg(long, conflicts_with = "daemon")]
    no_reuse: bool,
    /// Time turns in a live session instead of fresh executions: each worker thread opens one
    /// session, runs `x = 0`, then runs the workload as its turns (in this process; `--mode`
    /// is ignored).
    #[arg(long, conflicts_with_all = ["daemon", "no_reuse"])]
    session: bool,
    /// Internal: run as a worker process of another `start bench`.
    #[arg(long, hide = true)]
    child: bool,
    #[command(flatten)]
    daemon: DaemonArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// The figures one run produced.
#[derive(Debug, Serialize)]
struct Report {
    workload: String,
    iterations: usize,
    workers: usize,
    mode: Mode,
    reuse: bool,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    execs_per_s: f64,
    errors: usize,
}

/// What a worker process sends back.
#[derive(Debug, Serialize, Deserialize)]
struct ChildResult {
    latencies_ms: Vec<f64>,
    errors: usize,
}

fn workload_code(name: &str) -> Result<String> {
    Ok(match name {
        "trivial" => "print(1+1)".into(),
        "pass" => "pass".into(),
        "turn" => "x = x + 1".into(),
        "cell" => "x = x + 1\nx * 2".into(),
        "sympy" => "import sympy\nprint(sympy.factorint(2**64-1))".into(),
        "numpy" => {
            "import numpy as np\nnp.random.seed(0)\nprint(np.linalg.det(np.random.rand(50, 50)))"
                .into()
        }
        path => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                bail!(
                    "--workload must be trivial, sympy, numpy, pass, turn, cell or a Python file; {} is none",
                    path.display()
                );
            }
            read_text(&path)?
        }
    })
}

/// The sandbox a worker measures.
fn bench_sandbox(args: &BenchArgs) -> Result<Sandbox> {
    let mut options = SandboxOptions::default();
    if args.no_reuse {
        options.reuse_instances = 0;
    }
    args.runtime.sandbox_with(options)
}

/// Runs one execution and says whether it finished cleanly.
fn one(sandbox: &Sandbox, code: &str) -> Result<(f64, bool)> {
    let started = Instant::now();
    let outcome = sandbox.exec(code, &Limits::default())?;
    Ok((
        started.elapsed().as_secs_f64() * 1e3,
        outcome.status == Status::Finished,
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn bar(total: usize, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} execs [{elapsed}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn split(total: usize, workers: usize) -> Vec<usize> {
    (0..workers)
        .map(|i| total / workers + usize::from(i < total % workers))
        .collect()
}

/// Runs `args.iterations` timed executions split over one thread per runner, after
/// `args.warmup` untimed ones each. The warm-ups run on the runners' own threads at once, so
/// that a shared sandbox holds one warm interpreter per thread when the clock starts, as it
/// does in a steady state. A runner returns (milliseconds, finished cleanly).
fn run_on_threads<R>(args: &BenchArgs, runners: &[R]) -> Result<(Vec<f64>, usize, Duration)>
where
    R: Fn() -> Result<(f64, bool)> + Sync,
{
    let progress = bar(args.iterations, args.json);
    let errors = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(args.iterations));
    // Every runner and this thread meet here once warm; a runner whose warm-up failed (or
    // panicked) still arrives, so no one waits for it forever.
    let warm = Barrier::new(runners.len() + 1);
    let (started, joined) = std::thread::scope(|scope| {
        let handles: Vec<_> = split(args.iterations, runners.len())
            .into_iter()
            .zip(runners)
            .map(|(count, run)| {
                let (progress, errors, latencies, warm) = (&progress, &errors, &latencies, &warm);
                scope.spawn(move || -> Result<()> {
                    let warmed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        (0..args.warmup).try_for_each(|_| run().map(drop))
                    }));
                    warm.wait();
                    warmed.map_err(|_| anyhow::anyhow!("a bench worker panicked warming up"))??;
                    let mut mine = Vec::with_capacity(count);
                    for _ in 0..count {
                        let (ms, ok) = run()?;
                        mine.push(ms);
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        progress.inc(1);
                    }
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(mine);
                    Ok(())
                })
            })
            .collect();
        warm.wait();
        let started = Instant::now();
        let joined = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a bench worker thread panicked"))?
            })
            .collect::<Result<Vec<()>>>();
        (started, joined)
    });
    joined?;
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let latencies = latencies.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok((latencies, errors.into_inner(), elapsed))
}

/// Threads sharing one sandbox in this process.
fn run_threads(args: &BenchArgs, code: &str) -> Result<(Vec<f64>, usize, Duration)> {
    let sandbox = bench_sandbox(args)?;
    let runners: Vec<_> = (0..args.workers).map(|_| || one(&sandbox, code)).collect();
    run_on_threads(args, &runners)
}

/// Turns in live sessions: one session per worker thread, opened before the clock starts.
fn run_sessions(args: &BenchArgs, code: &str) -> Result<(Vec<f64>, usize, Duration)> {
    let sandbox = bench_sandbox(args)?;
    let turns = u32::try_from(args.iterations + args.warmup + 2).unwrap_or(u32::MAX);
    let limits = SessionLimits {
        max_turns: turns,
        ..SessionLimits::default()
    };
    let sessions = (0..args.workers)
        .map(|_| -> Result<Mutex<Session>> {
            let mut session = Session::open(&sandbox, limits.clone())?;
            session.run("x = 0", &TurnLimits::default())?;
            Ok(Mutex::new(session))
        })
        .collect::<Result<Vec<_>>>()?;
    let runners: Vec<_> = sessions
        .iter()
        .map(|session| {
            move || -> Result<(f64, bool)> {
                let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                let started = Instant::now();
                let outcome = session.run(code, &TurnLimits::default())?;
                Ok((
                    started.elapsed().as_secs_f64() * 1e3,
                    outcome.status == Status::Finished,
                ))
            }
        })
        .collect();
    run_on_threads(args, &runners)
}

fn run_processes(args: &BenchArgs) -> Result<(Vec<f64>, usize, Duration)> {
    let exe = std::env::current_exe().context("cannot find the start binary")?;
    let mut children = Vec::new();
    for count in split(args.iterations, args.workers) {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "bench", "--child", "--quiet", "--mode", "threads", "-c", "1",
        ])
        .args(["-w", &args.workload, "-n", &count.to_string()])
        .args(["--warmup", &args.warmup.to_string()]);
        if args.no_reuse {
            cmd.arg("--no-reuse");
        }
        if let Some(dir) = &args.runtime.cache_dir {
            cmd.arg("--cache-dir").arg(dir);
        }
        if let Some(src) = &args.runtime.runtime {
            cmd.arg("--runtime").arg(src);
        }
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a bench worker process")?;
        children.push(child);
    }
    // Wait until every worker has its sandbox ready and warmed up, then start them together.
    let mut readers = Vec::new();
    for child in &mut children {
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("a bench worker failed to start: {}", line.trim());
        }
        readers.push(reader);
    }
    let progress = Arc::new(bar(args.iterations, args.json));
    let started = Instant::now();
    for child in &mut children {
        let stdin = child.stdin.as_mut().context("worker stdin")?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
    }
    let results: Vec<Result<ChildResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut reader| {
                let progress = progress.clone();
                scope.spawn(move || -> Result<ChildResult> {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            bail!("a bench worker exited before reporting");
                        }
                        if line.trim() == "p" {
                            progress.inc(CHILD_PROGRESS_EVERY as u64);
                            continue;
                        }
                        return serde_json::from_str(line.trim()).context("bad worker report");
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("reader panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    for mut child in children {
        let _ = child.wait();
    }
    let mut latencies = Vec::with_capacity(args.iterations);
    let mut errors = 0;
    for r in results {
        let r = r?;
        latencies.extend(r.latencies_ms);
        errors += r.errors;
    }
    Ok((latencies, errors, elapsed))
}

/// Through `startd`: each worker is a thread with its own connection, so the daemon sees
/// `--workers` requests in flight at once.
fn run_daemon(args: &BenchArgs, code: &str) -> Result<(Vec<f64>, usize, Duration)> {
    let clients = (0..args.workers)
        .map(|_| args.daemon.client())
        .collect::<Result<Vec<_>>>()?;
    let runners: Vec<_> = clients
        .iter()
        .map(|client| {
            move || -> Result<(f64, bool)> {
                let started = Instant::now();
                let outcome = client
                    .exec(code, &Limits::default())
                    .context("startd could not run the bench workload")?;
                Ok((
                    started.elapsed().as_secs_f64() * 1e3,
                    outcome.status == Status::Finished,
                ))
            }
        })
        .collect();
    run_on_threads(args, &runners)
}

/// The worker-process side: prepare, say ready, wait for go, run, report.
fn child(args: &BenchArgs, code: &str) -> Result<ExitCode> {
    let sandbox = bench_sandbox(args)?;
    for _ in 0..args.warmup {
        one(&sandbox, code)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut go = String::new();
    std::io::stdin().read_line(&mut go)?;
    let mut result = ChildResult {
        latencies_ms: Vec::with_capacity(args.iterations),
        errors: 0,
    };
    for i in 1..=args.iterations {
        let (ms, ok) = one(&sandbox, code)?;
        result.latencies_ms.push(ms);
        result.errors += usize::from(!ok);
        if i % CHILD_PROGRESS_EVERY == 0 {
            writeln!(out, "p")?;
            out.flush()?;
        }
    }
    writeln!(out, "{}", serde_json::to_string(&result)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `start bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.iterations == 0 || args.workers == 0 {
        bail!("--iterations and --workers must be at least 1");
    }
    let code = workload_code(&args.workload)?;
    if args.child {
        return child(&args, &code);
    }
    let mode = if args.daemon.daemon {
        Mode::Daemon
    } else if args.session {
        Mode::Session
    } else {
        args.mode
    };
    let (mut latencies, errors, elapsed) = match mode {
        Mode::Threads => run_threads(&args, &code)?,
        Mode::Processes => run_processes(&args)?,
        Mode::Daemon => run_daemon(&args, &code)?,
        Mode::Session => run_sessions(&args, &code)?,
    };
    latencies.sort_by(f64::total_cmp);
    let report = Report {
        workload: args.workload.clone(),
        iterations: latencies.len(),
        workers: args.workers,
        mode,
        reuse: !args.no_reuse,
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        mean_ms: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
        execs_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        errors,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} x {} with {} worker {}{}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  mean {:.3} ms  {:.0} execs/s{}",
            report.iterations,
            report.workload,
            report.workers,
            match report.mode {
                Mode::Threads => "thread(s)",
                Mode::Processes => "process(es)",
                Mode::Daemon => "connection(s) to startd",
                Mode::Session => "session(s), one turn each",
            },
            if args.no_reuse { ", no reuse" } else { "" },
            report.p50_ms,
            report.p90_ms,
            report.p99_ms,
            report.mean_ms,
            report.execs_per_s,
            if errors > 0 {
                format!("  ({errors} did not finish cleanly)")
            } else {
                String::new()
            }
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
