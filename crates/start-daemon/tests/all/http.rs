//! The SandboxFusion-compatible HTTP API (`startd --http`): a real daemon on a real TCP
//! port, driven by SandboxFusion's own PyPI client and by verl's reward payload
//! (`python/test_http_sandbox_fusion.py`, in a venv these tests own).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use start_daemon::testutil::{TestCommand, TestDaemon, Venv, http_get, venv_in};

use crate::with_workers;

/// SandboxFusion's client and what it needs, pinned.
const CLIENT_REQUIREMENTS: &[&str] = &[
    "sandbox-fusion==0.3.7",
    "requests==2.34.2",
    "pydantic==2.14.4",
    "tenacity==9.2.1",
    "aiohttp==3.14.5",
];

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/python/test_http_sandbox_fusion.py"
);

fn client_venv() -> Venv {
    venv_in(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "sandbox-fusion",
        CLIENT_REQUIREMENTS,
        &[],
    )
}

/// `startd --http 127.0.0.1:PORT EXTRA...` and its base URL, once `/v1/ping` answers.
fn http_daemon(extra: &[&str]) -> (TestDaemon, String) {
    TestDaemon::start_http(env!("CARGO_BIN_EXE_startd"), &with_workers(extra))
}

fn run_script(venv: &Venv, which: &str, endpoint: &str, env: &[(&str, &str)]) {
    let mut cmd = TestCommand::new(venv.python());
    cmd.arg(SCRIPT).arg(which).env("START_HTTP", endpoint);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.assert_success();
}

#[test]
fn sandbox_fusion_client_runs_code_and_jupyter() {
    let venv = client_venv();
    let (_d, url) = http_daemon(&["--http-prefix", "/faas/sandbox/"]);
    run_script(
        &venv,
        "client",
        &url,
        &[("START_HTTP_PREFIX", "/faas/sandbox")],
    );
}

#[test]
fn verls_reward_payload_from_64_threads() {
    let venv = client_venv();
    let (_d, url) = http_daemon(&[]);
    run_script(&venv, "load", &url, &[]);
}

#[test]
fn a_full_queue_makes_requests_wait_not_fail() {
    let venv = client_venv();
    let (_d, url) = http_daemon(&["--workers", "1", "--queue", "1"]);
    run_script(&venv, "queue", &url, &[]);
}

#[test]
fn malformed_and_slow_requests_get_4xx_and_the_server_keeps_serving() {
    let venv = client_venv();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let (_d, url) = http_daemon(&[
        "--workers",
        "1",
        "--http-token-file",
        token.to_str().unwrap(),
        "--http-max-body-bytes",
        "1048576",
        "--http-header-timeout",
        "1",
        "--http-body-timeout",
        "1",
        "--http-budget-margin",
        "1",
    ]);
    run_script(
        &venv,
        "strict",
        &url,
        &[("START_HTTP_TOKEN", "s3cret-token")],
    );
}

#[test]
fn a_non_loopback_address_needs_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = TestCommand::new(env!("CARGO_BIN_EXE_startd"))
        .args(["--workers", "1", "--http", "0.0.0.0:0", "--socket"])
        .arg(dir.path().join("s.sock"))
        .assert_failure();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--http-allow-remote"), "{stderr}");
    let out = TestCommand::new(env!("CARGO_BIN_EXE_startd"))
        .args([
            "--http",
            "127.0.0.1:1",
            "--http-prefix",
            "/../x",
            "--socket",
        ])
        .arg(dir.path().join("s.sock"))
        .assert_failure();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-prefix"));
}

#[test]
fn a_request_in_flight_is_answered_through_shutdown() {
    let (mut d, url) = http_daemon(&[]);
    let addr = url.trim_start_matches("http://").to_string();
    let body = r#"{"code": "import time\ntime.sleep(1.5)\nprint('done')", "language": "python"}"#;
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST /run_code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    std::thread::sleep(Duration::from_millis(500));
    TestCommand::new("kill")
        .args(["-TERM", &d.pid().to_string()])
        .assert_success();
    let reply = client.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""stdout":"done\n""#), "{reply}");
    assert!(d.wait(Duration::from_secs(20)).success());
}

#[test]
fn connections_past_the_cap_wait_for_a_free_one() {
    let (_d, url) = http_daemon(&["--http-max-connections", "1"]);
    let addr = url.trim_start_matches("http://").to_string();
    // A keep-alive connection holds the only slot.
    let mut held = TcpStream::connect(&addr).unwrap();
    write!(held, "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = held.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("pong"));
    let waiting = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = http_get(&addr, "/v1/ping");
            (started.elapsed(), reply)
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    drop(held);
    let (waited, reply) = waiting.join().unwrap();
    assert!(reply.unwrap().contains("pong"));
    assert!(
        waited >= Duration::from_millis(600),
        "{waited:?}: not held back"
    );
}
