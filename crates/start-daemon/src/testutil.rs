//! Test support (the `test-util` feature): [`TestDaemon`], a real `startd` on a socket in a
//! fresh temporary folder (with its HTTP API on a free port: [`TestDaemon::start_http`]; one
//! a whole test binary shares is stopped at exit: [`TestDaemon::stop_at_exit`]),
//! [`http_get`], a bare HTTP/1.0 GET, and [`TestCommand`], a command runner whose failed assertions say
//! everything about the run (command line, working folder, exit status, stdout, stderr), and
//! [`venv_in`], a Python venv the tests own with pinned packages from PyPI (from
//! `start_sandbox::testutil`, whose tests use it too).
//!
//! The daemon's own tests and benches use them, and so do other crates' tests (the `start`
//! CLI's): one fixture instead of a copy per test binary. Everything here panics on failure,
//! as test fixtures do; nothing here is meant for production code.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::BlockingClient;

pub use start_sandbox::testutil::{Venv, venv_in};

/// How long [`TestDaemon::start`] waits for the socket: the first start on a machine may
/// prepare the Python runtime (fetch and compile it) before the daemon listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running `startd` on its own socket, killed and reaped on drop.
///
/// The socket is [`TestDaemon::SOCKET_FILE`] in a fresh temporary folder (removed on drop);
/// the daemon runs with `RUST_LOG=warn`, stdin closed, and stdout and stderr inherited.
///
/// # Examples
///
/// ```no_run
/// use start_daemon::testutil::TestDaemon;
///
/// // In an integration test or bench of this crate: `env!("CARGO_BIN_EXE_startd")`.
/// let daemon = TestDaemon::start("target/release/startd", &["--workers", "1"]);
/// daemon.client().ping().unwrap();
/// let out = std::process::Command::new("start")
///     .args(["exec", "--daemon", "--socket"])
///     .arg(daemon.socket())
///     .args(["-c", "print(1)"])
///     .output()
///     .unwrap();
/// # drop(out);
/// ```
#[derive(Debug)]
pub struct TestDaemon {
    child: Option<Child>,
    pid: u32,
    socket: PathBuf,
    command_line: String,
    isolated: bool,
    // Dropped after the child is reaped (fields drop in order, and `Drop::drop` runs first).
    dir: tempfile::TempDir,
}

impl TestDaemon {
    /// The socket's file name inside the daemon's folder.
    pub const SOCKET_FILE: &str = "startd.sock";

    /// Starts `BINARY --socket DIR/startd.sock ARGS...` in a fresh temporary folder and waits
    /// until the socket accepts connections.
    ///
    /// # Panics
    ///
    /// If the folder cannot be made, the binary cannot be run, or the daemon exits or is not
    /// listening within [`START_TIMEOUT`].
    pub fn start(binary: impl AsRef<Path>, args: &[&str]) -> TestDaemon {
        let dir = match tempfile::Builder::new().prefix("startd-test-").tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot make a temporary folder for startd: {e}"),
        };
        Self::start_in(binary, dir, args)
    }

    /// Like [`TestDaemon::start`], in `dir`, which the caller may have prepared (a stale
    /// socket file at [`TestDaemon::SOCKET_FILE`], say). The daemon owns `dir` from now on.
    ///
    /// # Panics
    ///
    /// As [`TestDaemon::start`].
    pub fn start_in(binary: impl AsRef<Path>, dir: tempfile::TempDir, args: &[&str]) -> TestDaemon {
        Self::spawn(binary.as_ref(), dir, args, false)
    }

    /// The daemon's own temporary folder's name inside its folder, with
    /// [`TestDaemon::start_isolated`].
    pub const TMP_DIR: &str = "tmp";
    /// The daemon's log file's name inside its folder, with [`TestDaemon::start_isolated`].
    pub const LOG_FILE: &str = "startd.log";

    /// Like [`TestDaemon::start`], with a temporary folder of its own (`TMPDIR`, which its
    /// workers inherit: [`TestDaemon::tmp_dir`], for checking what it leaves there) and its
    /// stderr, logged at `info`, in a file ([`TestDaemon::log`]).
    ///
    /// # Panics
    ///
    /// As [`TestDaemon::start`].
    pub fn start_isolated(binary: impl AsRef<Path>, args: &[&str]) -> TestDaemon {
        let dir = match tempfile::Builder::new().prefix("startd-test-").tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot make a temporary folder for startd: {e}"),
        };
        Self::spawn(binary.as_ref(), dir, args, true)
    }

    /// Like [`TestDaemon::start`], also serving the HTTP API (`--http`) on a free loopback
    /// port; returns its base URL (`http://127.0.0.1:PORT`) too, once `GET /v1/ping` answers.
    ///
    /// # Panics
    ///
    /// As [`TestDaemon::start`], and if the API does not answer within [`START_TIMEOUT`].
    pub fn start_http(binary: impl AsRef<Path>, args: &[&str]) -> (TestDaemon, String) {
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => panic!("cannot find a free loopback port: {e}"),
        };
        let addr = format!("127.0.0.1:{port}");
        let mut all = vec!["--http", addr.as_str()];
        all.extend_from_slice(args);
        let daemon = Self::start(binary, &all);
        let deadline = Instant::now() + START_TIMEOUT;
        while http_get(&addr, "/v1/ping").is_none() {
            assert!(
                Instant::now() < deadline,
                "startd's HTTP API does not answer on {addr}: {}",
                daemon.command_line
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (daemon, format!("http://{addr}"))
    }

    fn spawn(binary: &Path, dir: tempfile::TempDir, args: &[&str], isolated: bool) -> TestDaemon {
        let socket = dir.path().join(Self::SOCKET_FILE);
        Self::spawn_at(binary, dir, socket, args, isolated)
    }

    /// Like [`TestDaemon::start_in`], with the socket at `socket` (inside `dir`, say in a
    /// subfolder the daemon is to create) instead of [`TestDaemon::SOCKET_FILE`].
    ///
    /// # Panics
    ///
    /// As [`TestDaemon::start`].
    pub fn start_at(
        binary: impl AsRef<Path>,
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[&str],
    ) -> TestDaemon {
        Self::spawn_at(binary.as_ref(), dir, socket, args, false)
    }

    fn spawn_at(
        binary: &Path,
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[&str],
        isolated: bool,
    ) -> TestDaemon {
        let mut cmd = Command::new(binary);
        cmd.arg("--socket")
            .arg(&socket)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if isolated {
            let tmp = dir.path().join(Self::TMP_DIR);
            if let Err(e) = std::fs::create_dir(&tmp) {
                panic!("cannot make {}: {e}", tmp.display());
            }
            let log = dir.path().join(Self::LOG_FILE);
            let log = match std::fs::File::create(&log) {
                Ok(f) => f,
                Err(e) => panic!("cannot create {}: {e}", log.display()),
            };
            cmd.env("TMPDIR", tmp).env("RUST_LOG", "info").stderr(log);
        }
        let command_line = command_line(&cmd);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => panic!("cannot run {command_line}: {e}"),
        };
        let mut daemon = TestDaemon {
            pid: child.id(),
            child: Some(child),
            socket,
            command_line,
            isolated,
            dir,
        };
        daemon.wait_for_socket();
        daemon
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => {}
                    Ok(Some(status)) => {
                        self.child = None;
                        panic!(
                            "startd exited while starting ({status}): {}\n{}",
                            self.command_line,
                            self.log()
                        );
                    }
                    Err(e) => panic!("cannot check on startd: {e}: {}", self.command_line),
                }
            }
            assert!(
                Instant::now() < deadline,
                "startd is not listening after {START_TIMEOUT:?}: {}",
                self.command_line
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The socket the daemon listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's temporary folder (the socket's parent).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's own temporary folder (its `TMPDIR`), with [`TestDaemon::start_isolated`].
    ///
    /// # Panics
    ///
    /// If the daemon was not started isolated.
    pub fn tmp_dir(&self) -> PathBuf {
        assert!(self.isolated, "startd was not started with start_isolated");
        self.dir.path().join(Self::TMP_DIR)
    }

    /// What the daemon and its workers logged so far, with [`TestDaemon::start_isolated`]
    /// (empty otherwise: their stderr is inherited).
    pub fn log(&self) -> String {
        if !self.isolated {
            return String::new();
        }
        std::fs::read(self.dir.path().join(Self::LOG_FILE))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read the log: {e})"))
    }

    /// The daemon's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The daemon's resident memory now (`VmRSS` in `/proc/PID/status`), in bytes; its
    /// worker processes are not counted.
    ///
    /// # Panics
    ///
    /// If the daemon has exited or `/proc` cannot be read.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid);
        let status = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => panic!("cannot read {path}: {e}"),
        };
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        match kib {
            Some(kib) => kib * 1024,
            None => panic!("no VmRSS in {path}:\n{status}"),
        }
    }

    /// A new blocking connection to the daemon.
    ///
    /// # Panics
    ///
    /// If the daemon does not accept it.
    pub fn client(&self) -> BlockingClient {
        match BlockingClient::connect(&self.socket) {
            Ok(client) => client,
            Err(e) => panic!("cannot connect to startd at {}: {e}", self.socket.display()),
        }
    }

    /// Waits at most `timeout` for the daemon to exit by itself (after a signal, say) and
    /// returns how it exited.
    ///
    /// # Panics
    ///
    /// If it is still running after `timeout`, or was already waited for.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            panic!("startd was already waited for");
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return status;
                }
                Ok(None) => {}
                Err(e) => panic!("cannot wait for startd: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "startd did not exit within {timeout:?}: {}",
                self.command_line
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keeps this daemon running until the test process exits, then stops it as dropping it
    /// does (SIGTERM, reaped, its folder removed). For a daemon every test of a binary shares
    /// through a `static`, which is never dropped: without this, each test run would leave a
    /// daemon, its workers and its folders behind. Keep what the tests need (its socket, its
    /// URL) before handing it over.
    ///
    /// # Panics
    ///
    /// If the exit handler cannot be registered.
    pub fn stop_at_exit(self) {
        static REGISTER: Once = Once::new();
        REGISTER.call_once(|| {
            // SAFETY: `atexit` only records the function pointer; the handler is a plain
            // `extern "C"` function that catches every panic.
            let failed = unsafe { libc::atexit(stop_shared_daemons) } != 0;
            assert!(
                !failed,
                "cannot register the exit handler that stops startd"
            );
        });
        match AT_EXIT.lock() {
            Ok(mut list) => list.push(self),
            Err(poisoned) => poisoned.into_inner().push(self),
        }
    }
}

/// How long a [`TestDaemon`] dropped while running may take to shut down after SIGTERM before
/// it is killed.
pub const DROP_GRACE: Duration = Duration::from_secs(5);

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first, so that it removes what it made (its socket, its workers' run
            // folder); SIGKILL if it does not stop in time.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + DROP_GRACE;
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Daemons kept until the test process exits ([`TestDaemon::stop_at_exit`]).
static AT_EXIT: Mutex<Vec<TestDaemon>> = Mutex::new(Vec::new());

/// Stops the daemons in [`AT_EXIT`], as dropping them does; run by `exit` (the test harness
/// exits through it once every test is done, passed or failed).
extern "C" fn stop_shared_daemons() {
    // Nothing may unwind out of an `extern "C"` function.
    let _ = std::panic::catch_unwind(|| {
        let daemons = match AT_EXIT.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        drop(daemons);
    });
}

/// `GET path` over plain HTTP/1.0 to `addr` (`host:port`): the whole reply, status line and
/// headers included, or `None` when nothing answers within 10 s.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A command under test, built like [`Command`]; its assertions panic with the whole run
/// (command line, working folder, exit status, stdout and stderr), so that a failure in CI
/// says what happened without a rerun (as ripgrep's `tests/util.rs` does).
///
/// # Examples
///
/// ```
/// use start_daemon::testutil::TestCommand;
///
/// let out = TestCommand::new("sh").args(["-c", "echo hi; exit 3"]).assert_code(3);
/// assert_eq!(out.stdout, b"hi\n");
/// assert_eq!(TestCommand::new("echo").arg("ok").stdout(), "ok\n");
/// ```
#[derive(Debug)]
pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl TestCommand {
    /// A command running `program`, stdin closed unless [`TestCommand::stdin`] gives it bytes.
    pub fn new(program: impl AsRef<OsStr>) -> TestCommand {
        TestCommand {
            cmd: Command::new(program),
            stdin: None,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env_remove(key);
        self
    }

    /// Runs in `dir` instead of the test's working folder.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut TestCommand {
        self.cmd.current_dir(dir);
        self
    }

    /// Feeds `bytes` to the command's stdin, then closes it.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command line as a shell would take it, environment changes first.
    pub fn command_line(&self) -> String {
        command_line(&self.cmd)
    }

    /// Runs the command to its end, whatever its exit status.
    ///
    /// # Panics
    ///
    /// If it cannot be run.
    pub fn output(&mut self) -> Output {
        let result = match self.stdin.clone() {
            None => self.cmd.stdin(Stdio::null()).output(),
            Some(bytes) => self.output_with_stdin(bytes),
        };
        match result {
            Ok(out) => out,
            Err(e) => panic!("cannot run {}: {e}", self.command_line()),
        }
    }

    fn output_with_stdin(&mut self, bytes: Vec<u8>) -> std::io::Result<Output> {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take();
        // A thread, so that a command that prints before it has read everything cannot
        // deadlock against us; a command that exits early closes the pipe, which is fine.
        let writer = std::thread::spawn(move || {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(&bytes);
            }
        });
        let out = child.wait_with_output();
        let _ = writer.join();
        out
    }

    /// Starts the command without waiting, stdin, stdout and stderr all closed: for a run the
    /// test interrupts.
    ///
    /// # Panics
    ///
    /// If it cannot be started.
    pub fn spawn(&mut self) -> Child {
        let spawned = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => child,
            Err(e) => panic!("cannot run {}: {e}", self.command_line()),
        }
    }

    /// Runs the command and asserts that it exits with 0.
    ///
    /// # Panics
    ///
    /// If it does not, with the whole run.
    pub fn assert_success(&mut self) -> Output {
        let out = self.output();
        if !out.status.success() {
            self.fail("success", &out);
        }
        out
    }

    /// Runs the command and asserts that it fails (a non-zero exit or a signal).
    ///
    /// # Panics
    ///
    /// If it succeeds, with the whole run.
    pub fn assert_failure(&mut self) -> Output {
        let out = self.output();
        if out.status.success() {
            self.fail("failure", &out);
        }
        out
    }

    /// Runs the command and asserts that it exits with `code`.
    ///
    /// # Panics
    ///
    /// If it does not, with the whole run.
    pub fn assert_code(&mut self, code: i32) -> Output {
        let out = self.output();
        if out.status.code() != Some(code) {
            self.fail(&format!("exit code {code}"), &out);
        }
        out
    }

    /// Runs the command, asserts that it succeeds, and returns its stdout (lossily UTF-8).
    ///
    /// # Panics
    ///
    /// If it does not succeed, with the whole run.
    pub fn stdout(&mut self) -> String {
        String::from_utf8_lossy(&self.assert_success().stdout).into_owned()
    }

    /// Panics with `out` described in full: what was expected, the command line, its working
    /// folder, its exit status, its stdout and its stderr.
    pub fn fail(&self, expected: &str, out: &Output) -> ! {
        let cwd = match self.cmd.get_current_dir() {
            Some(dir) => dir.display().to_string(),
            None => std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|e| format!("(unknown: {e})")),
        };
        panic!(
            "\n\n==========\nexpected {expected}\n\ncommand: {}\ncwd: {cwd}\nstatus: {}\n\n\
             stdout:\n{}\n\nstderr:\n{}\n==========\n",
            self.command_line(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        )
    }
}

impl From<Command> for TestCommand {
    /// Wraps a command configured with what [`TestCommand`] does not offer (a uid, say).
    fn from(cmd: Command) -> TestCommand {
        TestCommand { cmd, stdin: None }
    }
}

/// `cmd` as a shell would take it: environment changes, program, arguments, each quoted
/// where needed.
fn command_line(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            )),
            None => words.push(format!("-u {}", key.to_string_lossy())),
        }
    }
    if words.iter().any(|w| w.starts_with("-u ")) {
        words.insert(0, "env".into());
    }
    words.push(quote(&cmd.get_program().to_string_lossy()));
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let mut cmd = TestCommand::new("start");
        cmd.args(["exec", "-c", "print('a b')", ""])
            .env("START_CACHE_DIR", "/tmp/x y")
            .env_remove("START_RUNTIME");
        let line = cmd.command_line();
        assert!(line.starts_with("env "), "{line}");
        assert!(line.contains("START_CACHE_DIR='/tmp/x y'"), "{line}");
        assert!(line.contains("-u START_RUNTIME"), "{line}");
        assert!(
            line.ends_with(r#"start exec -c 'print('\''a b'\'')' ''"#),
            "{line}"
        );
    }

    #[test]
    fn a_failed_assertion_shows_the_whole_run() {
        let panic = std::panic::catch_unwind(|| {
            TestCommand::new("sh")
                .args(["-c", "echo to-out; echo to-err >&2; exit 4"])
                .assert_success();
        })
        .expect_err("the assertion fails");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        for needle in [
            "expected success",
            "command: sh -c",
            "cwd: ",
            "exit status: 4",
            "to-out",
            "to-err",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }

    #[test]
    fn stdin_is_fed_and_closed() {
        let out = TestCommand::new("cat").stdin("from stdin").stdout();
        assert_eq!(out, "from stdin");
    }
}
