//! One live guest: a wasmtime `Store` holding a CPython instance started from the snapshot,
//! its capped pipes and its private scratch folder. Fresh executions make one per call and drop
//! it; sessions keep one across turns.

use std::time::{Duration, Instant};

use wasmtime::{Engine, Instance, InstancePre, Memory, ResourceLimiter, Store, Trap, TypedFunc};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use crate::engine::ticks_for;
use crate::faults::FaultCount;
use crate::output::{CappedPipe, Captured};
use crate::quota::FileBudget;
use crate::scratch::Scratch;
use start_runtime::TurnText;

use crate::{Error, Limit, Outcome, Status};

/// Grace added to the timer that backs up epoch interruption: the epoch stops CPU loops on
/// time; the timer only has to catch a guest blocked in a host call (e.g. `time.sleep`).
const TIMER_GRACE: Duration = Duration::from_millis(20);

/// Per-store host state.
pub(crate) struct HostState {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
    files: FileBudget,
}

impl HostState {
    pub(crate) fn wasi_mut(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }

    /// The WASI context and the file budget it is metered against.
    pub(crate) fn files_mut(&mut self) -> (&mut WasiP1Ctx, &mut FileBudget) {
        (&mut self.wasi, &mut self.files)
    }
}

/// Caps linear memory and remembers the peak and whether growth was refused.
pub(crate) struct MemoryLimiter {
    cap_bytes: usize,
    peak_bytes: usize,
    refused: bool,
    /// The largest size refused.
    desired_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.refused = true;
            self.desired_bytes = self.desired_bytes.max(desired);
            return Ok(false);
        }
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The error for a memory cap below what the interpreter occupies before running any code.
fn below_interpreter(cap_bytes: usize, needed_bytes: usize) -> Error {
    Error::Invalid(format!(
        "a memory limit of {cap_bytes} bytes is below the {needed_bytes} bytes the interpreter \
         itself occupies; allow at least that much"
    ))
}

/// How one call into the guest ended, before interpretation.
enum Raw {
    Returned(i32),
    Trapped(wasmtime::Error),
    TimedOut,
}

/// Per-turn limits a [`Guest`] applies.
pub(crate) struct TurnBudget {
    pub wall_time: Duration,
    pub fuel: Option<u64>,
    pub stdout_bytes: usize,
    pub stderr_bytes: usize,
}

/// A live CPython instance.
pub(crate) struct Guest {
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    turn: TypedFunc<(i32, i32), i32>,
    stdout: CappedPipe,
    stderr: CappedPipe,
    metered: bool,
    /// Whether every call so far returned normally (no trap, no timeout): only such a guest's
    /// state is fully known and may be restored for reuse.
    returned: bool,
    /// Page faults its calls took since the recycler last scanned its memory
    /// ([`crate::faults`]): while 0, the pages it has written are the ones in `written`.
    faults_since_scan: u64,
    /// The private (written) pages the last scan found, as `(offset, bytes)` runs.
    written: Option<Vec<(usize, usize)>>,
    // Dropped after the store: the guest's files live here.
    scratch: Scratch,
}

/// What a guest is armed with for one execution: its I/O and its memory cap.
pub(crate) struct Arming<'a> {
    pub stdlib_dir: &'a std::path::Path,
    /// Where the scratch folder is made (`None`: the host's temporary folder).
    pub scratch_root: Option<&'a std::path::Path>,
    pub memory_bytes: u64,
    pub stdin: &'a str,
    pub files: &'a crate::FileLimits,
}

thread_local! {
    // Guests run their calls on this thread's own small executor: async calls let a timer
    // cancel a guest blocked in a host call, which epoch interruption cannot reach.
    static EXECUTOR: std::io::Result<tokio::runtime::Runtime> =
        tokio::runtime::Builder::new_current_thread().enable_time().build();
}

fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, Error> {
    EXECUTOR.with(|rt| match rt {
        Ok(rt) => Ok(rt.block_on(fut)),
        Err(e) => Err(Error::Io {
            action: "starting the guest executor",
            source: std::io::Error::new(e.kind(), e.to_string()),
        }),
    })
}

/// Host state for one execution: fresh pipes, a fresh WASI context over `scratch`, the cap.
fn host_state(
    arming: &Arming<'_>,
    scratch: &std::path::Path,
) -> Result<(HostState, CappedPipe, CappedPipe), Error> {
    let stdout = CappedPipe::new(0);
    let stderr = CappedPipe::new(0);
    let wasi = start_runtime::guest::wasi_builder(arming.stdlib_dir, scratch)?
        .stdin(MemoryInputPipe::new(arming.stdin.as_bytes().to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let cap_bytes =
        usize::try_from(arming.memory_bytes.min(crate::MAX_MEMORY_BYTES)).unwrap_or(usize::MAX);
    let state = HostState {
        wasi,
        limiter: MemoryLimiter {
            cap_bytes,
            peak_bytes: 0,
            refused: false,
            desired_bytes: 0,
        },
        files: FileBudget::new(arming.files),
    };
    Ok((state, stdout, stderr))
}

impl Guest {
    /// Instantiates a fresh guest from `pre`.
    pub fn new(
        engine: &Engine,
        pre: &InstancePre<HostState>,
        arming: &Arming<'_>,
        metered: bool,
    ) -> Result<Self, Error> {
        let scratch = Scratch::new(arming.scratch_root).map_err(|source| Error::Io {
            action: "creating the scratch folder",
            source,
        })?;
        let (state, stdout, stderr) = host_state(arming, scratch.path())?;
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks_for(Duration::from_secs(60)));
        if metered {
            store
                .set_fuel(u64::MAX / 2)
                .map_err(|e| Error::engine("setting fuel", e))?;
        }
        let instance = match block_on(pre.instantiate_async(&mut store))? {
            Ok(instance) => instance,
            Err(_) if store.data().limiter.refused => {
                let limiter = &store.data().limiter;
                return Err(below_interpreter(limiter.cap_bytes, limiter.desired_bytes));
            }
            Err(e) => return Err(Error::engine("instantiating the runtime", e)),
        };
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::engine("instantiating the runtime", "no memory export"))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "host_alloc")
            .map_err(|e| Error::engine("finding host_alloc", e))?;
        let turn = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "turn")
            .map_err(|e| Error::engine("finding turn", e))?;
        let initial = memory.data_size(&store);
        store.data_mut().limiter.peak_bytes = initial;
        Ok(Guest {
            store,
            instance,
            memory,
            alloc,
            turn,
            stdout,
            stderr,
            metered,
            returned: true,
            faults_since_scan: 0,
            written: None,
            scratch,
        })
    }

    /// Closes every descriptor the guest opened, by giving it an empty WASI context: a finished
    /// guest kept for reuse must not hold its files (and the host's descriptors) while parked.
    pub fn release_files(&mut self) {
        self.store.data_mut().wasi = WasiCtxBuilder::new().build_p1();
    }

    /// Gives a restored guest fresh host state for its next execution: new pipes, a new WASI
    /// context (no file descriptors left from the last one), the given stdin and memory cap.
    pub fn rearm(&mut self, arming: &Arming<'_>) -> Result<(), Error> {
        // The old context goes first, so the guest's descriptors are closed before new ones
        // are opened.
        self.release_files();
        let (mut state, stdout, stderr) = host_state(arming, self.scratch.path())?;
        let size = self.memory.data_size(&self.store);
        if size > state.limiter.cap_bytes {
            // A new instance could not even start under this cap: refuse it the same way.
            return Err(below_interpreter(state.limiter.cap_bytes, size));
        }
        state.limiter.peak_bytes = size;
        *self.store.data_mut() = state;
        self.stdout = stdout;
        self.stderr = stderr;
        Ok(())
    }

    /// Whether every call so far returned normally.
    pub fn returned(&self) -> bool {
        self.returned
    }

    /// Takes the pages it has written as the last scan found them, while none can have become
    /// written since (its calls took no page fault): a restore may copy these back unscanned.
    /// Hand them back with [`Guest::keep_written`].
    pub fn take_written_unchanged(&mut self) -> Option<Vec<(usize, usize)>> {
        if self.faults_since_scan == 0 {
            self.written.take()
        } else {
            None
        }
    }

    /// Records the pages it has written as of now (found by a scan, or unchanged since one).
    pub fn keep_written(&mut self, written: Vec<(usize, usize)>) {
        self.written = Some(written);
        self.faults_since_scan = 0;
    }

    /// The guest's linear memory as raw parts, for restoring it in place.
    pub fn memory_raw(&mut self) -> (*mut u8, usize) {
        let data = self.memory.data_mut(&mut self.store);
        (data.as_mut_ptr(), data.len())
    }

    /// The instance and its store, for reading or resetting exported globals.
    pub fn instance_mut(&mut self) -> (Instance, &mut Store<HostState>) {
        (self.instance, &mut self.store)
    }

    /// Removes the scratch folder and leaves the instance (its store, memory and pool slot) to
    /// the process's exit; see [`crate::Sandbox::release_for_exit`].
    pub fn release_for_exit(self) {
        let Guest { store, scratch, .. } = self;
        std::mem::forget(store);
        drop(scratch);
    }

    /// The host folder the guest sees as `/`.
    #[cfg(test)]
    pub fn scratch_dir(&self) -> &std::path::Path {
        self.scratch.path()
    }

    /// Removes everything the guest left in its scratch folder (for reuse). The folder is
    /// empty when the guest starts, so it is left unread when none of the guest's calls could
    /// have added a name to it (see [`FileBudget::may_have_added`]): opening and listing even
    /// an empty folder costs a small execution about as much as copying its memory back.
    pub fn empty_scratch(&self) -> std::io::Result<()> {
        if !self.store.data().files.may_have_added() {
            return Ok(());
        }
        self.scratch.empty()
    }

    /// Runs `turn` as one `turn`, within `budget`. Returns the outcome and whether the guest
    /// is still usable (it is not after any trap). A [`TurnText`] always carries the host's
    /// header, so the user's code cannot choose how the guest runs it.
    pub fn turn(&mut self, turn: &TurnText, budget: &TurnBudget) -> Result<(Outcome, bool), Error> {
        self.turn_preset(turn, budget, &[])
    }

    /// [`Guest::turn`], first writing each `(offset, bytes)` of `preset` into linear memory
    /// (the generator states of [`crate::preseed`]). The writes count as the call's: a page
    /// they make private is seen by the restore like one the guest wrote.
    pub fn turn_preset(
        &mut self,
        turn: &TurnText,
        budget: &TurnBudget,
        preset: &[(usize, Vec<u8>)],
    ) -> Result<(Outcome, bool), Error> {
        let source = turn.as_str();
        let len = i32::try_from(source.len())
            .map_err(|_| Error::Invalid("code larger than 2 GiB".into()))?;
        self.stdout.set_cap(budget.stdout_bytes);
        self.stderr.set_cap(budget.stderr_bytes);
        self.store.set_epoch_deadline(ticks_for(budget.wall_time));
        let fuel_budget = match (self.metered, budget.fuel) {
            (true, Some(f)) => Some(f),
            (true, None) => Some(u64::MAX / 2),
            (false, _) => None,
        };
        if let Some(f) = fuel_budget {
            self.store
                .set_fuel(f)
                .map_err(|e| Error::engine("setting fuel", e))?;
        }
        let started = Instant::now();
        let faults = FaultCount::start();
        let (store, memory, alloc, turn) = (&mut self.store, self.memory, &self.alloc, &self.turn);
        let raw = block_on(async {
            let call = async {
                for (offset, bytes) in preset {
                    memory.write(&mut *store, *offset, bytes)?;
                }
                let ptr = alloc.call_async(&mut *store, len).await?;
                memory.write(&mut *store, ptr as u32 as usize, source.as_bytes())?;
                turn.call_async(&mut *store, (ptr, len)).await
            };
            match tokio::time::timeout(budget.wall_time + TIMER_GRACE, call).await {
                Ok(Ok(status)) => Raw::Returned(status),
                Ok(Err(e)) => Raw::Trapped(e),
                Err(_) => Raw::TimedOut,
            }
        })?;
        let wall = started.elapsed();
        self.faults_since_scan = self.faults_since_scan.saturating_add(faults.taken());
        self.returned &= matches!(raw, Raw::Returned(_));
        let fuel_used = match (fuel_budget, budget.fuel) {
            (Some(given), Some(_)) => {
                Some(given.saturating_sub(self.store.get_fuel().unwrap_or(0)))
            }
            _ => None,
        };
        let out = self.stdout.take();
        let err = self.stderr.take();
        let state = self.store.data_mut();
        let refused = std::mem::take(&mut state.limiter.refused);
        let peak = state.limiter.peak_bytes as u64;
        let files_refused = state.files.take_refused();
        let (mut status, alive) = interpret(raw, &err, refused);
        if let (Status::Exception { .. }, Some(limit)) = (&status, files_refused) {
            // It ended on the OSError a refused file call raised: the budget stopped it.
            status = Status::LimitExceeded { limit };
        }
        Ok((
            Outcome {
                status,
                stdout: String::from_utf8_lossy(&out.head).into_owned(),
                stderr: String::from_utf8_lossy(&err.head).into_owned(),
                stdout_truncated: out.truncated,
                stderr_truncated: err.truncated,
                wall_ms: wall.as_secs_f64() * 1e3,
                fuel_used,
                memory_peak_bytes: peak,
            },
            alive,
        ))
    }
}

/// Maps a raw call result to a [`Status`], and says whether the guest may run again.
fn interpret(raw: Raw, stderr: &Captured, memory_refused: bool) -> (Status, bool) {
    match raw {
        Raw::Returned(0) => (Status::Finished, true),
        Raw::Returned(1) => {
            let text = if stderr.truncated {
                String::from_utf8_lossy(&stderr.tail).into_owned()
            } else {
                String::from_utf8_lossy(&stderr.head).into_owned()
            };
            let traceback = Outcome::last_traceback(&text);
            // A huge message can push the name out of the kept tail; the head still has the
            // exception's line.
            let name = Outcome::exception_name_in(&traceback)
                .or_else(|| {
                    let head = String::from_utf8_lossy(&stderr.head);
                    Outcome::exception_name_in(&Outcome::last_traceback(&head))
                })
                .unwrap_or_else(|| "Exception".to_string());
            (Status::Exception { name, traceback }, true)
        }
        // `exit()`, `quit()` and (through the host helper) `sys.exit(n)`: 256 + n.
        Raw::Returned(n) if n >= 256 => match n - 256 {
            0 => (Status::Finished, false),
            code => (Status::Exit { code }, false),
        },
        Raw::Returned(code) if code > 0 => (Status::Exit { code }, false),
        Raw::Returned(code) => (
            Status::Crashed {
                message: format!("the runtime refused the call (status {code})"),
            },
            false,
        ),
        Raw::TimedOut => (
            Status::LimitExceeded {
                limit: Limit::WallTime,
            },
            false,
        ),
        Raw::Trapped(e) => {
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return match exit.0 {
                    0 => (Status::Finished, false),
                    code => (Status::Exit { code }, false),
                };
            }
            let status = match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => Status::LimitExceeded {
                    limit: Limit::WallTime,
                },
                Some(Trap::OutOfFuel) => Status::LimitExceeded { limit: Limit::Fuel },
                _ if memory_refused => Status::LimitExceeded {
                    limit: Limit::Memory,
                },
                Some(trap) => Status::Crashed {
                    message: trap.to_string(),
                },
                None => Status::Crashed {
                    message: format!("{e:#}"),
                },
            };
            (status, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceback_is_the_last_one() {
        let err = "noise\nTraceback (most recent call last):\n  x\nA: 1\nTraceback (most recent call last):\n  y\nB: 2\n";
        assert_eq!(
            Outcome::last_traceback(err),
            "Traceback (most recent call last):\n  y\nB: 2\n"
        );
        let syntax =
            "  File \"<string>\", line 1\n    1 +\n       ^\nSyntaxError: invalid syntax\n";
        assert_eq!(Outcome::last_traceback(syntax), syntax);
    }
}
