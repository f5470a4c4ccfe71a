//! The Python client's own tests, run against a real daemon.

use start_daemon::testutil::TestCommand;

use crate::daemon;

#[test]
fn python_client_tests_pass() {
    let daemon = daemon(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/test_startd_client.py");
    // python3 is needed to test the Python client.
    let out = TestCommand::new("python3")
        .arg(script)
        .env("START_SOCKET", daemon.socket())
        .assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OK"), "{stderr}");
}
