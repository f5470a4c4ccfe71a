//! `start score`: score trajectories (math answers, code tests), or check answer pairs
//! (`--pairs`).

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use start::jsonl::LineReader;
use start::rft;
use start::rft::score::{Scorer, load_tests};

use super::{ExecutorArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Trajectories (JSONL from `start infer`).
    #[arg(long, value_name = "FILE", conflicts_with = "pairs")]
    input: Option<PathBuf>,
    /// Check answer pairs instead: JSONL lines `{"gold": ..., "pred": ...}`, written back with
    /// `"equal": true|false` and `"extracted"`. `pred` is a whole model response: its final
    /// answer is extracted (the last `\boxed{}`, else "the answer is ...", else the last
    /// `$..$`/`$$..$$`/`\[..\]`/`\(..\)`, else the last line); see `--bare`.
    #[arg(long, value_name = "FILE")]
    pairs: Option<PathBuf>,
    /// With `--pairs`: each `pred` is a bare answer, compared whole (no extraction).
    #[arg(long, requires = "pairs")]
    bare: bool,
    /// Where to write (default: stdout).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Problems JSONL with code tests (`{"id", "tests": [...]}`, `fn_name`, `check`).
    #[arg(long, value_name = "FILE")]
    problems: Option<PathBuf>,
    /// Threads scoring at once (default: the machine's cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Fast path only: no sympy fallback, no judging (no sandbox is started).
    #[arg(long, conflicts_with = "sandbox_url")]
    no_sandbox: bool,
    /// Wall time of one sympy check, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    sympy_timeout: f64,
    #[command(flatten)]
    executor: ExecutorArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// A progress bar over the bytes of `path` (hidden when stderr is not a terminal or `quiet`).
pub(super) fn bytes_bar(path: &Path, what: &str, quiet: bool) -> ProgressBar {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(len);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{bytes}}/{{total_bytes}} [{{elapsed}}, eta {{eta}}]"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Opens `path` for writing, or stdout.
pub(super) fn writer(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// Opens the JSONL file `path` for bounded line reading; skipped over-long lines are printed.
pub(super) fn reader(path: &Path) -> Result<LineReader<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = LineReader::new(BufReader::new(file), path.display().to_string());
    Ok(reader.with_skip_report(|e| eprintln!("start: {e}; skipped")))
}

pub fn run(args: ScoreArgs) -> Result<std::process::ExitCode> {
    if !(args.sympy_timeout.is_finite() && args.sympy_timeout > 0.0) {
        bail!("--sympy-timeout must be a positive number of seconds");
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let executor = if args.no_sandbox {
        None
    } else {
        Some(args.executor.open(&args.runtime, jobs)?)
    };
    let mut scorer = Scorer::new(executor.as_ref().map(|e| e.executor()));
    scorer.sympy_limits.wall_time = Duration::from_secs_f64(args.sympy_timeout.min(3600.0));
    let mut out = writer(args.output.as_deref())?;
    if let Some(pairs) = &args.pairs {
        let bar = bytes_bar(pairs, "pairs", args.runtime.quiet);
        let progress = |b: u64| bar.set_position(b);
        let form = if args.bare {
            rft::PredForm::Bare
        } else {
            rft::PredForm::Response
        };
        let (n, equal, bad) =
            rft::pairs_stream(&scorer, reader(pairs)?, &mut out, form, &progress)?;
        bar.finish_and_clear();
        eprintln!("{n} pairs, {equal} equal, {bad} bad lines");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let Some(input) = &args.input else {
        bail!("give --input TRAJECTORIES.jsonl (or --pairs FILE)");
    };
    if let Some(problems) = &args.problems {
        let (tests, bad) = load_tests(reader(problems)?)?;
        if bad > 0 {
            eprintln!(
                "{}: {bad} rows without usable tests skipped",
                problems.display()
            );
        }
        scorer.tests = tests;
    }
    let bar = bytes_bar(input, "score", args.runtime.quiet);
    let progress = |b: u64| bar.set_position(b);
    let s = rft::score_stream(&scorer, reader(input)?, &mut out, jobs, &progress)?;
    drop(scorer);
    if let Some(executor) = executor {
        executor.release_for_exit();
    }
    bar.finish_and_clear();
    eprintln!(
        "{} trajectories: {} right, {} wrong, {} undecided ({} by sympy); {} bad lines",
        s.trajectories, s.correct, s.wrong, s.undecided, s.sympy, s.bad_lines
    );
    Ok(std::process::ExitCode::SUCCESS)
}
