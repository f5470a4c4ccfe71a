//! Issue 14, acceptance 2: the hostile-guest suite. Every program of the catalogue
//! (`tests/hostile/programs.toml`: fork bombs, recursion, huge allocations, descriptor, inode,
//! disk and output floods, pathological tracebacks, loops, escapes, exit tricks, interpreter
//! state, randomness) runs three ways, and each run accepts only the outcomes the catalogue
//! lists for it:
//!
//! - through the library (a [`Sandbox`] of the test's own),
//! - through `start judge` (one batch, two jobs; no program may be judged `passed`),
//! - through a real `startd` ([`TestDaemon`], a [`start_daemon::BlockingClient`]).
//!
//! After each hostile program the catalogue's canary runs in the same sandbox or daemon and must
//! print exactly its expected line (nothing the program changed reached the next execution);
//! through the daemon a bystander session must keep its state, the worker restarts must be
//! none, and the RSS of the daemon and of each worker must stay bounded. Each way runs in a
//! child process of its own with a private `TMPDIR`, so that nothing the run leaves behind can
//! be confused with other tests' folders: when the child exits, that folder must be empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use start_daemon::testutil::{TestCommand, TestDaemon};
use start_sandbox::{Limits, QUARANTINE_PREFIX, SCRATCH_PREFIX, Sandbox, SandboxOptions};

#[path = "../hostile/catalogue.rs"]
mod catalogue;

use catalogue::{Catalogue, JUDGE_EXPECTED_OUTPUT, Program, describe};

/// Set in the child process: the private temporary folder it runs in.
const CHILD_ENV: &str = "START_HOSTILE_TMPDIR";

/// The most resident memory the daemon process itself may reach in the daemon run.
const DAEMON_RSS_BOUND: u64 = 256 << 20;
/// The most resident memory one worker may reach: the guests' 256 MiB cap, the snapshot and
/// wasmtime's own, with room to spare.
const WORKER_RSS_BOUND: u64 = 1 << 30;
/// How long a run may take to remove its scratch folders after its last execution (teardown
/// is in the background).
const CLEANUP_GRACE: Duration = Duration::from_secs(10);

#[test]
fn through_the_library() {
    in_private_tmpdir("hostile::through_the_library", library_run);
}

#[test]
fn through_start_judge() {
    in_private_tmpdir("hostile::through_start_judge", judge_run);
}

#[test]
fn through_startd() {
    in_private_tmpdir("hostile::through_startd", daemon_run);
}

#[test]
fn the_catalogue_is_well_formed() {
    let catalogue = Catalogue::load();
    assert!(catalogue.program.len() >= 30, "{}", catalogue.program.len());
    let classes: std::collections::BTreeSet<_> =
        catalogue.program.iter().map(|p| p.class.as_str()).collect();
    assert!(classes.len() >= 10, "{classes:?}");
    assert!(catalogue.canary.stdout.ends_with('\n'));
}

/// Runs `body` in a child process (this test binary, only `test`) whose `TMPDIR` is a fresh
/// folder, then checks that the folder is empty once the child has exited. In the child
/// (`CHILD_ENV` set) runs `body` itself.
fn in_private_tmpdir(test: &str, body: fn()) {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        assert_eq!(
            std::env::temp_dir(),
            PathBuf::from(dir),
            "TMPDIR is not private"
        );
        body();
        return;
    }
    // The runtime is prepared (once, shared) before the child needs it.
    crate::sandbox();
    let dir = tempfile::Builder::new()
        .prefix("start-hostile-")
        .tempdir()
        .unwrap();
    let started = Instant::now();
    let out = TestCommand::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("TMPDIR", dir.path())
        .env(CHILD_ENV, dir.path())
        .assert_success();
    // The child's table, for `--nocapture` runs.
    eprintln!(
        "{}\n{test}: {:.1} s",
        String::from_utf8_lossy(&out.stdout),
        started.elapsed().as_secs_f64()
    );
    let left = wait_for_empty(dir.path(), |_| true);
    // Removed without recursion, however deep a leftover tree is.
    let removed = start_sandbox::remove_dir_tree(dir.path());
    assert!(left.is_empty(), "{test} left these in its TMPDIR: {left:?}");
    removed.unwrap();
}

/// What is in `dir` (two levels deep) that `wanted` selects, after waiting up to
/// [`CLEANUP_GRACE`] for it to go.
fn wait_for_empty(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + CLEANUP_GRACE;
    loop {
        let left = entries(dir, 2)
            .into_iter()
            .filter(|e| wanted(e))
            .collect::<Vec<_>>();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The paths under `dir`, relative to it, `depth` levels deep at most.
fn entries(dir: &Path, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if depth > 1 && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let inner = entries(&entry.path(), depth - 1);
            out.extend(inner.into_iter().map(|i| format!("{name}/{i}")));
        }
        out.push(name);
    }
    out
}

/// Scratch and quarantine folders in the private TMPDIR (and one level down: a daemon's own
/// scratch parent).
fn scratch_folders(dir: &Path, include_scratch: bool) -> Vec<String> {
    entries(dir, 2)
        .into_iter()
        .filter(|e| {
            let last = e.rsplit('/').next().unwrap_or(e);
            last.starts_with(QUARANTINE_PREFIX)
                || (include_scratch && last.starts_with(SCRATCH_PREFIX))
        })
        .collect()
}

/// The failures of one run, with the table of what every program did.
#[derive(Default)]
struct Report {
    rows: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn row(&mut self, program: &Program, ok: bool, what: String) {
        let mark = match (ok, program.needs_file_limits()) {
            (true, _) => "ok  ",
            (false, false) => "FAIL",
            (false, true) => "FAIL (needs file-limits)",
        };
        let line = format!("{mark} {:<34} {what}", program.name);
        if !ok {
            self.failures.push(line.clone());
        }
        self.rows.push(line);
    }

    fn fail(&mut self, what: String) {
        self.rows.push(format!("FAIL {what}"));
        self.failures.push(what);
    }

    /// Prints the table and panics with the failures, if any.
    fn finish(self, way: &str, started: Instant) {
        println!("hostile guests {way}: {} rows", self.rows.len());
        for row in &self.rows {
            println!("  {row}");
        }
        println!(
            "{way}: {} failures in {:.1} s",
            self.failures.len(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            self.failures.is_empty(),
            "{} hostile-guest failures {way}:\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

fn canary_limits() -> Limits {
    Limits {
        wall_time: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// The library run: each program through [`Sandbox::exec`], then the canary; after the last,
/// the sandbox is dropped and no scratch folder may remain.
fn library_run() {
    let started = Instant::now();
    let catalogue = Catalogue::load();
    let sandbox = Sandbox::new(SandboxOptions::default()).unwrap();
    let mut report = Report::default();
    let canary = |report: &mut Report, after: &str| match sandbox
        .exec(&catalogue.canary.code, &canary_limits())
    {
        Ok(o) if o.stdout == catalogue.canary.stdout => {}
        Ok(o) => report.fail(format!("canary after {after}: {}", describe(&o))),
        Err(e) => report.fail(format!("canary after {after}: host error: {e}")),
    };
    canary(&mut report, "nothing");
    for program in &catalogue.program {
        let first = sandbox.exec(&program.source(), &program.limits());
        match &first {
            Ok(o) => report.row(program, program.accepts(o), describe(o)),
            Err(e) => report.row(program, false, format!("host error: {e}")),
        }
        if program.varies {
            varies(&mut report, program, first.ok(), || {
                sandbox.exec(&program.source(), &program.limits()).ok()
            });
        }
        canary(&mut report, &program.name);
        let quarantined = scratch_folders(&std::env::temp_dir(), false);
        if !quarantined.is_empty() {
            report.fail(format!(
                "after {}: quarantined {quarantined:?}",
                program.name
            ));
        }
    }
    drop(sandbox);
    let left = wait_for_empty(&std::env::temp_dir(), |e| {
        let last = e.rsplit('/').next().unwrap_or(e);
        last.starts_with(SCRATCH_PREFIX) || last.starts_with(QUARANTINE_PREFIX)
    });
    if !left.is_empty() {
        report.fail(format!("left after the sandbox was dropped: {left:?}"));
    }
    report.finish("through the library", started);
}

/// Checks that a second run of `program` printed something else than the first.
fn varies(
    report: &mut Report,
    program: &Program,
    first: Option<start_sandbox::Outcome>,
    again: impl FnOnce() -> Option<start_sandbox::Outcome>,
) {
    let (Some(a), Some(b)) = (first, again()) else {
        return report.fail(format!("{}: no second run to compare", program.name));
    };
    if a.stdout == b.stdout {
        report.fail(format!(
            "{}: two executions printed the same {:?} (randomness frozen)",
            program.name, a.stdout
        ));
    }
}

/// The judge run: one `start judge` batch of every program (expected output a line none
/// prints) and a canary after each, two jobs; the batch must complete, every program get an
/// accepted status and no program `passed`, every canary pass.
fn judge_run() {
    let started = Instant::now();
    let catalogue = Catalogue::load();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    let mut lines = String::new();
    let line = |id: &str, program: &str, output: &str| {
        let v = serde_json::json!({
            "id": id,
            "program": program,
            "tests": [{"input": "", "output": output}],
        });
        format!("{v}\n")
    };
    for program in &catalogue.program {
        lines.push_str(&line(
            &program.name,
            &program.source(),
            JUDGE_EXPECTED_OUTPUT,
        ));
        lines.push_str(&line(
            &format!("canary after {}", program.name),
            &catalogue.canary.code,
            &catalogue.canary.stdout,
        ));
    }
    std::fs::write(&input, lines).unwrap();
    let results = dir.path().join("results.jsonl");
    let timeout = catalogue::DEFAULT_WALL_MS as f64 / 1e3;
    let out = crate::start()
        .args(["judge", "--quiet", "-j", "2", "--timeout"])
        .arg(timeout.to_string())
        .args([
            "--memory-mib",
            &catalogue::DEFAULT_MEMORY_MIB.to_string(),
            "--input",
        ])
        .arg(&input)
        .arg("-o")
        .arg(&results)
        .output();
    let mut report = Report::default();
    if !out.status.success() {
        report.fail(format!(
            "start judge exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut by_id = BTreeMap::new();
    for l in std::fs::read_to_string(&results)
        .unwrap_or_default()
        .lines()
    {
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => {
                by_id.insert(v["id"].as_str().unwrap_or("").to_string(), v);
            }
            Err(e) => report.fail(format!("an unreadable result line ({e}): {l:.200}")),
        }
    }
    for program in &catalogue.program {
        match by_id.get(&program.name) {
            None => report.row(program, false, "no result (the batch stopped?)".into()),
            Some(v) => {
                let status = &v["tests"][0]["status"];
                let ok = v["passed"] == false && program.judge_accepts(status);
                let mut text = status.to_string();
                text.truncate(300);
                report.row(program, ok, text);
            }
        }
        let id = format!("canary after {}", program.name);
        match by_id.get(&id) {
            Some(v) if v["passed"] == true => {}
            Some(v) => report.fail(format!(
                "{id}: {:.300}",
                v["tests"][0]["status"].to_string()
            )),
            None => report.fail(format!("{id}: no result (the batch stopped?)")),
        }
    }
    report.finish("through start judge", started);
}

/// The daemon run: each program through a `startd` with one worker (so the canary and the
/// bystander share the worker of every hostile program), then the canary and a
/// turn of a bystander session that must keep its state; no worker may be restarted, the RSS
/// of the daemon and each worker stays under its bound, and after a SIGTERM shutdown no scratch
/// folder may remain.
fn daemon_run() {
    let started = Instant::now();
    let catalogue = Catalogue::load();
    let mut daemon = TestDaemon::start(crate::via_daemon::startd_binary(), &["--workers", "1"]);
    let client = daemon.client();
    let mut report = Report::default();
    let rss = catalogue::RssSampler::start(daemon.pid());

    let mut bystander = Bystander::open(&client);
    let canary = |report: &mut Report, after: &str| match client
        .exec(&catalogue.canary.code, &canary_limits())
    {
        Ok(o) if o.stdout == catalogue.canary.stdout => {}
        Ok(o) => report.fail(format!("canary after {after}: {}", describe(&o))),
        Err(e) => report.fail(format!("canary after {after}: {e}")),
    };
    canary(&mut report, "nothing");
    for program in &catalogue.program {
        let first = client.exec(&program.source(), &program.limits());
        match &first {
            Ok(o) => report.row(program, program.accepts(o), describe(o)),
            Err(e) => report.row(program, false, format!("error reply: {e}")),
        }
        if program.varies {
            varies(&mut report, program, first.ok(), || {
                client.exec(&program.source(), &program.limits()).ok()
            });
        }
        canary(&mut report, &program.name);
        if let Err(e) = bystander.turn(&client) {
            report.fail(format!("bystander session after {}: {e}", program.name));
            bystander = Bystander::open(&client);
        }
    }
    match client.stats() {
        Ok(stats) if stats.worker_restarts == 0 => {}
        Ok(stats) => report.fail(format!(
            "{} worker restarts (expected none): {:?}",
            stats.worker_restarts, stats.errors
        )),
        Err(e) => report.fail(format!("stats: {e}")),
    }
    let rss = rss.stop();
    println!(
        "peak RSS: daemon {} MiB, largest worker {} MiB, all together {} MiB",
        rss.daemon >> 20,
        rss.worker >> 20,
        rss.total >> 20
    );
    if rss.daemon > DAEMON_RSS_BOUND {
        report.fail(format!("daemon RSS {} MiB", rss.daemon >> 20));
    }
    if rss.worker > WORKER_RSS_BOUND {
        report.fail(format!("worker RSS {} MiB", rss.worker >> 20));
    }
    let _ = client.close_session(&bystander.id);
    drop(client);

    TestCommand::new("kill")
        .args(["-TERM", &daemon.pid().to_string()])
        .assert_success();
    let status = daemon.wait(Duration::from_secs(30));
    if !status.success() {
        report.fail(format!("startd exited with {status} after SIGTERM"));
    }
    let left = wait_for_empty(&std::env::temp_dir(), |e| {
        let last = e.rsplit('/').next().unwrap_or(e);
        last.starts_with(SCRATCH_PREFIX) || last.starts_with(QUARANTINE_PREFIX)
    });
    if !left.is_empty() {
        report.fail(format!("left after startd's shutdown: {left:?}"));
    }
    report.finish("through startd", started);
}

/// A session of an innocent client: a counter that each turn increments and prints.
struct Bystander {
    id: String,
    count: u64,
}

impl Bystander {
    fn open(client: &start_daemon::BlockingClient) -> Bystander {
        let id = client
            .open_session(&start_sandbox::SessionLimits::default())
            .unwrap();
        let out = client
            .run(&id, "count = 0", &start_sandbox::TurnLimits::default())
            .unwrap();
        assert_eq!(out.status, start_sandbox::Status::Finished, "{out:?}");
        Bystander { id, count: 0 }
    }

    fn turn(&mut self, client: &start_daemon::BlockingClient) -> Result<(), String> {
        let out = client
            .run(
                &self.id,
                "count += 1\nprint(count)",
                &start_sandbox::TurnLimits::default(),
            )
            .map_err(|e| e.to_string())?;
        self.count += 1;
        if out.stdout != format!("{}\n", self.count) {
            return Err(format!("state lost: {}", describe(&out)));
        }
        Ok(())
    }
}
