//! Page faults the calling thread has taken, from `getrusage(RUSAGE_THREAD)`: how a restore
//! knows that no page of a guest's memory became written since it last scanned them.
//!
//! A guest's memory is a private mapping of the snapshot: a page the guest has never written is
//! the file's (or the shared zero page), mapped read-only, and writing it makes the kernel copy
//! it to a private page, in a page fault. A page written before (and restored since) is already
//! private and writable: writing it again takes no fault. Everything that writes a guest's
//! memory (its code, the host calls it makes, the kernel filling a buffer for a `read`) runs on
//! the thread running its call, so when that thread took no fault at all during the call, the
//! guest's private pages are exactly the ones found by the last scan. Faults anywhere else on
//! the thread (the host's own allocations) only cause a scan that was not needed.

use nix::sys::resource::{UsageWho, getrusage};

/// Minor plus major page faults taken so far by the calling thread, or `None` where the kernel
/// does not say (then every restore scans).
pub(crate) fn taken_by_this_thread() -> Option<u64> {
    let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
    let faults = usage
        .minor_page_faults()
        .checked_add(usage.major_page_faults())?;
    u64::try_from(faults).ok()
}

/// Counts the page faults the calling thread takes from now until [`FaultCount::taken`].
pub(crate) struct FaultCount(Option<u64>);

impl FaultCount {
    /// Starts counting.
    pub fn start() -> Self {
        FaultCount(taken_by_this_thread())
    }

    /// Faults taken since [`FaultCount::start`]; `u64::MAX` when unknown, so that a caller
    /// summing them treats the memory as possibly written.
    pub fn taken(&self) -> u64 {
        match (self.0, taken_by_this_thread()) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
    use std::num::NonZeroUsize;

    #[test]
    fn writing_a_new_page_is_counted_and_rewriting_it_is_not() {
        let (page, pages) = (4096, 64);
        let len = NonZeroUsize::new(page * pages).unwrap();
        // SAFETY: a fresh private mapping of our own, written only inside its bounds, unmapped
        // at the end.
        unsafe {
            let map = mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
            .unwrap();
            let base = map.as_ptr().cast::<u8>();
            let count = FaultCount::start();
            for i in 0..pages {
                base.add(i * page).write_volatile(1);
            }
            assert!(count.taken() >= 1, "no fault for {pages} new pages");
            let count = FaultCount::start();
            for i in 0..pages {
                base.add(i * page).write_volatile(2);
            }
            assert_eq!(count.taken(), 0, "faults for pages already written");
            munmap(map, len.get()).unwrap();
        }
    }
}
