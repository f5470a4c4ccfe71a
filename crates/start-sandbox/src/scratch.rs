//! A guest's private scratch folder: created empty, emptied for reuse, removed at the end.
//!
//! A guest may build any tree it likes there (tens of thousands of nested folders in a few
//! seconds), so removal walks it without recursion and with one open descriptor at a time:
//! `std::fs::remove_dir_all` and `tempfile` recurse, one stack frame and one descriptor per
//! level, which overflows the thread's stack (aborting the whole host) or runs out of
//! descriptors on a deep tree; and paths are never used below the top, since a deep one is far
//! longer than `PATH_MAX`. A folder that still cannot be removed is renamed aside with a
//! `start-quarantine-` prefix, so it is never reused and is easy to find, never ignored.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Prefix of a scratch folder in the host's temporary folder.
pub const SCRATCH_PREFIX: &str = "start-scratch-";
/// Prefix a scratch folder gets when it could not be removed.
pub const QUARANTINE_PREFIX: &str = "start-quarantine-";

/// A scratch folder, removed (or quarantined) on drop.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates a new, empty, private folder (mode 0700) in `root`, or in the host's temporary
    /// folder when `root` is `None`.
    pub fn new(root: Option<&Path>) -> std::io::Result<Scratch> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(SCRATCH_PREFIX);
        let dir = match root {
            Some(root) => builder.tempdir_in(root)?,
            None => builder.tempdir()?,
        };
        Ok(Scratch { path: dir.keep() })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes everything inside the folder, keeping the folder.
    pub fn empty(&self) -> std::io::Result<()> {
        remove_tree(&self.path, false)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if remove_tree(&self.path, true).is_err() && self.path.exists() {
            let name = self.path.file_name().unwrap_or(OsStr::new("scratch"));
            let aside = self
                .path
                .with_file_name(format!("{QUARANTINE_PREFIX}{}", name.to_string_lossy()));
            // Nothing more can be done from a destructor; the prefix makes it findable.
            let _ = std::fs::rename(&self.path, aside);
        }
    }
}

/// Removes the folder `root` and everything in it, however deep, never following symbolic links,
/// without recursion, holding one directory descriptor at a time: for a server that puts its
/// guests' scratch folders ([`crate::SandboxOptions::scratch_root`]) under a parent of its own
/// and removes the parent when a worker dies.
///
/// # Errors
/// The first failure to open, read or unlink; what could be removed is gone.
pub fn remove_dir_tree(root: &Path) -> std::io::Result<()> {
    remove_tree(root, true)
}

/// Removes the tree under `root` (and `root` itself when `remove_root`), never following
/// symbolic links, without recursion, holding one directory descriptor at a time.
///
/// Each folder is listed once: its files are unlinked and its subfolders' names kept on a stack
/// (one entry per level, bounded by the number of entries), so the work is linear in the size of
/// the tree, however wide or deep.
///
/// # Errors
/// The first failure to open, read or unlink; what could be removed is gone.
pub(crate) fn remove_tree(root: &Path, remove_root: bool) -> std::io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = nix::fcntl::open(root, flags, Mode::empty()).map_err(std::io::Error::from)?;
    // From `root` down to the folder `fd` is open on: each folder's name in its parent (none
    // for `root`) and the subfolders of it still to remove.
    let mut levels: Vec<(Option<CString>, Vec<CString>)> = vec![(None, clear_files(&fd)?)];
    while let Some((_, pending)) = levels.last_mut() {
        if let Some(child) = pending.pop() {
            fd = openat(&fd, child.as_c_str(), flags, Mode::empty())
                .map_err(std::io::Error::from)?;
            let subdirs = clear_files(&fd)?;
            levels.push((Some(child), subdirs));
            continue;
        }
        // This folder is empty now: go up and remove it.
        let Some((Some(name), _)) = levels.pop() else {
            break;
        };
        fd = openat(&fd, c"..", flags, Mode::empty()).map_err(std::io::Error::from)?;
        unlinkat(&fd, name.as_c_str(), UnlinkatFlags::RemoveDir).map_err(std::io::Error::from)?;
    }
    drop(fd);
    if remove_root {
        std::fs::remove_dir(root)?;
    }
    Ok(())
}

/// Unlinks every non-folder in the folder `fd` is open on, and returns its subfolders' names.
fn clear_files(fd: &OwnedFd) -> std::io::Result<Vec<CString>> {
    let listing = nix::unistd::dup(fd.as_fd()).map_err(std::io::Error::from)?;
    let mut dir = Dir::from_fd(listing).map_err(std::io::Error::from)?;
    let mut subdirs = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(std::io::Error::from)?;
        let name: &CStr = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(t) => t == Type::Directory,
            None => {
                let stat = fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(std::io::Error::from)?;
                SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            }
        };
        if is_dir {
            subdirs.push(name.to_owned());
        } else {
            unlinkat(fd, name, UnlinkatFlags::NoRemoveDir).map_err(std::io::Error::from)?;
        }
    }
    Ok(subdirs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Builds `depth` nested folders named `d` under `root` (by descriptor: the path would be
    /// far longer than `PATH_MAX`), with a file at the bottom and one on the way.
    fn deep_tree(root: &Path, depth: usize) {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let mut fd = nix::fcntl::open(root, flags, Mode::empty()).unwrap();
        for level in 0..depth {
            nix::sys::stat::mkdirat(&fd, c"d", Mode::S_IRWXU).unwrap();
            if level % 1000 == 0 {
                let file =
                    openat(&fd, c"f", OFlag::O_CREAT | OFlag::O_WRONLY, Mode::S_IRUSR).unwrap();
                drop(file);
            }
            fd = openat(&fd, c"d", flags, Mode::empty()).unwrap();
        }
    }

    #[test]
    fn a_20000_deep_tree_is_removed_on_a_small_stack() {
        let scratch = Scratch::new(None).unwrap();
        deep_tree(scratch.path(), 20_000);
        std::fs::write(scratch.path().join("top.txt"), b"x").unwrap();
        let path = scratch.path().to_path_buf();
        // 64 KiB of stack: a recursive removal would overflow and abort the test binary.
        let scratch = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                scratch.empty().unwrap();
                scratch
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
        deep_tree(scratch.path(), 20_000);
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || drop(scratch))
            .unwrap()
            .join()
            .unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_wide_tree_is_listed_once_per_folder() {
        // 20 000 sibling folders, each with a file: rescanning the parent after each removal
        // made this quadratic (minutes); one listing per folder makes it linear.
        let scratch = Scratch::new(None).unwrap();
        let root = nix::fcntl::open(
            scratch.path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        for i in 0..20_000 {
            let name = CString::new(format!("d{i}")).unwrap();
            nix::sys::stat::mkdirat(&root, name.as_c_str(), Mode::S_IRWXU).unwrap();
            if i % 100 == 0 {
                let sub = openat(
                    &root,
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .unwrap();
                drop(openat(&sub, c"f", OFlag::O_CREAT | OFlag::O_WRONLY, Mode::S_IRUSR).unwrap());
            }
        }
        drop(root);
        scratch.empty().unwrap();
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }

    #[test]
    fn drop_removes_the_folder_and_links_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), b"x").unwrap();
        let scratch = Scratch::new(None).unwrap();
        std::os::unix::fs::symlink(outside.path(), scratch.path().join("link")).unwrap();
        std::fs::create_dir_all(scratch.path().join("a/b")).unwrap();
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
        assert!(
            outside.path().join("keep.txt").exists(),
            "the link was followed"
        );
    }

    #[test]
    fn a_folder_that_cannot_be_removed_is_quarantined() {
        let scratch = Scratch::new(None).unwrap();
        let path = scratch.path().to_path_buf();
        let locked = path.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("f"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Root ignores directory permissions; the removal then succeeds, which is also fine.
        let removable = nix::unistd::geteuid().is_root();
        drop(scratch);
        let aside = path.with_file_name(format!(
            "{QUARANTINE_PREFIX}{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        assert!(!path.exists());
        if removable {
            assert!(!aside.exists());
        } else {
            assert!(aside.exists(), "not quarantined");
            std::fs::set_permissions(aside.join("locked"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
            std::fs::remove_dir_all(&aside).unwrap();
        }
    }

    #[test]
    fn names_with_any_bytes_are_removed() {
        let scratch = Scratch::new(None).unwrap();
        let odd = OsStr::from_bytes(b"\xff\x01 odd");
        std::fs::write(scratch.path().join(odd), b"x").unwrap();
        std::fs::create_dir(scratch.path().join(OsStr::from_bytes(b"\xfe dir"))).unwrap();
        scratch.empty().unwrap();
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }
}
