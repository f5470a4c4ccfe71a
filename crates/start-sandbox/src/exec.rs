//! [`Sandbox`]: built once, shared by threads; each [`Sandbox::exec`] runs code in an interpreter
//! in the exact state of the pre-initialized snapshot: a new instance, or a finished one restored.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use start_runtime::{DEFAULT_EXEC_FILENAME, Runtime, RuntimeOptions, SnapshotSpec, TurnText};
use wasmtime::{Engine, InstancePre, Linker};

use crate::engine::{self, EngineSettings, EpochTicker};
use crate::instance::{Arming, Guest, HostState, TurnBudget};
use crate::preseed::Generators;
use crate::recycle::Recycler;
use crate::{Error, Limits, MAX_CODE_BYTES, MAX_STDIN_BYTES, Outcome};

/// How a [`Sandbox`] is built.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where the runtime comes from, where it is cached, what the snapshot preloads.
    pub runtime: RuntimeOptions,
    /// Instances that may live at once, per engine: executions in flight, open sessions, the
    /// pristine template restores copy from, and up to `reuse_instances` restored ones kept
    /// ready. Default 1000.
    pub max_instances: u32,
    /// Bytes of each pooled memory slot kept resident between uses: faster reuse, more idle
    /// memory. Default 0.
    pub memory_keep_resident_bytes: usize,
    /// Tear a finished execution's instance down on a background thread, after the outcome is
    /// returned, when it is not kept for reuse. Default true.
    pub teardown_in_background: bool,
    /// Finished instances kept, restored to the snapshot's exact state, for the next fresh
    /// executions: a restore copies back only the pages the guest wrote, far cheaper than a
    /// new instance's page faults. 0 turns reuse off. Default [`DEFAULT_REUSE_INSTANCES`].
    /// Needs Linux 6.7+ (`PAGEMAP_SCAN`); elsewhere every execution gets a new instance.
    pub reuse_instances: usize,
    /// An instance that wrote more than this many bytes of memory is torn down rather than
    /// restored: copying it back would cost more than a new instance, and an idle restored
    /// instance keeps what it wrote resident. Default [`DEFAULT_MAX_RESTORE_BYTES`].
    pub max_restore_bytes: usize,
    /// The folder the guests' scratch folders are made in. Default `None`: the host's
    /// temporary folder. A server points it at a folder of its own, so that what a killed
    /// process leaves is removed with that folder (see [`crate::remove_dir_tree`]).
    pub scratch_root: Option<PathBuf>,
}

/// Default of [`SandboxOptions::max_restore_bytes`].
pub const DEFAULT_MAX_RESTORE_BYTES: usize = 32 << 20;

/// Default of [`SandboxOptions::reuse_instances`]: enough for a few threads executing at once.
pub const DEFAULT_REUSE_INSTANCES: usize = 4;

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            runtime: RuntimeOptions::default(),
            max_instances: engine::DEFAULT_MAX_INSTANCES,
            memory_keep_resident_bytes: 0,
            teardown_in_background: true,
            reuse_instances: DEFAULT_REUSE_INSTANCES,
            max_restore_bytes: DEFAULT_MAX_RESTORE_BYTES,
            scratch_root: None,
        }
    }
}

/// An engine with the snapshot compiled for it and instantiation prepared.
pub(crate) struct Flavor {
    pub engine: Engine,
    pub pre: InstancePre<HostState>,
    pub metered: bool,
    pub recycler: Option<Recycler>,
    /// The random generators whose state the host writes before a fresh execution.
    pub generators: Generators,
    _ticker: EpochTicker,
}

pub(crate) struct Inner {
    pub runtime: Runtime,
    pub fast: Arc<Flavor>,
    metered: Mutex<Option<Arc<Flavor>>>,
    options: SandboxOptions,
    reaper: Option<Reaper>,
}

/// How many finished instances may wait for teardown; past that, the caller drops its own.
const REAPER_QUEUE: usize = 64;

/// A thread that tears finished guests down (unmapping memory, returning the pool slot,
/// removing the scratch folder) after the caller has its outcome. Dropping it waits for the
/// guests still queued: a process that ends right after its last execution (`start exec` on a
/// timeout) would otherwise leave their scratch folders behind.
struct Reaper {
    queue: Option<Mutex<std::sync::mpsc::SyncSender<Guest>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    fn start() -> Result<Self, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Guest>(REAPER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sandbox-reaper".into())
            .spawn(move || {
                for guest in rx {
                    drop(guest);
                }
            })
            .map_err(|source| Error::Io {
                action: "starting the teardown thread",
                source,
            })?;
        Ok(Reaper {
            queue: Some(Mutex::new(tx)),
            thread: Some(thread),
        })
    }

    /// Hands `guest` to the thread, or drops it here when the queue is full.
    fn dispose(&self, guest: Guest) {
        let Some(queue) = &self.queue else {
            return drop(guest);
        };
        let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(
            std::sync::mpsc::TrySendError::Full(g) | std::sync::mpsc::TrySendError::Disconnected(g),
        ) = queue.try_send(guest)
        {
            drop(queue);
            drop(g);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop once the guests in it are torn down.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// A Python sandbox: build once, share across threads, run code with [`Sandbox::exec`].
///
/// ```no_run
/// let sandbox = start_sandbox::Sandbox::new(Default::default())?;
/// let outcome = sandbox.exec("print(6 * 7)", &Default::default())?;
/// assert_eq!(outcome.stdout, "42\n");
/// # Ok::<(), start_sandbox::Error>(())
/// ```
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("cache", &self.inner.runtime.cache().root())
            .finish_non_exhaustive()
    }
}

fn build_flavor(runtime: &Runtime, options: &SandboxOptions, fuel: bool) -> Result<Flavor, Error> {
    let engine = engine::build(EngineSettings {
        fuel,
        max_instances: options.max_instances,
        memory_keep_resident_bytes: options.memory_keep_resident_bytes,
    })?;
    let compiled = runtime.snapshot_module(&engine)?;
    let mut linker: Linker<HostState> = Linker::new(&engine);
    start_runtime::guest::add_to_linker_async(&mut linker, HostState::wasi)
        .and_then(|()| crate::quota::add_to_linker(&mut linker))
        .map_err(|e| Error::engine("linking WASI", e))?;
    let pre = linker
        .instantiate_pre(&compiled.module)
        .map_err(|e| Error::engine("preparing instantiation", e))?;
    let ticker = EpochTicker::start(&engine)?;
    let recycler = if options.reuse_instances > 0 {
        let template = Guest::new(
            &engine,
            &pre,
            &arming(runtime, options, &Limits::default()),
            fuel,
        )?;
        Recycler::new(template, options.reuse_instances, options.max_restore_bytes)?
    } else {
        None
    };
    let generators = Generators::of(&compiled.module);
    Ok(Flavor {
        engine,
        pre,
        metered: fuel,
        recycler,
        generators,
        _ticker: ticker,
    })
}

impl Flavor {
    /// See [`Sandbox::release_for_exit`].
    fn release_for_exit(self) {
        let Flavor {
            engine,
            pre,
            metered: _,
            recycler,
            generators: _,
            _ticker,
        } = self;
        if let Some(recycler) = recycler {
            recycler.release_for_exit();
        }
        std::mem::forget((engine, pre, _ticker));
    }
}

impl Sandbox {
    /// Builds a sandbox: obtains the runtime and its snapshot (downloading and compiling them on
    /// first use, ~2 minutes once; a few milliseconds later), and prepares instantiation. It
    /// raises the process's soft descriptor limit to the hard one, since guests' descriptors
    /// are the process's.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the runtime cannot be obtained, verified or compiled.
    pub fn new(options: SandboxOptions) -> Result<Self, Error> {
        raise_descriptor_limit();
        let runtime = Runtime::prepare(options.runtime.clone())?;
        let fast = Arc::new(build_flavor(&runtime, &options, false)?);
        let reaper = if options.teardown_in_background {
            Some(Reaper::start()?)
        } else {
            None
        };
        Ok(Sandbox {
            inner: Arc::new(Inner {
                runtime,
                fast,
                metered: Mutex::new(None),
                options,
                reaper,
            }),
        })
    }

    /// What the snapshot every execution starts from holds (its preloads and defined modules).
    pub fn snapshot_spec(&self) -> &SnapshotSpec {
        self.inner.runtime.snapshot_spec()
    }

    /// The cache folder in use.
    pub fn cache_dir(&self) -> PathBuf {
        self.inner.runtime.cache().root().to_path_buf()
    }

    /// The flavor for `limits`: the metered engine when a fuel budget is set.
    pub(crate) fn flavor(&self, fuel: bool) -> Result<Arc<Flavor>, Error> {
        if !fuel {
            return Ok(self.inner.fast.clone());
        }
        let mut slot = self.inner.metered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let built = Arc::new(build_flavor(
            &self.inner.runtime,
            &self.inner.options,
            true,
        )?);
        *slot = Some(built.clone());
        Ok(built)
    }

    /// Prepares the metered (fuel) engine now rather than on the first call with a fuel budget.
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn prepare_fuel(&self) -> Result<(), Error> {
        self.flavor(true).map(drop)
    }

    /// An interpreter in the snapshot's state, armed for `limits`: a restored one when ready,
    /// else a new one. Hand it back with [`Sandbox::retire`].
    pub(crate) fn ready_guest(&self, limits: &Limits) -> Result<(Guest, Arc<Flavor>), Error> {
        validate(limits)?;
        let flavor = self.flavor(limits.fuel.is_some())?;
        let arming = arming(&self.inner.runtime, &self.inner.options, limits);
        if let Some(mut guest) = flavor.recycler.as_ref().and_then(Recycler::take) {
            guest.rearm(&arming)?;
            return Ok((guest, flavor));
        }
        let guest = Guest::new(&flavor.engine, &flavor.pre, &arming, flavor.metered)?;
        Ok((guest, flavor))
    }

    /// Disposes of a finished guest: restored for reuse when it can be, else torn down.
    pub(crate) fn retire(&self, guest: Guest, flavor: &Flavor) {
        // Restoring is cheap (only the written pages are copied back) and fastest on this
        // thread, whose caches hold those pages; teardown is not, and goes to the reaper.
        let recycler = flavor.recycler.as_ref();
        if guest.returned() && recycler.is_some_and(Recycler::announce) {
            if let Some(recycler) = recycler {
                recycler.recycle(guest);
            }
            return;
        }
        match &self.inner.reaper {
            Some(reaper) => reaper.dispose(guest),
            None => drop(guest),
        }
    }

    /// Ends this sandbox in a process about to exit: waits for the teardowns still queued,
    /// removes the scratch folders of the instances it keeps (those ready for reuse and the
    /// template), and leaves the rest (memory mappings, engine, ticker thread) to the exit,
    /// which releases it all at once; dropping it instead unmaps instance by instance (see
    /// BENCHMARKS.md for what that costs `start judge`). Only for a process that is about to
    /// exit: what it leaves stays mapped until then. While another clone, an open session or an execution's [`Cleanup`] shares the sandbox,
    /// this is an ordinary drop.
    pub fn release_for_exit(self) {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        let Inner {
            runtime,
            fast,
            metered,
            options: _,
            reaper,
        } = inner;
        // Joining the reaper tears the queued guests down, their folders with them.
        drop(reaper);
        let metered = metered.into_inner().unwrap_or_else(|p| p.into_inner());
        for flavor in std::iter::once(fast).chain(metered) {
            if let Ok(flavor) = Arc::try_unwrap(flavor) {
                flavor.release_for_exit();
            }
        }
        std::mem::forget(runtime);
    }

    /// How many executions so far ran in a restored (reused) instance rather than a new one.
    pub fn reused_instances(&self) -> u64 {
        let metered = self.inner.metered.lock().unwrap_or_else(|p| p.into_inner());
        [Some(&self.inner.fast), metered.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|f| f.recycler.as_ref())
            .map(Recycler::reused)
            .sum()
    }

    /// Runs `code` as a fresh program (like `python -c`) in an interpreter in the snapshot's state.
    ///
    /// Nothing leaks between calls: each starts from the snapshot's exact state (a new instance,
    /// or one restored byte for byte; see [`SandboxOptions::reuse_instances`]), with an empty
    /// scratch folder and freshly seeded random generators.
    ///
    /// # Errors
    /// Only for host failures or invalid requests (code over [`MAX_CODE_BYTES`]); whatever the
    /// guest does is in the [`Outcome`].
    pub fn exec(&self, code: &str, limits: &Limits) -> Result<Outcome, Error> {
        self.exec_deferring_cleanup(code, limits)
            .map(|(outcome, _cleanup)| outcome)
    }

    /// [`Sandbox::exec`], returning the outcome before the interpreter is restored for reuse
    /// (or torn down): that happens when the returned [`Cleanup`] is dropped. A server sends
    /// its reply first and drops the `Cleanup` after, taking the restore off its latency.
    ///
    /// # Errors
    /// As [`Sandbox::exec`].
    pub fn exec_deferring_cleanup(
        &self,
        code: &str,
        limits: &Limits,
    ) -> Result<(Outcome, Cleanup), Error> {
        check_code(code)?;
        let (mut guest, flavor) = self.ready_guest(limits)?;
        // An explicit seed is Python's own `random.seed(seed)`, in the guest; otherwise the
        // host writes fresh generator states where the snapshot lets it (much cheaper).
        let (source, preset) = match limits.seed {
            Some(seed) => (
                TurnText::exec(seed, DEFAULT_EXEC_FILENAME, code)?,
                Vec::new(),
            ),
            None if !flavor.generators.is_empty() => {
                let draw = flavor.generators.draw()?;
                let source = TurnText::fresh(draw.numpy_seed, DEFAULT_EXEC_FILENAME, code)?;
                (source, draw.writes)
            }
            None => (
                TurnText::exec(fresh_seed()?, DEFAULT_EXEC_FILENAME, code)?,
                Vec::new(),
            ),
        };
        let (outcome, _alive) = guest.turn_preset(&source, &budget(limits), &preset)?;
        let cleanup = Cleanup {
            finished: Some((guest, flavor)),
            sandbox: self.clone(),
        };
        Ok((outcome, cleanup))
    }
}

/// A finished execution's interpreter, restored for reuse (or torn down) when dropped. See
/// [`Sandbox::exec_deferring_cleanup`].
#[must_use = "dropping it at once is what `Sandbox::exec` does"]
pub struct Cleanup {
    finished: Option<(Guest, Arc<Flavor>)>,
    sandbox: Sandbox,
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleanup").finish_non_exhaustive()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((guest, flavor)) = self.finished.take() {
            self.sandbox.retire(guest, &flavor);
        }
    }
}

/// Raises this process's soft descriptor limit to its hard limit: every guest descriptor is a
/// host one, and a process running many guests (each up to [`crate::FileLimits::open_files`])
/// would otherwise fail at the common soft default of 1024 while the kernel allows far more.
/// A failure leaves the limit as it was: guests then meet `EMFILE` sooner, nothing worse.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// What a guest is armed with for an execution under `limits`.
fn arming<'a>(runtime: &'a Runtime, options: &'a SandboxOptions, limits: &'a Limits) -> Arming<'a> {
    Arming {
        stdlib_dir: runtime.stdlib_dir(),
        scratch_root: options.scratch_root.as_deref(),
        memory_bytes: limits.memory_bytes,
        stdin: &limits.stdin,
        files: &limits.files,
    }
}

impl HostState {
    fn wasi(&mut self) -> &mut wasmtime_wasi::p1::WasiP1Ctx {
        self.wasi_mut()
    }
}

pub(crate) fn budget(limits: &Limits) -> TurnBudget {
    TurnBudget {
        wall_time: limits.wall_time,
        fuel: limits.fuel,
        stdout_bytes: limits.stdout_bytes,
        stderr_bytes: limits.stderr_bytes,
    }
}

pub(crate) fn check_code(code: &str) -> Result<(), Error> {
    if code.len() > MAX_CODE_BYTES {
        return Err(Error::Invalid(format!(
            "code is {} bytes; the limit is {MAX_CODE_BYTES}",
            code.len()
        )));
    }
    Ok(())
}

fn validate(limits: &Limits) -> Result<(), Error> {
    if limits.stdin.len() > MAX_STDIN_BYTES {
        return Err(Error::Invalid(format!(
            "stdin is {} bytes; the limit is {MAX_STDIN_BYTES}",
            limits.stdin.len()
        )));
    }
    Ok(())
}

/// A seed from host entropy for `random` and numpy.
pub(crate) fn fresh_seed() -> Result<u64, Error> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).map_err(|e| Error::Io {
        action: "drawing a random seed",
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(u64::from_le_bytes(buf))
}
