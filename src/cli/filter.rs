//! `start filter`: drop wrong and degenerate trajectories, keep the most diverse K per
//! problem (one by default), optionally only problems a plain run gets wrong (the paper's seed
//! selection), record why each one went, and report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use start::rft;
use start::rft::filter::FilterConfig;

use super::read_text;
use super::score::{bytes_bar, reader, writer};

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Scored trajectories (JSONL from `start score`).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Kept trajectories (default: stdout).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// One `{"id", "sample", "filter", "reason"}` line per dropped trajectory.
    #[arg(long, value_name = "FILE")]
    dropped: Option<PathBuf>,
    /// The report as JSON (a short summary always goes to stderr).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The paper's seed selection: the scored trajectories (`start score`) of a plain run of
    /// the same model without hints (`start infer --no-trigger-hints --no-end-hints`); only
    /// problems it gets wrong keep trajectories.
    #[arg(long, value_name = "SCORED.jsonl")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    config: FilterConfigArgs,
    /// Do not show progress.
    #[arg(long)]
    quiet: bool,
}

/// The filter configuration: a file, then flags over it.
#[derive(Debug, Args, Clone)]
pub struct FilterConfigArgs {
    /// Filter configuration, JSON (fields of `FilterConfig`; unset ones keep their defaults).
    #[arg(long = "filter-config", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Keep at most K trajectories per problem, the most diverse (default 1; 0: no cap).
    #[arg(long, value_name = "K")]
    max_per_problem: Option<usize>,
    /// Keep trajectories without tool calls.
    #[arg(long)]
    allow_no_tool_call: bool,
    /// Drop trajectories that ran one code more than N times.
    #[arg(long, value_name = "N")]
    max_same_code_runs: Option<usize>,
    /// Drop trajectories with more generated tokens than N.
    #[arg(long, value_name = "N")]
    max_generated_tokens: Option<u64>,
    /// Drop trajectories whose model text holds one 20-word passage more than N times
    /// (default 4; 0: off).
    #[arg(long, value_name = "N")]
    max_ngram_repeats: Option<usize>,
    /// Drop trajectories whose model text holds one line (24 bytes or longer) more than N
    /// times (default 8; 0: off).
    #[arg(long, value_name = "N")]
    max_line_repeats: Option<usize>,
}

impl FilterConfigArgs {
    pub fn config(&self) -> Result<FilterConfig> {
        let mut config = match &self.file {
            Some(path) => serde_json::from_str(&read_text(path)?)
                .with_context(|| format!("{} is not a filter configuration", path.display()))?,
            None => FilterConfig::default(),
        };
        if let Some(k) = self.max_per_problem {
            config.max_per_problem = (k > 0).then_some(k);
        }
        if self.allow_no_tool_call {
            config.no_tool_call = false;
        }
        if let Some(n) = self.max_same_code_runs {
            config.max_same_code_runs = Some(n);
        }
        if let Some(n) = self.max_generated_tokens {
            config.max_generated_tokens = Some(n);
        }
        if let Some(n) = self.max_ngram_repeats {
            config.max_ngram_repeats = (n > 0).then_some(n);
        }
        if let Some(n) = self.max_line_repeats {
            config.max_line_repeats = (n > 0).then_some(n);
        }
        Ok(config)
    }
}

pub fn run(args: FilterArgs) -> Result<std::process::ExitCode> {
    let config = args.config.config()?;
    let baseline = match &args.baseline {
        Some(path) => {
            let (baseline, bad) = rft::baseline_stream(reader(path)?)?;
            if bad > 0 {
                eprintln!(
                    "start: {}: {bad} lines are not scored trajectories; skipped",
                    path.display()
                );
            }
            Some(baseline)
        }
        None => None,
    };
    let mut kept = writer(args.output.as_deref())?;
    let mut dropped: Box<dyn std::io::Write> = match &args.dropped {
        Some(p) => writer(Some(p))?,
        None => Box::new(std::io::sink()),
    };
    let bar = bytes_bar(&args.input, "filter", args.quiet);
    let progress = |b: u64| bar.set_position(b);
    let report = rft::filter_file(
        &args.input,
        &config,
        baseline.as_ref(),
        &mut kept,
        &mut dropped,
        &progress,
        |e| eprintln!("start: {e}; skipped"),
    )?;
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        report.write(path)?;
    }
    eprint!("{}", report.summary());
    Ok(std::process::ExitCode::SUCCESS)
}
