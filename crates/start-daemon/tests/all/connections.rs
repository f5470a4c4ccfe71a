//! Connection and memory exhaustion (invariant 3): a client that sends slowly, sends nothing,
//! or never reads its replies cannot hold a connection slot or the daemon's memory for long,
//! and everyone else is served meanwhile. Each limit is set small here so that it is hit.

use std::io::Read;
use std::time::{Duration, Instant};

use start_daemon::ErrorKind;
use start_daemon::testutil::TestDaemon;
use start_sandbox::Status;

use crate::{DaemonExt, Raw, daemon, error_kind, outcome};

/// How long these tests wait for what should take about a second: a daemon without the
/// limit under test never answers, and the read fails after this instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

fn raw(daemon: &TestDaemon) -> Raw {
    let raw = daemon.raw();
    raw.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    raw
}

/// The next reply is a `timed_out` error about the connection (`"id": null`) whose message
/// names `what`, and then the connection is closed.
fn timed_out(raw: &mut Raw, what: &str) {
    let reply = raw.recv().expect("a timed_out error before the close");
    assert_eq!(reply.id, None, "{reply:?}");
    assert_eq!(error_kind(&reply), Some(ErrorKind::TimedOut), "{reply:?}");
    let text = format!("{reply:?}");
    assert!(text.contains(what), "{what:?} not in {text}");
    assert!(raw.recv().is_none(), "the connection should be closed");
}

fn timed_out_count(daemon: &TestDaemon) -> u64 {
    let stats = daemon.client().stats().unwrap();
    stats.errors.get("timed_out").copied().unwrap_or(0)
}

/// 1,024 connections that each sent 3 bytes of a header used to lock every new client out
/// for good; with a header timeout they are closed, and the waiting client is served.
#[test]
fn partial_headers_do_not_lock_out_new_clients() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--max-connections",
        "3",
        "--header-timeout",
        "0.5",
    ]);
    let mut stalled: Vec<Raw> = (0..3)
        .map(|_| {
            let mut r = raw(&daemon);
            r.send_bytes(&[0, 0, 0]);
            r
        })
        .collect();
    // Every slot is taken: this one waits in the listen backlog until one is freed.
    let mut newcomer = raw(&daemon);
    newcomer.send_json(r#"{"id":1,"op":"ping"}"#);
    let reply = newcomer.recv().expect("the new client is served");
    assert_eq!((reply.id, error_kind(&reply)), (Some(1), None), "{reply:?}");
    for r in &mut stalled {
        timed_out(r, "frame header");
    }
    assert!(timed_out_count(&daemon) >= 3);
}

#[test]
fn a_stalled_header_or_body_is_answered_timed_out_and_closed() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--header-timeout",
        "0.5",
        "--body-timeout",
        "0.5",
        "--connection-idle-timeout",
        "60",
    ]);
    let bystander = daemon.client();

    let mut header = raw(&daemon);
    header.send_bytes(&[0, 0]);
    let mut body = raw(&daemon);
    body.send_bytes(&[0, 0, 0, 100]);
    body.send_bytes(b"{\"id\":1,");
    timed_out(&mut header, "frame header");
    timed_out(&mut body, "frame body");

    bystander.ping().unwrap();
    assert_eq!(timed_out_count(&daemon), 2);
}

/// An idle connection is closed; one whose request runs longer than the idle timeout is
/// not, and is closed only once it has been idle for that long after its reply.
#[test]
fn idle_connections_are_closed_but_busy_ones_are_not() {
    let daemon = daemon(&["--workers", "1", "--connection-idle-timeout", "1"]);
    let mut idle = raw(&daemon);
    let mut busy = raw(&daemon);
    busy.send_json(
        r#"{"id":1,"op":"exec","code":"import time\nt = time.monotonic()\nwhile time.monotonic() - t < 2.5: pass\nprint('done')"}"#,
    );
    timed_out(&mut idle, "idle");
    let reply = busy.recv().expect("the busy connection is not closed");
    assert_eq!(reply.id, Some(1));
    let o = outcome(&reply);
    assert_eq!(
        (&o.status, o.stdout.as_str()),
        (&Status::Finished, "done\n")
    );
    timed_out(&mut busy, "idle");
}

/// A client that pipelines requests for large replies and never reads them: its connection
/// is closed after the write timeout, the daemon's memory stays bounded meanwhile, and
/// another client is served all along.
#[test]
fn a_client_that_never_reads_is_cut_off_and_memory_stays_bounded() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--write-timeout",
        "1",
        "--max-in-flight",
        "8",
        "--max-reply-buffer-bytes",
        "2000000",
    ]);
    let bystander = daemon.client();
    bystander.ping().unwrap();
    let before = daemon.rss_bytes();

    let mut hog = raw(&daemon);
    const REQUESTS: usize = 200;
    for id in 0..REQUESTS {
        hog.send_json(&format!(
            r#"{{"id":{id},"op":"exec","code":"print('x' * 1000000)"}}"#
        ));
    }
    // Served while the hog's replies are stuck.
    let o = bystander.exec("print(6 * 7)", &Default::default()).unwrap();
    assert_eq!(o.stdout, "42\n");

    let mut peak = daemon.rss_bytes();
    let deadline = Instant::now() + PATIENCE;
    while timed_out_count(&daemon) == 0 {
        assert!(
            Instant::now() < deadline,
            "the hog's connection was not closed"
        );
        peak = peak.max(daemon.rss_bytes());
        std::thread::sleep(Duration::from_millis(50));
    }
    // At most the connection's cap plus the replies of its requests in flight (8 x 1 MB),
    // each held once as an outcome and once encoded, plus slack for the allocator.
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 64 << 20,
        "the daemon grew by {} MiB for one client that does not read",
        growth >> 20
    );

    // The hog gets what was in the socket's buffer, then the end of the stream.
    let mut got = Vec::new();
    match hog.stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the hog's connection is still open: {e}"),
    }
    assert!(got.len() < REQUESTS * 1_000_000 / 10, "{} bytes", got.len());

    let o = bystander.exec("print(1)", &Default::default()).unwrap();
    assert_eq!(o.stdout, "1\n");
    assert_eq!(daemon.client().stats().unwrap().worker_restarts, 0);
}

/// Once a connection's unwritten replies reach its cap, the daemon stops reading its
/// requests until the client reads; then everything is answered.
#[test]
fn a_connection_over_its_reply_buffer_is_not_read_until_it_drains() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--max-reply-buffer-bytes",
        "1",
        "--write-timeout",
        "60",
    ]);
    let mut slow = raw(&daemon);
    // A reply far larger than the socket's buffer: its write blocks until the client reads.
    slow.send_json(r#"{"id":0,"op":"exec","code":"print('x' * 1000000)"}"#);
    // Its header arriving shows that it is queued and being written.
    let mut header = [0u8; 4];
    slow.stream.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header) as usize;
    assert!(len > 1_000_000, "{len}");
    const PINGS: u64 = 10;
    for id in 1..=PINGS {
        slow.send_json(&format!(r#"{{"id":{id},"op":"ping"}}"#));
    }
    // The frame the reader was already waiting for may pass; no more.
    std::thread::sleep(Duration::from_millis(500));
    let answered = |d: &TestDaemon| {
        d.client()
            .stats()
            .unwrap()
            .requests
            .get("ping")
            .copied()
            .unwrap_or(0)
    };
    let pings = answered(&daemon);
    assert!(
        pings <= 1,
        "{pings} pings were read past the reply buffer's cap"
    );

    let mut body = vec![0u8; len];
    slow.stream.read_exact(&mut body).unwrap();
    let first: start_daemon::Reply = serde_json::from_slice(&body).unwrap();
    assert_eq!(first.id, Some(0));
    assert_eq!(outcome(&first).stdout.len(), 1_000_001);
    let mut ids = Vec::new();
    for _ in 0..PINGS {
        ids.push(slow.recv().expect("a reply").id.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=PINGS).collect::<Vec<_>>());
    assert_eq!(answered(&daemon), PINGS);
}

/// The total reply budget is shared: while one client's unread reply holds all of it, another
/// client's reply waits, and is written once the first connection is closed for not reading.
#[test]
fn the_total_reply_budget_is_shared_across_connections() {
    let daemon = daemon(&[
        "--workers",
        "1",
        "--max-total-reply-buffer-bytes",
        "1000000",
        "--write-timeout",
        "2",
    ]);
    let bystander = daemon.client();
    bystander.ping().unwrap();
    let mut hog = raw(&daemon);
    // Over the whole budget: it takes all of it until written.
    hog.send_json(r#"{"id":0,"op":"exec","code":"print('x' * 1000000)"}"#);
    // Its header arriving shows that it is queued, holding the budget.
    let mut header = [0u8; 4];
    hog.stream.read_exact(&mut header).unwrap();
    let o = bystander.exec("print(2)", &Default::default()).unwrap();
    assert_eq!(o.stdout, "2\n");
    assert!(
        timed_out_count(&daemon) >= 1,
        "the reply was written while another connection held the whole budget"
    );
    let mut sink = Vec::new();
    let _ = hog.stream.read_to_end(&mut sink);
    assert!(sink.len() < 1_000_000);
}
