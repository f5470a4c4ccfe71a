//! Acceptance 1: many concurrent clients, mixed work, every request answered exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use start_daemon::Client;
use start_sandbox::{Limit, Limits, SessionLimits, Status, TurnLimits};

use crate::{DaemonExt, daemon, error_kind, outcome};

const CLIENTS: u64 = 64;
const REQUESTS: u64 = 200;

/// One client's mix: plain execs, session turns, exceptions, truncated output and the odd
/// wall-time limit, each checked for its exact result.
async fn one_client(client: Client, c: u64) -> u64 {
    let session = client
        .open_session(&SessionLimits::default())
        .await
        .unwrap();
    let mut acc = 0u64;
    let mut answered = 0;
    for i in 0..REQUESTS {
        match i % 10 {
            // Session turns: the running sum proves the turns ran in order in one interpreter.
            0 | 3 | 6 => {
                let code = if acc == 0 && i == 0 {
                    format!("acc = {i}\nprint(acc)")
                } else {
                    format!("acc += {i}\nprint(acc)")
                };
                acc += i;
                let o = client
                    .run(&session, &code, &TurnLimits::default())
                    .await
                    .unwrap();
                assert_eq!(o.stdout, format!("{acc}\n"), "client {c} turn {i}");
            }
            // An exception is an outcome.
            7 => {
                let o = client.exec("1/0", &Limits::default()).await.unwrap();
                assert!(
                    matches!(&o.status, Status::Exception { name, .. } if name == "ZeroDivisionError")
                );
            }
            // Output over its cap is truncated.
            8 => {
                let limits = Limits {
                    stdout_bytes: 10,
                    ..Limits::default()
                };
                let o = client.exec("print('x' * 1000)", &limits).await.unwrap();
                assert!(o.stdout_truncated);
                assert_eq!(o.stdout, "x".repeat(10));
            }
            // Once per client (at i = 99), a wall-time limit.
            9 if i == 99 => {
                let limits = Limits {
                    wall_time: Duration::from_millis(30),
                    ..Limits::default()
                };
                let o = client.exec("while True: pass", &limits).await.unwrap();
                assert_eq!(
                    o.status,
                    Status::LimitExceeded {
                        limit: Limit::WallTime
                    }
                );
            }
            _ => {
                let o = client
                    .exec(&format!("print({c} * 100000 + {i})"), &Limits::default())
                    .await
                    .unwrap();
                assert_eq!(o.stdout, format!("{}\n", c * 100_000 + i));
            }
        }
        answered += 1;
    }
    client.close_session(&session).await.unwrap();
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_mixed_requests_all_answered() {
    let daemon = daemon(&[]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::connect(daemon.socket()).await.unwrap();
        tasks.push(tokio::spawn(one_client(client, c)));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(total, CLIENTS * REQUESTS);
    let stats = Client::connect(daemon.socket())
        .await
        .unwrap()
        .stats()
        .await
        .unwrap();
    eprintln!(
        "{total} requests from {CLIENTS} clients in {elapsed:?} ({:.0}/s); latency {:?}",
        total as f64 / elapsed.as_secs_f64(),
        stats.latency_ms
    );
    let executing: u64 = ["exec", "session.run"]
        .iter()
        .map(|op| stats.requests.get(*op).copied().unwrap_or(0))
        .sum();
    assert_eq!(executing, CLIENTS * REQUESTS);
    assert_eq!(stats.requests.get("session.open"), Some(&CLIENTS));
    assert_eq!(stats.requests.get("session.close"), Some(&CLIENTS));
    assert!(stats.errors.is_empty(), "errors: {:?}", stats.errors);
    assert_eq!(stats.worker_restarts, 0);
    assert_eq!(stats.sessions_open, 0);
}

/// Pipelined on one connection: each id is answered exactly once, and nothing extra arrives.
#[test]
fn pipelined_requests_are_each_answered_exactly_once() {
    let daemon = daemon(&[]);
    let mut raw = daemon.raw();
    const N: u64 = 300;
    for id in 0..N {
        raw.send_json(&format!(
            r#"{{"id":{id},"op":"exec","code":"print({id})"}}"#
        ));
    }
    let mut seen = HashSet::new();
    for _ in 0..N {
        let reply = raw.recv().unwrap();
        let id = reply.id.unwrap();
        assert!(seen.insert(id), "id {id} answered twice");
        assert_eq!(error_kind(&reply), None);
        assert_eq!(outcome(&reply).stdout, format!("{id}\n"));
    }
    assert_eq!(seen.len() as u64, N);
    // Nothing more comes: a ping is the very next reply.
    raw.send_json(r#"{"id":99999,"op":"ping"}"#);
    assert_eq!(raw.recv().unwrap().id, Some(99999));
}
