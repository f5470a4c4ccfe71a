//! `start export`: trajectories as SFT JSONL: chat messages (`{"messages": [...]}`) or
//! pre-rendered `{"prompt", "completion"}` pairs.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use start::rft;
use start::rft::export::{ExportFormat, ExportOptions};

use super::score::{bytes_bar, reader, writer};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Trajectories (kept ones from `start filter`, or any trajectory JSONL).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// SFT JSONL (default: stdout).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The form of each line.
    #[arg(long, value_enum, default_value_t = FormatArg::Messages)]
    format: FormatArg,
    #[command(flatten)]
    options: ExportOptionArgs,
    /// Do not show progress.
    #[arg(long)]
    quiet: bool,
}

/// The form of the exported lines.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`. Beware: R1-style
    /// chat templates (DeepSeek-R1, QwQ-32B, Qwen3) drop everything before `</think>` from
    /// assistant turns, so a trainer that renders these itself loses the reasoning.
    Messages,
    /// `{"prompt", "completion"}`: the prompt exactly as the model saw it (the trajectory's
    /// rendered prompt; ChatML when it has none, and the count is printed) and the whole
    /// assistant text, thinking and tool outputs included. For reasoning models.
    PromptCompletion,
}

/// How examples are written.
#[derive(Debug, Args, Clone)]
pub struct ExportOptionArgs {
    /// Add `tool_output_spans` (code-point offsets of output blocks) for loss masking.
    #[arg(long)]
    mark_tool_output: bool,
    /// A system message to put first (prompt-completion: only in prompts rendered here).
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Add `"meta": {"id", "sample"}` to each line.
    #[arg(long)]
    with_meta: bool,
}

impl ExportOptionArgs {
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            format: ExportFormat::Messages,
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
    let options = ExportOptions {
        format: match args.format {
            FormatArg::Messages => ExportFormat::Messages,
            FormatArg::PromptCompletion => ExportFormat::PromptCompletion,
        },
        ..args.options.options()
    };
    let s = rft::export_stream(reader(&args.input)?, &mut out, &options, &progress)?;
    bar.finish_and_clear();
    eprintln!(
        "exported {} examples; {} bad lines",
        s.exported, s.bad_lines
    );
    if s.chatml_fallbacks > 0 {
        eprintln!(
            "start: {} trajectories carry no rendered prompt (an older start, or a backend \
             that renders none): their prompts were rendered here as ChatML; check that this \
             is the model's chat template",
            s.chatml_fallbacks
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
