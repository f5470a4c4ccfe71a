//! `--daemon [--socket PATH]`: run through a running `startd` (see `crates/start-daemon/PROTOCOL.md`)
//! instead of building a sandbox in this process.

use std::path::PathBuf;

use anyhow::{Context, Result};
use start_daemon::BlockingClient;
use start_sandbox::{Limits, Outcome};

/// Flags that send the work to `startd`.
#[derive(Debug, clap::Args, Clone)]
pub struct DaemonArgs {
    /// Run through a running `startd` instead of in this process.
    #[arg(long)]
    pub daemon: bool,
    /// The daemon's socket (default: $START_SOCKET, else $XDG_RUNTIME_DIR/start/startd.sock,
    /// else a per-user folder under the temporary directory).
    #[arg(long, value_name = "PATH", requires = "daemon")]
    pub socket: Option<PathBuf>,
}

impl DaemonArgs {
    /// The socket path to use.
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(start_daemon::default_socket_path)
    }

    /// A connection to the daemon.
    pub fn client(&self) -> Result<BlockingClient> {
        Ok(BlockingClient::connect(self.socket_path())?)
    }

    /// Runs `code` once through the daemon; its limits are lowered to the daemon's ceilings.
    pub fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome> {
        self.client()?
            .exec(code, limits)
            .context("startd could not run the code")
    }
}
