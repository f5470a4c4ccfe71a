//! `cargo xtask`: the README's two commands, made to work on a bare machine.
//!
//! The `llama` feature of `start` (on by default) builds llama.cpp with cmake and binds it with
//! bindgen, which loads libclang. A fresh Debian machine with Rust, Python and gcc has neither,
//! and cargo offers no hook that runs before a dependency's build script, so these commands check
//! for them first, install the Debian packages that provide them (saying what and why, through
//! `sudo` only when not root), and then run cargo:
//!
//! - `cargo xtask example`: `cargo run --release -- infer --example` (the main job).
//! - `cargo xtask test`: `cargo test --release --workspace` (the whole test suite).
//! - `cargo xtask start ARGS...`: `cargo run --release -- ARGS...`.
//! - `cargo xtask deps`: only the check and install.
//!
//! Everything else (the runtime, the example model) is fetched by `start` itself on first use.

mod prerequisites;

use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

  example          the main job: Hint-infer on the bundled examples with a tiny model
                   (cargo run --release -- infer --example)
  test             the whole test suite (cargo test --release --workspace)
  start ARGS...    cargo run --release -- ARGS...
  deps             install what the build needs (cmake, libclang) if it is missing

Each command first checks for the build's system packages and installs the missing ones.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let cargo_args: Vec<String> = match command.as_str() {
        "example" => ["run", "--release", "--", "infer", "--example"]
            .iter()
            .map(|s| s.to_string())
            .chain(rest.iter().cloned())
            .collect(),
        "test" => ["test", "--release", "--workspace"]
            .iter()
            .map(|s| s.to_string())
            .chain(rest.iter().cloned())
            .collect(),
        "start" => ["run", "--release", "--"]
            .iter()
            .map(|s| s.to_string())
            .chain(rest.iter().cloned())
            .collect(),
        "deps" => Vec::new(),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("cargo xtask: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = prerequisites::ensure() {
        eprintln!("cargo xtask: {e}");
        return ExitCode::from(2);
    }
    if cargo_args.is_empty() {
        return ExitCode::SUCCESS;
    }
    run_cargo(&cargo_args)
}

/// Runs the cargo that runs us (`$CARGO`) with `args`, passing its exit status through.
fn run_cargo(args: &[String]) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("cargo xtask: running cargo {}", args.join(" "));
    match Command::new(&cargo).args(args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("cargo xtask: cannot run {}: {e}", cargo.to_string_lossy());
            ExitCode::from(2)
        }
    }
}
