//! Session accounting under concurrency: the session cap and the spread over workers hold for
//! concurrent opens, and closes are never dropped, whatever the queues hold.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use start_daemon::{BlockingClient, ErrorKind};
use start_sandbox::{SessionLimits, TurnLimits};

use crate::{daemon, isolated, wait_for};

/// Busy-waits `secs` seconds in the guest.
fn spin(secs: f64) -> String {
    format!("import time\nt = time.time()\nwhile time.time() - t < {secs}: pass\n")
}

fn long_turn() -> TurnLimits {
    TurnLimits {
        wall_time: Duration::from_secs(20),
        ..TurnLimits::default()
    }
}

/// Waits until `done(stats)` holds.

#[test]
fn concurrent_opens_respect_the_cap_and_spread_over_workers() {
    let daemon = daemon(&["--max-sessions", "2"]);
    let start = Arc::new(Barrier::new(20));
    let opens: Vec<_> = (0..20)
        .map(|_| {
            let (socket, start) = (daemon.socket().to_path_buf(), start.clone());
            std::thread::spawn(move || {
                let client = BlockingClient::connect(&socket).unwrap();
                start.wait();
                client.open_session(&SessionLimits::default())
            })
        })
        .collect();
    let mut opened = Vec::new();
    for open in opens {
        match open.join().unwrap() {
            Ok(name) => opened.push(name),
            Err(e) => assert_eq!(e.kind(), Some(ErrorKind::Busy), "{e}"),
        }
    }
    assert_eq!(opened.len(), 2, "opened {opened:?} with --max-sessions 2");
    let client = daemon.client();
    let stats = client.stats().unwrap();
    assert_eq!(stats.sessions_open, 2, "{stats:?}");
    let spread: Vec<u64> = stats.workers.iter().map(|w| w.sessions).collect();
    assert_eq!(spread, [1, 1], "one session per worker: {stats:?}");
    // Each works, and closing one makes room for another.
    for (i, s) in opened.iter().enumerate() {
        let o = client
            .run(s, &format!("print({i})"), &TurnLimits::default())
            .unwrap();
        assert_eq!(o.stdout, format!("{i}\n"));
    }
    client.close_session(&opened[0]).unwrap();
    let again = client.open_session(&SessionLimits::default()).unwrap();
    let o = client
        .run(&again, "print('again')", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "again\n");
    let err = client.open_session(&SessionLimits::default()).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Busy), "{err}");
    assert_eq!(client.stats().unwrap().worker_restarts, 0);
}

/// Opens a session whose guest leaves a file named `marker` in its scratch folder.
fn open_marked(client: &BlockingClient, marker: &str, limits: &SessionLimits) -> String {
    let s = client.open_session(limits).unwrap();
    let o = client
        .run(
            &s,
            &format!("open('/{marker}', 'w').close()"),
            &TurnLimits::default(),
        )
        .unwrap();
    assert!(o.stderr.is_empty(), "{o:?}");
    s
}

/// The files named `name` anywhere under `dir` (the daemon's run folder holds the workers'
/// folders, which hold the guests' scratch folders).
fn find(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_name() == name {
                found.push(path.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(path);
            }
        }
    }
    found
}

#[test]
fn a_close_behind_a_full_queue_is_queued_not_refused() {
    // One worker, one job may wait: a long turn runs, a second waits, the queue is full.
    let daemon = isolated(&["--workers", "1", "--queue", "1"]);
    let client = daemon.client();
    let busy = client.open_session(&SessionLimits::default()).unwrap();
    let victim = open_marked(&client, "victim-marker", &SessionLimits::default());
    assert_eq!(find(&daemon.tmp_dir(), "victim-marker").len(), 1);
    let turns: Vec<_> = [0.8, 0.1]
        .into_iter()
        .map(|secs| {
            let (socket, busy) = (daemon.socket().to_path_buf(), busy.clone());
            let t = std::thread::spawn(move || {
                let client = BlockingClient::connect(&socket).unwrap();
                client.run(&busy, &spin(secs), &long_turn())
            });
            wait_for(&client, "the turn is not running or queued", |s| {
                s.workers[0].busy && s.queue_depth == u64::from(secs < 0.5)
            });
            t
        })
        .collect();
    // Another job is refused now: the queue is full.
    let err = client.run(&busy, "1", &TurnLimits::default()).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Busy), "{err}");
    // The close is not: it waits its turn behind them.
    client.close_session(&victim).unwrap();
    for t in turns {
        t.join().unwrap().unwrap();
    }
    // The next job runs once the worker has freed the interpreter (after its answer).
    let o = client
        .run(&busy, "print('next')", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "next\n");
    assert!(
        find(&daemon.tmp_dir(), "victim-marker").is_empty(),
        "the closed session's interpreter was leaked"
    );
    let err = client
        .run(&victim, "1", &TurnLimits::default())
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NoSuchSession), "{err}");
    let stats = client.stats().unwrap();
    assert_eq!(
        (stats.sessions_open, stats.worker_restarts),
        (1, 0),
        "{stats:?}"
    );
}

#[test]
fn an_idle_close_behind_a_full_queue_still_frees_the_interpreter() {
    let daemon = isolated(&["--workers", "1", "--queue", "1"]);
    let client = daemon.client();
    let busy = client.open_session(&SessionLimits::default()).unwrap();
    let idle = SessionLimits {
        idle_timeout: Duration::from_millis(200),
        ..SessionLimits::default()
    };
    let _idle = open_marked(&client, "idle-marker", &idle);
    // Keep the worker busy and its queue full for longer than the idle timeout and the
    // reaper's period together.
    let turns: Vec<_> = [2.0, 1.0]
        .into_iter()
        .map(|secs| {
            let (socket, busy) = (daemon.socket().to_path_buf(), busy.clone());
            let t = std::thread::spawn(move || {
                let client = BlockingClient::connect(&socket).unwrap();
                client.run(&busy, &spin(secs), &long_turn())
            });
            wait_for(&client, "the turn is not running or queued", |s| {
                s.workers[0].busy && s.queue_depth == u64::from(secs < 1.5)
            });
            t
        })
        .collect();
    wait_for(&client, "the idle session was not reaped", |s| {
        s.sessions_open == 1
    });
    for t in turns {
        t.join().unwrap().unwrap();
    }
    // Once the worker is free its close has run: the idle guest's scratch folder is gone.
    let o = client
        .run(&busy, "print('still here')", &TurnLimits::default())
        .unwrap();
    assert_eq!(o.stdout, "still here\n");
    assert!(
        find(&daemon.tmp_dir(), "idle-marker").is_empty(),
        "the idle session's interpreter was leaked"
    );
    assert_eq!(client.stats().unwrap().worker_restarts, 0);
}
