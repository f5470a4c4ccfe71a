//! Sessions: state across turns, lifecycle, isolation, memory release.

use std::time::Duration;

use start_sandbox::{Error, Limit, Session, SessionLimits, Status, TurnLimits};

use crate::sandbox;

fn open() -> Session {
    Session::open(sandbox(), SessionLimits::default()).unwrap()
}

fn turn(s: &mut Session, code: &str) -> start_sandbox::Outcome {
    s.run(code, &TurnLimits::default()).unwrap()
}

#[test]
fn state_carries_across_turns_and_exceptions_do_not_end_it() {
    let mut s = open();
    assert_eq!(
        turn(&mut s, "def f(x):\n    return x * 2").status,
        Status::Finished
    );
    let bad = turn(&mut s, "1/0");
    match &bad.status {
        Status::Exception { name, traceback } => {
            assert_eq!(name, "ZeroDivisionError");
            assert!(
                traceback.contains("File \"<cell 2>\", line 1"),
                "{traceback}"
            );
            assert!(!traceback.contains("<start>"), "{traceback}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.ended().is_none());
    let out = turn(&mut s, "print(f(21))");
    assert_eq!(out.stdout, "42\n");
    // A final expression is echoed, like a REPL.
    assert_eq!(turn(&mut s, "f(5)").stdout, "10\n");
    assert_eq!(s.turns(), 4);
}

#[test]
fn time_limit_trap_ends_the_session_with_the_limit_named() {
    let mut s = open();
    turn(&mut s, "x = 1");
    let limits = TurnLimits {
        wall_time: Duration::from_millis(200),
        ..TurnLimits::default()
    };
    let out = s.run("while True: pass", &limits).unwrap();
    assert_eq!(
        out.status,
        Status::LimitExceeded {
            limit: Limit::WallTime
        }
    );
    let why = s.ended().expect("ended").to_string();
    assert!(why.contains("wall-time"), "{why}");
    match s.run("print(x)", &TurnLimits::default()) {
        Err(Error::SessionEnded(msg)) => assert!(msg.contains("wall-time")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fuel_trap_in_a_metered_session() {
    let limits = SessionLimits {
        metered: true,
        ..SessionLimits::default()
    };
    let mut s = Session::open(sandbox(), limits).unwrap();
    let ok = s
        .run(
            "y = sum(range(100))",
            &TurnLimits {
                fuel: Some(1_000_000_000),
                ..TurnLimits::default()
            },
        )
        .unwrap();
    assert_eq!(ok.status, Status::Finished);
    assert!(ok.fuel_used.unwrap() > 0);
    let out = s
        .run(
            "while True: pass",
            &TurnLimits {
                fuel: Some(1_000_000),
                ..TurnLimits::default()
            },
        )
        .unwrap();
    assert_eq!(out.status, Status::LimitExceeded { limit: Limit::Fuel });
    assert!(s.ended().is_some());
}

#[test]
fn exit_ends_the_session_cleanly() {
    for code in [
        "exit()",
        "quit()",
        "import sys; sys.exit(0)",
        "import sys; sys.exit(4)",
    ] {
        let mut s = open();
        turn(&mut s, "a = 1");
        let out = turn(&mut s, code);
        assert!(
            matches!(out.status, Status::Finished | Status::Exit { code: 4 }),
            "{code}: {:?}",
            out.status
        );
        assert!(s.ended().is_some(), "{code} must end the session");
        assert!(matches!(
            s.run("a", &TurnLimits::default()),
            Err(Error::SessionEnded(_))
        ));
    }
}

#[test]
fn turn_cap_and_total_budget_end_the_session() {
    let mut s = Session::open(
        sandbox(),
        SessionLimits {
            max_turns: 2,
            ..SessionLimits::default()
        },
    )
    .unwrap();
    turn(&mut s, "1");
    turn(&mut s, "2");
    assert!(
        matches!(s.run("3", &TurnLimits::default()), Err(Error::SessionEnded(m)) if m.contains("2 turns"))
    );

    let mut s = Session::open(
        sandbox(),
        SessionLimits {
            total_wall_time: Some(Duration::from_millis(300)),
            ..SessionLimits::default()
        },
    )
    .unwrap();
    let out = turn(&mut s, "while True: pass");
    assert_eq!(
        out.status,
        Status::LimitExceeded {
            limit: Limit::WallTime
        }
    );
    assert!(
        out.wall_ms < 2000.0,
        "the total budget bounds the turn: {}",
        out.wall_ms
    );
}

#[test]
fn idle_timeout_is_reported() {
    let s = Session::open(
        sandbox(),
        SessionLimits {
            idle_timeout: Duration::from_millis(50),
            ..SessionLimits::default()
        },
    )
    .unwrap();
    assert!(!s.is_idle());
    std::thread::sleep(Duration::from_millis(80));
    assert!(s.is_idle());
}

#[test]
fn hundred_sessions_at_once_stay_isolated() {
    let mut sessions: Vec<Session> = (0..100).map(|_| open()).collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        turn(s, &format!("x = {i}"));
    }
    for (i, s) in sessions.iter_mut().enumerate() {
        assert_eq!(turn(s, "print(x)").stdout, format!("{i}\n"));
    }
}

#[test]
fn oversized_cell_is_an_error() {
    let mut s = open();
    let big = "#".repeat(start_sandbox::MAX_CODE_BYTES + 1);
    assert!(matches!(
        s.run(&big, &TurnLimits::default()),
        Err(Error::Invalid(_))
    ));
    assert!(s.ended().is_none());
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn memory_of_closed_sessions_is_released() {
    // Warm up so one-time allocations are not counted.
    for _ in 0..20 {
        let mut s = open();
        turn(&mut s, "a = bytearray(8 << 20)");
    }
    let before = rss_bytes();
    for _ in 0..1000 {
        let mut s = open();
        turn(&mut s, "a = bytearray(8 << 20)");
        drop(s);
    }
    let after = rss_bytes();
    // 1000 sessions of 8+ MiB each would be > 8 GiB if nothing were released.
    assert!(
        after < before + (256 << 20),
        "RSS grew from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );
}
