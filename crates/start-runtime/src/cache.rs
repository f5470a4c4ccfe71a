//! The cache folder: where the unpacked runtime, snapshots and `.cwasm` files live.
//!
//! Every file is written to a temporary file in the same folder and renamed into place, so a
//! reader never sees a half-written file; builds take an exclusive lock on `.lock` so two
//! processes starting at once do the work once.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{CACHE_DIR_ENV, Error};

/// The default cache folder: `$START_CACHE_DIR`, else `<user cache dir>/start`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("start")
}

/// Refuses a folder that a user other than us (or root) owns or that group or others may
/// write: it is followed if a link (a cache on another disk is fine), but what it names is
/// checked.
fn check_private(root: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(root).map_err(|e| Error::io("cannot inspect cache folder", root, e))?;
    let unsafe_cache = |why: String| Error::UnsafeCache {
        path: root.to_path_buf(),
        why,
    };
    if !meta.is_dir() {
        return Err(unsafe_cache("it is not a folder".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_cache(format!(
            "it belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_cache(format!(
            "its mode {:o} lets group or others write in it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A cache folder we can read and write.
#[derive(Debug, Clone)]
pub struct CacheDir {
    root: PathBuf,
}

/// An exclusive lock on the cache folder, released on drop.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheDir {
    /// Opens (creating if needed, mode 0700) the cache folder at `root` and checks that it is
    /// writable and safe: owned by this user (or root) and not writable by group or others,
    /// since its `.cwasm` files are mapped as native code.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be created or written, [`Error::UnsafeCache`] when
    /// someone else could change it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| Error::io("cannot create cache folder", &root, e))?;
        check_private(&root)?;
        // Probe readability and writability now, so a bad folder fails with its own name.
        fs::read_dir(&root).map_err(|e| Error::io("cannot read cache folder", &root, e))?;
        let probe = tempfile::Builder::new()
            .prefix(".probe")
            .tempfile_in(&root)
            .map_err(|e| Error::io("cannot write in cache folder", &root, e))?;
        drop(probe);
        Ok(CacheDir { root })
    }

    /// The folder's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the cache folder.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Takes the cache's exclusive build lock, waiting for another process that holds it.
    ///
    /// # Errors
    /// [`Error::Io`] when the lock file cannot be opened or locked.
    pub fn lock(&self) -> Result<CacheLock, Error> {
        let path = self.path(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open lock file", &path, e))?;
        file.lock()
            .map_err(|e| Error::io("cannot lock", &path, e))?;
        Ok(CacheLock { _file: file })
    }

    /// Writes `dest` atomically, as [`write_atomic`].
    ///
    /// # Errors
    /// [`Error::Io`] on any filesystem failure; `fill`'s own error is passed through.
    pub fn write_atomic(
        &self,
        dest: &Path,
        fill: impl FnOnce(&mut File) -> Result<(), Error>,
    ) -> Result<(), Error> {
        write_atomic(dest, fill)
    }

    /// Writes `bytes` to `dest` atomically.
    ///
    /// # Errors
    /// As [`CacheDir::write_atomic`].
    pub fn write_bytes(&self, dest: &Path, bytes: &[u8]) -> Result<(), Error> {
        self.write_atomic(dest, |f| {
            f.write_all(bytes)
                .map_err(|e| Error::io("cannot write", dest, e))
        })
    }
}

/// Writes `dest` atomically: `fill` writes a temporary file in the same folder (created if
/// needed), which is then synced and renamed over `dest`, so a reader sees the old file or the
/// whole new one and a crash leaves no partial `dest`. The one atomic write of the workspace.
///
/// # Errors
/// [`Error::Io`] on any filesystem failure; `fill`'s own error is passed through.
pub fn write_atomic(
    dest: &Path,
    fill: impl FnOnce(&mut File) -> Result<(), Error>,
) -> Result<(), Error> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create temporary file in", dir, e))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut()
        .flush()
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", tmp.path(), e))?;
    tmp.persist(dest)
        .map_err(|e| Error::io("cannot rename into place", dest, e.error))?;
    Ok(())
}

/// SHA-256 of a file, lower-case hex, read in chunks.
pub(crate) fn sha256_file(path: &Path) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io("cannot read", path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of bytes, lower-case hex.
pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(dir.path().join("c")).unwrap();
        let dest = cache.path("sub/file.bin");
        cache.write_bytes(&dest, b"first").unwrap();
        cache.write_bytes(&dest, b"second").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        let leftovers: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn unwritable_cache_folder_is_a_clear_error() {
        // A regular file where the folder should be.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = CacheDir::open(file.join("cache")).unwrap_err();
        assert!(
            err.to_string().contains("cannot create cache folder"),
            "{err}"
        );
    }

    #[test]
    fn a_cache_folder_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let err = CacheDir::open(&shared).unwrap_err();
        assert!(matches!(err, Error::UnsafeCache { .. }), "{err}");
        assert!(err.to_string().contains("777"), "{err}");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        CacheDir::open(&shared).unwrap();
    }

    #[test]
    fn a_new_cache_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        CacheDir::open(&root).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_cache_folder_owned_by_someone_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to give a folder to another uid");
            return;
        }
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = CacheDir::open(&theirs).unwrap_err();
        assert!(err.to_string().contains("uid 65534"), "{err}");
    }

    #[test]
    fn lock_is_exclusive_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(dir.path()).unwrap();
        let held = cache.lock().unwrap();
        let path = cache.path(".lock");
        let other = File::options().write(true).open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
