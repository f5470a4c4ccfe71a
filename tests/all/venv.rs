//! Python virtual environments the tests own, under Cargo's target folder: the shared helper
//! (`start_daemon::testutil::venv_in`) rooted at this test binary's `CARGO_TARGET_TMPDIR`.

use std::path::Path;

pub use start_daemon::testutil::Venv;

/// The venv `name` with `requirements` (pinned) installed; see
/// [`start_daemon::testutil::venv_in`].
pub fn venv(name: &str, requirements: &[&str], env: &[(&str, &str)]) -> Venv {
    start_daemon::testutil::venv_in(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        name,
        requirements,
        env,
    )
}
