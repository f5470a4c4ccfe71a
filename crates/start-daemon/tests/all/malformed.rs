//! Acceptance 2: malformed input gets an error reply or a closed connection, and the daemon
//! keeps serving everyone else.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use start_daemon::testutil::TestDaemon;
use start_daemon::{ErrorKind, MAX_FRAME_BYTES};
use start_sandbox::Status;

use crate::{DaemonExt, daemon, error_kind, outcome};

fn still_serving(daemon: &TestDaemon) {
    let client = daemon.client();
    client.ping().unwrap();
    let o = client.exec("print(2 + 2)", &Default::default()).unwrap();
    assert_eq!(o.stdout, "4\n");
}

#[test]
fn malformed_input_is_refused_and_the_daemon_carries_on() {
    let daemon = daemon(&[]);
    // A healthy client stays connected throughout.
    let bystander = daemon.client();

    // Random bytes whose "header" announces an enormous frame: error reply, then closed.
    let mut raw = daemon.raw();
    raw.send_bytes(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5]);
    let reply = raw.recv().unwrap();
    assert_eq!(reply.id, None);
    assert_eq!(error_kind(&reply), Some(ErrorKind::FrameTooLarge));
    assert!(raw.recv().is_none(), "connection should be closed");

    // A frame one byte over the limit.
    let mut raw = daemon.raw();
    raw.send_bytes(&((MAX_FRAME_BYTES + 1) as u32).to_be_bytes());
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::FrameTooLarge)
    );
    assert!(raw.recv().is_none());

    // Random bytes inside a well-formed frame: not JSON.
    let mut raw = daemon.raw();
    raw.send_bytes(&[0, 0, 0, 6, 0xff, 0xfe, 0x00, 0x01, b'{', 0x80]);
    let reply = raw.recv().unwrap();
    assert_eq!(
        (reply.id, error_kind(&reply)),
        (None, Some(ErrorKind::BadRequest))
    );
    // The connection survives a bad frame.
    raw.send_json(r#"{"id":1,"op":"ping"}"#);
    assert_eq!(raw.recv().unwrap().id, Some(1));

    // Invalid JSON, an unknown operation, a missing field, a wrongly typed field.
    raw.send_json(r#"{"id":2,"op":"exec","code":"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::BadRequest)
    );
    raw.send_json(r#"{"id":3,"op":"launch.missiles"}"#);
    let reply = raw.recv().unwrap();
    assert_eq!(
        (reply.id, error_kind(&reply)),
        (Some(3), Some(ErrorKind::BadRequest))
    );
    raw.send_json(r#"{"id":4,"op":"exec"}"#);
    let reply = raw.recv().unwrap();
    assert_eq!(
        (reply.id, error_kind(&reply)),
        (Some(4), Some(ErrorKind::BadRequest))
    );
    raw.send_json(r#"{"op":"ping"}"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::BadRequest)
    );
    raw.send_json(r#"{"id":5,"op":"exec","code":"1","limits":{"wall_time_ms":-1}}"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::BadRequest)
    );
    raw.send_json(r#"{"id":6,"op":"exec","code":"1","limits":{"memory_bytes":1e400}}"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::BadRequest)
    );
    raw.send_json(r#"{"id":7,"op":"exec","code":"1","limits":{"no_such_limit":1}}"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::BadRequest)
    );

    // Huge limit values are clamped to the server's ceilings, not obeyed or refused.
    raw.send_json(&format!(
        r#"{{"id":8,"op":"exec","code":"print('ok')","limits":{{"wall_time_ms":{m},"memory_bytes":{m},"stdout_bytes":{m},"stderr_bytes":{m}}}}}"#,
        m = u64::MAX
    ));
    let reply = raw.recv().unwrap();
    assert_eq!(reply.id, Some(8));
    assert_eq!(outcome(&reply).stdout, "ok\n");
    raw.send_json(&format!(
        r#"{{"id":9,"op":"session.open","limits":{{"memory_bytes":{m},"idle_timeout_ms":{m},"max_turns":{}}}}}"#,
        u32::MAX,
        m = u64::MAX
    ));
    assert_eq!(error_kind(&raw.recv().unwrap()), None);

    // Code over the sandbox's limit: an `invalid` error, not a crash.
    let big = "#".repeat(start_sandbox::MAX_CODE_BYTES + 1);
    raw.send_json(&serde_json::json!({"id": 10, "op": "exec", "code": big}).to_string());
    let reply = raw.recv().unwrap();
    assert_eq!(
        (reply.id, error_kind(&reply)),
        (Some(10), Some(ErrorKind::Invalid))
    );

    // Sessions that do not exist.
    raw.send_json(r#"{"id":11,"op":"session.run","session":"nope","code":"1"}"#);
    assert_eq!(
        error_kind(&raw.recv().unwrap()),
        Some(ErrorKind::NoSuchSession)
    );

    // A truncated frame, then the client hangs up: the daemon just closes.
    let mut raw = daemon.raw();
    raw.send_bytes(&[0, 0, 0, 100, b'{', b'"']);
    raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(raw.recv().is_none());

    bystander.ping().unwrap();
    still_serving(&daemon);
    let stats = daemon.client().stats().unwrap();
    assert_eq!(stats.worker_restarts, 0);
    assert!(stats.errors.get("bad_request").copied().unwrap_or(0) >= 8);
}

#[test]
fn random_bytes_never_take_the_daemon_down() {
    let daemon = daemon(&["--workers", "1"]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
            let mut raw = daemon.raw();
            raw.stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            use std::io::{Read, Write};
            let _ = raw.stream.write_all(&bytes);
            let _ = raw.stream.shutdown(std::net::Shutdown::Write);
            // Whatever comes back is at most error replies; then the stream ends.
            let mut sink = Vec::new();
            let _ = raw.stream.read_to_end(&mut sink);
            Ok(())
        })
        .unwrap();
    still_serving(&daemon);
}

#[test]
fn a_full_queue_answers_busy_at_once() {
    let daemon = daemon(&["--workers", "1", "--queue", "2"]);
    let mut raw = daemon.raw();
    const N: u64 = 12;
    let sent = Instant::now();
    for id in 0..N {
        raw.send_json(&format!(
            r#"{{"id":{id},"op":"exec","code":"while True: pass","limits":{{"wall_time_ms":300}}}}"#
        ));
    }
    let mut busy = 0;
    let mut limited = 0;
    for _ in 0..N {
        let reply = raw.recv().unwrap();
        match error_kind(&reply) {
            Some(ErrorKind::Busy) => {
                busy += 1;
                if busy == 1 {
                    assert!(
                        sent.elapsed() < Duration::from_millis(250),
                        "busy should be immediate, took {:?}",
                        sent.elapsed()
                    );
                }
            }
            None => {
                assert!(matches!(
                    outcome(&reply).status,
                    Status::LimitExceeded { .. }
                ));
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(busy + limited, N);
    assert!(busy >= 1, "nothing was refused");
    assert!(limited >= 1);
    still_serving(&daemon);
}

#[test]
fn an_outcome_too_big_for_a_frame_is_cut_and_the_worker_lives() {
    let daemon = daemon(&["--workers", "1"]);
    let client = daemon.client();
    let before = client.stats().unwrap().worker_restarts;
    // 1 MiB of control characters on stdout and nearly as much in the exception: 18.8 MB as
    // JSON, over the frame cap.
    let code = "import sys\nsys.stdout.write('\\x01' * (1 << 20))\n\
                raise Exception('\\x01' * ((1 << 20) - 4096))\n";
    let o = client.exec(code, &Default::default()).unwrap();
    assert!(
        matches!(o.status, Status::Exception { .. }),
        "{:?}",
        o.status
    );
    assert!(o.stdout_truncated, "the reply was cut, and says so");
    assert!(o.stdout.len() > 1 << 18 && o.stdout.bytes().all(|b| b == 1));
    // Same worker, still serving.
    still_serving(&daemon);
    assert_eq!(client.stats().unwrap().worker_restarts, before);
}

#[test]
fn oversized_code_and_jobs_are_that_requests_error_not_a_dead_worker() {
    let daemon = daemon(&["--workers", "1"]);
    let client = daemon.client();
    let before = client.stats().unwrap().worker_restarts;
    let mut raw = daemon.raw();
    // Code over the sandbox's limit, in a frame just under the cap.
    let code = "#".repeat(MAX_FRAME_BYTES - 64);
    raw.send_json(&format!(r#"{{"id":1,"op":"exec","code":"{code}"}}"#));
    let reply = raw.recv().unwrap();
    assert_eq!(error_kind(&reply), Some(ErrorKind::Invalid), "{reply:?}");
    // Stdin that fits the request's frame, but not the job's: the job spells out every
    // default limit the request left out.
    let overhead = r#"{"id":2,"op":"exec","code":"print(1)","limits":{"stdin":""}}"#.len();
    let stdin = "x".repeat(MAX_FRAME_BYTES - overhead);
    raw.send_json(&format!(
        r#"{{"id":2,"op":"exec","code":"print(1)","limits":{{"stdin":"{stdin}"}}}}"#
    ));
    let reply = raw.recv().unwrap();
    assert_eq!(error_kind(&reply), Some(ErrorKind::Invalid), "{reply:?}");
    still_serving(&daemon);
    assert_eq!(
        client.stats().unwrap().worker_restarts,
        before,
        "a worker was killed"
    );
}
