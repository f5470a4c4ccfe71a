//! Hint-RFT scoring throughput: math trajectories scored per second on 2 threads, a batch that
//! mixes fast-path answers (decided in Rust) with answers that need the symbolic check (sympy
//! in a fresh sandboxed interpreter). Also the fast path alone, for the ratio.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use start::rft::score::Scorer;
use start::rft::score_parallel;
use start::trajectory::{Trajectory, TrajectoryBuilder};
use start_sandbox::{Sandbox, SandboxOptions};

/// Trajectories per batch, and how many of them need sympy.
const BATCH: usize = 40;
const SYMBOLIC: usize = 4;
const THREADS: usize = 2;

const FAST: &[(&str, &str)] = &[
    ("\\frac{1}{2}", "0.5"),
    ("(1,2)", "[1,2]"),
    ("x^2", "2x"),
    ("2x+1", "1+2x"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("1,000", "1000"),
    ("50\\%", "0.5"),
    ("\\sqrt{2}", "1.41421356"),
    ("[0, 1)", "[0,1)"),
    ("\\dfrac{3}{4}", "\\frac34"),
];
const SYM: &[(&str, &str)] = &[
    ("e^{i\\pi}", "-1"),
    ("e^{i\\pi/2}", "i"),
    ("2^{100000}", "2^{100001}"),
    ("e^{i\\pi}", "1"),
];

fn trajectory(gold: &str, pred: &str, n: usize) -> Trajectory {
    let code = format!("print({n} * 2)");
    let body = format!(
        "Let me work through this carefully. {}\n```python\n{code}\n```\n",
        "We reason step by step about the quantities involved. ".repeat(40)
    );
    TrajectoryBuilder::math(format!("p{n}"))
        .answer(gold)
        .backend("bench")
        .model(body)
        .tool_call(code, format!("{}\n", n * 2))
        .model(format!("So the final answer is \\boxed{{{pred}}}."))
        .build()
}

fn batch(symbolic: usize) -> Vec<Trajectory> {
    (0..BATCH)
        .map(|i| {
            // Spread the symbolic ones evenly so both threads get some.
            let (g, p) = if i * symbolic / BATCH != (i + 1) * symbolic / BATCH {
                SYM[i % SYM.len()]
            } else {
                FAST[i % FAST.len()]
            };
            trajectory(g, p, i)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxOptions::default()).expect("runtime");
    let scorer = Scorer::new(Some((&sandbox).into()));
    let mut group = c.benchmark_group("rft_score");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mixed = batch(SYMBOLIC);
    group.bench_function(
        format!("mixed_{}fast_{}sympy_2threads", BATCH - SYMBOLIC, SYMBOLIC),
        |b| b.iter(|| score_parallel(&scorer, &mixed, THREADS)),
    );
    let fast = batch(0);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(format!("fast_only_{BATCH}_2threads"), |b| {
        b.iter(|| score_parallel(&scorer, &fast, THREADS))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
