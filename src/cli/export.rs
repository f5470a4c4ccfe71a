//! `start export`: trajectories as SFT chat JSONL (`{"messages": [...]}`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use start::rft;
use start::rft::export::ExportOptions;

use super::score::{bytes_bar, reader, writer};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Trajectories (kept ones from `start filter`, or any trajectory JSONL).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// SFT JSONL (default: stdout).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    options: ExportOptionArgs,
    /// Do not show progress.
    #[arg(long)]
    quiet: bool,
}

/// How examples are written.
#[derive(Debug, Args, Clone)]
pub struct ExportOptionArgs {
    /// Add `tool_output_spans` (code-point offsets of output blocks) for loss masking.
    #[arg(long)]
    mark_tool_output: bool,
    /// A system message to put first.
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Add `"meta": {"id", "sample"}` to each line.
    #[arg(long)]
    with_meta: bool,
}

impl ExportOptionArgs {
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            system: self.system.clone(),
            mark_tool_output: self.mark_tool_output,
            with_meta: self.with_meta,
        }
    }
}

pub fn run(args: ExportArgs) -> Result<std::process::ExitCode> {
    let mut out = writer(args.output.as_deref())?;
    let bar = bytes_bar(&args.input, "export", args.quiet);
    let progress = |b: u64| bar.set_position(b);
    let (n, bad) = rft::export_stream(
        reader(&args.input)?,
        &mut out,
        &args.options.options(),
        &progress,
    )?;
    bar.finish_and_clear();
    eprintln!("exported {n} examples; {bad} bad lines");
    Ok(std::process::ExitCode::SUCCESS)
}
