//! The socket: mode 0600 in a folder only the daemon's uid controls, stale sockets replaced,
//! a live daemon not taken over, and invariant 5: a client talks only to a daemon of the uid
//! it expects, and a daemon serves only the uids it allows.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use start_daemon::testutil::{TestCommand, TestDaemon};
use start_daemon::{BlockingClient, ClientError, ConnectOptions};

use crate::{daemon, daemon_at, daemon_in, startd};

/// Runs `startd --socket SOCKET --workers 1` and expects it to refuse to start: exit 2 within
/// a minute (it checks the socket's folder before starting workers) with every one of
/// `needles` in its message. Returns the message.
fn refuses_to_serve_on(socket: &Path, needles: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_startd"))
        .arg("--socket")
        .arg(socket)
        .args(["--workers", "1"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "startd is serving on {} instead of refusing",
                socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    stderr
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Another local user made `/tmp/start-0/` first: a daemon must not serve in a folder it
/// does not own (when the tests run as root, the folder is given to `nobody`).
#[test]
fn a_socket_folder_owned_by_another_uid_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give a folder to another uid");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let squatted = dir.path().join("start-0");
    std::fs::create_dir(&squatted).unwrap();
    std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o700)).unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(&squatted, Some(nobody), None).unwrap();
    let stderr = refuses_to_serve_on(
        &squatted.join("startd.sock"),
        &[
            "owned by uid 65534",
            "not by this daemon's uid 0",
            "--socket",
            "XDG_RUNTIME_DIR",
        ],
    );
    assert!(stderr.contains(&*squatted.to_string_lossy()), "{stderr}");
    assert!(!squatted.join("startd.sock").exists());
}

#[test]
fn a_socket_folder_others_may_write_to_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    for bad in [0o777, 0o770, 0o1777] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(bad)).unwrap();
        refuses_to_serve_on(
            &shared.join("startd.sock"),
            &[
                &format!("mode {bad:04o}"),
                "group or others may write",
                "chmod 700",
            ],
        );
        assert!(!shared.join("startd.sock").exists());
    }
}

#[test]
fn a_symlinked_socket_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("start-0");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    refuses_to_serve_on(&link.join("startd.sock"), &["is a symbolic link"]);
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    assert_eq!(mode(&real), 0o700, "the link's target was changed");
}

/// The folder a daemon creates: 0700 and a 0600 socket by default; with `--allow-uid`, 0711
/// and 0666 so that others can reach the socket at all (the peer-credential check decides).
#[test]
fn socket_and_folder_modes_follow_allow_uid() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private").join("startd.sock");
    let d = daemon_at(dir, socket.clone(), &["--workers", "1"]);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);
    d.client().ping().unwrap();
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shared").join("startd.sock");
    let d = daemon_at(
        dir,
        socket.clone(),
        &["--workers", "1", "--allow-uid", "12345"],
    );
    assert_eq!(mode(socket.parent().unwrap()), 0o711);
    assert_eq!(mode(&socket), 0o666);
    d.client().ping().unwrap();
}

/// The client checks who answers before it sends anything: a listener that is not of the
/// expected uid gets nothing, and the error says which uid answered.
#[test]
fn a_client_refuses_a_daemon_of_an_unexpected_uid() {
    let own = nix::unistd::geteuid().as_raw();
    let other = if own == 0 { 1 } else { own - 1 };

    let d = daemon(&["--workers", "1"]);
    let err =
        BlockingClient::connect_with(d.socket(), &ConnectOptions::expect_uid(other)).unwrap_err();
    match &err {
        ClientError::WrongDaemonUid {
            path,
            expected,
            actual,
        } => {
            assert_eq!(
                (path.as_path(), *expected, *actual),
                (d.socket(), other, own)
            );
        }
        e => panic!("expected WrongDaemonUid, got {e:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("runs as uid {own}")), "{msg}");
    assert!(msg.contains(&format!("START_DAEMON_UID={own}")), "{msg}");
    BlockingClient::connect_with(d.socket(), &ConnectOptions::expect_uid(own))
        .unwrap()
        .ping()
        .unwrap();
    d.client().ping().unwrap();

    // A fake "daemon": a plain listener. Expecting another uid, the client sends it nothing.
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("startd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let fake = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        got
    });
    let err = BlockingClient::connect_with(&path, &ConnectOptions::expect_uid(other)).unwrap_err();
    assert!(matches!(err, ClientError::WrongDaemonUid { .. }), "{err:?}");
    drop(err);
    assert_eq!(
        fake.join().unwrap(),
        b"",
        "the client sent something to the impostor"
    );
}

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
/// default, accepted with `--allow-uid`. The socket's modes come from the daemon alone: with
/// `--allow-uid` anyone can connect, and the peer-credential check refuses who is not allowed.
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
try:
    s.connect(sys.argv[1])
except PermissionError as e:
    print("cannot connect:", e)
    sys.exit(0)
body = json.dumps({"id": 1, "op": "ping"}).encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except BrokenPipeError:
    pass  # a refusing daemon may answer and stop reading before the request arrives
n = struct.unpack(">I", s.recv(4))[0]
print(json.loads(s.recv(n)))
"#;
    use std::os::unix::process::CommandExt;
    let ping_as_nobody = |socket: &Path| {
        let mut python = std::process::Command::new("python3");
        python.uid(NOBODY).gid(NOBODY);
        TestCommand::from(python)
            .args(["-c", script])
            .arg(socket)
            .current_dir("/")
            .env_remove("PYTHONPATH")
            .stdout()
    };
    // The test's own folder lets others through (0711); the daemon makes the rest.
    let start = |allow: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let socket = dir.path().join("start").join("startd.sock");
        let mut args = vec!["--workers", "1"];
        if !allow.is_empty() {
            args.extend(["--allow-uid", allow]);
        }
        daemon_at(dir, socket, &args)
    };

    // No --allow-uid: the socket is 0600 in a 0700 folder, so nobody cannot even connect.
    let d = start("");
    let answer = ping_as_nobody(d.socket());
    assert!(answer.contains("cannot connect"), "{answer}");
    drop(d);

    // Another uid is allowed: the socket is reachable, and nobody, not allowed, is refused.
    let d = start("12345");
    let answer = ping_as_nobody(d.socket());
    assert!(answer.contains("forbidden"), "{answer}");
    d.client().ping().unwrap();
    let stats = d.client().stats().unwrap();
    assert_eq!(stats.errors.get("forbidden"), Some(&1));
    drop(d);

    let d = start(&NOBODY.to_string());
    let answer = ping_as_nobody(d.socket());
    assert!(answer.contains("pong"), "{answer}");
}
