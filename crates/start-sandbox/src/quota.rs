//! The guest's file budget ([`FileLimits`]), enforced in the WASI layer: the calls that add
//! bytes or entries to the scratch folder, or open descriptors, are checked before they run and
//! accounted after, and a call over the budget fails with `ENOSPC` or `EMFILE` without running.
//!
//! A size-limited mount would need privileges and a mount per guest; metering the few calls
//! that grow the folder costs nothing on the common path (a guest that never touches files).
//! Bytes are the files' logical sizes, measured with `fstat` around each write or resize, so a
//! hole made by seeking counts as written; removing or truncating a file gives its bytes back,
//! removing an entry gives the entry back. Only the scratch folder is writable, so every
//! regular file a guest can grow is in it.

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::types::{self, Errno, Fd, Filetype, Lookupflags, Oflags};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::{GuestMemory, GuestPtr};

use crate::instance::HostState;
use crate::{FileLimits, Limit, MAX_OPEN_FILES, MAX_SCRATCH_BYTES, MAX_SCRATCH_ENTRIES};

/// The WASI module whose calls are metered.
const MODULE: &str = "wasi_snapshot_preview1";

/// What one guest has used of its [`FileLimits`], and whether a call was refused.
#[derive(Debug)]
pub(crate) struct FileBudget {
    limits: FileLimits,
    bytes: u64,
    entries: u64,
    open: u64,
    refused: Option<Limit>,
    /// Whether the guest has called anything that can add an entry to the scratch folder
    /// (whatever the call returned): while false, the folder holds what it held when this
    /// budget began.
    may_have_added: bool,
}

impl FileBudget {
    /// An unused budget under `limits`, lowered to the maximums.
    pub fn new(limits: &FileLimits) -> Self {
        let mut limits = limits.clone();
        limits.clamp_to(&FileLimits {
            scratch_bytes: MAX_SCRATCH_BYTES,
            scratch_entries: MAX_SCRATCH_ENTRIES,
            open_files: MAX_OPEN_FILES,
        });
        FileBudget {
            limits,
            bytes: 0,
            entries: 0,
            open: 0,
            refused: None,
            may_have_added: false,
        }
    }

    /// Whether the guest may have added an entry to the scratch folder under this budget: it
    /// called `path_open` with `O_CREAT`, `path_create_directory`, `path_symlink`, `path_link`
    /// or `path_rename` (the only preview-1 calls that add a name), successfully or not. When
    /// false, a folder that was empty is empty still, and emptying it can be skipped.
    pub fn may_have_added(&self) -> bool {
        self.may_have_added
    }

    /// The limit a call was refused by since the last call of this, if any.
    pub fn take_refused(&mut self) -> Option<Limit> {
        self.refused.take()
    }

    fn refuse(&mut self, limit: Limit, errno: Errno) -> i32 {
        self.refused.get_or_insert(limit);
        errno as i32
    }

    /// `ENOSPC` when growing the files by `growth` bytes would pass the budget.
    fn check_bytes(&mut self, growth: u64) -> Option<i32> {
        (self.bytes.saturating_add(growth) > self.limits.scratch_bytes)
            .then(|| self.refuse(Limit::Scratch, Errno::Nospc))
    }

    /// `ENOSPC` when one more entry would pass the budget.
    fn check_entry(&mut self) -> Option<i32> {
        (self.entries >= u64::from(self.limits.scratch_entries))
            .then(|| self.refuse(Limit::Scratch, Errno::Nospc))
    }

    /// `EMFILE` when one more descriptor would pass the cap.
    fn check_open(&mut self) -> Option<i32> {
        (self.open >= u64::from(self.limits.open_files))
            .then(|| self.refuse(Limit::OpenFiles, Errno::Mfile))
    }

    fn resized(&mut self, before: u64, after: u64) {
        self.bytes = (self.bytes + after).saturating_sub(before);
    }
}

/// The guest's memory, its WASI context and its budget, for one call.
fn parts<'a>(
    caller: &'a mut Caller<'_, HostState>,
) -> wasmtime::Result<(GuestMemory<'a>, &'a mut WasiP1Ctx, &'a mut FileBudget)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let (data, state) = memory.data_and_store_mut(caller);
    let (wasi, budget) = state.files_mut();
    wasi.set_hostcall_fuel(fuel);
    Ok((GuestMemory::Unshared(data), wasi, budget))
}

fn fd(raw: i32) -> Fd {
    Fd::from(raw as u32)
}

fn guest_str(ptr: i32, len: i32) -> GuestPtr<str> {
    GuestPtr::new((ptr as u32, len as u32))
}

/// A regular file's size, or `None` for anything else (stdio, folders) or a bad descriptor.
async fn file_size(wasi: &mut WasiP1Ctx, memory: &mut GuestMemory<'_>, raw: i32) -> Option<u64> {
    let stat = wasi.fd_filestat_get(memory, fd(raw)).await.ok()?;
    (stat.filetype == Filetype::RegularFile).then_some(stat.size)
}

/// Accounts the change in size of the regular file `raw` (of `before` bytes before a call).
async fn account_resize(
    wasi: &mut WasiP1Ctx,
    memory: &mut GuestMemory<'_>,
    budget: &mut FileBudget,
    raw: i32,
    before: Option<u64>,
) {
    if let Some(before) = before {
        let after = file_size(wasi, memory, raw).await.unwrap_or(before);
        budget.resized(before, after);
    }
}

/// What a path names now (without following a final link): its type, size and link count.
async fn path_stat(
    wasi: &mut WasiP1Ctx,
    memory: &mut GuestMemory<'_>,
    dirfd: i32,
    ptr: i32,
    len: i32,
) -> Option<types::Filestat> {
    wasi.path_filestat_get(memory, fd(dirfd), Lookupflags::empty(), guest_str(ptr, len))
        .await
        .ok()
}

/// The bytes a file gives back when this name of it goes away.
fn freed_bytes(stat: &types::Filestat) -> u64 {
    if stat.filetype == Filetype::RegularFile && stat.nlink <= 1 {
        stat.size
    } else {
        0
    }
}

/// The total length of the `count` buffers described at `iovs` in guest memory (`None` when
/// they are out of bounds: the call itself then fails with `EFAULT`).
fn iovec_total(memory: &GuestMemory<'_>, iovs: i32, count: i32) -> Option<u64> {
    let GuestMemory::Unshared(bytes) = memory else {
        return None;
    };
    let start = iovs as u32 as usize;
    let count = count as u32 as usize;
    let table = bytes.get(start..start.checked_add(count.checked_mul(8)?)?)?;
    Some(
        table
            .chunks_exact(8)
            .map(|iov| u64::from(u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]])))
            .sum(),
    )
}

/// Where a write to `raw` of `len` bytes would end: at the end of an append-mode file, else at
/// the descriptor's position.
async fn write_end(
    wasi: &mut WasiP1Ctx,
    memory: &mut GuestMemory<'_>,
    raw: i32,
    size: u64,
    len: u64,
) -> u64 {
    let append = wasi
        .fd_fdstat_get(memory, fd(raw))
        .await
        .is_ok_and(|s| s.fs_flags.contains(types::Fdflags::APPEND));
    let at = if append {
        size
    } else {
        wasi.fd_tell(memory, fd(raw)).unwrap_or(size)
    };
    at.saturating_add(len)
}

/// Replaces the WASI calls that grow the scratch folder or open descriptors with metered
/// versions; `linker` must already hold WASI preview 1.
///
/// # Errors
/// When a call cannot be defined.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, HostState>, (raw, iovs, count, written): (i32, i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let size = file_size(wasi, &mut memory, raw).await;
                if let (Some(size), Some(len)) = (size, iovec_total(&memory, iovs, count)) {
                    let end = write_end(wasi, &mut memory, raw, size, len).await;
                    if let Some(errno) = budget.check_bytes(end.saturating_sub(size)) {
                        return Ok(errno);
                    }
                }
                let errno = p1::fd_write(wasi, &mut memory, raw, iovs, count, written).await?;
                account_resize(wasi, &mut memory, budget, raw, size).await;
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, HostState>,
         (raw, iovs, count, offset, written): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let size = file_size(wasi, &mut memory, raw).await;
                if let (Some(size), Some(len)) = (size, iovec_total(&memory, iovs, count)) {
                    let end = (offset as u64).saturating_add(len);
                    if let Some(errno) = budget.check_bytes(end.saturating_sub(size)) {
                        return Ok(errno);
                    }
                }
                let errno =
                    p1::fd_pwrite(wasi, &mut memory, raw, iovs, count, offset, written).await?;
                account_resize(wasi, &mut memory, budget, raw, size).await;
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, HostState>, (raw, new_size): (i32, i64)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let size = file_size(wasi, &mut memory, raw).await;
                if let Some(size) = size
                    && let Some(errno) = budget.check_bytes((new_size as u64).saturating_sub(size))
                {
                    return Ok(errno);
                }
                let errno = p1::fd_filestat_set_size(wasi, &mut memory, raw, new_size).await?;
                account_resize(wasi, &mut memory, budget, raw, size).await;
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, HostState>,
         (dirfd, dirflags, ptr, len, oflags, base, inheriting, fdflags, opened): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i64,
            i64,
            i32,
            i32,
        )| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let flags = Oflags::from_bits_truncate(oflags as u16);
                budget.may_have_added |= flags.contains(Oflags::CREAT);
                if let Some(errno) = budget.check_open() {
                    return Ok(errno);
                }
                let existing = path_stat(wasi, &mut memory, dirfd, ptr, len).await;
                let creates = flags.contains(Oflags::CREAT) && existing.is_none();
                if creates && let Some(errno) = budget.check_entry() {
                    return Ok(errno);
                }
                let errno = p1::path_open(
                    wasi,
                    &mut memory,
                    dirfd,
                    dirflags,
                    ptr,
                    len,
                    oflags,
                    base,
                    inheriting,
                    fdflags,
                    opened,
                )
                .await?;
                if errno == 0 {
                    budget.open += 1;
                    if creates {
                        budget.entries += 1;
                    }
                    if flags.contains(Oflags::TRUNC)
                        && let Some(old) = &existing
                        && old.filetype == Filetype::RegularFile
                    {
                        budget.resized(old.size, 0);
                    }
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, HostState>, (raw,): (i32,)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let errno = p1::fd_close(wasi, &mut memory, raw).await?;
                if errno == 0 {
                    budget.open = budget.open.saturating_sub(1);
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, HostState>, (from, to): (i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let errno = p1::fd_renumber(wasi, &mut memory, from, to).await?;
                if errno == 0 && from != to {
                    budget.open = budget.open.saturating_sub(1);
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_create_directory",
        |mut caller: Caller<'_, HostState>, (dirfd, ptr, len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                budget.may_have_added = true;
                if let Some(errno) = budget.check_entry() {
                    return Ok(errno);
                }
                let errno = p1::path_create_directory(wasi, &mut memory, dirfd, ptr, len).await?;
                if errno == 0 {
                    budget.entries += 1;
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, HostState>,
         (old_ptr, old_len, dirfd, ptr, len): (i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                budget.may_have_added = true;
                if let Some(errno) = budget.check_entry() {
                    return Ok(errno);
                }
                let errno =
                    p1::path_symlink(wasi, &mut memory, old_ptr, old_len, dirfd, ptr, len).await?;
                if errno == 0 {
                    budget.entries += 1;
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_link",
        |mut caller: Caller<'_, HostState>,
         (old_fd, old_flags, old_ptr, old_len, new_fd, ptr, len): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        )| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                budget.may_have_added = true;
                if let Some(errno) = budget.check_entry() {
                    return Ok(errno);
                }
                let errno = p1::path_link(
                    wasi,
                    &mut memory,
                    old_fd,
                    old_flags,
                    old_ptr,
                    old_len,
                    new_fd,
                    ptr,
                    len,
                )
                .await?;
                if errno == 0 {
                    budget.entries += 1;
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_unlink_file",
        |mut caller: Caller<'_, HostState>, (dirfd, ptr, len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let existing = path_stat(wasi, &mut memory, dirfd, ptr, len).await;
                let errno = p1::path_unlink_file(wasi, &mut memory, dirfd, ptr, len).await?;
                if errno == 0 {
                    budget.entries = budget.entries.saturating_sub(1);
                    if let Some(old) = &existing {
                        budget.resized(freed_bytes(old), 0);
                    }
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_remove_directory",
        |mut caller: Caller<'_, HostState>, (dirfd, ptr, len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                let errno = p1::path_remove_directory(wasi, &mut memory, dirfd, ptr, len).await?;
                if errno == 0 {
                    budget.entries = budget.entries.saturating_sub(1);
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "path_rename",
        |mut caller: Caller<'_, HostState>,
         (old_fd, old_ptr, old_len, new_fd, ptr, len): (i32, i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, wasi, budget) = parts(&mut caller)?;
                budget.may_have_added = true;
                let replaced = path_stat(wasi, &mut memory, new_fd, ptr, len).await;
                let errno = p1::path_rename(
                    wasi,
                    &mut memory,
                    old_fd,
                    old_ptr,
                    old_len,
                    new_fd,
                    ptr,
                    len,
                )
                .await?;
                if errno == 0
                    && let Some(old) = &replaced
                {
                    budget.entries = budget.entries.saturating_sub(1);
                    budget.resized(freed_bytes(old), 0);
                }
                Ok(errno)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_refuse_past_their_limits_and_remember_why() {
        let mut b = FileBudget::new(&FileLimits {
            scratch_bytes: 100,
            scratch_entries: 2,
            open_files: 1,
        });
        assert_eq!(b.check_bytes(100), None);
        b.resized(0, 100);
        assert_eq!(b.check_bytes(1), Some(Errno::Nospc as i32));
        assert_eq!(b.take_refused(), Some(Limit::Scratch));
        assert_eq!(b.take_refused(), None);
        b.resized(100, 0);
        assert_eq!(b.check_bytes(100), None);
        b.entries = 2;
        assert_eq!(b.check_entry(), Some(Errno::Nospc as i32));
        b.open = 1;
        assert_eq!(b.check_open(), Some(Errno::Mfile as i32));
        // The first refusal of a turn is the one reported.
        assert_eq!(b.take_refused(), Some(Limit::Scratch));
    }

    #[test]
    fn limits_over_the_maximums_are_lowered() {
        let b = FileBudget::new(&FileLimits {
            scratch_bytes: u64::MAX,
            scratch_entries: u32::MAX,
            open_files: u32::MAX,
        });
        assert_eq!(b.limits.scratch_bytes, MAX_SCRATCH_BYTES);
        assert_eq!(b.limits.scratch_entries, MAX_SCRATCH_ENTRIES);
        assert_eq!(b.limits.open_files, MAX_OPEN_FILES);
    }
}
