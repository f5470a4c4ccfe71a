//! Hint-infer driver overhead per tool call: everything except the model and the code.
//!
//! The scripted backend stands in for the model (it hands over ready pieces) and a no-op runner
//! for the sandbox, so what is timed is the driver's own work per call: scanning the pieces,
//! finding the trigger and the closing fence, sampling and inserting the hint, cutting and
//! appending text, formatting the output block and recording the trajectory. Side by side: the
//! same trajectory with the real sandbox session running `print(1)`, for scale.

#![allow(missing_docs)] // criterion_group! makes an undocumented public function

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use start::infer::backend::scripted::ScriptedBackend;
use start::infer::driver::{
    CodeRunner, Driver, GenerateError, GenerateOptions, RunResult, SessionRunner,
};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::problem::Problem;
use start::problem::ProblemKind;
use start_sandbox::{Outcome, Sandbox, SandboxOptions};

const CALLS: u32 = 50;

/// Answers every block at once, as if the code printed `1`.
struct NoopRunner;

impl CodeRunner for NoopRunner {
    fn run(&mut self, _code: &str) -> Result<RunResult, GenerateError> {
        Ok(RunResult::Ran(Outcome::finished("1\n")))
    }
}

fn script(calls: u32) -> String {
    // Some reasoning text between calls, like a real trajectory (about 60 words each).
    let prose = "Let me check the arithmetic once more, step by step, because the \
                 intermediate values matter here and a slip would change the final answer. ";
    (0..calls)
        .map(|i| {
            format!(
                "{prose}{prose}{prose}Wait, x{i} = {i} * 2\nprint(x{i})\n```\nSo x{i} is {}. ",
                i * 2
            )
        })
        .collect()
}

fn options(calls: u32) -> GenerateOptions {
    GenerateOptions {
        policy: InsertPolicy {
            max_hints: calls,
            before_end: false,
            ..InsertPolicy::default()
        },
        max_tool_calls: calls,
        max_tokens: u64::MAX,
        ..GenerateOptions::default()
    }
}

fn problem() -> Problem {
    Problem {
        id: "bench".into(),
        kind: ProblemKind::Math,
        text: "Compute.".into(),
        answer: None,
        tests: None,
        public_tests: None,
        starter_code: None,
    }
}

fn driver_overhead(c: &mut Criterion) {
    let hints = HintLibrary::bundled();
    let problem = problem();
    let mut group = c.benchmark_group("hint_infer_driver");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(u64::from(CALLS)));

    let backend = ScriptedBackend::new(script(CALLS));
    let opts = options(CALLS);
    let driver = Driver::new(&backend, &hints, &opts);
    group.bench_function("per_tool_call/driver_only", |b| {
        b.iter(|| {
            let t = driver
                .run(&problem, 0, &mut NoopRunner)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.tool_calls.len(), CALLS as usize);
            black_box(t)
        })
    });

    // Same text without any trigger: the scanning and bookkeeping of plain generation.
    let plain = ScriptedBackend::new(script(CALLS).replace("Wait", "Well"));
    let plain_driver = Driver::new(&plain, &hints, &opts);
    group.bench_function("per_tool_call/baseline_no_calls", |b| {
        b.iter(|| {
            black_box(
                plain_driver
                    .run(&problem, 0, &mut NoopRunner)
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });

    // For scale: the real sandbox session running each block.
    if let Ok(sandbox) = Sandbox::new(SandboxOptions::default()) {
        const REAL_CALLS: u32 = 10;
        let backend = ScriptedBackend::new(script(REAL_CALLS));
        let opts = options(REAL_CALLS);
        let driver = Driver::new(&backend, &hints, &opts);
        group.throughput(Throughput::Elements(u64::from(REAL_CALLS)));
        group.sample_size(10);
        group.bench_function("per_tool_call/with_sandbox_session", |b| {
            b.iter(|| {
                let mut runner = SessionRunner::for_options(&sandbox, &opts);
                black_box(
                    driver
                        .run(&problem, 0, &mut runner)
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, driver_overhead);
criterion_main!(benches);
