//! The socket: mode 0600, stale sockets replaced, a live daemon not taken over, and
//! acceptance 5: a uid that is not allowed is refused.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use start_daemon::testutil::{TestCommand, TestDaemon};

use crate::{daemon, daemon_in, startd};

#[test]
fn socket_is_private_and_a_live_daemon_is_not_taken_over() {
    let daemon = daemon(&["--workers", "1"]);
    let mode = std::fs::metadata(daemon.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = startd()
        .arg("--socket")
        .arg(daemon.socket())
        .args(["--workers", "1"])
        .assert_code(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already listening"), "{stderr}");
    // The first daemon is unaffected.
    daemon.client().ping().unwrap();
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(TestDaemon::SOCKET_FILE);
    // A socket file nobody listens on, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let daemon = daemon_in(dir, &["--workers", "1"]);
    assert_eq!(daemon.socket(), socket);
    daemon.client().ping().unwrap();
}

#[test]
fn a_regular_file_in_the_way_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("startd.sock");
    std::fs::write(&socket, "precious").unwrap();
    startd()
        .arg("--socket")
        .arg(&socket)
        .args(["--workers", "1"])
        .assert_code(2);
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
}

/// A client running as another uid (only possible when the tests run as root): refused by
/// default, accepted with `--allow-uid`.
#[test]
fn other_uids_are_refused_unless_allowed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "skipped: needs root to run a client as another uid (see the unit test of uid_allowed)"
        );
        return;
    }
    const NOBODY: u32 = 65534;
    let script = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
body = json.dumps({"id": 1, "op": "ping"}).encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except BrokenPipeError:
    pass  # a refusing daemon may answer and stop reading before the request arrives
n = struct.unpack(">I", s.recv(4))[0]
print(json.loads(s.recv(n)))
"#;
    let ping_as_nobody = |daemon: &TestDaemon| {
        // Let `nobody` reach the socket file, so that the peer-credential check is what
        // decides.
        std::fs::set_permissions(daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(daemon.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut python = std::process::Command::new("python3");
        python.uid(NOBODY).gid(NOBODY);
        TestCommand::from(python)
            .args(["-c", script])
            .arg(daemon.socket())
            .current_dir("/")
            .env_remove("PYTHONPATH")
            .stdout()
    };
    use std::os::unix::process::CommandExt;

    let daemon = daemon(&["--workers", "1"]);
    let answer = ping_as_nobody(&daemon);
    assert!(answer.contains("forbidden"), "{answer}");
    daemon.client().ping().unwrap();
    let stats = daemon.client().stats().unwrap();
    assert_eq!(stats.errors.get("forbidden"), Some(&1));
    drop(daemon);

    let daemon = crate::daemon(&["--workers", "1", "--allow-uid", &NOBODY.to_string()]);
    let answer = ping_as_nobody(&daemon);
    assert!(answer.contains("pong"), "{answer}");
    std::thread::sleep(Duration::from_millis(10));
}
