//! `start exec --daemon` and `start bench --daemon`: the CLI through a real `startd` on a real
//! socket, with real worker processes.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `startd` binary beside `start`, built first when this package's tests run alone.
fn startd_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_start")).with_file_name("startd");
    if !path.is_file() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "daemon", "--bin", "startd"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building startd failed");
    }
    path
}

/// A `startd` with one worker on a socket in a temporary folder, killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("start-cli-daemon-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("startd.sock");
        let mut child = Command::new(startd_binary())
            .arg("--socket")
            .arg(&socket)
            .args(["--workers", "1"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        while UnixStream::connect(&socket).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("startd exited while starting: {status}");
            }
            assert!(Instant::now() < deadline, "startd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Command {
    Command::new(env!("CARGO_BIN_EXE_start"))
}

#[test]
fn exec_and_bench_go_through_a_running_startd() {
    crate::sandbox(); // runtime prepared, so the daemon's workers start at once
    let daemon = Daemon::start();

    let out = start()
        .args(["exec", "--daemon", "--socket"])
        .arg(&daemon.socket)
        .args(["--json", "-c", "print(6 * 7)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stdout"], "42\n");
    let out = start()
        .args(["exec", "--daemon", "--socket"])
        .arg(&daemon.socket)
        .args(["-c", "import sys; sys.exit(3)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));

    let out = start()
        .args(["bench", "--daemon", "--socket"])
        .arg(&daemon.socket)
        .args(["--json", "-n", "40", "-c", "2", "--warmup", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "daemon");
    assert_eq!(report["iterations"], 40);
    assert_eq!(report["errors"], 0);
    assert!(report["p50_ms"].as_f64().unwrap() > 0.0);

    // The daemon counted them: 2 execs + 2 x 2 warm-up + 40 measured.
    let stats = start_daemon::BlockingClient::connect(&daemon.socket)
        .unwrap()
        .stats()
        .unwrap();
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
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot connect to startd"), "{sub}: {err}");
    }
}
