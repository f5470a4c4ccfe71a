//! Python virtual environments the tests own: made under Cargo's target folder on first use,
//! with pinned packages from PyPI, shared by every test that names the same set (a file lock
//! serializes the first install across test threads and processes).
//!
//! The folder is `BASE/venvs/NAME` (tests pass `env!("CARGO_TARGET_TMPDIR")`); a marker file
//! records the requirements it was made with, so changing them rebuilds it. Nothing outside
//! that folder is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A ready venv.
#[derive(Debug, Clone)]
pub struct Venv {
    /// Its folder.
    pub root: PathBuf,
}

impl Venv {
    /// Its Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.root.join("bin").join("python")
    }

    /// A program installed in it (`bin/NAME`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }
}

/// The venv `name` under `base` with `requirements` (pip requirement strings, pinned)
/// installed; `env` is passed to pip (e.g. `CMAKE_ARGS` for a package built from source).
///
/// # Panics
///
/// Loudly, with pip's output, when the install fails.
#[allow(clippy::unwrap_used)]
pub fn venv_in(base: &Path, name: &str, requirements: &[&str], env: &[(&str, &str)]) -> Venv {
    let base = base.join("venvs");
    std::fs::create_dir_all(&base).unwrap();
    let root = base.join(name);
    let marker = root.join(".start-requirements");
    let wanted = format!("{requirements:?} {env:?}");
    let lock = std::fs::File::create(base.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Venv { root };
    }
    let _ = std::fs::remove_dir_all(&root);
    eprintln!(
        "test venv {}: installing {} (first use; may take minutes)",
        root.display(),
        requirements.join(" ")
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&root));
    let venv = Venv { root };
    run(Command::new(venv.python())
        .args(["-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"));
    let mut install = Command::new(venv.python());
    install
        .args(["-m", "pip", "install", "--quiet"])
        .args(requirements)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    for (k, v) in env {
        install.env(k, v);
    }
    run(&mut install);
    std::fs::write(&marker, &wanted).unwrap();
    venv
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
