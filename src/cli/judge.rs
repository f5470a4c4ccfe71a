//! `start judge`: run programs against tests in the sandbox, one program or a JSONL batch.

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use start::jsonl::LineReader;
use start::judge::{JudgeOptions, Tests, judge, judge_stream};

use super::{ExecutorArgs, RuntimeArgs, check_memory_mib, check_timeout, read_text};

/// `start judge --help`'s closing text: the test shapes and how each is judged.
const JUDGE_HELP: &str = r#"Test shapes (JSON):
  stdin/stdout  {"tests": [{"input", "output"}], "compare": RULE}
  functional    {"fn_name", "tests": [{"args", "expected"}]}: a function or a Solution
                method, loaded as a module after LiveCodeBench's imports; the value must
                equal "expected" as JSON (numbers within 1e-6 where one is not an integer)
  HumanEval     {"check", "entry_point", "prompt"}: prompt + program, the check and
                check(entry_point) in one namespace (the check sees the prompt's helpers)
  MBPP          {"test_list", "test_setup_code", "test_imports"}: imports, program, setup,
                then each assert in that namespace, one test each

Stdout RULEs: lines (default: trailing whitespace and final blank lines forgiven, non-integers
within 1e-6), exact (byte-equal), livecodebench (stripped lines, numbers equal as decimals,
its imports first), apps (stripped lines, numpy.allclose, per-line token sets, its imports
first), codecontests (lowercased whitespace tokens, numbers within 1e-5).

Each test's status: passed, wrong_answer, runtime_error, syntax_error, limit_exceeded,
output_limit_exceeded or skipped; a failed test keeps its input, expected and got. Exit code
1 when a single program fails."#;

/// `start judge`'s arguments.
#[derive(Debug, Args)]
#[command(after_help = JUDGE_HELP)]
pub struct JudgeArgs {
    /// A program to judge (with --tests).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tests",
        conflicts_with = "input"
    )]
    program: Option<PathBuf>,
    /// The program's tests (JSON: stdin/stdout, functional, HumanEval or MBPP shape).
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// Many programs: JSONL lines `{"id": ..., "program": "...", ...test fields}`.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where batch results go (JSONL); default stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Programs judged at once.
    #[arg(long, short = 'j', default_value_t = 2)]
    jobs: usize,
    /// Wall time per test, in seconds.
    #[arg(long, default_value_t = 4.0)]
    timeout: f64,
    /// Memory cap per program, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// Stop a program's suite at its first failing test.
    #[arg(long)]
    stop_on_first_failure: bool,
    #[command(flatten)]
    executor: ExecutorArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn options(args: &JudgeArgs) -> Result<JudgeOptions> {
    Ok(JudgeOptions {
        time_per_test: check_timeout(args.timeout)?,
        memory_bytes: check_memory_mib(args.memory_mib)?,
        stop_on_first_failure: args.stop_on_first_failure,
        ..JudgeOptions::default()
    })
}

/// Runs `start judge`.
pub fn run(args: JudgeArgs) -> Result<ExitCode> {
    let opts = options(&args)?;
    match (&args.program, &args.tests, &args.input) {
        (Some(program), Some(tests), None) => {
            let program = read_text(program)?;
            let tests: Tests = serde_json::from_str(&read_text(tests)?).with_context(|| {
                format!(
                    "{} is not a test file: expected {{\"tests\": [{{\"input\", \"output\"}}]}}, {{\"fn_name\", \"tests\": [{{\"args\", \"expected\"}}]}}, {{\"check\", \"entry_point\"}} or {{\"test_list\"}}",
                    args.tests.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                )
            })?;
            let executor = args.executor.open(&args.runtime, 1)?;
            let report = judge(executor.executor(), &program, &tests, &opts)?;
            executor.release_for_exit();
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        (None, None, Some(input)) => batch(&args, input, &opts),
        _ => bail!("give either --program FILE --tests FILE, or --input solutions.jsonl"),
    }
}

fn batch(args: &JudgeArgs, input: &PathBuf, opts: &JudgeOptions) -> Result<ExitCode> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = LineReader::new(BufReader::new(file), input.display().to_string());
    let executor = args.executor.open(&args.runtime, args.jobs)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = judge_stream(
        executor.executor(),
        reader,
        &mut out,
        opts,
        args.jobs,
        &|bytes| bar.set_position(bytes),
        &mut |e| bar.suspend(|| eprintln!("start judge: {e}; skipped")),
    )?;
    executor.release_for_exit();
    bar.finish_and_clear();
    eprintln!(
        "start judge: {} of {} programs passed{}",
        summary.passed,
        summary.programs,
        match summary.skipped {
            0 => String::new(),
            n => format!(", {n} malformed line(s) skipped"),
        }
    );
    Ok(ExitCode::SUCCESS)
}
