//! Integration tests of `startd`: a real daemon (its own socket in a temporary folder), real
//! worker processes and the real CPython runtime from the default cache.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod load;
mod malformed;
mod python;
mod shutdown;
mod socket;
mod workers;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use start_daemon::Reply;

/// A running `startd`, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `startd --socket DIR/startd.sock --workers 2 EXTRA...` and waits for its socket.
    pub fn start(extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("startd-test-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("startd.sock");
        Self::start_at(dir, socket, extra)
    }

    pub fn start_at(dir: tempfile::TempDir, socket: PathBuf, extra: &[&str]) -> Daemon {
        let child = Self::spawn(&socket, extra);
        let mut d = Daemon {
            child: Some(child),
            socket,
            dir,
        };
        d.wait_for_socket();
        d
    }

    pub fn spawn(socket: &std::path::Path, extra: &[&str]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_startd"));
        cmd.arg("--socket").arg(socket);
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", "2"]);
        }
        cmd.args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("startd exited while starting: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("startd did not start listening");
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the daemon to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "startd did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> start_daemon::BlockingClient {
        start_daemon::BlockingClient::connect(&self.socket).unwrap()
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(&self.socket)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
