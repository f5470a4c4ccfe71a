//! `start`: run Python in a fast, safe sandbox, and generate tool-integrated reasoning data.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    passive_openmp();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // One clear line (with its causes), no backtrace.
            let mut msg = format!("start: error: {err}");
            for cause in err.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

/// llama.cpp's OpenMP threads busy-wait by default: on a machine shared with other work that
/// makes generation many times slower (measured on 2 busy cores: 97 s instead of 7.7 s for the
/// same two trajectories). OpenMP reads `OMP_WAIT_POLICY` when the program loads, before `main`,
/// so `start infer` re-executes itself once with `OMP_WAIT_POLICY=PASSIVE` unless the user set
/// it. Other subcommands do not load a model and skip this.
fn passive_openmp() {
    if std::env::args_os().nth(1).is_none_or(|a| a != "infer")
        || std::env::var_os("OMP_WAIT_POLICY").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    // `exec` returns only if it failed; then go on with the default policy.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
}
