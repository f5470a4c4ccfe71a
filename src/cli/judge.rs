//! `start judge`: run programs against tests in the sandbox, one program or a JSONL batch.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use start::judge::{JudgeOptions, Tests, judge};

use super::{RuntimeArgs, check_memory_mib, check_timeout, read_text};

/// The longest line accepted in a solutions file: 16 MiB.
const MAX_LINE_BYTES: usize = 16 << 20;

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// A program to judge (with --tests).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tests",
        conflicts_with = "input"
    )]
    program: Option<PathBuf>,
    /// The program's tests (JSON: stdio, functional or check shape).
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// Many programs: JSONL lines `{"id": ..., "program": "...", ...test fields}`.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where batch results go (JSONL); default stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Programs judged at once.
    #[arg(long, short = 'j', default_value_t = 2)]
    jobs: usize,
    /// Wall time per test, in seconds.
    #[arg(long, default_value_t = 4.0)]
    timeout: f64,
    /// Memory cap per program, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// Stop a program's suite at its first failing test.
    #[arg(long)]
    stop_on_first_failure: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Deserialize)]
struct Line {
    id: serde_json::Value,
    program: String,
    #[serde(flatten)]
    tests: Tests,
}

fn options(args: &JudgeArgs) -> Result<JudgeOptions> {
    Ok(JudgeOptions {
        time_per_test: check_timeout(args.timeout)?,
        memory_bytes: check_memory_mib(args.memory_mib)?,
        stop_on_first_failure: args.stop_on_first_failure,
        ..JudgeOptions::default()
    })
}

/// Runs `start judge`.
pub fn run(args: JudgeArgs) -> Result<ExitCode> {
    let opts = options(&args)?;
    match (&args.program, &args.tests, &args.input) {
        (Some(program), Some(tests), None) => {
            let program = read_text(program)?;
            let tests: Tests = serde_json::from_str(&read_text(tests)?).with_context(|| {
                format!(
                    "{} is not a test file: expected {{\"tests\": [{{\"input\", \"output\"}}]}}, {{\"fn_name\", \"tests\": [{{\"args\", \"expected\"}}]}} or {{\"check\", \"entry_point\"}}",
                    args.tests.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                )
            })?;
            let sandbox = args.runtime.sandbox()?;
            let report = judge(&sandbox, &program, &tests, &opts)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        (None, None, Some(input)) => batch(&args, input, &opts),
        _ => bail!("give either --program FILE --tests FILE, or --input solutions.jsonl"),
    }
}

fn batch(args: &JudgeArgs, input: &PathBuf, opts: &JudgeOptions) -> Result<ExitCode> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let total = BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?,
    )
    .lines()
    .count();
    let sandbox = args.runtime.sandbox()?;
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let out = Mutex::new(BufWriter::new(out));
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} programs [{elapsed}] {per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let lines = Mutex::new(BufReader::new(file).lines().enumerate());
    let passed = std::sync::atomic::AtomicUsize::new(0);
    let bad = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..args.jobs.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let next = lines.lock().unwrap_or_else(|p| p.into_inner()).next();
                        let Some((n, line)) = next else { return Ok(()) };
                        let line =
                            line.with_context(|| format!("{}: line {}", input.display(), n + 1))?;
                        bar.inc(1);
                        if line.trim().is_empty() {
                            continue;
                        }
                        let parsed = if line.len() > MAX_LINE_BYTES {
                            Err(format!("line over {MAX_LINE_BYTES} bytes"))
                        } else {
                            serde_json::from_str::<Line>(&line).map_err(|e| e.to_string())
                        };
                        let record = match parsed {
                            Ok(l) => {
                                let report = judge(&sandbox, &l.program, &l.tests, opts)?;
                                if report.passed {
                                    passed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                let mut v = serde_json::to_value(&report)?;
                                if let Some(obj) = v.as_object_mut() {
                                    obj.insert("id".into(), l.id);
                                }
                                v
                            }
                            Err(e) => {
                                bad.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                bar.suspend(|| {
                                    eprintln!(
                                        "start judge: {}: line {}: skipped: {e}",
                                        input.display(),
                                        n + 1
                                    )
                                });
                                continue;
                            }
                        };
                        let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
                        writeln!(w, "{}", serde_json::to_string(&record)?)?;
                        w.flush()?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a judge worker panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    eprintln!(
        "start judge: {} of {} programs passed{}",
        passed.into_inner(),
        total,
        match bad.into_inner() {
            0 => String::new(),
            n => format!(", {n} malformed line(s) skipped"),
        }
    );
    Ok(ExitCode::SUCCESS)
}
