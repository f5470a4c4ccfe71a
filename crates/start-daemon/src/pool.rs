//! The pool of worker processes, parent side. Each slot runs one worker process and feeds it
//! one job at a time, from its own session queue first, then from the shared queue. A worker
//! that dies or runs past its job's wall time plus [`WorkerTimeouts::hang_grace`] is killed and
//! replaced; only the job it held fails (with `worker_lost`), and the sessions it held are gone.
//!
//! The hang clock of a job starts when the worker is ready for it: a worker that has work left
//! after its answer (restoring an interpreter, emptying a scratch folder) says `Ready` when
//! done, and its slot neither writes the next job nor takes one from the shared queue before
//! that (see [`Job::announces_ready`]). So the cost of one client's cleanup is never charged to
//! the next client's wall time, and shared jobs go to workers that are free.
//!
//! Every worker keeps its guests' scratch folders under a folder of its own inside the pool's
//! private run folder (`<tmp>/startd-<pid>-<random>`, mode 0700): a worker's folder is removed
//! when the worker exits, dies or is killed, and the run folder when the pool shuts down, so
//! nothing a guest wrote outlives its worker.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use start_sandbox::{Limits, Outcome, SessionLimits, TurnLimits};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::frame;
use crate::protocol::{ErrorKind, WorkerStats};
use crate::stats::Counters;
use crate::worker::{Job, JobResult};

/// Default of [`WorkerTimeouts::hang_grace`]: 5 s.
pub const HANG_GRACE: Duration = Duration::from_secs(5);
/// Default of [`WorkerTimeouts::cleanup`]: 60 s.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`WorkerTimeouts::stop`]: 5 s.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time allowed to a job with a fuel budget: a worker's first metered job may compile
/// the metered engine (about 40 s, cached afterwards).
pub const FUEL_FIRST_USE_GRACE: Duration = Duration::from_secs(300);
/// Wall time a session's opening turn may take (the sandbox's own bound).
const OPEN_WALL_TIME: Duration = Duration::from_secs(5);
/// The argument, followed by a folder, that the pool appends to [`WorkerCommand::args`]: the
/// worker keeps its guests' scratch folders there (`SandboxOptions::scratch_root`).
pub const SCRATCH_ROOT_ARG: &str = "--scratch-root";
/// Prefix of the pool's run folder in the host's temporary folder, followed by the daemon's
/// pid and a random suffix.
pub const RUN_FOLDER_PREFIX: &str = "startd-";

/// A request failure: an error kind and a message for the reply.
pub(crate) type Failure = (ErrorKind, String);

/// How to start a worker process: a program and its arguments (normally `startd --worker`).
/// The pool appends [`SCRATCH_ROOT_ARG`] and the worker's own scratch folder.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// How long worker processes may take, past which they are deemed hung, killed and replaced.
#[derive(Debug, Clone)]
pub struct WorkerTimeouts {
    /// Time a worker may run past a job's wall time before it is deemed hung; the clock starts
    /// when the worker is ready for the job. Default [`HANG_GRACE`].
    pub hang_grace: Duration,
    /// Time a worker may take after answering a job to restore or tear down the interpreter
    /// (emptying its scratch folder: up to the scratch entry limit's worth of files). The
    /// client already has its answer; only the worker's sessions are lost when it runs over.
    /// Default [`CLEANUP_TIMEOUT`].
    pub cleanup: Duration,
    /// Time a worker may take to exit once its pipe is closed at shutdown, before it is killed.
    /// Default [`STOP_TIMEOUT`].
    pub stop: Duration,
}

impl Default for WorkerTimeouts {
    fn default() -> Self {
        WorkerTimeouts {
            hang_grace: HANG_GRACE,
            cleanup: CLEANUP_TIMEOUT,
            stop: STOP_TIMEOUT,
        }
    }
}

/// How the pool is built.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub workers: usize,
    pub queue_capacity: usize,
    pub max_sessions: usize,
    pub command: WorkerCommand,
    pub startup_timeout: Duration,
    pub timeouts: WorkerTimeouts,
}

struct Task {
    job: Job,
    timeout: Duration,
    reply: oneshot::Sender<Result<JobResult, Failure>>,
    /// Whether it counts in its slot's [`Slot::queued`] (closes do not).
    counted: bool,
}

struct Slot {
    index: usize,
    pid: AtomicU32,
    busy: AtomicBool,
    jobs: AtomicU64,
    /// The slot's own queue, for its sessions' jobs. Unbounded so that a close can always be
    /// queued; every other job counts in `queued`, which is capped at the queue capacity.
    queue: mpsc::UnboundedSender<Task>,
    /// Jobs other than closes waiting in `queue`.
    queued: AtomicUsize,
}

impl Slot {
    /// Queues `job` on this slot, in order with the jobs already queued.
    ///
    /// # Errors
    /// `busy` when `capacity` jobs wait already (never for a close: refusing one would leave
    /// the interpreter alive in the worker after the daemon forgot the session), or
    /// `shutting_down` once the slot has stopped.
    fn enqueue(
        &self,
        job: Job,
        timeout: Duration,
        reply: oneshot::Sender<Result<JobResult, Failure>>,
        capacity: usize,
    ) -> Result<(), Failure> {
        let counted = !matches!(job, Job::Close { .. });
        if counted
            && self
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < capacity).then_some(n + 1)
                })
                .is_err()
        {
            return Err((
                ErrorKind::Busy,
                format!("the worker holding this session has {capacity} jobs waiting; retry later"),
            ));
        }
        let task = Task {
            job,
            timeout,
            reply,
            counted,
        };
        if self.queue.send(task).is_err() {
            if counted {
                self.queued.fetch_sub(1, Ordering::AcqRel);
            }
            return Err((ErrorKind::ShuttingDown, "the workers have stopped".into()));
        }
        Ok(())
    }

    /// Queues a close nobody waits for (an idle session, an open whose requester left).
    fn close_later(&self, session: u64, timeout: Duration) {
        let (reply, _) = oneshot::channel();
        // Fails only once the slot has stopped, and its worker with it.
        let _ = self.enqueue(Job::Close { session }, timeout, reply, usize::MAX);
    }
}

struct SessionEntry {
    slot: usize,
    number: u64,
    owner_uid: u32,
    last_used: Instant,
    idle_timeout: Duration,
    in_use: u32,
    /// False while its open job is queued or running: the entry reserves its place under the
    /// session cap and on its worker, but nobody can use or close it yet.
    open: bool,
}

struct Shared {
    slots: Vec<Arc<Slot>>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    counters: Arc<Counters>,
    timeouts: WorkerTimeouts,
    /// Removals of dead workers' folders still running (a guest's tree can take seconds to
    /// remove; the replacement worker does not wait for it, the shutdown does).
    removals: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes a dead worker's folder in the background.
    fn remove_later(&self, folder: PathBuf) {
        let mut removals = self.removals.lock().unwrap_or_else(|p| p.into_inner());
        removals.retain(|r| !r.is_finished());
        removals.push(tokio::spawn(remove_folder(folder)));
    }

    /// Queues a close of session `number` on `slot`, nobody waiting for it.
    fn close_later(&self, slot: usize, number: u64) {
        if let Some(slot) = self.slots.get(slot) {
            slot.close_later(number, self.timeouts.hang_grace);
        }
    }

    /// How long a job of `wall_time` may take once its worker is ready for it.
    fn hang_timeout(&self, wall_time: Duration, fuel: bool) -> Duration {
        let t = wall_time.saturating_add(self.timeouts.hang_grace);
        if fuel {
            t.saturating_add(FUEL_FIRST_USE_GRACE)
        } else {
            t
        }
    }
}

/// The place a session has while its open job runs; taken back on drop unless committed.
/// Dropped uncommitted without [`Reservation::release`] (its requester stopped waiting), it
/// also queues a close behind the open, since the worker may have opened the session.
struct Reservation<'a> {
    shared: &'a Shared,
    name: String,
    slot: usize,
    number: u64,
    settled: bool,
}

impl Reservation<'_> {
    /// Marks the session open; false when its entry is gone (then the drop closes it).
    fn commit(&mut self) -> bool {
        let mut sessions = self.shared.sessions();
        match sessions.get_mut(&self.name) {
            Some(e) => {
                e.open = true;
                e.last_used = Instant::now();
                self.settled = true;
                true
            }
            None => false,
        }
    }

    /// Takes the place back: the worker answered that it did not open the session.
    fn release(mut self) {
        self.shared.sessions().remove(&self.name);
        self.settled = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        {
            let mut sessions = self.shared.sessions();
            if sessions.get(&self.name).is_some_and(|e| !e.open) {
                sessions.remove(&self.name);
            }
        }
        self.shared.close_later(self.slot, self.number);
    }
}

/// A session's turn in progress: keeps the idle reaper off it, and marks it used when done.
struct InUse<'a> {
    shared: &'a Shared,
    name: &'a str,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.shared.sessions().get_mut(self.name) {
            e.in_use = e.in_use.saturating_sub(1);
            e.last_used = Instant::now();
        }
    }
}

/// Which queue a job goes to.
#[derive(Clone, Copy)]
enum Queue {
    /// Any worker's.
    Shared,
    /// This slot's.
    Slot(usize),
}

/// The worker pool.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    shared_tx: mpsc::Sender<Task>,
    config: PoolConfig,
    next_session: AtomicU64,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    run_folder: PathBuf,
}

impl Pool {
    /// Makes the run folder, starts `config.workers` worker processes and waits until each
    /// has its sandbox ready.
    pub(crate) async fn start(config: PoolConfig, counters: Arc<Counters>) -> Result<Pool, String> {
        let tmp = std::env::temp_dir();
        remove_stale_run_folders(&tmp).await;
        let run_folder = make_run_folder(&tmp)?;
        let workers = config.workers.max(1);
        let (shared_tx, shared_rx) = mpsc::channel(config.queue_capacity.max(1));
        let shared_rx = Arc::new(tokio::sync::Mutex::new(shared_rx));
        let (stop, stop_rx) = watch::channel(false);
        let mut slots = Vec::new();
        let mut queue_rxs = Vec::new();
        for index in 0..workers {
            let (queue, queue_rx) = mpsc::unbounded_channel();
            slots.push(Arc::new(Slot {
                index,
                pid: AtomicU32::new(0),
                busy: AtomicBool::new(false),
                jobs: AtomicU64::new(0),
                queue,
                queued: AtomicUsize::new(0),
            }));
            queue_rxs.push(queue_rx);
        }
        let shared = Arc::new(Shared {
            slots,
            sessions: Mutex::new(HashMap::new()),
            counters,
            timeouts: config.timeouts.clone(),
            removals: Mutex::new(Vec::new()),
        });
        let pool = Pool {
            shared: shared.clone(),
            shared_tx,
            config: config.clone(),
            next_session: AtomicU64::new(1),
            stop,
            tasks: Mutex::new(vec![tokio::spawn(reap_idle_sessions(
                shared.clone(),
                stop_rx.clone(),
            ))]),
            run_folder: run_folder.clone(),
        };
        // The first worker starts alone: if the runtime still has to be fetched and compiled
        // (minutes, gigabytes), one process does it and the others find it cached.
        let mut readies = Vec::new();
        for (slot, queue_rx) in shared.slots.iter().zip(queue_rxs) {
            let (ready_tx, ready_rx) = oneshot::channel();
            let task = tokio::spawn(run_slot(
                SlotContext {
                    slot: slot.clone(),
                    shared: shared.clone(),
                    shared_rx: shared_rx.clone(),
                    config: config.clone(),
                    run_folder: run_folder.clone(),
                    stop: stop_rx.clone(),
                },
                queue_rx,
                ready_tx,
            ));
            pool.tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
            if slot.index == 0 {
                pool.wait_ready(ready_rx).await?;
            } else {
                readies.push(ready_rx);
            }
        }
        for ready in readies {
            pool.wait_ready(ready).await?;
        }
        Ok(pool)
    }

    async fn wait_ready(&self, ready: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
        let started = ready
            .await
            .unwrap_or_else(|_| Err("the worker slot stopped".to_string()));
        if let Err(e) = started {
            self.shutdown().await;
            return Err(e);
        }
        Ok(())
    }

    /// Stops every worker (closing its pipe, so that it exits by itself; killing it when it
    /// lingers past [`WorkerTimeouts::stop`], or is still running a job nobody waits for),
    /// waits for the slots to end, and removes the run folder.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        let removals = std::mem::take(
            &mut *self
                .shared
                .removals
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for r in removals {
            let _ = r.await;
        }
        remove_folder(self.run_folder.clone()).await;
    }

    async fn submit(
        &self,
        queue: Queue,
        job: Job,
        timeout: Duration,
    ) -> Result<JobResult, Failure> {
        let (reply, rx) = oneshot::channel();
        match queue {
            Queue::Shared => {
                let task = Task {
                    job,
                    timeout,
                    reply,
                    counted: false,
                };
                match self.shared_tx.try_send(task) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        return Err((
                            ErrorKind::Busy,
                            format!(
                                "the queue is full ({} jobs waiting); retry later",
                                self.shared_tx.max_capacity()
                            ),
                        ));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err((ErrorKind::ShuttingDown, "the workers have stopped".into()));
                    }
                }
            }
            Queue::Slot(index) => {
                let slot = self
                    .shared
                    .slots
                    .get(index)
                    .ok_or((ErrorKind::Internal, "no such worker slot".to_string()))?;
                slot.enqueue(job, timeout, reply, self.config.queue_capacity.max(1))?;
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err((
                ErrorKind::ShuttingDown,
                "the daemon stopped before running the request".into(),
            ))
        })
    }

    /// Runs code in a fresh interpreter on any worker.
    pub(crate) async fn exec(&self, code: String, limits: Limits) -> Result<Outcome, Failure> {
        let timeout = self
            .shared
            .hang_timeout(limits.wall_time, limits.fuel.is_some());
        let job = Job::Exec { code, limits };
        outcome(self.submit(Queue::Shared, job, timeout).await?)
    }

    /// Opens a session on the worker holding the fewest, owned by `owner_uid`.
    ///
    /// The session's place (under the cap, and on its worker) is reserved in the same lock
    /// as the count is checked, before its open job is queued: concurrent opens can neither
    /// exceed the cap nor all pick the same worker.
    pub(crate) async fn open_session(
        &self,
        limits: SessionLimits,
        owner_uid: u32,
    ) -> Result<String, Failure> {
        let (slot, number, name) = {
            let mut sessions = self.shared.sessions();
            if sessions.len() >= self.config.max_sessions {
                return Err((
                    ErrorKind::Busy,
                    format!(
                        "{} sessions are open or opening, the most this daemon allows; close one",
                        sessions.len()
                    ),
                ));
            }
            let mut counts = vec![0usize; self.shared.slots.len()];
            for e in sessions.values() {
                if let Some(c) = counts.get_mut(e.slot) {
                    *c += 1;
                }
            }
            let slot = (0..counts.len()).min_by_key(|&i| counts[i]).unwrap_or(0);
            let number = self.next_session.fetch_add(1, Ordering::Relaxed);
            let name = format!("s{number}");
            sessions.insert(
                name.clone(),
                SessionEntry {
                    slot,
                    number,
                    owner_uid,
                    last_used: Instant::now(),
                    idle_timeout: limits.idle_timeout,
                    in_use: 0,
                    open: false,
                },
            );
            (slot, number, name)
        };
        let mut reservation = Reservation {
            shared: &self.shared,
            name,
            slot,
            number,
            settled: false,
        };
        let timeout = self.shared.hang_timeout(OPEN_WALL_TIME, limits.metered);
        let job = Job::Open {
            session: number,
            limits,
        };
        match self.submit(Queue::Slot(slot), job, timeout).await {
            Ok(JobResult::Opened) => {
                if reservation.commit() {
                    Ok(reservation.name.clone())
                } else {
                    Err((
                        ErrorKind::WorkerLost,
                        "the session was lost with its worker as it opened; open another".into(),
                    ))
                }
            }
            Ok(other) => {
                reservation.release();
                Err(unexpected(other))
            }
            Err(e) => {
                reservation.release();
                Err(e)
            }
        }
    }

    fn no_session(name: &str) -> Failure {
        (
            ErrorKind::NoSuchSession,
            format!(
                "no session {name:?}: it was never opened, was closed, timed out idle, or was lost with its worker"
            ),
        )
    }

    /// Runs a cell in a session.
    pub(crate) async fn run_session(
        &self,
        name: &str,
        code: String,
        limits: TurnLimits,
        uid: u32,
    ) -> Result<Outcome, Failure> {
        let (slot, number) = {
            let mut sessions = self.shared.sessions();
            match sessions.get_mut(name) {
                Some(e) if e.owner_uid == uid && e.open => {
                    e.in_use += 1;
                    (e.slot, e.number)
                }
                _ => return Err(Self::no_session(name)),
            }
        };
        let _in_use = InUse {
            shared: &self.shared,
            name,
        };
        let timeout = self
            .shared
            .hang_timeout(limits.wall_time, limits.fuel.is_some());
        let job = Job::Run {
            session: number,
            code,
            limits,
        };
        outcome(self.submit(Queue::Slot(slot), job, timeout).await?)
    }

    /// Closes a session. The close is queued behind the session's jobs already waiting, and
    /// never refused as `busy`.
    pub(crate) async fn close_session(&self, name: &str, uid: u32) -> Result<(), Failure> {
        let entry = {
            let mut sessions = self.shared.sessions();
            match sessions.get(name) {
                Some(e) if e.owner_uid == uid && e.open => sessions.remove(name),
                _ => None,
            }
        };
        let Some(entry) = entry else {
            return Err(Self::no_session(name));
        };
        let job = Job::Close {
            session: entry.number,
        };
        match self
            .submit(
                Queue::Slot(entry.slot),
                job,
                self.shared.timeouts.hang_grace,
            )
            .await?
        {
            JobResult::Closed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Jobs waiting now, in all queues (closes aside).
    pub(crate) fn queue_depth(&self) -> u64 {
        let shared = self.shared_tx.max_capacity() - self.shared_tx.capacity();
        shared as u64
            + self
                .shared
                .slots
                .iter()
                .map(|s| s.queued.load(Ordering::Relaxed) as u64)
                .sum::<u64>()
    }

    /// Sessions open now.
    pub(crate) fn sessions_open(&self) -> u64 {
        self.shared.sessions().values().filter(|e| e.open).count() as u64
    }

    /// One entry per worker slot.
    pub(crate) fn worker_stats(&self) -> Vec<WorkerStats> {
        let sessions = self.shared.sessions();
        self.shared
            .slots
            .iter()
            .map(|s| WorkerStats {
                slot: s.index,
                pid: s.pid.load(Ordering::Relaxed),
                busy: s.busy.load(Ordering::Relaxed),
                jobs: s.jobs.load(Ordering::Relaxed),
                sessions: sessions
                    .values()
                    .filter(|e| e.slot == s.index && e.open)
                    .count() as u64,
            })
            .collect()
    }
}

fn unexpected(r: JobResult) -> Failure {
    match r {
        JobResult::Failed { kind, message } => (kind, message),
        other => (
            ErrorKind::Internal,
            format!("unexpected answer from a worker: {other:?}"),
        ),
    }
}

fn outcome(r: JobResult) -> Result<Outcome, Failure> {
    match r {
        JobResult::Outcome(o) => Ok(o),
        other => Err(unexpected(other)),
    }
}

/// Makes the pool's private run folder in `tmp`: `startd-<pid>-<random>`, mode 0700, made
/// anew (never an existing folder or link someone else prepared).
fn make_run_folder(tmp: &Path) -> Result<PathBuf, String> {
    use std::hash::BuildHasher;
    let mut last = None;
    for attempt in 0u64..16 {
        let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let path = tmp.join(format!(
            "{RUN_FOLDER_PREFIX}{}-{random:016x}",
            std::process::id()
        ));
        match make_private_folder(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(format!(
                    "cannot create the workers' folder {}: {e}; check TMPDIR",
                    path.display()
                ));
            }
        }
    }
    Err(format!(
        "cannot create a workers' folder in {}: {}",
        tmp.display(),
        last.map_or_else(String::new, |e| e.to_string())
    ))
}

/// Removes the run folders in `tmp` that daemons killed without a shutdown (SIGKILL, a
/// crash) left: folders (not links) named `startd-<pid>-<random>`, owned by this user, whose
/// daemon no longer runs. A folder whose pid is alive is kept, whoever has that pid now.
async fn remove_stale_run_folders(tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let uid = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_FOLDER_PREFIX))
        else {
            continue;
        };
        let Some((pid, random)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if random.len() != 16 || !random.bytes().all(|b| b.is_ascii_hexdigit()) || pid <= 0 {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            tracing::info!(folder = %path.display(), "removing a run folder left by a killed daemon");
            remove_folder(path).await;
        }
    }
}

/// Creates `path` (not its parents), mode 0700; fails if anything is there already.
fn make_private_folder(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Removes `path` and everything under it, off the async threads (a guest may have left a
/// deep tree); a failure is logged, a folder already gone is fine.
async fn remove_folder(path: PathBuf) {
    let shown = path.display().to_string();
    let removed = tokio::task::spawn_blocking(move || start_sandbox::remove_dir_tree(&path)).await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(Err(e)) => {
            tracing::error!(folder = %shown, error = %e, "cannot remove a folder of the workers")
        }
        Err(e) => tracing::error!(folder = %shown, error = %e, "the removal of a folder failed"),
    }
}

/// One live worker process.
struct Worker {
    child: Child,
    /// `None` once closed: the worker reads end of file and exits.
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    pid: u32,
}

impl Worker {
    async fn spawn(
        command: &WorkerCommand,
        scratch_root: &Path,
        startup_timeout: Duration,
    ) -> Result<Worker, String> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .arg(SCRATCH_ROOT_ARG)
            .arg(scratch_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: a terminal's Ctrl-C reaches the daemon, which drains,
            // not the workers directly.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", command.program.display()))?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the worker has no pipes".into());
        };
        let mut worker = Worker {
            child,
            stdin: Some(stdin),
            stdout,
            pid,
        };
        let first = tokio::time::timeout(startup_timeout, frame::read_frame(&mut worker.stdout))
            .await
            .map_err(|_| format!("the worker did not start within {startup_timeout:?}"));
        let first = match first {
            Ok(first) => first,
            Err(e) => {
                worker.reap().await;
                return Err(e);
            }
        };
        match first {
            Ok(Some(body)) => match serde_json::from_slice::<JobResult>(&body) {
                Ok(JobResult::Ready) => Ok(worker),
                Ok(JobResult::Failed { message, .. }) => {
                    worker.reap().await;
                    Err(message)
                }
                Ok(other) => {
                    worker.reap().await;
                    Err(format!("the worker said {other:?} instead of ready"))
                }
                Err(e) => {
                    worker.reap().await;
                    Err(format!("undecodable message from the worker: {e}"))
                }
            },
            Ok(None) | Err(_) => Err(format!(
                "the worker exited while starting ({})",
                worker.reap().await
            )),
        }
    }

    /// Sends one job (from [`encode_job`]) and waits for its answer, at most `timeout`.
    async fn run(&mut self, body: &[u8], timeout: Duration) -> Result<JobResult, String> {
        let pid = self.pid;
        let Worker { stdin, stdout, .. } = self;
        let exchange = async {
            let Some(stdin) = stdin.as_mut() else {
                return Err(frame::FrameError::Io(std::io::Error::other("pipe closed")));
            };
            frame::write_frame(stdin, body).await?;
            frame::read_frame(stdout).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(format!(
                "the worker (pid {pid}) hung past {timeout:?} and was replaced"
            )),
            Ok(Ok(Some(body))) => serde_json::from_slice(&body)
                .map_err(|e| format!("undecodable answer from the worker: {e}")),
            Ok(Ok(None)) | Ok(Err(_)) => {
                let how = self.reap().await;
                Err(format!(
                    "the worker (pid {pid}) died ({how}) and was replaced"
                ))
            }
        }
    }

    /// Waits, at most `timeout`, for the `Ready` a worker sends once it has cleaned up after
    /// a job it answered.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let pid = self.pid;
        match tokio::time::timeout(timeout, frame::read_frame(&mut self.stdout)).await {
            Err(_) => Err(format!(
                "the worker (pid {pid}) was still cleaning up after a job {timeout:?} after \
                 answering it, and was replaced"
            )),
            Ok(Ok(Some(body))) => match serde_json::from_slice::<JobResult>(&body) {
                Ok(JobResult::Ready) => Ok(()),
                Ok(other) => Err(format!("the worker said {other:?} instead of ready")),
                Err(e) => Err(format!("undecodable message from the worker: {e}")),
            },
            Ok(Ok(None)) | Ok(Err(_)) => {
                let how = self.reap().await;
                Err(format!(
                    "the worker (pid {pid}) died ({how}) while cleaning up after a job"
                ))
            }
        }
    }

    /// Kills the process if it still runs and describes how it ended.
    async fn reap(&mut self) -> String {
        let _ = self.child.start_kill();
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("cannot wait for it: {e}"),
            Err(_) => "it did not exit".into(),
        }
    }

    /// Closes its stdin so that it exits by itself (dropping the pipe closes it; `shutdown`
    /// on a `ChildStdin` does nothing on unix), then kills it if it lingers past `timeout`.
    async fn stop(&mut self, slot: usize, timeout: Duration) {
        drop(self.stdin.take());
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                tracing::info!(slot, pid = self.pid, %status, "worker stopped by itself");
            }
            Ok(Err(e)) => {
                tracing::warn!(slot, pid = self.pid, error = %e, "cannot wait for a worker");
                self.reap().await;
            }
            Err(_) => {
                let how = self.reap().await;
                tracing::warn!(
                    slot,
                    pid = self.pid,
                    how,
                    "worker did not exit within {timeout:?} of its pipe closing; killed"
                );
            }
        }
    }
}

/// What a slot's task works with.
struct SlotContext {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    shared_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Task>>>,
    config: PoolConfig,
    run_folder: PathBuf,
    stop: watch::Receiver<bool>,
}

/// How a worker's service ended.
enum End {
    /// The pool is stopping; the worker has exited.
    Stopped,
    /// The worker died, hung or misbehaved and was killed; its sessions are gone.
    Lost,
}

async fn run_slot(
    mut cx: SlotContext,
    mut queue_rx: mpsc::UnboundedReceiver<Task>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    let index = cx.slot.index;
    for generation in 1u64.. {
        let scratch = cx.run_folder.join(format!("worker{index}-{generation}"));
        let spawned = match make_private_folder(&scratch) {
            Ok(()) => Worker::spawn(&cx.config.command, &scratch, cx.config.startup_timeout).await,
            Err(e) => Err(format!(
                "cannot create the worker's folder {}: {e}",
                scratch.display()
            )),
        };
        let mut worker = match spawned {
            Ok(w) => w,
            Err(e) => {
                cx.shared.remove_later(scratch);
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    return;
                }
                tracing::error!(slot = index, error = %e, "cannot restart a worker; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stopped(&mut cx.stop) => return,
                }
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        cx.slot.pid.store(worker.pid, Ordering::Relaxed);
        tracing::info!(slot = index, pid = worker.pid, "worker ready");
        let end = serve(&mut cx, &mut worker, &mut queue_rx).await;
        // The process has exited: what its guests left goes with its folder.
        cx.slot.pid.store(0, Ordering::Relaxed);
        cx.slot.busy.store(false, Ordering::Relaxed);
        cx.shared.remove_later(scratch);
        match end {
            End::Stopped => return,
            End::Lost => {
                cx.shared
                    .counters
                    .worker_restarts
                    .fetch_add(1, Ordering::Relaxed);
                // Its open sessions are gone. Reserved ones stay: an open still queued runs
                // on the replacement, and one that was in flight failed with `worker_lost`,
                // which releases its reservation.
                cx.shared
                    .sessions()
                    .retain(|_, e| e.slot != index || !e.open);
            }
        }
    }
}

/// Feeds `worker` jobs until it is lost or the pool stops.
async fn serve(
    cx: &mut SlotContext,
    worker: &mut Worker,
    queue_rx: &mut mpsc::UnboundedReceiver<Task>,
) -> End {
    let index = cx.slot.index;
    let timeouts = cx.config.timeouts.clone();
    let shared_rx = cx.shared_rx.clone();
    let mut prefer_shared = false;
    loop {
        let task = tokio::select! {
            biased;
            _ = stopped(&mut cx.stop) => None,
            status = worker.child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                tracing::warn!(slot = index, pid = worker.pid, %status, "worker exited while idle");
                return End::Lost;
            }
            t = next_task(queue_rx, &shared_rx, prefer_shared) => t,
        };
        prefer_shared = !prefer_shared;
        let Some(task) = task else {
            worker.stop(index, timeouts.stop).await;
            return End::Stopped;
        };
        if task.counted {
            cx.slot.queued.fetch_sub(1, Ordering::AcqRel);
        }
        if task.reply.is_closed() && !matches!(task.job, Job::Close { .. }) {
            // Its requester stopped waiting (forced shutdown): skip the work. Closes nobody
            // waits for (idle sessions, abandoned opens) still run.
            continue;
        }
        // A job that cannot be framed is its request's error; the worker never sees it.
        let body = match encode_job(&task.job) {
            Ok(body) => body,
            Err(why) => {
                let _ = task.reply.send(Err((ErrorKind::Invalid, why)));
                continue;
            }
        };
        cx.slot.busy.store(true, Ordering::Relaxed);
        let result = tokio::select! {
            r = worker.run(&body, task.timeout) => Some(r),
            _ = stopped(&mut cx.stop) => None,
        };
        cx.slot.jobs.fetch_add(1, Ordering::Relaxed);
        match result {
            Some(Ok(r)) => {
                let _ = task.reply.send(Ok(r));
            }
            Some(Err(why)) => {
                tracing::warn!(slot = index, pid = worker.pid, %why, "worker lost");
                let _ = task.reply.send(Err((ErrorKind::WorkerLost, why)));
                worker.reap().await;
                return End::Lost;
            }
            None => {
                // The pool stops only once every request is answered: nobody waits for this
                // job any more (forced shutdown).
                let _ = task.reply.send(Err((
                    ErrorKind::ShuttingDown,
                    "the daemon stopped while running the request".into(),
                )));
                let how = worker.reap().await;
                tracing::warn!(
                    slot = index,
                    pid = worker.pid,
                    how,
                    "killed a worker running a job at shutdown"
                );
                return End::Stopped;
            }
        }
        if task.job.announces_ready() {
            // The client has its answer; the next job waits until the worker is done
            // cleaning up, so that its hang clock starts only then.
            let ready = tokio::select! {
                r = worker.wait_ready(timeouts.cleanup) => Some(r),
                _ = stopped(&mut cx.stop) => None,
            };
            match ready {
                Some(Ok(())) => {}
                Some(Err(why)) => {
                    tracing::warn!(slot = index, pid = worker.pid, %why, "worker lost");
                    worker.reap().await;
                    return End::Lost;
                }
                None => {
                    worker.stop(index, timeouts.stop).await;
                    return End::Stopped;
                }
            }
        }
        cx.slot.busy.store(false, Ordering::Relaxed);
    }
}

/// A job as the body of one frame to a worker.
///
/// # Errors
/// A message for the requester when the job cannot be encoded or is over
/// [`frame::MAX_FRAME_BYTES`] (a request near the cap grows a little as a job).
fn encode_job(job: &Job) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec(job).map_err(|e| format!("cannot encode the job: {e}"))?;
    if body.len() > frame::MAX_FRAME_BYTES {
        return Err(format!(
            "the request is {} bytes as a job, over the {} byte frame limit; send less code or \
             stdin",
            body.len(),
            frame::MAX_FRAME_BYTES
        ));
    }
    Ok(body)
}

async fn reap_idle_sessions(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped(&mut stop) => return,
        }
        let idle: Vec<(String, SessionEntry)> = {
            let mut sessions = shared.sessions();
            let names: Vec<String> = sessions
                .iter()
                .filter(|(_, e)| e.open && e.in_use == 0 && e.last_used.elapsed() >= e.idle_timeout)
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| sessions.remove(&n).map(|e| (n, e)))
                .collect()
        };
        for (name, entry) in idle {
            tracing::info!(session = %name, "closing an idle session");
            // Queued whatever the queue holds: a dropped close would leak the interpreter.
            shared.close_later(entry.slot, entry.number);
        }
    }
}

/// Resolves once the pool is told to stop (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The next job for a worker: from its own queue (its sessions' turns and closes) or the
/// shared one (executions), whichever has one first; when both do, `prefer_shared` says which
/// goes first. Callers alternate it, so a stream of session turns cannot starve executions,
/// nor the reverse.
async fn next_task(
    own: &mut mpsc::UnboundedReceiver<Task>,
    shared: &tokio::sync::Mutex<mpsc::Receiver<Task>>,
    prefer_shared: bool,
) -> Option<Task> {
    if prefer_shared {
        tokio::select! {
            biased;
            t = async { shared.lock().await.recv().await } => t,
            t = own.recv() => t,
        }
    } else {
        tokio::select! {
            biased;
            t = own.recv() => t,
            t = async { shared.lock().await.recv().await } => t,
        }
    }
}
