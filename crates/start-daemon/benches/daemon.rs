//! Daemon benches: a trivial exec's round trip through `startd` against the same exec in
//! process (the baseline, measured in the same run), and throughput with the default workers.
//!
//! `cargo bench -p start-daemon --bench daemon`. Before criterion's own groups it prints p50/p99
//! of both paths and the throughput, the figures BENCHMARKS.md quotes.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use start_daemon::Client;
use start_daemon::testutil::TestDaemon;
use start_sandbox::{Limits, Sandbox};

const CODE: &str = "pass";

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.50), at(0.99))
}

fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    percentiles(samples)
}

/// Trivial execs per second with `connections` x `depth` requests in flight.
fn throughput(socket: &Path, connections: usize, depth: usize, window: Duration) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + window;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let client = Client::connect(socket).await.unwrap();
            for _ in 0..depth {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        client.exec(CODE, &Limits::default()).await.unwrap();
                        n += 1;
                    }
                    n
                }));
            }
        }
        let started = Instant::now();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / started.elapsed().as_secs_f64()
    })
}

fn report(sandbox: &Sandbox, daemon: &TestDaemon) {
    let limits = Limits::default();
    let client = daemon.client();
    // Interleaved, one in process then one through the daemon, so that the machine's noise
    // (a shared VM) falls on both alike.
    // A third path: in process with the restore after the clock stops, as a worker does it
    // (it replies first), so the transport's own cost shows too.
    let (mut mine, mut deferred, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..2200 {
        let t = Instant::now();
        sandbox.exec(CODE, &limits).unwrap();
        let a = t.elapsed();
        let t = Instant::now();
        let (_, cleanup) = sandbox.exec_deferring_cleanup(CODE, &limits).unwrap();
        let c = t.elapsed();
        drop(cleanup);
        let t = Instant::now();
        client.exec(CODE, &limits).unwrap();
        let b = t.elapsed();
        if i >= 200 {
            mine.push(a);
            deferred.push(c);
            theirs.push(b);
        }
    }
    let (in_p50, in_p99) = percentiles(mine);
    let (def_p50, def_p99) = percentiles(deferred);
    let (d_p50, d_p99) = percentiles(theirs);
    let (ping_p50, _) = timed(2000, || client.ping().unwrap());
    println!("trivial exec `{CODE}`, 2000 calls each, interleaved:");
    println!("  in process:          p50 {in_p50:8.1} us   p99 {in_p99:8.1} us");
    println!("  through startd:      p50 {d_p50:8.1} us   p99 {d_p99:8.1} us");
    println!("  in process, restore after the clock: p50 {def_p50:8.1} us   p99 {def_p99:8.1} us");
    println!("  daemon overhead p50: {:8.1} us", d_p50 - in_p50);
    println!(
        "  daemon overhead p50 against the deferred-restore path: {:8.1} us",
        d_p50 - def_p50
    );
    println!("  ping round trip p50: {ping_p50:8.1} us");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    for (conns, depth) in [(1, 1), (1, 4), (8, 8)] {
        let rate = throughput(daemon.socket(), conns, depth, Duration::from_secs(3));
        println!(
            "  throughput, {workers} workers, {conns} connection(s) x {depth} in flight: {rate:7.0} execs/s"
        );
    }
    let stats = client.stats().unwrap();
    println!(
        "  daemon-side latency (exec, last {} samples): p50 {:.3} ms p99 {:.3} ms",
        stats.latency_ms.samples.min(8192),
        stats.latency_ms.p50,
        stats.latency_ms.p99
    );
}

fn benches(c: &mut Criterion) {
    let sandbox = Sandbox::new(Default::default()).unwrap();
    // The default workers (one per core), as deployed.
    let daemon = TestDaemon::start(env!("CARGO_BIN_EXE_startd"), &[]);
    report(&sandbox, &daemon);

    let limits = Limits::default();
    let mut group = c.benchmark_group("trivial_exec");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("in_process", |b| {
        b.iter(|| sandbox.exec(CODE, &limits).unwrap())
    });
    let client = daemon.client();
    group.bench_function("daemon_round_trip", |b| {
        b.iter(|| client.exec(CODE, &limits).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("daemon_throughput");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    const BATCH: u64 = 256;
    group.throughput(Throughput::Elements(BATCH));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pipelined = rt.block_on(Client::connect(daemon.socket())).unwrap();
    group.bench_function("256_trivial_execs_pipelined", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..BATCH {
                    let client = pipelined.clone();
                    tasks
                        .spawn(async move { client.exec(CODE, &Limits::default()).await.unwrap() });
                }
                while let Some(r) = tasks.join_next().await {
                    r.unwrap();
                }
            })
        })
    });
    group.finish();
}

criterion_group!(daemon_benches, benches);
criterion_main!(daemon_benches);
