//! The pool of worker processes, parent side. Each slot runs one worker process and feeds it
//! one job at a time, from its own session queue first, then from the shared queue. A worker
//! that dies or runs past its job's wall time plus [`HANG_GRACE`] is killed and replaced; only
//! the job it held fails (with `worker_lost`), and the sessions it held are gone.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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

/// Time a worker may run past a job's wall time before it is deemed hung and replaced.
pub const HANG_GRACE: Duration = Duration::from_secs(5);
/// Extra time allowed to a job with a fuel budget: a worker's first metered job may compile
/// the metered engine (about 40 s, cached afterwards).
pub const FUEL_FIRST_USE_GRACE: Duration = Duration::from_secs(300);
/// Wall time a session's opening turn may take (the sandbox's own bound).
const OPEN_WALL_TIME: Duration = Duration::from_secs(5);

/// A request failure: an error kind and a message for the reply.
pub(crate) type Failure = (ErrorKind, String);

/// How to start a worker process: a program and its arguments (normally `startd --worker`).
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// How the pool is built.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub workers: usize,
    pub queue_capacity: usize,
    pub max_sessions: usize,
    pub command: WorkerCommand,
    pub startup_timeout: Duration,
}

struct Task {
    job: Job,
    timeout: Duration,
    reply: oneshot::Sender<Result<JobResult, Failure>>,
}

struct Slot {
    index: usize,
    pid: AtomicU32,
    busy: AtomicBool,
    jobs: AtomicU64,
    session_tx: mpsc::Sender<Task>,
}

struct SessionEntry {
    slot: usize,
    number: u64,
    owner_uid: u32,
    last_used: Instant,
    idle_timeout: Duration,
    in_use: u32,
}

struct Shared {
    slots: Vec<Arc<Slot>>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    counters: Arc<Counters>,
}

impl Shared {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The worker pool.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    shared_tx: mpsc::Sender<Task>,
    config: PoolConfig,
    next_session: AtomicU64,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    /// Starts `config.workers` worker processes and waits until each has its sandbox ready.
    pub(crate) async fn start(config: PoolConfig, counters: Arc<Counters>) -> Result<Pool, String> {
        let workers = config.workers.max(1);
        let (shared_tx, shared_rx) = mpsc::channel(config.queue_capacity.max(1));
        let shared_rx = Arc::new(tokio::sync::Mutex::new(shared_rx));
        let (stop, stop_rx) = watch::channel(false);
        let mut slots = Vec::new();
        let mut session_rxs = Vec::new();
        for index in 0..workers {
            let (session_tx, session_rx) = mpsc::channel(config.queue_capacity.max(1));
            slots.push(Arc::new(Slot {
                index,
                pid: AtomicU32::new(0),
                busy: AtomicBool::new(false),
                jobs: AtomicU64::new(0),
                session_tx,
            }));
            session_rxs.push(session_rx);
        }
        let shared = Arc::new(Shared {
            slots,
            sessions: Mutex::new(HashMap::new()),
            counters,
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
        };
        // The first worker starts alone: if the runtime still has to be fetched and compiled
        // (minutes, gigabytes), one process does it and the others find it cached.
        let mut readies = Vec::new();
        for (slot, session_rx) in shared.slots.iter().zip(session_rxs) {
            let (ready_tx, ready_rx) = oneshot::channel();
            let task = tokio::spawn(run_slot(
                slot.clone(),
                shared.clone(),
                session_rx,
                shared_rx.clone(),
                config.clone(),
                ready_tx,
                stop_rx.clone(),
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

    /// Stops every worker (closing its pipe, then killing it) and waits for the slots to end.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn submit(
        &self,
        tx: &mpsc::Sender<Task>,
        job: Job,
        timeout: Duration,
    ) -> Result<JobResult, Failure> {
        let (reply, rx) = oneshot::channel();
        let task = Task {
            job,
            timeout,
            reply,
        };
        match tx.try_send(task) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err((
                    ErrorKind::Busy,
                    format!(
                        "the queue is full ({} jobs waiting); retry later",
                        tx.max_capacity()
                    ),
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err((ErrorKind::ShuttingDown, "the workers have stopped".into()));
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
        let timeout = hang_timeout(limits.wall_time, limits.fuel.is_some());
        let job = Job::Exec { code, limits };
        outcome(self.submit(&self.shared_tx, job, timeout).await?)
    }

    /// Opens a session on the worker holding the fewest, owned by `owner_uid`.
    pub(crate) async fn open_session(
        &self,
        limits: SessionLimits,
        owner_uid: u32,
    ) -> Result<String, Failure> {
        let slot = {
            let sessions = self.shared.sessions();
            if sessions.len() >= self.config.max_sessions {
                return Err((
                    ErrorKind::Busy,
                    format!(
                        "{} sessions are open, the most this daemon allows; close one",
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
            (0..counts.len()).min_by_key(|&i| counts[i]).unwrap_or(0)
        };
        let number = self.next_session.fetch_add(1, Ordering::Relaxed);
        let idle_timeout = limits.idle_timeout;
        let timeout = hang_timeout(OPEN_WALL_TIME, limits.metered);
        let job = Job::Open {
            session: number,
            limits,
        };
        let tx = self.slot_tx(slot)?;
        match self.submit(&tx, job, timeout).await? {
            JobResult::Opened => {}
            other => return Err(unexpected(other)),
        }
        let name = format!("s{number}");
        self.shared.sessions().insert(
            name.clone(),
            SessionEntry {
                slot,
                number,
                owner_uid,
                last_used: Instant::now(),
                idle_timeout,
                in_use: 0,
            },
        );
        Ok(name)
    }

    fn slot_tx(&self, slot: usize) -> Result<mpsc::Sender<Task>, Failure> {
        self.shared
            .slots
            .get(slot)
            .map(|s| s.session_tx.clone())
            .ok_or((ErrorKind::Internal, "no such worker slot".into()))
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
                Some(e) if e.owner_uid == uid => {
                    e.in_use += 1;
                    (e.slot, e.number)
                }
                _ => return Err(Self::no_session(name)),
            }
        };
        let timeout = hang_timeout(limits.wall_time, limits.fuel.is_some());
        let job = Job::Run {
            session: number,
            code,
            limits,
        };
        let result = match self.slot_tx(slot) {
            Ok(tx) => self.submit(&tx, job, timeout).await,
            Err(e) => Err(e),
        };
        if let Some(e) = self.shared.sessions().get_mut(name) {
            e.in_use = e.in_use.saturating_sub(1);
            e.last_used = Instant::now();
        }
        outcome(result?)
    }

    /// Closes a session.
    pub(crate) async fn close_session(&self, name: &str, uid: u32) -> Result<(), Failure> {
        let entry = {
            let mut sessions = self.shared.sessions();
            match sessions.get(name) {
                Some(e) if e.owner_uid == uid => sessions.remove(name),
                _ => None,
            }
        };
        let Some(entry) = entry else {
            return Err(Self::no_session(name));
        };
        let tx = self.slot_tx(entry.slot)?;
        let job = Job::Close {
            session: entry.number,
        };
        match self.submit(&tx, job, HANG_GRACE).await? {
            JobResult::Closed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Jobs waiting now, in all queues.
    pub(crate) fn queue_depth(&self) -> u64 {
        let waiting = |tx: &mpsc::Sender<Task>| (tx.max_capacity() - tx.capacity()) as u64;
        waiting(&self.shared_tx)
            + self
                .shared
                .slots
                .iter()
                .map(|s| waiting(&s.session_tx))
                .sum::<u64>()
    }

    /// Sessions open now.
    pub(crate) fn sessions_open(&self) -> u64 {
        self.shared.sessions().len() as u64
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
                sessions: sessions.values().filter(|e| e.slot == s.index).count() as u64,
            })
            .collect()
    }
}

fn hang_timeout(wall_time: Duration, fuel: bool) -> Duration {
    let t = wall_time.saturating_add(HANG_GRACE);
    if fuel {
        t.saturating_add(FUEL_FIRST_USE_GRACE)
    } else {
        t
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

/// One live worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    pid: u32,
}

impl Worker {
    async fn spawn(command: &WorkerCommand, startup_timeout: Duration) -> Result<Worker, String> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
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
            stdin,
            stdout,
            pid,
        };
        let first = tokio::time::timeout(startup_timeout, frame::read_frame(&mut worker.stdout))
            .await
            .map_err(|_| format!("the worker did not start within {startup_timeout:?}"))?;
        match first {
            Ok(Some(body)) => match serde_json::from_slice::<JobResult>(&body) {
                Ok(JobResult::Ready) => Ok(worker),
                Ok(JobResult::Failed { message, .. }) => Err(message),
                Ok(other) => Err(format!("the worker said {other:?} instead of ready")),
                Err(e) => Err(format!("undecodable message from the worker: {e}")),
            },
            Ok(None) | Err(_) => Err(format!(
                "the worker exited while starting ({})",
                worker.reap().await
            )),
        }
    }

    /// Sends one job (from [`encode_job`]) and waits for its answer, at most `timeout`.
    async fn run(&mut self, body: &[u8], timeout: Duration) -> Result<JobResult, String> {
        let exchange = async {
            frame::write_frame(&mut self.stdin, body).await?;
            frame::read_frame(&mut self.stdout).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(format!(
                "the worker (pid {}) hung past {timeout:?} and was replaced",
                self.pid
            )),
            Ok(Ok(Some(body))) => serde_json::from_slice(&body)
                .map_err(|e| format!("undecodable answer from the worker: {e}")),
            Ok(Ok(None)) | Ok(Err(_)) => {
                let how = self.reap().await;
                Err(format!(
                    "the worker (pid {}) died ({how}) and was replaced",
                    self.pid
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

    /// Closes its stdin so it exits on its own, then kills it if it lingers.
    async fn stop(mut self) {
        let Worker { child, stdin, .. } = &mut self;
        let _ = tokio::io::AsyncWriteExt::shutdown(stdin).await;
        if tokio::time::timeout(Duration::from_secs(2), child.wait())
            .await
            .is_err()
        {
            let _ = self.reap().await;
        }
    }
}

async fn run_slot(
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    mut session_rx: mpsc::Receiver<Task>,
    shared_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Task>>>,
    config: PoolConfig,
    ready: oneshot::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ready = Some(ready);
    loop {
        let mut worker = match Worker::spawn(&config.command, config.startup_timeout).await {
            Ok(w) => w,
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    return;
                }
                tracing::error!(slot = slot.index, error = %e, "cannot restart a worker; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stopped(&mut stop) => return,
                }
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        slot.pid.store(worker.pid, Ordering::Relaxed);
        tracing::info!(slot = slot.index, pid = worker.pid, "worker ready");
        loop {
            let task = tokio::select! {
                biased;
                _ = stopped(&mut stop) => {
                    worker.stop().await;
                    return;
                }
                status = worker.child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    tracing::warn!(slot = slot.index, pid = worker.pid, %status, "worker exited while idle");
                    break;
                }
                t = session_rx.recv() => t,
                t = async { shared_rx.lock().await.recv().await } => t,
            };
            let Some(task) = task else {
                worker.stop().await;
                return;
            };
            if task.reply.is_closed() && !matches!(task.job, Job::Close { .. }) {
                // Its requester stopped waiting (forced shutdown): skip the work. Closes from
                // the idle reaper have nobody waiting and still run.
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
            slot.busy.store(true, Ordering::Relaxed);
            let result = worker.run(&body, task.timeout).await;
            slot.busy.store(false, Ordering::Relaxed);
            slot.jobs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(r) => {
                    let _ = task.reply.send(Ok(r));
                }
                Err(why) => {
                    tracing::warn!(slot = slot.index, pid = worker.pid, %why, "worker lost");
                    let _ = task.reply.send(Err((ErrorKind::WorkerLost, why)));
                    let _ = worker.reap().await;
                    break;
                }
            }
        }
        // The worker is gone, and with it its sessions.
        slot.pid.store(0, Ordering::Relaxed);
        shared
            .counters
            .worker_restarts
            .fetch_add(1, Ordering::Relaxed);
        shared.sessions().retain(|_, e| e.slot != slot.index);
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
                .filter(|(_, e)| e.in_use == 0 && e.last_used.elapsed() >= e.idle_timeout)
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| sessions.remove(&n).map(|e| (n, e)))
                .collect()
        };
        for (name, entry) in idle {
            tracing::info!(session = %name, "closing an idle session");
            if let Some(slot) = shared.slots.get(entry.slot) {
                let (reply, _) = oneshot::channel();
                let _ = slot.session_tx.try_send(Task {
                    job: Job::Close {
                        session: entry.number,
                    },
                    timeout: HANG_GRACE,
                    reply,
                });
            }
        }
    }
}

/// Resolves once the pool is told to stop (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
