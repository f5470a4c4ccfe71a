//! Reusing a finished guest instead of instantiating a new one: its memory is put back to the
//! snapshot's bytes in place, page by page, and its globals to their initial values.
//!
//! A fresh instance starts with its memory mapped copy-on-write from the compiled snapshot, so
//! every page the interpreter writes costs a page fault and a copy, and tearing it down costs
//! an unmap; for a small program that is most of an execution's time. A restored instance
//! keeps the pages it wrote: only those (found with [`PageMap`]) are copied back from a
//! pristine template instance, and the next execution finds them already mapped. The scan
//! walks the page tables of the whole memory, the largest part of a small execution's restore;
//! it is skipped when the guest's calls took no page fault since the last one, since then no
//! page can have become written (see [`crate::faults`]), and the last scan's pages are copied.
//!
//! Restoring is exact: afterwards every byte of memory equals the template's, every mutable
//! global its initial value, the memory its initial size; tables and segments cannot have
//! changed (the snapshot was checked for instructions that change them, see
//! `start_runtime::reuse`). Host state (WASI context, pipes, limits) is rebuilt for each
//! execution, and the scratch folder emptied. A guest that trapped or timed out is never reused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use start_runtime::reuse::{GLOBAL_EXPORT_PREFIX, REUSABLE_EXPORT};
use wasmtime::Val;

use crate::Error;
use crate::instance::Guest;
use crate::pagemap::PageMap;

/// The pristine instance that restores copy from. It never runs.
struct Template {
    // Owns the memory `base` points into.
    _guest: Guest,
    base: *const u8,
    len: usize,
    globals: Vec<(String, Val)>,
}

// SAFETY: the template's store is only touched on creation and drop; its memory is only read
// (never written, never grown) through `base`, which stays valid while `guest` lives.
unsafe impl Send for Template {}
// SAFETY: as above: shared access is read-only.
unsafe impl Sync for Template {}

/// How long a new execution waits for a restore in progress before instantiating afresh; a
/// restore takes well under a millisecond, a fresh instance's page faults several.
const RESTORE_WAIT: Duration = Duration::from_millis(5);

/// Guests ready for reuse, and how many are being restored now.
#[derive(Default)]
struct Ready {
    idle: Vec<Guest>,
    pending: usize,
}

/// Restores finished guests and keeps a few ready for the next execution.
pub(crate) struct Recycler {
    pagemap: PageMap,
    template: Template,
    ready: Mutex<Ready>,
    restored: Condvar,
    max_idle: usize,
    max_restore_bytes: usize,
    reused: AtomicU64,
    /// Restores that copied back the last scan's pages without scanning again.
    unscanned: AtomicU64,
}

impl Recycler {
    /// A recycler whose template is `template` (a guest that has not run), keeping at most
    /// `max_idle` guests ready and restoring none that wrote more than `max_restore_bytes`.
    /// `None` when reuse is impossible here: the snapshot lacks the reuse marker, or the
    /// kernel cannot report written pages.
    pub fn new(
        mut template: Guest,
        max_idle: usize,
        max_restore_bytes: usize,
    ) -> Result<Option<Recycler>, Error> {
        if max_idle == 0 {
            return Ok(None);
        }
        let Some(pagemap) = PageMap::open() else {
            return Ok(None);
        };
        let (instance, store) = template.instance_mut();
        if instance.get_memory(&mut *store, REUSABLE_EXPORT).is_none() {
            return Ok(None);
        }
        let names: Vec<String> = instance
            .exports(&mut *store)
            .map(|e| e.name().to_string())
            .filter(|n| n.starts_with(GLOBAL_EXPORT_PREFIX))
            .collect();
        let mut globals = Vec::with_capacity(names.len());
        for name in names {
            let global = instance
                .get_global(&mut *store, &name)
                .ok_or_else(|| Error::engine("preparing instance reuse", "global vanished"))?;
            globals.push((name, global.get(&mut *store)));
        }
        let (base, len) = template.memory_raw();
        Ok(Some(Recycler {
            pagemap,
            template: Template {
                _guest: template,
                base,
                len,
                globals,
            },
            ready: Mutex::new(Ready::default()),
            restored: Condvar::new(),
            max_idle,
            max_restore_bytes,
            reused: AtomicU64::new(0),
            unscanned: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A restored guest: one that is ready, else one being restored now (waiting at most
    /// [`RESTORE_WAIT`]), else `None`.
    pub fn take(&self) -> Option<Guest> {
        let deadline = Instant::now() + RESTORE_WAIT;
        let mut ready = self.lock();
        loop {
            if let Some(guest) = ready.idle.pop() {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Some(guest);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if ready.pending == 0 {
                return None;
            }
            ready = self
                .restored
                .wait_timeout(ready, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Removes the scratch folders of the guests it keeps (ready ones, the template) and leaves
    /// their memory to the process's exit; see [`crate::Sandbox::release_for_exit`].
    pub fn release_for_exit(self) {
        let ready = self.ready.into_inner().unwrap_or_else(|p| p.into_inner());
        for guest in ready.idle {
            guest.release_for_exit();
        }
        self.template._guest.release_for_exit();
    }

    /// How many executions so far ran in a restored guest.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Announces a guest that will be passed to [`Recycler::recycle`] (perhaps on another
    /// thread), so that [`Recycler::take`] waits for it rather than instantiating afresh.
    /// Returns false when enough guests are waiting already: drop it instead.
    pub fn announce(&self) -> bool {
        let mut ready = self.lock();
        if ready.idle.len() + ready.pending >= self.max_idle {
            return false;
        }
        ready.pending += 1;
        true
    }

    /// Restores an announced `guest` and keeps it for reuse; drops it when it cannot be
    /// restored (it trapped, grew its memory, wrote too much).
    pub fn recycle(&self, mut guest: Guest) {
        guest.release_files();
        let restored = self.restore(&mut guest).is_ok();
        let mut ready = self.lock();
        ready.pending = ready.pending.saturating_sub(1);
        if restored {
            ready.idle.push(guest);
        }
        drop(ready);
        self.restored.notify_all();
    }

    /// Puts `guest` back to the template's state, or says why it cannot be.
    pub fn restore(&self, guest: &mut Guest) -> Result<usize, &'static str> {
        if !guest.returned() {
            return Err("a call trapped or timed out");
        }
        let (base, len) = guest.memory_raw();
        if len != self.template.len {
            return Err("the memory grew");
        }
        let regions = match guest.take_written_unchanged() {
            Some(known) => {
                self.unscanned.fetch_add(1, Ordering::Relaxed);
                known
            }
            None => {
                let mut regions = Vec::new();
                self.pagemap
                    .written(base, len, |offset, bytes| regions.push((offset, bytes)))
                    .map_err(|_| "the page scan failed")?;
                regions
            }
        };
        let total: usize = regions.iter().map(|&(_, bytes)| bytes).sum();
        if total > self.max_restore_bytes {
            return Err("too many pages written");
        }
        for &(offset, bytes) in &regions {
            // SAFETY: both ranges lie inside memories of `len` bytes (the scan only reports
            // pages of `[base, base + len)`); the template's is only ever read, the guest's is
            // not in use (we hold it by `&mut`), and two instances never share memory.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.template.base.add(offset),
                    base.add(offset),
                    bytes,
                );
            }
        }
        guest.keep_written(regions);
        let (instance, store) = guest.instance_mut();
        for (name, value) in &self.template.globals {
            let global = instance
                .get_global(&mut *store, name)
                .ok_or("a global is missing")?;
            global
                .set(&mut *store, *value)
                .map_err(|_| "a global could not be reset")?;
        }
        guest
            .empty_scratch()
            .map_err(|_| "the scratch folder could not be emptied")?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::exec::budget;
    use crate::{Limits, Sandbox, SandboxOptions};

    /// Panics unless `guest`'s memory equals the template's byte for byte (after `code` ran and
    /// the guest was restored).
    fn assert_memory_is_the_templates(recycler: &Recycler, guest: &mut Guest, code: &str) {
        let (base, len) = guest.memory_raw();
        assert_eq!(len, recycler.template.len);
        // SAFETY: both point at `len` bytes of live linear memory; nothing runs meanwhile.
        let (mine, pristine) = unsafe {
            (
                std::slice::from_raw_parts(base, len),
                std::slice::from_raw_parts(recycler.template.base, len),
            )
        };
        let first_difference = mine.iter().zip(pristine).position(|(a, b)| a != b);
        assert_eq!(first_difference, None, "memory differs after {code:?}");
    }

    /// Runs `source` (its generator states `preset`), expects it to finish, restores the guest
    /// and checks its memory is the template's; returns the bytes the restore copied.
    fn run_and_restore(
        recycler: &Recycler,
        guest: &mut Guest,
        source: &start_runtime::TurnText,
        preset: &[(usize, Vec<u8>)],
    ) -> usize {
        let (outcome, _) = guest
            .turn_preset(source, &budget(&Limits::default()), preset)
            .unwrap();
        assert_eq!(
            outcome.status,
            crate::Status::Finished,
            "{}",
            outcome.stderr
        );
        let copied = recycler.restore(guest).unwrap();
        assert_memory_is_the_templates(recycler, guest, source.as_str());
        copied
    }

    #[test]
    fn a_restored_guest_equals_the_template_byte_for_byte() {
        let sandbox = Sandbox::new(SandboxOptions {
            reuse_instances: 1,
            ..SandboxOptions::default()
        })
        .unwrap();
        let flavor = sandbox.flavor(false).unwrap();
        let Some(recycler) = flavor.recycler.as_ref() else {
            assert!(
                PageMap::open().is_none(),
                "reuse is off though the kernel has PAGEMAP_SCAN"
            );
            return;
        };
        let (mut guest, _) = sandbox.ready_guest(&Limits::default()).unwrap();
        let code = "import sympy, random\nx = sympy.factorint(2**64 - 1)\n\
                    open('/f', 'w').write(str(x))\nimport builtins; builtins.y = random.random()";
        let source = start_runtime::TurnText::exec(7, "<string>", code).unwrap();
        let copied = run_and_restore(recycler, &mut guest, &source, &[]);
        assert!(copied > 0);
        let (instance, store) = guest.instance_mut();
        for (name, value) in &recycler.template.globals {
            let now = instance
                .get_global(&mut *store, name)
                .unwrap()
                .get(&mut *store);
            assert_eq!(format!("{now:?}"), format!("{value:?}"), "{name}");
        }
        assert_eq!(std::fs::read_dir(guest.scratch_dir()).unwrap().count(), 0);

        // Unscanned restores (the calls took no page fault) are exact too: executions that
        // write what the last ones did, then one that writes new pages, then those again.
        let programs = [
            "x = [i * i for i in range(1000)]",
            "x = [i * i for i in range(1000)]",
            "import sys\nfor m in list(sys.modules.values()):\n    m.__dict__['_seen'] = 1",
            "x = [i * i for i in range(1000)]",
            "x = [i * i for i in range(1000)]",
        ];
        let unscanned_before = recycler.unscanned.load(Ordering::Relaxed);
        for code in programs {
            let source = start_runtime::TurnText::exec(7, "<string>", code).unwrap();
            run_and_restore(recycler, &mut guest, &source, &[]);
        }
        assert!(
            recycler.unscanned.load(Ordering::Relaxed) > unscanned_before,
            "no restore skipped its scan"
        );

        // A fresh execution whose generator states the host wrote is restored exactly too.
        assert!(
            !flavor.generators.is_empty(),
            "the default snapshot records no generators the host may seed"
        );
        let draw = flavor.generators.draw().unwrap();
        let code = "import random, numpy; x = random.random(), numpy.random.rand()";
        let source = start_runtime::TurnText::fresh(draw.numpy_seed, "<string>", code).unwrap();
        run_and_restore(recycler, &mut guest, &source, &draw.writes);

        // And it runs again like a fresh one.
        let (again, _) = guest
            .turn(
                &start_runtime::TurnText::exec(
                    7,
                    "<string>",
                    "import builtins; print(hasattr(builtins, 'y'))",
                )
                .unwrap(),
                &budget(&Limits::default()),
            )
            .unwrap();
        assert_eq!(again.stdout, "False\n");
    }
}
