//! Which pages of a mapping a process has written: Linux's `PAGEMAP_SCAN` ioctl (6.7+) on
//! `/proc/self/pagemap`. Reusing a guest depends on it: only the pages the guest wrote since
//! instantiation differ from the snapshot, so only those are copied back.

use std::fs::File;
use std::io;

/// The smallest page size of the platforms this runs on; the probe scans one such page.
const PROBE_PAGE_BYTES: usize = 4096;

/// Region buffer size per ioctl call; the scan loops until the whole range is walked.
const REGIONS_PER_CALL: usize = 512;

// Page categories reported by the kernel (include/uapi/linux/fs.h).
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Debug, Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

nix::ioctl_readwrite!(pagemap_scan, b'f', 16, PmScanArg);

/// An open `/proc/self/pagemap` that answers `PAGEMAP_SCAN`.
#[derive(Debug)]
pub(crate) struct PageMap {
    file: File,
}

impl PageMap {
    /// Opens the scanner, or `None` where the kernel lacks `PAGEMAP_SCAN` (before 6.7, or not
    /// Linux): callers then fall back to fresh instances.
    pub fn open() -> Option<PageMap> {
        let file = File::open("/proc/self/pagemap").ok()?;
        let map = PageMap { file };
        // Probe with the page holding a local: mapped, and the kernel rejects empty ranges.
        let local = 0u8;
        let page = (&raw const local).addr() & !(PROBE_PAGE_BYTES - 1);
        map.written(
            std::ptr::without_provenance(page),
            PROBE_PAGE_BYTES,
            |_, _| {},
        )
        .ok()?;
        Some(map)
    }

    /// Calls `visit(offset, len)` for each run of pages in `[base, base + len)` that hold
    /// private, written contents: present or swapped, and neither backed by the file they were
    /// mapped from nor the shared zero page. Pages never touched, or only read, are not visited.
    ///
    /// `base` and `len` must be page-aligned and name memory mapped in this process.
    pub fn written(
        &self,
        base: *const u8,
        len: usize,
        mut visit: impl FnMut(usize, usize),
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let start = base as u64;
        let end = start + len as u64;
        let mut regions = [PageRegion::default(); REGIONS_PER_CALL];
        let mut from = start;
        loop {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                start: from,
                end,
                vec: regions.as_mut_ptr() as u64,
                vec_len: REGIONS_PER_CALL as u64,
                category_inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
                category_mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                ..PmScanArg::default()
            };
            // SAFETY: `arg` is a valid `pm_scan_arg` whose `vec` points at `REGIONS_PER_CALL`
            // writable `page_region`s; the kernel only reads page tables for `[start, end)`.
            let found = unsafe { pagemap_scan(self.file.as_raw_fd(), &mut arg) }
                .map_err(io::Error::from)?;
            let found = usize::try_from(found).unwrap_or(0).min(REGIONS_PER_CALL);
            for r in &regions[..found] {
                visit((r.start - start) as usize, (r.end - r.start) as usize);
            }
            if arg.walk_end >= end || (found == 0 && arg.walk_end <= from) {
                return Ok(());
            }
            from = arg.walk_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> usize {
        4096
    }

    /// An anonymous private mapping of `pages` pages, unmapped on drop.
    struct Anon {
        ptr: *mut u8,
        len: usize,
    }

    impl Anon {
        fn new(pages: usize) -> Anon {
            let len = pages * page();
            // SAFETY: a fresh private anonymous mapping; checked for failure below.
            let ptr = unsafe {
                nix::sys::mman::mmap_anonymous(
                    None,
                    std::num::NonZeroUsize::new(len).unwrap(),
                    nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                    nix::sys::mman::MapFlags::MAP_PRIVATE,
                )
            }
            .expect("mmap");
            Anon {
                ptr: ptr.as_ptr().cast(),
                len,
            }
        }
    }

    impl Drop for Anon {
        fn drop(&mut self) {
            // SAFETY: unmapping exactly what `new` mapped.
            unsafe {
                let _ = nix::sys::mman::munmap(
                    std::ptr::NonNull::new(self.ptr.cast()).unwrap(),
                    self.len,
                );
            }
        }
    }

    #[test]
    fn reports_written_pages_only() {
        let Some(map) = PageMap::open() else {
            eprintln!("PAGEMAP_SCAN unavailable on this kernel; nothing to test");
            return;
        };
        // The probe page is the caller's stack; a heap page works too.
        let heap = vec![1u8; 3 * page()];
        let aligned = (heap.as_ptr().addr() + page() - 1) & !(page() - 1);
        map.written(std::ptr::without_provenance(aligned), page(), |_, _| {})
            .unwrap();
        let mem = Anon::new(64);
        // Read some pages (zero page, not private), write others, in scattered runs.
        let written = [1usize, 2, 3, 10, 40, 41, 63];
        for p in [5usize, 6, 20] {
            // SAFETY: inside the mapping.
            let _ = unsafe { std::ptr::read_volatile(mem.ptr.add(p * page())) };
        }
        for &p in &written {
            // SAFETY: inside the mapping.
            unsafe { std::ptr::write_volatile(mem.ptr.add(p * page() + 7), 1u8) };
        }
        let mut seen = Vec::new();
        map.written(mem.ptr, mem.len, |off, len| {
            assert_eq!(off % page(), 0);
            assert_eq!(len % page(), 0);
            seen.extend((off / page())..((off + len) / page()));
        })
        .unwrap();
        assert_eq!(seen, written);
    }

    #[test]
    fn more_runs_than_one_call_returns_are_all_reported() {
        let Some(map) = PageMap::open() else {
            return;
        };
        let pages = REGIONS_PER_CALL * 2 + 10;
        let mem = Anon::new(pages * 2);
        // Every other page: `pages` separate runs, more than one ioctl can return.
        for p in 0..pages {
            // SAFETY: inside the mapping.
            unsafe { std::ptr::write_volatile(mem.ptr.add(2 * p * page()), 1u8) };
        }
        let mut runs = 0;
        map.written(mem.ptr, mem.len, |_, len| {
            assert_eq!(len, page());
            runs += 1;
        })
        .unwrap();
        assert_eq!(runs, pages);
    }
}
