//! Criterion benchmarks of the sandbox: fresh executions (trivial, sympy, numpy), cold start of
//! the `start` binary with a warm cache, and sessions (a turn in a live session, opening one).
//!
//! Baselines run side by side in the same process: instance teardown inline versus on the
//! background thread, and a native `python3 -c` subprocess per call.
//!
//! Run: `cargo bench --bench sandbox` (the runtime must be prepared: run the README's command).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use start_sandbox::{Limits, Sandbox, SandboxOptions, Session, SessionLimits, TurnLimits};

const TRIVIAL: &str = "print(1+1)";
const SYMPY: &str = "import sympy\nprint(sympy.factorint(2**64-1))";
const NUMPY: &str =
    "import numpy as np\nnp.random.seed(0)\nprint(np.linalg.det(np.random.rand(50, 50)))";

fn sandbox(reuse: bool) -> Sandbox {
    Sandbox::new(SandboxOptions {
        reuse_instances: if reuse {
            start_sandbox::DEFAULT_REUSE_INSTANCES
        } else {
            0
        },
        ..SandboxOptions::default()
    })
    .expect("runtime prepared (run the README's main command first)")
}

fn fresh(c: &mut Criterion) {
    let fast = sandbox(true);
    let no_reuse = sandbox(false);
    let limits = Limits::default();
    let mut group = c.benchmark_group("fresh_exec");
    group.measurement_time(Duration::from_secs(5));
    for (name, code) in [
        ("trivial", TRIVIAL),
        ("sympy_factorint", SYMPY),
        ("numpy_det50", NUMPY),
    ] {
        group.bench_function(format!("{name}/ours"), |b| {
            b.iter(|| fast.exec(code, &limits).unwrap())
        });
    }
    for (name, code) in [("trivial", TRIVIAL), ("sympy_factorint", SYMPY)] {
        group.bench_function(format!("{name}/ours_no_reuse"), |b| {
            b.iter(|| no_reuse.exec(code, &limits).unwrap())
        });
    }
    group.sample_size(20);
    for (name, code) in [("trivial", TRIVIAL), ("sympy_factorint", SYMPY)] {
        group.bench_function(format!("{name}/native_python3_subprocess"), |b| {
            b.iter(|| {
                let out = Command::new("python3").args(["-c", code]).output().unwrap();
                assert!(out.status.success());
            })
        });
    }
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    sandbox(true); // cache warm
    let exe = env!("CARGO_BIN_EXE_start");
    let mut group = c.benchmark_group("cold_start");
    group.sample_size(20);
    group.bench_function("start_exec_trivial_warm_cache", |b| {
        b.iter(|| {
            let out = Command::new(exe)
                .args(["exec", "--quiet", "-c", TRIVIAL])
                .output()
                .unwrap();
            assert_eq!(out.stdout, b"2\n");
        })
    });
    group.finish();
}

fn sessions(c: &mut Criterion) {
    let sb = sandbox(true);
    let mut group = c.benchmark_group("session");
    // No turn cap or total budget: criterion runs the turn many thousands of times.
    let unbounded = SessionLimits {
        max_turns: u32::MAX,
        total_wall_time: None,
        ..SessionLimits::default()
    };
    let mut session = Session::open(&sb, unbounded).unwrap();
    session.run("x = 0", &TurnLimits::default()).unwrap();
    let turn_limits = TurnLimits::default();
    group.bench_function("turn_x_plus_1", |b| {
        b.iter(|| session.run("x = x + 1", &turn_limits).unwrap())
    });
    // Open, then close (the drop, timed too, restores the interpreter for the next open).
    group.bench_function("open_and_close", |b| {
        b.iter(|| Session::open(&sb, SessionLimits::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, fresh, cold_start, sessions);
criterion_main!(benches);
