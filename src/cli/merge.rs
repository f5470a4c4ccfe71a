//! `start merge`: join trajectory files (one per shard) into one, dedup by (id, sample);
//! resumable and idempotent.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use start::jsonl;
use start::trajectory::merge::{self, SkipReason};

use super::score::writer;

/// Skipped lines of one reason printed one by one before only their count is.
const LISTED_PER_REASON: usize = 20;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged trajectories: created, or appended to with only the (id, sample) pairs it
    /// lacks (rerun the same command to resume or to add shards that finished later).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Trajectory files to merge, in order: the first complete trajectory of each (id, sample)
    /// wins; later ones are dropped and reported.
    #[arg(value_name = "SHARD.jsonl", required = true)]
    inputs: Vec<PathBuf>,
    /// Write one JSON line per line not merged: `{"source_name", "line", "reason", "id",
    /// "sample", "detail"}` (reason: duplicate, malformed, too_long or torn).
    #[arg(long, value_name = "FILE")]
    skipped: Option<PathBuf>,
    /// Fail (exit 1) when a line is malformed, too long or torn, after merging the rest.
    #[arg(long)]
    strict: bool,
    /// Print only the summary.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: MergeArgs) -> Result<ExitCode> {
    if args.skipped.as_ref() == Some(&args.output) {
        bail!("--skipped must be another file than --output");
    }
    let mut skipped_out = args
        .skipped
        .as_deref()
        .map(|p| writer(Some(p)))
        .transpose()?;
    let mut listed = std::collections::HashMap::<SkipReason, usize>::new();
    let mut write_error = None;
    let summary = merge::merge(&args.output, &args.inputs, |s| {
        if let Some(out) = &mut skipped_out
            && write_error.is_none()
            && let Err(e) = jsonl::write_line(out, s)
        {
            write_error = Some(e);
        }
        let n = listed.entry(s.reason).or_default();
        *n += 1;
        if !args.quiet && *n <= LISTED_PER_REASON {
            eprintln!("start: {s}");
        }
    })
    .with_context(|| format!("merging into {}", args.output.display()))?;
    if let Some(e) = write_error {
        return Err(anyhow::Error::new(e).context("cannot write the --skipped file"));
    }
    if let Some(out) = &mut skipped_out {
        out.flush().context("cannot write the --skipped file")?;
    }
    for (reason, n) in &listed {
        if *n > LISTED_PER_REASON && !args.quiet {
            eprintln!(
                "start: ... and {} more {reason:?} lines{}",
                n - LISTED_PER_REASON,
                if args.skipped.is_some() {
                    " (all in the --skipped file)"
                } else {
                    " (--skipped FILE lists them all)"
                }
            );
        }
    }
    if !args.quiet {
        for i in &summary.inputs {
            eprintln!(
                "start: {}: {} lines: {} added, {} duplicates, {} malformed, {} torn",
                i.path.display(),
                i.lines,
                i.added,
                i.duplicates,
                i.malformed,
                i.torn
            );
        }
    }
    if summary.unreadable_in_output > 0 {
        eprintln!(
            "start: {}: {} line(s) are not trajectories; kept as they are",
            args.output.display(),
            summary.unreadable_in_output
        );
    }
    eprintln!(
        "start: {} now holds {} trajectories ({} were there, {} added); dropped {} duplicates, \
         skipped {} malformed and {} torn lines",
        args.output.display(),
        summary.total(),
        summary.already,
        summary.added(),
        summary.duplicates(),
        summary.malformed(),
        summary.torn()
    );
    Ok(if args.strict && summary.malformed() + summary.torn() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
