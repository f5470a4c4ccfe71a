//! `start rft`: one Hint-RFT round into a folder: sample with `start infer` (and, for the
//! paper's seed selection, a plain run without hints), score, filter, export, report. Rerunning
//! the same command resumes: sampling skips finished trajectories and finished steps are not
//! redone.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;
use start::rft::score::Scorer;
use start::rft::{Round, RoundSteps, Step};

use super::export::ExportOptionArgs;
use super::filter::FilterConfigArgs;
use super::score::bytes_bar;
use super::{ExecutorArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct RftArgs {
    /// The round folder (created; rerun with the same folder to resume).
    #[arg(long, value_name = "DIR")]
    round_dir: PathBuf,
    /// Problems JSONL (sampled, and the source of code tests).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Trajectories per problem. With more than one, sampling must not be greedy (the samples
    /// would be near-duplicates): unless the infer arguments set `--temperature`, the round
    /// samples at temperature 0.6, top-p 0.95 (the recommended setting of QwQ, DeepSeek-R1
    /// and Qwen3 thinking), and `--temperature 0` is refused.
    #[arg(long, default_value_t = 4, value_name = "N")]
    samples: u32,
    /// The paper's seed selection: also run the same model without hints (`plain.jsonl`) and
    /// keep only problems the hinted run gets right and the plain run gets wrong.
    #[arg(long)]
    plain_baseline: bool,
    /// Plain trajectories per problem (with --plain-baseline): a problem counts as solved
    /// without hints when any of them is right.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        requires = "plain_baseline"
    )]
    plain_samples: u32,
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
    executor: ExecutorArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Further arguments for `start infer` (model, backend, seed...), after `--`.
    #[arg(last = true, value_name = "INFER_ARGS")]
    infer_args: Vec<String>,
}

/// The round's sampling temperature when it draws several samples per problem and the infer
/// arguments set none.
pub const SAMPLED_TEMPERATURE: &str = "0.6";
/// The round's top-p in that case.
pub const SAMPLED_TOP_P: &str = "0.95";

/// The value of `--NAME VALUE` or `--NAME=VALUE` in `args`, the last one winning (as clap).
fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let long = format!("--{name}");
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if *a == long {
            found = it.next().map(String::as_str);
        } else if let Some(v) = a.strip_prefix(&long).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
    }
    found
}

/// The infer arguments with the round's sampling defaults, and the sampling in words; refuses
/// greedy sampling with several samples per problem.
pub fn sampling_args(infer_args: &[String], samples: u32) -> Result<(Vec<String>, String)> {
    let mut args = infer_args.to_vec();
    match flag_value(infer_args, "temperature") {
        Some(t) => {
            let greedy = t.trim().parse::<f64>().is_ok_and(|t| t <= 0.0);
            if greedy && samples > 1 {
                bail!(
                    "--temperature {t} is greedy decoding: the {samples} samples per problem \
                     would be near-duplicates (and greedy decoding loops on reasoning models); \
                     give a sampled temperature such as --temperature {SAMPLED_TEMPERATURE} \
                     --top-p {SAMPLED_TOP_P}, or --samples 1"
                );
            }
        }
        None if samples > 1 => {
            args.extend(["--temperature".into(), SAMPLED_TEMPERATURE.into()]);
            if flag_value(infer_args, "top-p").is_none() {
                args.extend(["--top-p".into(), SAMPLED_TOP_P.into()]);
            }
        }
        None => {}
    }
    let said = |name| flag_value(&args, name).unwrap_or("start infer's default");
    let words = format!(
        "{} samples per problem, temperature {}, top-p {}",
        samples,
        said("temperature"),
        said("top-p")
    );
    Ok((args, words))
}

/// Runs `start infer` for the round, into `output`.
fn infer(
    args: &RftArgs,
    infer_args: &[String],
    output: &Path,
    samples: u32,
    plain: bool,
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the start executable")?;
    let mut command = Command::new(exe);
    command
        .arg("infer")
        .arg("--input")
        .arg(&args.input)
        .arg("--output")
        .arg(output)
        .arg("--samples")
        .arg(samples.to_string())
        .args(args.executor.to_args())
        .args(infer_args);
    if plain {
        for flag in ["--no-trigger-hints", "--no-end-hints"] {
            if !infer_args.iter().any(|a| a == flag) {
                command.arg(flag);
            }
        }
    }
    let status = command.status().context("cannot run start infer")?;
    if !status.success() {
        let what = if plain {
            "the plain run (no hints)"
        } else {
            "start infer"
        };
        bail!("{what} failed ({status}); rerun to resume");
    }
    Ok(())
}

pub fn run(args: RftArgs) -> Result<ExitCode> {
    let (infer_args, sampling) = sampling_args(&args.infer_args, args.samples)?;
    let mut round = Round::open(&args.round_dir)?;
    let round_dir = round.dir.clone();
    let trajectories = round.path("trajectories.jsonl");
    let plain = round.path("plain.jsonl");
    let quiet = args.runtime.quiet;

    if !round.is_done(Step::Sample) && !args.no_sample {
        infer(&args, &infer_args, &trajectories, args.samples, false)?;
        round.finish(Step::Sample)?;
    }
    if args.plain_baseline && !round.is_done(Step::SamplePlain) && !args.no_sample {
        // The same model and sampling as the hinted run, without hints.
        infer(&args, &infer_args, &plain, args.plain_samples, true)?;
        round.finish(Step::SamplePlain)?;
    }
    for file in [Some(&trajectories), args.plain_baseline.then_some(&plain)]
        .into_iter()
        .flatten()
    {
        if !file.exists() {
            bail!("{} does not exist", file.display());
        }
    }

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let executor = args.executor.open(&args.runtime, jobs)?;
    let steps = RoundSteps {
        scorer: Scorer::new(Some(executor.executor())),
        problems: &args.input,
        jobs,
        filter: args.filter.config()?,
        export: args.export.options(),
        plain_baseline: args.plain_baseline,
        sampling: (!args.no_sample).then_some(sampling),
    };
    let bars = [Step::Score, Step::ScorePlain, Step::Filter, Step::Export].map(|step| {
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
    if let Some(s) = done.plain_scored {
        eprintln!(
            "scored the plain run (no hints) {}: {} right, {} wrong, {} undecided",
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
        Step::Sample | Step::SamplePlain => "problems",
        Step::Score => "trajectories.jsonl",
        Step::ScorePlain => "plain.jsonl",
        Step::Filter => "scored.jsonl",
        Step::Export => "kept.jsonl",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn several_samples_are_never_greedy() {
        let (args, words) = sampling_args(&strings(&["--model", "m"]), 4).unwrap();
        assert_eq!(
            args,
            strings(&["--model", "m", "--temperature", "0.6", "--top-p", "0.95"])
        );
        assert!(words.contains("temperature 0.6, top-p 0.95"), "{words}");
        let given = strings(&["--temperature=0.8", "--top-p", "0.9"]);
        assert_eq!(sampling_args(&given, 4).unwrap().0, given);
        for greedy in [&["--temperature", "0"][..], &["--temperature=0.0"]] {
            let err = sampling_args(&strings(greedy), 2).unwrap_err().to_string();
            assert!(err.contains("greedy decoding"), "{err}");
        }
        // One sample: greedy is allowed, and nothing is added.
        let one = strings(&["--temperature", "0"]);
        assert_eq!(sampling_args(&one, 1).unwrap().0, one);
        assert_eq!(sampling_args(&[], 1).unwrap().0, Vec::<String>::new());
    }
}
