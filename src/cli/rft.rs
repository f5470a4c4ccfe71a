//! `start rft`: one Hint-RFT round into a folder: sample with `start infer`, score, filter,
//! export, report. Rerunning the same command resumes: sampling skips finished trajectories and
//! finished steps are not redone.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;
use start::rft::score::{Scorer, load_tests};
use start::rft::{self, Report, Round, Step};

use super::RuntimeArgs;
use super::export::ExportOptionArgs;
use super::filter::{FilterConfigArgs, write_report};
use super::score::{bytes_bar, reader};

#[derive(Debug, Args)]
pub struct RftArgs {
    /// The round folder (created; rerun with the same folder to resume).
    #[arg(long, value_name = "DIR")]
    round_dir: PathBuf,
    /// Problems JSONL (sampled, and the source of code tests).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Trajectories per problem.
    #[arg(long, default_value_t = 4, value_name = "N")]
    samples: u32,
    /// Do not sample: score the round folder's existing trajectories.jsonl.
    #[arg(long)]
    no_sample: bool,
    /// Threads scoring at once (default: the machine's cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    #[command(flatten)]
    filter: FilterConfigArgs,
    #[command(flatten)]
    export: ExportOptionArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Further arguments for `start infer` (model, backend, seed...), after `--`.
    #[arg(last = true, value_name = "INFER_ARGS")]
    infer_args: Vec<String>,
}

pub fn run(args: RftArgs) -> Result<ExitCode> {
    let mut round = Round::open(&args.round_dir)?;
    let trajectories = round.path("trajectories.jsonl");
    let quiet = args.runtime.quiet;

    if !round.is_done(Step::Sample) && !args.no_sample {
        let exe = std::env::current_exe().context("cannot find the start executable")?;
        let status = Command::new(exe)
            .arg("infer")
            .arg("--input")
            .arg(&args.input)
            .arg("--output")
            .arg(&trajectories)
            .arg("--samples")
            .arg(args.samples.to_string())
            .args(&args.infer_args)
            .status()
            .context("cannot run start infer")?;
        if !status.success() {
            bail!("start infer failed ({status}); rerun to resume");
        }
        round.finish(Step::Sample)?;
    }
    if !trajectories.exists() {
        bail!("{} does not exist", trajectories.display());
    }

    if !round.is_done(Step::Score) {
        let sandbox = args.runtime.sandbox()?;
        let mut scorer = Scorer::new(Some(&sandbox));
        let (tests, _) = load_tests(reader(&args.input)?)?;
        scorer.tests = tests;
        let jobs = args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut out = round.create("scored.jsonl")?;
        let bar = bytes_bar(&trajectories, "score", quiet);
        let progress = |b: u64| bar.set_position(b);
        let s = rft::score_stream(&scorer, reader(&trajectories)?, &mut out, jobs, &progress)?;
        bar.finish_and_clear();
        drop(out);
        round.commit("scored.jsonl")?;
        round.finish(Step::Score)?;
        eprintln!(
            "scored {}: {} right, {} wrong, {} undecided",
            s.trajectories, s.correct, s.wrong, s.undecided
        );
    }

    let report_path = round.path("report.json");
    if !round.is_done(Step::Filter) {
        let config = args.filter.config()?;
        let mut kept = round.create("kept.jsonl")?;
        let mut dropped = round.create("dropped.jsonl")?;
        let scored = round.path("scored.jsonl");
        let bar = bytes_bar(&scored, "filter", quiet);
        let progress = |b: u64| bar.set_position(b);
        let report = rft::filter_file(&scored, &config, &mut kept, &mut dropped, &progress, |e| {
            eprintln!("start: {e}; skipped")
        })?;
        bar.finish_and_clear();
        drop((kept, dropped));
        round.commit("kept.jsonl")?;
        round.commit("dropped.jsonl")?;
        write_report(&report, &report_path)?;
        round.finish(Step::Filter)?;
    }

    if !round.is_done(Step::Export) {
        let kept = round.path("kept.jsonl");
        let mut out = round.create("sft.jsonl")?;
        let bar = bytes_bar(&kept, "export", quiet);
        let progress = |b: u64| bar.set_position(b);
        let (n, _) =
            rft::export_stream(reader(&kept)?, &mut out, &args.export.options(), &progress)?;
        bar.finish_and_clear();
        drop(out);
        round.commit("sft.jsonl")?;
        let mut report: Report = serde_json::from_slice(
            &std::fs::read(&report_path)
                .with_context(|| format!("cannot read {}", report_path.display()))?,
        )?;
        report.exported = Some(n);
        write_report(&report, &report_path)?;
        round.finish(Step::Export)?;
    }
    let summary = std::fs::read_to_string(round.path("report.txt")).unwrap_or_default();
    eprint!("{summary}");
    eprintln!("round folder: {}", round.dir.display());
    Ok(ExitCode::SUCCESS)
}
