//! `start exec --daemon` and `start bench --daemon`: the CLI through a real `startd` on a real
//! socket, with real worker processes.

use std::path::PathBuf;
use std::process::Command;

use start_daemon::testutil::TestDaemon;

use crate::start;

/// The `startd` binary beside `start`, built first when this package's tests run alone
/// (`cargo test -p start` builds only this package's binaries).
pub(crate) fn startd_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_start")).with_file_name("startd");
    if !path.is_file() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "start-daemon", "--bin", "startd"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building startd failed");
    }
    path
}

/// A `startd` with one worker on a socket in a temporary folder, killed on drop.
fn daemon() -> TestDaemon {
    TestDaemon::start(startd_binary(), &["--workers", "1"])
}

#[test]
fn exec_and_bench_go_through_a_running_startd() {
    crate::sandbox(); // runtime prepared, so the daemon's workers start at once
    let daemon = daemon();

    let stdout = start()
        .args(["exec", "--daemon", "--socket"])
        .arg(daemon.socket())
        .args(["--json", "-c", "print(6 * 7)"])
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["stdout"], "42\n");
    start()
        .args(["exec", "--daemon", "--socket"])
        .arg(daemon.socket())
        .args(["-c", "import sys; sys.exit(3)"])
        .assert_code(3);

    let stdout = start()
        .args(["bench", "--daemon", "--socket"])
        .arg(daemon.socket())
        .args(["--json", "-n", "40", "-c", "2", "--warmup", "2"])
        .stdout();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["mode"], "daemon");
    assert_eq!(report["iterations"], 40);
    assert_eq!(report["errors"], 0);
    assert!(report["p50_ms"].as_f64().unwrap() > 0.0);

    // The daemon counted them: 2 execs + 2 x 2 warm-up + 40 measured.
    let stats = daemon.client().stats().unwrap();
    assert_eq!(stats.requests.get("exec"), Some(&46), "{stats:?}");
}

#[test]
fn daemon_flags_without_a_daemon_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody.sock");
    for sub in ["exec", "bench"] {
        let mut cmd = start();
        cmd.args([sub, "--daemon", "--socket"]).arg(&missing);
        if sub == "exec" {
            cmd.args(["-c", "print(1)"]);
        }
        let out = cmd.assert_code(2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot connect to startd"), "{sub}: {err}");
    }
}
