//! Memory footprint: resident memory of one idle `Sandbox`, and per open idle session.
//!
//! `cargo run --release -p start-sandbox --example footprint` (runtime prepared first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use start_sandbox::{Sandbox, Session, SessionLimits, TurnLimits};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let base = rss_bytes();
    let sandbox = Sandbox::new(Default::default()).expect("runtime prepared");
    sandbox.exec("pass", &Default::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let idle = rss_bytes();
    const N: usize = 100;
    let mut sessions = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = Session::open(&sandbox, SessionLimits::default()).unwrap();
        s.run(&format!("x = {i}"), &TurnLimits::default()).unwrap();
        sessions.push(s);
    }
    let with_sessions = rss_bytes();
    let per = (with_sessions - idle) / N as u64;
    println!(
        "process before the sandbox: {:.1} MiB; idle sandbox (after one exec): +{:.1} MiB",
        base as f64 / 1048576.0,
        (idle - base) as f64 / 1048576.0
    );
    println!(
        "{N} open idle sessions: +{:.1} MiB, {:.2} MiB each, about {} per GiB",
        (with_sessions - idle) as f64 / 1048576.0,
        per as f64 / 1048576.0,
        (1u64 << 30) / per.max(1)
    );
}
