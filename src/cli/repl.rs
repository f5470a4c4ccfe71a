//! `start repl`: an interactive session in the terminal, or the cells of a file run in one
//! session (a Markdown file's ```python blocks, or a `.py` file split on `# %%` lines).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use start::cells;
use start_sandbox::{Outcome, Session, SessionLimits, TurnLimits};

use super::{RuntimeArgs, check_memory_mib, check_timeout, read_text};

#[derive(Debug, Args)]
pub struct ReplArgs {
    /// Run this file's cells (Markdown ```python blocks, or `# %%` cells in a .py file) and
    /// print each cell's outcome; without it, read cells interactively.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print one JSON line per cell (`cell`, `line`, `outcome`).
    #[arg(long)]
    json: bool,
    /// Wall-time limit per cell, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Memory cap for the session, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory_mib: u64,
    /// Seed for `random` and numpy.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Serialize)]
struct CellReport<'a> {
    cell: usize,
    line: usize,
    outcome: &'a Outcome,
}

/// Shows a cell's outcome as a terminal would: the guest's stdout on stdout, its stderr and
/// the one Python-like line for a limit ([`Outcome::transcript`]) on stderr.
fn show(outcome: &Outcome, turn: &TurnLimits) {
    super::terminal::print_guest_stdout(&outcome.stdout);
    let _ = std::io::stdout().flush();
    let rest = Outcome {
        stdout: String::new(),
        stdout_truncated: false,
        ..outcome.clone()
    };
    super::terminal::print_guest_stderr(&rest.transcript(
        turn.wall_time,
        turn.stdout_bytes,
        turn.stderr_bytes,
    ));
    if outcome.stdout_truncated {
        eprintln!("{}", start_sandbox::truncation_message(turn.stdout_bytes));
    }
}

/// Runs `start repl`.
pub fn run(args: ReplArgs) -> Result<ExitCode> {
    let wall_time = check_timeout(args.timeout)?;
    let memory_bytes = check_memory_mib(args.memory_mib)?;
    // Read and split the file before the (slower) sandbox start, so bad input fails fast.
    let cells = match &args.file {
        Some(path) => {
            let text = read_text(path)?;
            let markdown = path.extension().is_some_and(|e| {
                e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown")
            });
            let cells = cells::split(&text, markdown);
            if let Some(big) = cells
                .iter()
                .find(|c| c.code.len() > start_sandbox::MAX_CODE_BYTES)
            {
                bail!(
                    "{}: the cell at line {} is {} bytes; the limit is {}",
                    path.display(),
                    big.line,
                    big.code.len(),
                    start_sandbox::MAX_CODE_BYTES
                );
            }
            Some(cells)
        }
        None => None,
    };
    let sandbox = args.runtime.sandbox_for(1)?;
    let mut session = Session::open(
        &sandbox,
        SessionLimits {
            memory_bytes,
            seed: args.seed,
            ..SessionLimits::default()
        },
    )
    .context("cannot open a session")?;
    let turn = TurnLimits {
        wall_time,
        ..TurnLimits::default()
    };
    match cells {
        Some(cells) => run_cells(&mut session, &cells, &turn, args.json),
        None => interactive(&mut session, &turn),
    }
}

fn run_cells(
    session: &mut Session,
    cells: &[cells::Cell],
    turn: &TurnLimits,
    json: bool,
) -> Result<ExitCode> {
    let mut failed = false;
    for (i, cell) in cells.iter().enumerate() {
        if !json {
            eprintln!("[cell {} (line {})]", i + 1, cell.line);
        }
        let outcome = session
            .run(&cell.code, turn)
            .with_context(|| format!("cell {} (line {})", i + 1, cell.line))?;
        failed |= !outcome.status.is_success();
        if json {
            let report = CellReport {
                cell: i + 1,
                line: cell.line,
                outcome: &outcome,
            };
            println!("{}", serde_json::to_string(&report)?);
        } else {
            show(&outcome, turn);
        }
        if let Some(why) = session.ended() {
            if i + 1 < cells.len() {
                eprintln!(
                    "[session ended: {why}; {} cell(s) not run]",
                    cells.len() - i - 1
                );
            }
            break;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn interactive(session: &mut Session, turn: &TurnLimits) -> Result<ExitCode> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprintln!(
            "start repl: Python 3.15 in a sandbox (numpy, sympy preloaded). Ctrl-D to leave."
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut buffer = String::new();
    loop {
        if tty {
            eprint!("{}", if buffer.is_empty() { ">>> " } else { "... " });
            let _ = std::io::stderr().flush();
        }
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                eprintln!("start repl: input is not UTF-8 text; line ignored");
                buffer.clear();
                continue;
            }
            Some(Err(e)) => return Err(e).context("cannot read input"),
            None => break,
        };
        buffer.push_str(&line);
        buffer.push('\n');
        if buffer.len() > start_sandbox::MAX_CODE_BYTES {
            eprintln!(
                "start repl: cell over {} bytes; discarded",
                start_sandbox::MAX_CODE_BYTES
            );
            buffer.clear();
            continue;
        }
        if cells::needs_more(&buffer) {
            continue;
        }
        let code = std::mem::take(&mut buffer);
        if code.trim().is_empty() {
            continue;
        }
        // Named as python3's own prompt names what is typed at it.
        let outcome = session.run_as(&code, "<stdin>", turn)?;
        show(&outcome, turn);
        if let Some(why) = session.ended() {
            eprintln!("[session ended: {why}]");
            break;
        }
    }
    if !buffer.trim().is_empty() {
        show(&session.run_as(&buffer, "<stdin>", turn)?, turn);
    }
    Ok(ExitCode::SUCCESS)
}
