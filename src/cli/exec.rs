//! `start exec`: run code once in a fresh sandboxed interpreter.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use start_sandbox::{Outcome, SandboxOptions};

use super::{LimitArgs, RuntimeArgs, exit_code, read_text};

/// One execution, then the process exits: no pristine template to restore from and nothing
/// to restore (a restore would only serve a next execution), the guest torn down on this
/// thread before the command returns, and the pool sized for one thread. The guest is a new
/// instance in the snapshot's state, as every execution's is.
fn one_shot() -> SandboxOptions {
    SandboxOptions {
        max_instances: super::instances_for(1),
        reuse_instances: 0,
        teardown_in_background: false,
        ..SandboxOptions::default()
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Code to run.
    #[arg(short = 'c', value_name = "CODE", conflicts_with = "file")]
    code: Option<String>,
    /// A Python file to run, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print the whole outcome as JSON instead of replaying stdout/stderr.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    daemon: super::via_daemon::DaemonArgs,
}

fn exec_source(args: &ExecArgs) -> Result<String> {
    match (&args.code, &args.file) {
        (Some(code), _) => Ok(code.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read code from stdin")?;
            String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "stdin is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                )
            })
        }
        (None, Some(path)) => read_text(path),
        (None, None) => bail!("nothing to run: give -c CODE, a FILE, or - for stdin"),
    }
}

/// Runs `start exec`.
pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let code = exec_source(&args)?;
    let limits = args.limits.limits()?;
    let outcome = if args.daemon.daemon {
        args.daemon.exec(&code, &limits)?
    } else {
        let sandbox = args.runtime.sandbox_with(one_shot())?;
        let outcome = sandbox.exec(&code, &limits)?;
        sandbox.release_for_exit();
        outcome
    };
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        // The guest's stdout on stdout; its stderr and the one Python-like line for a limit
        // (`Outcome::transcript`, the same the REPL and the driver show) on stderr.
        super::terminal::print_guest_stdout(&outcome.stdout);
        if outcome.stdout_truncated {
            eprintln!("{}", start_sandbox::truncation_message(limits.stdout_bytes));
        }
        let rest = Outcome {
            stdout: String::new(),
            stdout_truncated: false,
            ..outcome.clone()
        };
        super::terminal::print_guest_stderr(&rest.transcript(
            limits.wall_time,
            limits.stdout_bytes,
            limits.stderr_bytes,
        ));
    }
    Ok(exit_code(&outcome))
}
