//! Acceptance 3: a worker killed (or hung) during an exec: that request fails with
//! `worker_lost`, the worker is replaced, and concurrent requests succeed.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use start_daemon::{BlockingClient, ErrorKind, Stats};
use start_sandbox::{Limits, SessionLimits, TurnLimits};

use crate::daemon;

/// Waits until some worker is busy and returns its pid.
fn busy_worker(client: &BlockingClient) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = client.stats().unwrap();
        if let Some(w) = stats.workers.iter().find(|w| w.busy && w.pid != 0) {
            return w.pid;
        }
        assert!(Instant::now() < deadline, "no worker became busy");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for_restarts(client: &BlockingClient, n: u64) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = client.stats().unwrap();
        if stats.worker_restarts >= n && stats.workers.iter().all(|w| w.pid != 0) {
            return stats;
        }
        assert!(Instant::now() < deadline, "worker not replaced: {stats:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs execs on another connection until told to stop; returns how many succeeded.
fn bystander(
    socket: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let mut ok = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let o = client.exec("print(ok := 1)", &Limits::default()).unwrap();
            assert_eq!(o.stdout, "1\n");
            ok += 1;
        }
        ok
    })
}

#[test]
fn killed_worker_fails_only_its_request_and_is_replaced() {
    let daemon = daemon(&[]);
    let socket = daemon.socket().to_path_buf();
    let victim = std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let limits = Limits {
            wall_time: Duration::from_secs(30),
            ..Limits::default()
        };
        client.exec("while True: pass", &limits)
    });
    let observer = daemon.client();
    let pid = busy_worker(&observer);
    // Concurrent requests run on the other worker meanwhile.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let others = bystander(daemon.socket().to_path_buf(), stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();

    let err = victim.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::WorkerLost), "{err}");
    let stats = wait_for_restarts(&observer, 1);
    assert!(stats.workers.iter().all(|w| w.pid != pid));

    // Keep the bystander going a little on the new pool, then stop it.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ok = others.join().unwrap();
    assert!(ok > 0);
    let o = observer.exec("print('after')", &Limits::default()).unwrap();
    assert_eq!(o.stdout, "after\n");
}

#[test]
fn hung_worker_is_killed_after_wall_time_plus_grace() {
    let daemon = daemon(&[]);
    let socket = daemon.socket().to_path_buf();
    let victim = std::thread::spawn(move || {
        let client = BlockingClient::connect(&socket).unwrap();
        let limits = Limits {
            wall_time: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        (client.exec("while True: pass", &limits), started.elapsed())
    });
    let observer = daemon.client();
    let pid = busy_worker(&observer);
    // A stopped process neither answers nor dies: exactly a hang.
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let (result, took) = victim.join().unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::WorkerLost), "{err}");
    assert!(
        took >= start_daemon::HANG_GRACE,
        "replaced too early: {took:?}"
    );
    assert!(
        took < start_daemon::HANG_GRACE + Duration::from_secs(10),
        "{took:?}"
    );
    wait_for_restarts(&observer, 1);
    let o = observer.exec("print('after')", &Limits::default()).unwrap();
    assert_eq!(o.stdout, "after\n");
}

#[test]
fn sessions_pin_to_a_worker_and_die_with_it() {
    let daemon = daemon(&[]);
    let client = daemon.client();
    let a = client.open_session(&SessionLimits::default()).unwrap();
    let b = client.open_session(&SessionLimits::default()).unwrap();
    client.run(&a, "x = 'a'", &TurnLimits::default()).unwrap();
    client.run(&b, "x = 'b'", &TurnLimits::default()).unwrap();
    let stats = client.stats().unwrap();
    // Spread over both workers.
    assert!(stats.workers.iter().all(|w| w.sessions == 1), "{stats:?}");
    for _ in 0..5 {
        let o = client.run(&a, "print(x)", &TurnLimits::default()).unwrap();
        assert_eq!(o.stdout, "a\n");
        let o = client.run(&b, "print(x)", &TurnLimits::default()).unwrap();
        assert_eq!(o.stdout, "b\n");
    }
    // Kill the first worker while idle: the session it held is gone, the other is intact.
    kill(Pid::from_raw(stats.workers[0].pid as i32), Signal::SIGKILL).unwrap();
    wait_for_restarts(&client, 1);
    let ra = client.run(&a, "print(x)", &TurnLimits::default());
    let rb = client.run(&b, "print(x)", &TurnLimits::default());
    match (ra, rb) {
        (Err(e), Ok(o)) => {
            assert_eq!(e.kind(), Some(ErrorKind::NoSuchSession));
            assert_eq!(o.stdout, "b\n");
        }
        (Ok(o), Err(e)) => {
            assert_eq!(e.kind(), Some(ErrorKind::NoSuchSession));
            assert_eq!(o.stdout, "a\n");
        }
        other => panic!("expected exactly one lost session: {other:?}"),
    }
    // An ended session says so until closed.
    let s = client.open_session(&SessionLimits::default()).unwrap();
    client.run(&s, "exit()", &TurnLimits::default()).unwrap();
    let err = client.run(&s, "1", &TurnLimits::default()).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SessionEnded));
    client.close_session(&s).unwrap();
}

#[test]
fn idle_sessions_are_closed() {
    let daemon = daemon(&["--workers", "1"]);
    let client = daemon.client();
    let limits = SessionLimits {
        idle_timeout: Duration::from_millis(300),
        ..SessionLimits::default()
    };
    let s = client.open_session(&limits).unwrap();
    client.run(&s, "x = 1", &TurnLimits::default()).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(client.stats().unwrap().sessions_open, 0);
    let err = client.run(&s, "x", &TurnLimits::default()).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NoSuchSession));
}
