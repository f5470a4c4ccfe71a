//! The system packages the build needs, found or installed.

use std::fmt;
use std::path::Path;
use std::process::Command;

/// Debian packages that provide what llama.cpp's build needs: `cmake` for its C++ build, and
/// libclang with clang's own headers for bindgen.
const DEBIAN_PACKAGES: [&str; 3] = ["cmake", "clang", "libclang-dev"];

/// Folders where Debian and most distributions put `libclang.so`.
const LIBCLANG_GLOBS: [&str; 3] = [
    "/usr/lib/llvm-*/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// Why the build's prerequisites could not be met.
#[derive(Debug)]
pub enum Error {
    /// Something is missing and there is no way here to install it.
    CannotInstall {
        /// What is missing.
        missing: Vec<&'static str>,
        /// Why it could not be installed.
        why: String,
    },
    /// The install ran but failed, or left something missing.
    InstallFailed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = "install them yourself (Debian: apt-get install cmake clang libclang-dev), \
                    or build without llama.cpp: cargo build --release --no-default-features";
        match self {
            Error::CannotInstall { missing, why } => write!(
                f,
                "the build needs {} for llama.cpp (the `llama` feature), and {why}; {hint}",
                missing.join(" and ")
            ),
            Error::InstallFailed(why) => {
                write!(f, "installing the build's packages failed: {why}; {hint}")
            }
        }
    }
}

/// Checks for cmake and libclang and installs the Debian packages that provide them if either is
/// missing. Does nothing when `START_SKIP_DEPS` is set.
pub fn ensure() -> Result<(), Error> {
    if std::env::var_os("START_SKIP_DEPS").is_some() {
        return Ok(());
    }
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let root = is_root();
    if !root && !on_path("sudo") {
        return Err(Error::CannotInstall {
            missing,
            why: "this user is not root and there is no sudo".into(),
        });
    }
    if !on_path("apt-get") {
        return Err(Error::CannotInstall {
            missing,
            why: "this machine has no apt-get".into(),
        });
    }
    eprintln!(
        "cargo xtask: the build needs {} for llama.cpp (cmake builds it, bindgen loads libclang \
         to bind it); installing the Debian packages {}{}",
        missing.join(" and "),
        DEBIAN_PACKAGES.join(" "),
        if root {
            ""
        } else {
            " with sudo (it may ask for your password)"
        }
    );
    apt(root, &["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(DEBIAN_PACKAGES);
    apt(root, &install)?;
    let still = self::missing();
    if !still.is_empty() {
        return Err(Error::InstallFailed(format!(
            "still missing: {}",
            still.join(", ")
        )));
    }
    eprintln!("cargo xtask: installed {}", DEBIAN_PACKAGES.join(" "));
    Ok(())
}

fn missing() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if std::env::var_os("CMAKE").is_none() && !on_path("cmake") {
        missing.push("cmake");
    }
    if !has_libclang() {
        missing.push("libclang");
    }
    missing
}

fn apt(root: bool, args: &[&str]) -> Result<(), Error> {
    let mut command = if root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    // apt's own progress is noise here; it is shown only when the step fails.
    match command.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            Err(Error::InstallFailed(format!(
                "apt-get {} exited with {}",
                args[0], out.status
            )))
        }
        Err(e) => Err(Error::InstallFailed(format!("cannot run apt-get: {e}"))),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether clang-sys (bindgen's loader) will find a libclang: `LIBCLANG_PATH`, or a
/// `libclang*.so*` in the usual folders.
fn has_libclang() -> bool {
    if let Some(dir) = std::env::var_os("LIBCLANG_PATH") {
        return holds_libclang(Path::new(&dir));
    }
    LIBCLANG_GLOBS
        .iter()
        .any(|pattern| match pattern.split_once('*') {
            Some((prefix, suffix)) => {
                let (parent, stem) = prefix.rsplit_once('/').unwrap_or(("/", prefix));
                std::fs::read_dir(parent).is_ok_and(|entries| {
                    entries.flatten().any(|e| {
                        let name = e.file_name();
                        name.to_string_lossy().starts_with(stem)
                            && holds_libclang(&e.path().join(suffix.trim_start_matches('/')))
                    })
                })
            }
            None => holds_libclang(Path::new(pattern)),
        })
}

fn holds_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libclang")
                && name.contains(".so")
                && !name.starts_with("libclang-cpp")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libclang_is_found_by_file_name_only() {
        let dir = std::env::temp_dir().join(format!("start-dev-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!holds_libclang(&dir));
        std::fs::write(dir.join("libclang-cpp.so.14"), b"").unwrap();
        assert!(!holds_libclang(&dir), "libclang-cpp is not libclang");
        std::fs::write(dir.join("libclang-14.so.1"), b"").unwrap();
        assert!(holds_libclang(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_error_says_how_to_do_without() {
        let e = Error::CannotInstall {
            missing: vec!["cmake"],
            why: "no apt-get".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("cmake") && text.contains("--no-default-features"),
            "{text}"
        );
    }
}
