//! Integration tests of `startd`: a real daemon (its own socket in a temporary folder), real
//! worker processes and the real CPython runtime from the default cache.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cleanup;
mod connections;
mod files;
mod http;
mod load;
mod malformed;
mod python;
mod sessions;
mod shutdown;
mod socket;
mod workers;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use start_daemon::Reply;
use start_daemon::testutil::{TestCommand, TestDaemon};

/// Starts `startd --socket DIR/startd.sock --workers 2 EXTRA...` in a fresh temporary folder
/// (two workers unless `extra` says otherwise) and waits for its socket.
pub fn daemon(extra: &[&str]) -> TestDaemon {
    TestDaemon::start(env!("CARGO_BIN_EXE_startd"), &with_workers(extra))
}

/// Like [`daemon`], in a folder the test prepared.
pub fn daemon_in(dir: tempfile::TempDir, extra: &[&str]) -> TestDaemon {
    TestDaemon::start_in(env!("CARGO_BIN_EXE_startd"), dir, &with_workers(extra))
}

/// Like [`daemon_in`], with the socket at `socket` (in a subfolder of `dir` the daemon is to
/// create, say).
pub fn daemon_at(dir: tempfile::TempDir, socket: std::path::PathBuf, extra: &[&str]) -> TestDaemon {
    TestDaemon::start_at(
        env!("CARGO_BIN_EXE_startd"),
        dir,
        socket,
        &with_workers(extra),
    )
}

/// Like [`daemon`], with a temporary folder of its own and its log in a file
/// ([`TestDaemon::start_isolated`]).
pub fn isolated(extra: &[&str]) -> TestDaemon {
    TestDaemon::start_isolated(env!("CARGO_BIN_EXE_startd"), &with_workers(extra))
}

/// Polls the daemon's stats until `done` holds (at most 30 s, then fails saying `what`).
pub fn wait_for(
    client: &start_daemon::BlockingClient,
    what: &str,
    done: impl Fn(&start_daemon::Stats) -> bool,
) -> start_daemon::Stats {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = client.stats().unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn with_workers<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = Vec::new();
    if !extra.contains(&"--workers") {
        args.extend(["--workers", "2"]);
    }
    args.extend(extra);
    args
}

/// The `startd` binary, run to its end (not a fixture: for its exit codes and messages).
pub fn startd() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_startd"))
}

/// What these tests do to a [`TestDaemon`] besides what the fixture offers.
pub trait DaemonExt {
    /// Sends `sig` to the daemon.
    fn signal(&self, sig: nix::sys::signal::Signal);
    /// A raw connection to the daemon.
    fn raw(&self) -> Raw;
}

impl DaemonExt for TestDaemon {
    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn raw(&self) -> Raw {
        Raw::connect(self.socket())
    }
}

/// A raw connection for speaking (or abusing) the protocol byte by byte.
pub struct Raw {
    pub stream: UnixStream,
}

impl Raw {
    pub fn connect(path: &std::path::Path) -> Raw {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Raw { stream }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send_json(&mut self, json: &str) {
        let frame = start_daemon::encode_frame(json.as_bytes()).unwrap();
        self.send_bytes(&frame);
    }

    /// The next reply, or `None` when the daemon closed the connection.
    pub fn recv(&mut self) -> Option<Reply> {
        let mut header = [0u8; 4];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a reply: {e}"),
        }
        let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
        self.stream.read_exact(&mut body).unwrap();
        Some(serde_json::from_slice(&body).unwrap())
    }
}

/// The error kind of a reply, if it is an error.
pub fn error_kind(reply: &Reply) -> Option<start_daemon::ErrorKind> {
    match &reply.result {
        start_daemon::ReplyResult::Error(e) => Some(e.kind),
        start_daemon::ReplyResult::Ok(_) => None,
    }
}

/// The outcome in a reply; panics on anything else.
pub fn outcome(reply: &Reply) -> &start_sandbox::Outcome {
    match &reply.result {
        start_daemon::ReplyResult::Ok(start_daemon::Response::Outcome(o)) => o,
        other => panic!("expected an outcome, got {other:?}"),
    }
}
