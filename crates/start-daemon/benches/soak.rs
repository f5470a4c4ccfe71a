//! Issue 14, acceptance 3: the soak bench. 64 clients against one `startd` for a while, each on
//! its own connection: normal ones (execs with known answers; sessions of several turns whose
//! state must persist) and hostile ones (the programs of the hostile-guest catalogue,
//! `tests/hostile/programs.toml`, as execs and as turns of sessions of their own). At the end
//! a table: requests served, wrong answers, lost sessions, worker restarts, peak RSS of the
//! daemon and its workers, and what is left on disk in the daemon's temporary folder.
//!
//! ```text
//! cargo bench -p start-daemon --bench soak                      # 10 minutes
//! START_SOAK_SECS=60 cargo bench -p start-daemon --bench soak   # or: -- --secs 60
//! ```
//!
//! Other settings: `START_SOAK_CLIENTS` (64), `START_SOAK_WORKERS` (the daemon's default, one
//! per core), `START_SOAK_SKIP` (catalogue names left out, comma-separated). It exits non-zero
//! when a normal request got a wrong answer or failed, a normal session was lost, or anything is
//! left on disk after the daemon's shutdown. Hostile requests only have their outcomes counted
//! (those not in the catalogue's accept list are listed), since a build may not enforce every
//! limit the catalogue expects yet; the hostile-guest suite is what fails on them.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/hostile/catalogue.rs"]
mod catalogue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalogue::{Catalogue, Program, RssSampler};
use start_daemon::testutil::TestDaemon;
use start_daemon::{Client, ClientError, ErrorKind};
use start_sandbox::{Limits, SessionLimits, Status, TurnLimits};

/// Default duration: 10 minutes.
const DEFAULT_SECS: u64 = 600;
/// Default number of clients.
const DEFAULT_CLIENTS: usize = 64;
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Turns of one normal session.
const SESSION_TURNS: u64 = 6;

/// What each client does, by its index: of every 16 clients, 8 run normal execs, 4 normal
/// sessions, 3 hostile execs and 1 hostile sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Exec,
    Session,
    HostileExec,
    HostileSession,
}

fn role(client: usize) -> Role {
    match client % 16 {
        0..=7 => Role::Exec,
        8..=11 => Role::Session,
        12..=14 => Role::HostileExec,
        _ => Role::HostileSession,
    }
}

/// The counters all clients add to.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    normal_execs: AtomicU64,
    normal_sessions: AtomicU64,
    normal_turns: AtomicU64,
    hostile_execs: AtomicU64,
    hostile_sessions: AtomicU64,
    wrong_answers: AtomicU64,
    normal_failures: AtomicU64,
    lost_sessions: AtomicU64,
    hostile_sessions_lost: AtomicU64,
    busy: AtomicU64,
    /// Hostile outcomes outside the catalogue's accept list, by program.
    unaccepted: Mutex<BTreeMap<String, (u64, String)>>,
    /// The first few failures of normal requests, for the report.
    examples: Mutex<Vec<String>>,
}

impl Tally {
    fn example(&self, what: String) {
        let mut ex = self.examples.lock().unwrap();
        if ex.len() < 20 {
            eprintln!("soak: {what}");
            ex.push(what);
        }
    }

    fn record_unaccepted(&self, program: &Program, what: String) {
        let mut map = self.unaccepted.lock().unwrap();
        let entry = map.entry(program.name.clone()).or_insert((0, what));
        entry.0 += 1;
    }
}

/// splitmix64: a small deterministic generator per client, so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A normal exec with its known answer.
fn normal_exec(rng: &mut Rng) -> (String, String) {
    let a = rng.below(1_000_000);
    let b = rng.below(1_000_000);
    match rng.below(4) {
        0 => (format!("print({a} * {b})"), format!("{}\n", a * b)),
        1 => (
            format!("print(sum(range({a})))"),
            format!("{}\n", a * a.saturating_sub(1) / 2),
        ),
        2 => (
            format!(
                "import numpy as np\nprint(int(np.arange({a}, dtype=np.int64).sum() % {}))",
                b + 1
            ),
            format!("{}\n", (a * a.saturating_sub(1) / 2) % (b + 1)),
        ),
        _ => (
            format!("s = str({a})\nprint(s[::-1], len(s))"),
            format!(
                "{} {}\n",
                a.to_string().chars().rev().collect::<String>(),
                a.to_string().len()
            ),
        ),
    }
}

fn is_lost(e: &ClientError) -> bool {
    matches!(
        e.kind(),
        Some(ErrorKind::NoSuchSession | ErrorKind::WorkerLost)
    ) || matches!(e, ClientError::Closed(_) | ClientError::Frame(_))
}

async fn exec_client(client: Client, mut rng: Rng, deadline: Instant, tally: Arc<Tally>) {
    while Instant::now() < deadline {
        let (code, answer) = normal_exec(&mut rng);
        let result = client.exec(&code, &Limits::default()).await;
        tally.served.fetch_add(1, Ordering::Relaxed);
        tally.normal_execs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(o) if o.status == Status::Finished && o.stdout == answer => {}
            Ok(o) => {
                tally.wrong_answers.fetch_add(1, Ordering::Relaxed);
                tally.example(format!(
                    "wrong answer to {code:?}: {}",
                    catalogue::describe(&o)
                ));
            }
            Err(e) if e.is_busy() => {
                tally.busy.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.normal_failures.fetch_add(1, Ordering::Relaxed);
                tally.example(format!("normal exec failed: {e}"));
            }
        }
    }
}

async fn session_client(client: Client, mut rng: Rng, deadline: Instant, tally: Arc<Tally>) {
    while Instant::now() < deadline {
        let id = match client.open_session(&SessionLimits::default()).await {
            Ok(id) => id,
            Err(e) if e.is_busy() => {
                tally.busy.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => {
                tally.normal_failures.fetch_add(1, Ordering::Relaxed);
                tally.example(format!("session.open failed: {e}"));
                continue;
            }
        };
        tally.served.fetch_add(1, Ordering::Relaxed);
        tally.normal_sessions.fetch_add(1, Ordering::Relaxed);
        let m = 1_000_003u64;
        let b = rng.below(m);
        let mut x = rng.below(m);
        let mut turns = vec![(
            format!("x = {x}\ndef step(v):\n    return (v * 3 + {b}) % {m}\nprint(x)"),
            format!("{x}\n"),
        )];
        for _ in 1..SESSION_TURNS {
            x = (x * 3 + b) % m;
            turns.push(("x = step(x)\nprint(x)".to_string(), format!("{x}\n")));
        }
        for (code, answer) in turns {
            let result = client.run(&id, &code, &TurnLimits::default()).await;
            tally.served.fetch_add(1, Ordering::Relaxed);
            tally.normal_turns.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(o) if o.status == Status::Finished && o.stdout == answer => {}
                Ok(o) => {
                    tally.wrong_answers.fetch_add(1, Ordering::Relaxed);
                    tally.example(format!(
                        "wrong answer in a session to {code:?}: {}",
                        catalogue::describe(&o)
                    ));
                    break;
                }
                Err(e) if is_lost(&e) => {
                    tally.lost_sessions.fetch_add(1, Ordering::Relaxed);
                    tally.example(format!("normal session lost: {e}"));
                    break;
                }
                Err(e) => {
                    tally.normal_failures.fetch_add(1, Ordering::Relaxed);
                    tally.example(format!("session turn failed: {e}"));
                    break;
                }
            }
        }
        let _ = client.close_session(&id).await;
        tally.served.fetch_add(1, Ordering::Relaxed);
    }
}

async fn hostile_exec_client(
    client: Client,
    mut rng: Rng,
    deadline: Instant,
    tally: Arc<Tally>,
    programs: Arc<Vec<Program>>,
) {
    while Instant::now() < deadline {
        let program = &programs[rng.below(programs.len() as u64) as usize];
        let result = client.exec(&program.source(), &program.limits()).await;
        tally.served.fetch_add(1, Ordering::Relaxed);
        tally.hostile_execs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(o) if program.accepts(&o) => {}
            Ok(o) => tally.record_unaccepted(program, catalogue::describe(&o)),
            Err(e) if e.is_busy() => {
                tally.busy.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tally.record_unaccepted(program, format!("error reply: {e}")),
        }
    }
}

async fn hostile_session_client(
    client: Client,
    mut rng: Rng,
    deadline: Instant,
    tally: Arc<Tally>,
    programs: Arc<Vec<Program>>,
) {
    while Instant::now() < deadline {
        let program = &programs[rng.below(programs.len() as u64) as usize];
        let limits = SessionLimits {
            memory_bytes: program.memory_mib << 20,
            ..SessionLimits::default()
        };
        let Ok(id) = client.open_session(&limits).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.served.fetch_add(1, Ordering::Relaxed);
        tally.hostile_sessions.fetch_add(1, Ordering::Relaxed);
        let turn = TurnLimits {
            wall_time: Duration::from_millis(program.wall_time_ms),
            ..TurnLimits::default()
        };
        let _ = client.run(&id, "before = 1", &turn).await;
        let result = client.run(&id, &program.source(), &turn).await;
        tally.served.fetch_add(2, Ordering::Relaxed);
        match result {
            Ok(o) if program.accepts(&o) => {}
            Ok(o) => tally.record_unaccepted(
                program,
                format!("in a session: {}", catalogue::describe(&o)),
            ),
            Err(e) if is_lost(&e) => {
                tally.hostile_sessions_lost.fetch_add(1, Ordering::Relaxed);
                tally.record_unaccepted(program, format!("in a session: {e}"));
            }
            Err(e) => tally.record_unaccepted(program, format!("in a session: {e}")),
        }
        let _ = client.close_session(&id).await;
        tally.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// Files and bytes (allocated) under `dir`, walked without recursion.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut entries, mut bytes) = (0u64, 0u64);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            entries += 1;
            if let Ok(m) = e.path().symlink_metadata() {
                bytes += m.blocks() * 512;
                if m.is_dir() {
                    todo.push(e.path());
                }
            }
        }
    }
    (entries, bytes)
}

fn setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; a duration may come as `--secs N`.
    let secs = args
        .windows(2)
        .find(|w| w[0] == "--secs")
        .and_then(|w| w[1].parse().ok())
        .or_else(|| setting("START_SOAK_SECS"))
        .unwrap_or(DEFAULT_SECS);
    let clients: usize = setting("START_SOAK_CLIENTS").unwrap_or(DEFAULT_CLIENTS);
    let skip: Vec<String> = std::env::var("START_SOAK_SKIP")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();

    // A private temporary folder for the daemon and everything it makes, so that what is left
    // there is what this run left. Set before any thread starts.
    let tmp = tempfile::Builder::new()
        .prefix("start-soak-")
        .tempdir()
        .unwrap();
    let tmp_path: PathBuf = tmp.path().to_path_buf();
    // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("TMPDIR", &tmp_path) };

    let catalogue = Catalogue::load();
    let programs: Arc<Vec<Program>> = Arc::new(
        catalogue
            .program
            .into_iter()
            .filter(|p| !p.no_soak && !skip.contains(&p.name))
            .collect(),
    );
    let mut daemon_args = vec![];
    let workers: Option<String> = setting::<usize>("START_SOAK_WORKERS").map(|w| w.to_string());
    if let Some(w) = &workers {
        daemon_args.extend(["--workers", w.as_str()]);
    }
    let daemon = TestDaemon::start(env!("CARGO_BIN_EXE_startd"), &daemon_args);
    println!(
        "soak: {clients} clients for {secs} s against startd (pid {}), {} hostile programs, TMPDIR {}",
        daemon.pid(),
        programs.len(),
        tmp_path.display()
    );
    let rss = RssSampler::start(daemon.pid());
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let socket = daemon.socket().to_path_buf();
    let (restarts, peak_disk) = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..clients {
            let client = Client::connect(&socket).await.unwrap();
            let rng = Rng(0x5eed_0000 + i as u64);
            let tally = tally.clone();
            let programs = programs.clone();
            tasks.push(match role(i) {
                Role::Exec => tokio::spawn(exec_client(client, rng, deadline, tally)),
                Role::Session => tokio::spawn(session_client(client, rng, deadline, tally)),
                Role::HostileExec => {
                    tokio::spawn(hostile_exec_client(client, rng, deadline, tally, programs))
                }
                Role::HostileSession => {
                    tokio::spawn(hostile_session_client(client, rng, deadline, tally, programs))
                }
            });
        }
        let observer = Client::connect(&socket).await.unwrap();
        let mut peak_disk = (0u64, 0u64);
        let mut restarts = 0;
        while Instant::now() < deadline {
            let wait = PROGRESS_EVERY.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait).await;
            let disk = disk_usage(&tmp_path);
            peak_disk = (peak_disk.0.max(disk.0), peak_disk.1.max(disk.1));
            if let Ok(stats) = observer.stats().await {
                restarts = stats.worker_restarts;
            }
            println!(
                "soak: {:>4.0} s  served {:>7}  wrong {}  failed {}  lost sessions {}  worker restarts {}  disk {} entries {} MiB",
                started.elapsed().as_secs_f64(),
                tally.served.load(Ordering::Relaxed),
                tally.wrong_answers.load(Ordering::Relaxed),
                tally.normal_failures.load(Ordering::Relaxed),
                tally.lost_sessions.load(Ordering::Relaxed),
                restarts,
                disk.0,
                disk.1 >> 20,
            );
        }
        for t in tasks {
            t.await.unwrap();
        }
        if let Ok(stats) = observer.stats().await {
            restarts = stats.worker_restarts;
        }
        (restarts, peak_disk)
    });
    let elapsed = started.elapsed();
    let peak = rss.stop();

    // A clean shutdown, then whatever is left in the private folder was left by this run (the
    // socket's folder goes with the fixture).
    let daemon_pid = nix::unistd::Pid::from_raw(daemon.pid() as i32);
    let _ = nix::sys::signal::kill(daemon_pid, nix::sys::signal::Signal::SIGTERM);
    let mut daemon = daemon;
    let status = daemon.wait(Duration::from_secs(60));
    drop(daemon);
    std::thread::sleep(Duration::from_secs(1));
    let (left_entries, left_bytes) = disk_usage(&tmp_path);
    let left_names: Vec<String> = std::fs::read_dir(&tmp_path)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if left_entries > 0 {
        let _ = start_sandbox::remove_dir_tree(&tmp_path);
    }

    let t = &tally;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let rows: Vec<(&str, String)> = vec![
        ("duration", format!("{:.0} s", elapsed.as_secs_f64())),
        ("clients", {
            let n = |r: Role| (0..clients).filter(|&i| role(i) == r).count();
            format!(
                "{clients}: {} exec + {} session normal, {} exec + {} session hostile",
                n(Role::Exec),
                n(Role::Session),
                n(Role::HostileExec),
                n(Role::HostileSession)
            )
        }),
        ("requests served", get(&t.served).to_string()),
        (
            "  normal execs / sessions / turns",
            format!(
                "{} / {} / {}",
                get(&t.normal_execs),
                get(&t.normal_sessions),
                get(&t.normal_turns)
            ),
        ),
        (
            "  hostile execs / sessions",
            format!("{} / {}", get(&t.hostile_execs), get(&t.hostile_sessions)),
        ),
        ("wrong answers", get(&t.wrong_answers).to_string()),
        (
            "normal requests failed",
            get(&t.normal_failures).to_string(),
        ),
        ("lost sessions (normal)", get(&t.lost_sessions).to_string()),
        (
            "hostile sessions lost",
            get(&t.hostile_sessions_lost).to_string(),
        ),
        ("busy replies", get(&t.busy).to_string()),
        ("worker restarts", restarts.to_string()),
        ("peak RSS, daemon", format!("{} MiB", peak.daemon >> 20)),
        (
            "peak RSS, largest worker",
            format!("{} MiB", peak.worker >> 20),
        ),
        (
            "peak RSS, daemon + workers",
            format!("{} MiB", peak.total >> 20),
        ),
        (
            "peak disk in TMPDIR (sampled)",
            format!("{} entries, {} MiB", peak_disk.0, peak_disk.1 >> 20),
        ),
        (
            "disk left after shutdown",
            format!(
                "{left_entries} entries, {left_bytes} bytes{}",
                match left_names.len() {
                    0 => String::new(),
                    n => format!(
                        " ({n} at the top: {})",
                        left_names
                            .iter()
                            .take(4)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            ),
        ),
        ("startd exit", status.to_string()),
    ];
    println!("\n| soak | |\n|---|---|");
    for (k, v) in &rows {
        println!("| {k} | {v} |");
    }
    let unaccepted = t.unaccepted.lock().unwrap();
    if !unaccepted.is_empty() {
        println!("\nhostile outcomes outside the catalogue's accept lists:");
        for (name, (n, first)) in unaccepted.iter() {
            let mut first = first.clone();
            first.truncate(240);
            println!("  {name} x{n}: {first}");
        }
    }
    let failed = get(&t.wrong_answers) > 0
        || get(&t.normal_failures) > 0
        || get(&t.lost_sessions) > 0
        || left_entries > 0;
    if failed {
        println!(
            "\nsoak: FAILED (wrong answers, failed normal requests, lost sessions or disk left)"
        );
        ExitCode::FAILURE
    } else {
        println!("\nsoak: passed");
        ExitCode::SUCCESS
    }
}
