//! The Python client's own tests, run against a real daemon.

use std::process::Command;

use crate::Daemon;

#[test]
fn python_client_tests_pass() {
    let daemon = Daemon::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/test_startd_client.py");
    let out = Command::new("python3")
        .arg(script)
        .env("START_SOCKET", &daemon.socket)
        .output()
        .expect("python3 is needed to test the Python client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
