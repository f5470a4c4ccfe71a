//! Every limit, hit: each gives a clear outcome, never a panic or an `Err`.

use std::time::Duration;

use start_sandbox::{Limit, Limits, Status};

use crate::sandbox;

fn with(limits: Limits, code: &str) -> start_sandbox::Outcome {
    sandbox().exec(code, &limits).expect("host failure")
}

#[test]
fn infinite_loop_stopped_by_wall_time() {
    let limits = Limits {
        wall_time: Duration::from_millis(300),
        ..Limits::default()
    };
    let out = with(limits, "while True: pass");
    assert_eq!(
        out.status,
        Status::LimitExceeded {
            limit: Limit::WallTime
        }
    );
    assert!(out.wall_ms >= 290.0, "{}", out.wall_ms);
}

#[test]
fn blocking_sleep_stopped_by_wall_time() {
    let limits = Limits {
        wall_time: Duration::from_millis(200),
        ..Limits::default()
    };
    let out = with(
        limits,
        "import time\nprint('before', flush=True)\ntime.sleep(3600)",
    );
    assert_eq!(
        out.status,
        Status::LimitExceeded {
            limit: Limit::WallTime
        }
    );
    assert_eq!(out.stdout, "before\n");
}

#[test]
fn fuel_limit_hit_and_fuel_reported() {
    let small = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let out = with(small, "while True: pass");
    assert_eq!(out.status, Status::LimitExceeded { limit: Limit::Fuel });
    let ample = Limits {
        fuel: Some(10_000_000_000),
        ..Limits::default()
    };
    let out = with(ample, "print(sum(range(1000)))");
    assert_eq!(out.status, Status::Finished);
    assert_eq!(out.stdout, "499500\n");
    let used = out.fuel_used.expect("fuel used is reported");
    assert!(used > 0 && used < 10_000_000_000);
}

#[test]
fn memory_cap_gives_python_memory_error() {
    let limits = Limits {
        memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let out = with(limits, "b = bytearray(2**30)");
    match &out.status {
        Status::Exception { name, .. } => assert_eq!(name, "MemoryError"),
        other => panic!("expected MemoryError, got {other:?}"),
    }
    assert!(out.memory_peak_bytes <= 256 << 20);
    // Below the cap the same allocation works.
    let out = with(
        Limits::default(),
        "b = bytearray(100 * 2**20); print(len(b))",
    );
    assert_eq!(out.stdout, "104857600\n");
}

#[test]
fn stdout_flood_truncated_at_cap() {
    let limits = Limits {
        stdout_bytes: 64 << 10,
        wall_time: Duration::from_secs(60),
        ..Limits::default()
    };
    // 100 MB in 1 MB lines.
    let out = with(
        limits,
        "s = 'x' * (1 << 20)\nfor _ in range(100):\n    print(s)",
    );
    assert_eq!(out.status, Status::Finished);
    assert!(out.stdout_truncated);
    assert_eq!(out.stdout.len(), 64 << 10);
}

#[test]
fn stderr_flood_truncated_and_traceback_still_found() {
    let limits = Limits {
        stderr_bytes: 1000,
        ..Limits::default()
    };
    let out = with(
        limits,
        "import sys\nsys.stderr.write('e' * 100000)\nraise KeyError('k')",
    );
    assert!(out.stderr_truncated);
    assert_eq!(out.stderr.len(), 1000);
    match &out.status {
        Status::Exception { name, .. } => assert_eq!(name, "KeyError"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_code_is_an_error_not_a_run() {
    let code = "#".repeat(start_sandbox::MAX_CODE_BYTES + 1);
    let err = sandbox().exec(&code, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn deep_recursion_is_a_python_error_not_a_crash() {
    let out = with(Limits::default(), "def f(n): return f(n+1)\nf(0)");
    match &out.status {
        Status::Exception { name, .. } => assert_eq!(name, "RecursionError"),
        other => panic!("{other:?}"),
    }
}
