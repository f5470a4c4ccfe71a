//! Acceptance 4: SIGTERM with requests in flight: they complete, new connections are refused,
//! the socket file is gone, and the exit code is 0.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use start_daemon::ErrorKind;

use crate::{DaemonExt, Raw, daemon, error_kind, outcome};

/// Busy-waits `secs` seconds in the guest, then prints `done`.
fn spin(secs: f64) -> String {
    format!("import time\\nt = time.time()\\nwhile time.time() - t < {secs}: pass\\nprint('done')")
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let mut daemon = daemon(&[]);
    let mut raw = daemon.raw();
    // Four one-second requests on two workers: two run, two wait in the queue.
    for id in 0..4 {
        raw.send_json(&format!(
            r#"{{"id":{id},"op":"exec","code":"{}"}}"#,
            spin(1.0)
        ));
    }
    let mut idle = daemon.raw();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    daemon.signal(Signal::SIGTERM);

    // New connections are refused at once, and the socket file is removed.
    let deadline = Instant::now() + Duration::from_secs(2);
    while daemon.socket().exists() {
        assert!(Instant::now() < deadline, "socket file still there");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(std::os::unix::net::UnixStream::connect(daemon.socket()).is_err());

    // An idle connection is closed; a new request on a busy one is answered `shutting_down`.
    assert!(idle.recv().is_none());
    raw.send_json(r#"{"id":77,"op":"ping"}"#);

    // Everything in flight completes.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let reply = raw.recv().unwrap();
        let id = reply.id.unwrap();
        if id == 77 {
            assert_eq!(error_kind(&reply), Some(ErrorKind::ShuttingDown));
        } else {
            assert_eq!(outcome(&reply).stdout, "done\n");
        }
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3, 77]);
    assert!(
        raw.recv().is_none(),
        "connection should close after draining"
    );

    let status = daemon.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[test]
fn requests_past_the_grace_period_get_shutting_down() {
    let mut daemon = daemon(&["--workers", "1", "--shutdown-grace", "0.5"]);
    let mut raw: Raw = daemon.raw();
    raw.send_json(&format!(
        r#"{{"id":1,"op":"exec","code":"{}"}}"#,
        spin(30.0)
    ));
    // Queued behind the first: the single worker is busy with it.
    std::thread::sleep(Duration::from_millis(100));
    raw.send_json(&format!(r#"{{"id":2,"op":"exec","code":"{}"}}"#, spin(0.1)));
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal(Signal::SIGINT);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let reply = raw.recv().unwrap();
        kinds.push((reply.id.unwrap(), error_kind(&reply)));
    }
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            (1, Some(ErrorKind::ShuttingDown)),
            (2, Some(ErrorKind::ShuttingDown))
        ]
    );
    let status = daemon.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(!daemon.socket().exists());
}
