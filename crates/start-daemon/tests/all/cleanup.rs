//! What a worker does after its answer is its own time, not the next client's; and nothing a
//! guest wrote outlives its worker: not a graceful shutdown, not a killed or stuck worker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use start_daemon::testutil::TestDaemon;
use start_daemon::{BlockingClient, ErrorKind};
use start_sandbox::{Limits, SessionLimits, TurnLimits};

use crate::{DaemonExt, daemon, isolated, wait_for};

/// Guest code that leaves `folders` empty folders in its scratch folder, and a file named
/// `marker`: slow to clean up after (one removal per folder).
fn litter(folders: u32, marker: &str) -> String {
    format!(
        "import os\nopen('/{marker}', 'w').close()\nfor i in range({folders}): os.mkdir(f'/d{{i}}')\nprint('littered')"
    )
}

/// Folders a guest may leave within the default scratch entry limit (with its marker).
const LITTER: u32 = 4_000;

/// Folders a guest leaves when a client raises its entry limit (and the daemon its ceiling):
/// about half a second of cleanup, more than the hang grace below.
const BIG_LITTER: u32 = 40_000;

/// Every path under `dir`, folders included.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            found.push(e.path());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    found
}

/// The worker folder (a child of the run folder in the daemon's `TMPDIR`) holding a scratch
/// folder with `marker` in it.
fn worker_folder_with(daemon: &TestDaemon, marker: &str) -> PathBuf {
    let tmp = daemon.tmp_dir();
    let hits: Vec<PathBuf> = tree(&tmp)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == marker))
        .collect();
    assert_eq!(hits.len(), 1, "{marker} in {:?}", tree(&tmp));
    let Ok(rel) = hits[0].strip_prefix(&tmp) else {
        panic!("{} not under {}", hits[0].display(), tmp.display());
    };
    // run folder / worker folder / scratch folder / marker
    assert_eq!(rel.components().count(), 4, "{}", rel.display());
    tmp.join(rel.iter().take(2).collect::<PathBuf>())
}

/// Waits until `folder` is gone (a dead worker's folder is removed in the background).
fn wait_gone(folder: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while folder.exists() {
        assert!(Instant::now() < deadline, "{} is left", folder.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_empty(daemon: &TestDaemon) {
    let left = tree(&daemon.tmp_dir());
    assert!(
        left.is_empty(),
        "left in the daemon's temporary folder: {:?}\n{}",
        &left[..left.len().min(20)],
        daemon.log()
    );
}

#[test]
fn cleanup_after_a_reply_is_not_charged_to_the_next_job() {
    // One worker, and little grace past a job's wall time.
    let daemon = daemon(&[
        "--workers",
        "1",
        "--hang-grace",
        "0.3",
        "--max-scratch-entries",
        "100000",
    ]);
    let client = daemon.client();
    let other = client.open_session(&SessionLimits::default()).unwrap();
    client
        .run(&other, "x = 'kept'", &TurnLimits::default())
        .unwrap();
    let socket = daemon.socket().to_path_buf();
    let litterer = std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let limits = Limits {
            files: start_sandbox::FileLimits {
                scratch_entries: BIG_LITTER + 10,
                ..start_sandbox::FileLimits::default()
            },
            wall_time: Duration::from_secs(40),
            ..Limits::default()
        };
        client.exec(&litter(BIG_LITTER, "m"), &limits)
    });
    wait_for(&client, "the littering exec is not running", |s| {
        s.workers[0].busy
    });
    // Queued behind it: taken by the worker as soon as the littering reply is out, while the
    // worker is still removing those folders.
    let socket = daemon.socket().to_path_buf();
    let next = std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let limits = Limits {
            wall_time: Duration::from_millis(200),
            ..Limits::default()
        };
        client.exec("print('next')", &limits)
    });
    let littered = litterer.join().unwrap().unwrap();
    assert_eq!(littered.stdout, "littered\n", "{littered:?}");
    let o = next.join().unwrap().unwrap();
    assert_eq!(o.stdout, "next\n");
    let stats = client.stats().unwrap();
    assert_eq!(stats.worker_restarts, 0, "{stats:?}");
    let o = client
        .run(&other, "print(x)", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "kept\n");
}

#[test]
fn a_worker_past_its_cleanup_timeout_is_replaced_and_its_folder_removed() {
    let daemon = isolated(&["--cleanup-timeout", "0.01"]);
    let client = daemon.client();
    // One session per worker.
    let litterer = client.open_session(&SessionLimits::default()).unwrap();
    let other = client.open_session(&SessionLimits::default()).unwrap();
    client
        .run(&other, "x = 'kept'", &TurnLimits::default())
        .unwrap();
    let o = client
        .run(&litterer, &litter(LITTER, "m"), &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "littered\n", "{o:?}");
    let folder = worker_folder_with(&daemon, "m");
    // The close is answered; removing the session's folders takes the worker far longer
    // than 10 ms, so it is replaced, and its folder goes with it.
    client.close_session(&litterer).unwrap();
    let stats = wait_for(&client, "the worker was not replaced", |s| {
        s.worker_restarts == 1 && s.workers.iter().all(|w| w.pid != 0)
    });
    assert_eq!(stats.workers.len(), 2);
    wait_gone(&folder);
    let o = client
        .run(&other, "print(x)", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "kept\n");
}

#[test]
fn a_killed_worker_takes_its_scratch_folder_with_it() {
    let daemon = isolated(&[]);
    let client = daemon.client();
    let victim = client.open_session(&SessionLimits::default()).unwrap();
    let other = client.open_session(&SessionLimits::default()).unwrap();
    client
        .run(&other, "x = 'kept'", &TurnLimits::default())
        .unwrap();
    let socket = daemon.socket().to_path_buf();
    let turn = std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let limits = TurnLimits {
            wall_time: Duration::from_secs(30),
            ..TurnLimits::default()
        };
        client.run(
            &victim,
            "open('/victim', 'w').write('x' * 4096)\nwhile True: pass",
            &limits,
        )
    });
    let stats = wait_for(&client, "the victim's turn is not running", |s| {
        s.workers.iter().any(|w| w.busy)
    });
    let pid = stats
        .workers
        .iter()
        .find(|w| w.busy)
        .map(|w| w.pid)
        .unwrap();
    // The guest has written its file once the folder holds it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tree(&daemon.tmp_dir())
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "victim"))
    {
        assert!(Instant::now() < deadline, "the victim wrote nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let folder = worker_folder_with(&daemon, "victim");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let err = turn.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::WorkerLost), "{err}");
    let stats = wait_for(&client, "the worker was not replaced", |s| {
        s.worker_restarts == 1 && s.workers.iter().all(|w| w.pid != 0)
    });
    assert!(stats.workers.iter().all(|w| w.pid != pid), "{stats:?}");
    wait_gone(&folder);
    let o = client
        .run(&other, "print(x)", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "kept\n");
    assert_eq!(client.stats().unwrap().sessions_open, 1);
}

#[test]
fn a_graceful_shutdown_leaves_nothing_and_workers_exit_by_themselves() {
    let mut daemon = isolated(&[]);
    let client = daemon.client();
    let s = client.open_session(&SessionLimits::default()).unwrap();
    client
        .run(
            &s,
            "open('/kept-open', 'w').write('x')",
            &TurnLimits::default(),
        )
        .unwrap();
    let o = client
        .exec(
            "open('/exec', 'w').write('x'); print('ok')",
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(o.stdout, "ok\n");
    assert!(!tree(&daemon.tmp_dir()).is_empty());
    drop(client);
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.log());
    assert_empty(&daemon);
    let log = daemon.log();
    assert_eq!(
        log.matches("worker stopped by itself").count(),
        2,
        "both workers exit when their pipe closes:\n{log}"
    );
    assert!(!log.contains("pipe closing; killed"), "{log}");
}

#[test]
fn a_worker_that_ignores_its_closed_pipe_is_killed_at_shutdown() {
    let mut daemon = isolated(&[]);
    let client = daemon.client();
    let s = client.open_session(&SessionLimits::default()).unwrap();
    client
        .run(
            &s,
            "open('/kept-open', 'w').write('x')",
            &TurnLimits::default(),
        )
        .unwrap();
    let stats = client.stats().unwrap();
    drop(client);
    // A stopped worker never reads the end of its pipe.
    let stuck = stats.workers[0].pid;
    kill(Pid::from_raw(stuck as i32), Signal::SIGSTOP).unwrap();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait(start_daemon::STOP_TIMEOUT + Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.log());
    assert_empty(&daemon);
    let log = daemon.log();
    assert!(log.contains("of its pipe closing; killed"), "{log}");
    assert_eq!(log.matches("worker stopped by itself").count(), 1, "{log}");
}

#[test]
fn a_killed_daemons_run_folder_is_removed_by_the_next_daemon() {
    let mut first = isolated(&["--workers", "1"]);
    let o = first.client().exec("print(1)", &Limits::default()).unwrap();
    assert_eq!(o.stdout, "1\n");
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(20));
    let tmp = first.tmp_dir();
    let left = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(
        left,
        1,
        "a killed daemon leaves its run folder: {:?}",
        tree(&tmp)
    );
    // A folder of a daemon that still runs (this process, as far as the pid goes) is kept.
    let live = tmp.join(format!(
        "{}{}-0123456789abcdef",
        start_daemon::RUN_FOLDER_PREFIX,
        std::process::id()
    ));
    std::fs::create_dir(&live).unwrap();
    let socket = first.dir().join("second.sock");
    let mut second = crate::startd()
        .arg("--socket")
        .arg(&socket)
        .args(["--workers", "1"])
        .env("TMPDIR", &tmp)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            second.try_wait().unwrap().is_none(),
            "the second daemon exited"
        );
        assert!(
            Instant::now() < deadline,
            "the second daemon is not listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut names: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).unwrap();
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // The stale folder is gone, the live one kept, and the second daemon's own is removed.
    let own = names.iter().filter(|n| !live.ends_with(n.as_str())).count();
    assert_eq!(
        (names.len(), own),
        (2, 1),
        "the killed daemon's run folder is still there: {names:?}"
    );
    assert!(live.exists());
    std::fs::remove_dir(&live).unwrap();
    assert_empty(&first);
}

/// Where [`a_daemon_kept_until_exit_is_stopped_when_the_test_process_exits`]'s child says what
/// it started.
const SHARED_REPORT: &str = "START_TEST_SHARED_DAEMON_REPORT";

/// Run only as that test's child (its own test process): starts a daemon, writes its pid, its
/// folder and its workers' run folder to the file `SHARED_REPORT` names, and hands it to
/// [`TestDaemon::stop_at_exit`], as a test binary's shared daemon is.
#[test]
#[ignore = "run by a_daemon_kept_until_exit_is_stopped_when_the_test_process_exits"]
fn shared_daemon_child() {
    let Some(report) = std::env::var_os(SHARED_REPORT) else {
        return;
    };
    let d = daemon(&["--workers", "1"]);
    d.client().ping().unwrap();
    let runs: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains(&format!("startd-{}-", d.pid())))
        .collect();
    assert_eq!(runs.len(), 1, "the daemon's run folder: {runs:?}");
    std::fs::write(
        &report,
        format!("{}\n{}\n{}\n", d.pid(), d.dir().display(), runs[0]),
    )
    .unwrap();
    d.stop_at_exit();
}

#[test]
fn a_daemon_kept_until_exit_is_stopped_when_the_test_process_exits() {
    let report = tempfile::NamedTempFile::new().unwrap();
    // Its output goes to a file, not a pipe: a daemon it leaked would hold a pipe open, and
    // this test would wait on it instead of failing.
    let log = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "cleanup::shared_daemon_child"])
        .env(SHARED_REPORT, report.path())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .status()
        .unwrap();
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(status.success(), "the child test failed: {output}");
    let text = std::fs::read_to_string(report.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "the child's report: {text:?}");
    let pid: i32 = lines[0].parse().unwrap();
    // The child test process reaped it at exit: a pid that is gone (or reused by now, which
    // is not a startd with that folder).
    let alive = kill(Pid::from_raw(pid), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains(lines[1]));
    assert!(
        !alive,
        "startd {pid} outlived the test process that shared it"
    );
    for path in &lines[1..] {
        assert!(
            !Path::new(path).exists(),
            "{path} outlived the test process"
        );
    }
}
