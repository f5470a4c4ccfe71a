//! `start rft`: one Hint-RFT round into a folder: sample with `start infer`, score, filter,
//! export, report. Rerunning the same command resumes: sampling skips finished trajectories and
//! finished steps are not redone.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;
use start::rft::score::Scorer;
use start::rft::{Round, RoundSteps, Step};

use super::RuntimeArgs;
use super::export::ExportOptionArgs;
use super::filter::FilterConfigArgs;
use super::score::bytes_bar;

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
    let round_dir = round.dir.clone();
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

    let sandbox = args.runtime.sandbox()?;
    let steps = RoundSteps {
        scorer: Scorer::new(Some(&sandbox)),
        problems: &args.input,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        filter: args.filter.config()?,
        export: args.export.options(),
    };
    let bars = [Step::Score, Step::Filter, Step::Export].map(|step| {
        let name = format!("{step:?}").to_lowercase();
        (step, bytes_bar(&round.path(input_of(step)), &name, quiet))
    });
    let progress = |step: Step, bytes: u64| {
        for (s, bar) in &bars {
            if *s == step {
                // A bar's length is its input's size, known once the step before wrote it.
                if bar.length() == Some(0) {
                    bar.set_length(
                        std::fs::metadata(round_dir.join(input_of(step))).map_or(0, |m| m.len()),
                    );
                }
                bar.set_position(bytes);
            }
        }
    };
    let done = round.run_steps(steps, &progress, |e| eprintln!("start: {e}; skipped"))?;
    for (_, bar) in &bars {
        bar.finish_and_clear();
    }
    if let Some(s) = done.scored {
        eprintln!(
            "scored {}: {} right, {} wrong, {} undecided",
            s.trajectories, s.correct, s.wrong, s.undecided
        );
    }
    let summary = std::fs::read_to_string(round.path("report.txt")).unwrap_or_default();
    eprint!("{summary}");
    eprintln!("round folder: {}", round.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The file a step reads.
fn input_of(step: Step) -> &'static str {
    match step {
        Step::Sample => "problems",
        Step::Score => "trajectories.jsonl",
        Step::Filter => "scored.jsonl",
        Step::Export => "kept.jsonl",
    }
}
