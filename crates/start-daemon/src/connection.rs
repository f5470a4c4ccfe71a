//! One client connection: check the peer's uid, then read frames, answer each request in its
//! own task (so a client may pipeline), and write replies as they complete.
//!
//! Every way a client could hold the daemon's resources is bounded here:
//!
//! - at most `max_in_flight` requests per connection run at once; past that the connection is
//!   not read, which pushes back on the client;
//! - a frame header must be complete within `header_timeout` of its first byte, and its body
//!   must arrive within `body_timeout` of the header (a slow or stalled sender is answered
//!   `timed_out` and closed, so it cannot hold a connection slot);
//! - a connection with nothing in flight that sends nothing for `idle_timeout` is closed;
//! - each reply must be written (read by the client) within `write_timeout`, else the
//!   connection is closed and the replies queued on it dropped;
//! - replies waiting to be written are counted per connection (`max_reply_buffer_bytes`:
//!   past it the connection is not read until its client reads) and across all connections
//!   (a byte semaphore, `max_total_reply_buffer_bytes`, that each queued reply holds its share
//!   of until it is written).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::frame::{self, FrameError, HEADER_BYTES, MAX_FRAME_BYTES};
use crate::protocol::{ErrorKind, Op, Reply, ReplyResult, Request, Response};
use crate::server::Context;
use crate::shutdown::Shutdown;

/// Whether a peer with uid `peer` may connect to a daemon running as `own`, given the
/// `--allow-uid` list. The daemon's own uid is always allowed; nobody else is by default.
pub fn uid_allowed(peer: u32, own: u32, allow: &[u32]) -> bool {
    peer == own || allow.contains(&peer)
}

/// The time and buffer limits of every connection (from [`crate::Config`], whose fields of
/// the same names document them).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_reply_buffer_bytes: usize,
    pub max_total_reply_buffer_bytes: usize,
}

/// Encodes `reply` as a whole frame. A reply over the frame limit is replaced by an
/// `internal` error that says so, so the size is checked before anything is queued.
fn encode_reply(reply: &Reply) -> Vec<u8> {
    let body = match serde_json::to_vec(reply) {
        Ok(b) if b.len() <= MAX_FRAME_BYTES => b,
        Ok(b) => serde_json::to_vec(&Reply::error(
            reply.id,
            ErrorKind::Internal,
            format!(
                "the reply is {} bytes, over the frame limit; lower the output limits",
                b.len()
            ),
        ))
        .unwrap_or_default(),
        Err(e) => serde_json::to_vec(&Reply::error(
            reply.id,
            ErrorKind::Internal,
            format!("cannot encode the reply: {e}"),
        ))
        .unwrap_or_default(),
    };
    // Cannot fail: the body is within the limit.
    frame::encode(&body).unwrap_or_default()
}

/// A reply encoded as a frame, holding its share of the daemon's total reply budget until it
/// is written (or dropped with the connection).
struct Queued {
    frame: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

/// What the reader, the request tasks and the writer of one connection share.
struct State {
    opened: Instant,
    /// Milliseconds from `opened` to the last frame read or reply written.
    last_activity_ms: AtomicU64,
    /// Requests read whose reply is not queued yet.
    in_flight: AtomicUsize,
    /// Bytes of replies queued and not yet written.
    buffered: AtomicUsize,
    /// Signalled (one permit: only the reader waits) when the writer has written a reply.
    drained: Notify,
    /// Becomes `true` when the writer stops: the connection is finished.
    dead: watch::Sender<bool>,
}

impl State {
    fn new() -> Self {
        State {
            opened: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
            drained: Notify::new(),
            dead: watch::Sender::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    /// Whether a request is running or a reply waits to be written.
    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0 || self.buffered.load(Ordering::SeqCst) > 0
    }

    fn is_dead(&self) -> bool {
        *self.dead.borrow()
    }

    /// Resolves once the writer has stopped.
    async fn closed(&self) {
        let mut rx = self.dead.subscribe();
        let _ = rx.wait_for(|dead| *dead).await;
    }
}

type Queue = mpsc::UnboundedSender<Queued>;

/// Encodes `reply`, waits for its bytes in the total reply budget, and queues it for the
/// writer. Returns `false` when the connection is finished (the reply is dropped).
async fn queue(ctx: &Context, state: &State, tx: &Queue, reply: &Reply) -> bool {
    let frame = encode_reply(reply);
    // A reply larger than the whole budget takes all of it rather than waiting forever.
    let want = frame.len().min(ctx.limits.max_total_reply_buffer_bytes);
    let want = u32::try_from(want).unwrap_or(u32::MAX);
    let budget = tokio::select! {
        p = ctx.reply_budget.clone().acquire_many_owned(want) => match p {
            Ok(p) => p,
            Err(_) => return false,
        },
        _ = state.closed() => return false,
    };
    state.buffered.fetch_add(frame.len(), Ordering::SeqCst);
    tx.send(Queued {
        frame,
        _budget: budget,
    })
    .is_ok()
}

/// Writes queued replies in order, each within the write timeout. Stops on the first failed
/// or timed-out write: the client is gone or does not read, and what is queued is dropped.
async fn write_replies(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    ctx: Arc<Context>,
    state: Arc<State>,
) {
    let timeout = ctx.limits.write_timeout;
    while let Some(q) = rx.recv().await {
        let n = q.frame.len();
        let written = tokio::time::timeout(timeout, async {
            write.write_all(&q.frame).await?;
            write.flush().await
        })
        .await;
        let ok = match written {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot write a reply; closing the connection");
                false
            }
            Err(_) => {
                // Counted before the reply's budget goes back, so that whoever gets that
                // budget next already sees why it was freed.
                ctx.counters.record_error(ErrorKind::TimedOut);
                tracing::warn!(
                    ?timeout,
                    bytes = n,
                    "a client did not read its reply in time; closing its connection"
                );
                false
            }
        };
        if !ok {
            // Dead before the budget goes back, so that request tasks stop waiting for it.
            state.dead.send_replace(true);
        }
        drop(q);
        state.buffered.fetch_sub(n, Ordering::SeqCst);
        ctx.reply_space.notify_waiters();
        if !ok {
            break;
        }
        state.touch();
        state.drained.notify_one();
    }
    // Dead first, so that request tasks stop waiting for budget; then the queue goes, and
    // with it the budget its replies held.
    state.dead.send_replace(true);
    state.drained.notify_one();
    drop(rx);
    ctx.reply_space.notify_waiters();
    let _ = write.shutdown().await;
}

/// Writes one frame directly (for a refused connection, which has no writer task).
async fn send_now(write: &mut OwnedWriteHalf, reply: &Reply, timeout: Duration) {
    let frame = encode_reply(reply);
    let _ = tokio::time::timeout(timeout, async {
        write.write_all(&frame).await?;
        write.flush().await
    })
    .await;
}

/// How long a refused connection is read (and discarded) after its error reply.
const LINGER: Duration = Duration::from_secs(1);
/// How many bytes a refused connection may send meanwhile.
const LINGER_BYTES: usize = 64 << 10;

/// Closes a refused connection gently: stop writing, then read what the client already sent
/// (bounded in time and bytes). A unix socket closed with unread data makes the peer's reads
/// fail with "connection reset", which would hide the error reply from the client.
async fn linger(read: &mut OwnedReadHalf, write: &mut OwnedWriteHalf) {
    let _ = write.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// The id of a request that failed to parse, if it has a readable one.
fn salvage_id(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("id")?
        .as_u64()
}

/// Why no request could be read.
enum ReadError {
    /// A framing failure (over-size, truncated, I/O).
    Frame(FrameError),
    /// Part of a frame did not arrive in time.
    Timeout(&'static str, Duration),
    /// Nothing in flight and nothing sent for the idle timeout.
    Idle(Duration),
}

impl From<FrameError> for ReadError {
    fn from(e: FrameError) -> Self {
        ReadError::Frame(e)
    }
}

/// Reads one request frame under the connection's time limits: `Ok(None)` on a clean end of
/// stream between frames.
async fn read_request(
    read: &mut OwnedReadHalf,
    ctx: &Context,
    state: &State,
) -> Result<Option<Vec<u8>>, ReadError> {
    let limits = &ctx.limits;
    let mut header = [0u8; HEADER_BYTES];
    // The first byte may take as long as the client likes while something is in flight; with
    // nothing in flight, only the idle timeout. A written reply wakes this to recompute.
    let mut got = loop {
        let wait = if state.busy() {
            limits.idle_timeout
        } else {
            let left = limits.idle_timeout.saturating_sub(state.idle_for());
            if left.is_zero() {
                return Err(ReadError::Idle(limits.idle_timeout));
            }
            left
        };
        tokio::select! {
            r = read.read(&mut header) => match r {
                Ok(0) => return Ok(None),
                Ok(n) => break n,
                Err(e) => return Err(FrameError::Io(e).into()),
            },
            _ = tokio::time::sleep(wait) => {}
            _ = state.drained.notified() => {}
        }
    };
    let rest = async {
        while got < HEADER_BYTES {
            let n = read.read(&mut header[got..]).await?;
            if n == 0 {
                return Err(FrameError::Truncated);
            }
            got += n;
        }
        Ok(())
    };
    match tokio::time::timeout(limits.header_timeout, rest).await {
        Err(_) => return Err(ReadError::Timeout("frame header", limits.header_timeout)),
        Ok(r) => r?,
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len).into());
    }
    let mut body = vec![0u8; len];
    match tokio::time::timeout(limits.body_timeout, read.read_exact(&mut body)).await {
        Err(_) => Err(ReadError::Timeout("frame body", limits.body_timeout)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FrameError::Truncated.into())
        }
        Ok(Err(e)) => Err(FrameError::Io(e).into()),
        Ok(Ok(_)) => {
            state.touch();
            Ok(Some(body))
        }
    }
}

/// Waits until this connection's queued replies are under its cap and the daemon's total
/// budget is not used up. Returns `false` when the daemon starts draining or the connection
/// is finished.
async fn wait_for_room(ctx: &Context, state: &State, shutdown: &Shutdown) -> bool {
    loop {
        let space = ctx.reply_space.notified();
        tokio::pin!(space);
        space.as_mut().enable();
        if state.buffered.load(Ordering::SeqCst) < ctx.limits.max_reply_buffer_bytes
            && ctx.reply_budget.available_permits() > 0
        {
            return true;
        }
        tokio::select! {
            _ = state.drained.notified() => {}
            _ = &mut space => {}
            _ = shutdown.draining() => return false,
            _ = state.closed() => return false,
        }
    }
}

/// The error reply (`"id": null`) for a connection closed after a failed read, if it gets one.
fn read_error_reply(ctx: &Context, error: ReadError) -> Option<Reply> {
    match error {
        ReadError::Frame(FrameError::TooLarge(n)) => {
            ctx.counters.record_error(ErrorKind::FrameTooLarge);
            Some(Reply::error(
                None,
                ErrorKind::FrameTooLarge,
                format!(
                    "a frame of {n} bytes is over the limit of {MAX_FRAME_BYTES} bytes; closing"
                ),
            ))
        }
        ReadError::Timeout(what, limit) => {
            ctx.counters.record_error(ErrorKind::TimedOut);
            Some(Reply::error(
                None,
                ErrorKind::TimedOut,
                format!(
                    "the {what} did not arrive within {limit:?} (see startd --header-timeout \
                     and --body-timeout); closing"
                ),
            ))
        }
        ReadError::Idle(limit) => {
            ctx.counters.record_error(ErrorKind::TimedOut);
            Some(Reply::error(
                None,
                ErrorKind::TimedOut,
                format!(
                    "the connection was idle for {limit:?} (see startd \
                     --connection-idle-timeout); closing: reconnect to go on"
                ),
            ))
        }
        ReadError::Frame(e) => {
            tracing::debug!(error = %e, "connection ended");
            None
        }
    }
}

/// Serves one connection until the client closes it, it breaks a limit, or the daemon shuts
/// down.
pub(crate) async fn handle(stream: UnixStream, ctx: Arc<Context>, shutdown: Shutdown) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials; closing");
            return;
        }
    };
    let (mut read, mut write) = stream.into_split();
    if !uid_allowed(uid, ctx.own_uid, &ctx.allow_uids) {
        tracing::warn!(uid, "refused a connection from a uid that is not allowed");
        ctx.counters.record_error(ErrorKind::Forbidden);
        let reply = Reply::error(
            None,
            ErrorKind::Forbidden,
            format!("uid {uid} may not use this daemon (see startd --allow-uid)"),
        );
        send_now(&mut write, &reply, ctx.limits.write_timeout).await;
        linger(&mut read, &mut write).await;
        return;
    }

    let state = Arc::new(State::new());
    let max_in_flight = ctx.max_in_flight.max(1);
    let (tx, rx) = mpsc::unbounded_channel::<Queued>();
    let writer = tokio::spawn(write_replies(write, rx, ctx.clone(), state.clone()));
    let limit = Arc::new(Semaphore::new(max_in_flight));

    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.draining() => break,
            _ = state.closed() => break,
        };
        if !wait_for_room(&ctx, &state, &shutdown).await {
            break;
        }
        let frame = tokio::select! {
            f = read_request(&mut read, &ctx, &state) => f,
            _ = shutdown.draining() => break,
            _ = state.closed() => break,
        };
        let body = match frame {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(e) => {
                if let Some(reply) = read_error_reply(&ctx, e) {
                    queue(&ctx, &state, &tx, &reply).await;
                }
                break;
            }
        };
        let request: Request = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                ctx.counters.record_error(ErrorKind::BadRequest);
                let reply = Reply::error(
                    salvage_id(&body),
                    ErrorKind::BadRequest,
                    format!("not a valid request: {e}"),
                );
                if !queue(&ctx, &state, &tx, &reply).await {
                    break;
                }
                continue;
            }
        };
        drop(body);
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        let (ctx, tx, shutdown, state) = (ctx.clone(), tx.clone(), shutdown.clone(), state.clone());
        tokio::spawn(async move {
            let id = request.id;
            let op = request.op.name();
            let reply = tokio::select! {
                r = dispatch(&ctx, request, uid) => r,
                _ = shutdown.forced() => {
                    ctx.counters.record(op, Some(ErrorKind::ShuttingDown), None);
                    Reply::error(
                        Some(id),
                        ErrorKind::ShuttingDown,
                        "the daemon is shutting down and its grace period is over",
                    )
                }
            };
            queue(&ctx, &state, &tx, &reply).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        });
    }

    // Let what is in flight finish (unless the connection is finished); while draining,
    // answer anything new at once.
    let all = limit.clone().acquire_many_owned(max_in_flight as u32);
    tokio::pin!(all);
    if shutdown.is_draining() && !state.is_dead() {
        loop {
            tokio::select! {
                _ = &mut all => break,
                _ = state.closed() => break,
                f = read_request(&mut read, &ctx, &state) => match f {
                    Ok(Some(body)) => {
                        let reply = Reply::error(
                            salvage_id(&body),
                            ErrorKind::ShuttingDown,
                            "the daemon is shutting down; no new requests",
                        );
                        ctx.counters.record_error(ErrorKind::ShuttingDown);
                        if !queue(&ctx, &state, &tx, &reply).await {
                            break;
                        }
                    }
                    _ => {
                        tokio::select! {
                            _ = &mut all => {}
                            _ = state.closed() => {}
                        }
                        break;
                    }
                },
            }
        }
    } else {
        tokio::select! {
            _ = &mut all => {}
            _ = state.closed() => {}
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Answers one request.
async fn dispatch(ctx: &Context, request: Request, uid: u32) -> Reply {
    let started = Instant::now();
    let id = request.id;
    let op = request.op.name();
    let timed = matches!(request.op, Op::Exec { .. } | Op::SessionRun { .. });
    let result = match request.op {
        Op::Ping => Ok(Response::Pong),
        Op::Stats => Ok(Response::Stats(ctx.stats())),
        Op::Exec { code, mut limits } => match check_input(&code, &limits.stdin) {
            Err(e) => Err(e),
            Ok(()) => {
                ctx.ceilings.clamp_exec(&mut limits);
                ctx.pool.exec(code, limits).await.map(Response::Outcome)
            }
        },
        Op::SessionOpen { mut limits } => {
            ctx.ceilings.clamp_session(&mut limits);
            ctx.pool
                .open_session(limits, uid)
                .await
                .map(Response::Session)
        }
        Op::SessionRun {
            session,
            code,
            mut limits,
        } => {
            if let Err(e) = check_input(&code, "") {
                return finish(ctx, id, op, timed, started, Err(e));
            }
            ctx.ceilings.clamp_turn(&mut limits);
            ctx.pool
                .run_session(&session, code, limits, uid)
                .await
                .map(Response::Outcome)
        }
        Op::SessionClose { session } => ctx
            .pool
            .close_session(&session, uid)
            .await
            .map(|()| Response::Closed),
    };
    finish(ctx, id, op, timed, started, result)
}

/// Refuses code or stdin over the sandbox's limits before any job is made of them.
fn check_input(code: &str, stdin: &str) -> Result<(), (ErrorKind, String)> {
    if code.len() > start_sandbox::MAX_CODE_BYTES {
        return Err((
            ErrorKind::Invalid,
            format!(
                "the code is {} bytes; the limit is {}",
                code.len(),
                start_sandbox::MAX_CODE_BYTES
            ),
        ));
    }
    if stdin.len() > start_sandbox::MAX_STDIN_BYTES {
        return Err((
            ErrorKind::Invalid,
            format!(
                "stdin is {} bytes; the limit is {}",
                stdin.len(),
                start_sandbox::MAX_STDIN_BYTES
            ),
        ));
    }
    Ok(())
}

/// Makes the reply and counts it.
fn finish(
    ctx: &Context,
    id: u64,
    op: &'static str,
    timed: bool,
    started: Instant,
    result: Result<Response, (ErrorKind, String)>,
) -> Reply {
    let reply = match result {
        Ok(r) => Reply::ok(id, r),
        Err((kind, message)) => Reply::error(Some(id), kind, message),
    };
    let error = match &reply.result {
        ReplyResult::Error(e) => Some(e.kind),
        ReplyResult::Ok(_) => None,
    };
    let latency = (timed && error.is_none()).then(|| started.elapsed());
    ctx.counters.record(op, error, latency);
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_uid_or_listed_uids_are_allowed() {
        assert!(uid_allowed(1000, 1000, &[]));
        assert!(!uid_allowed(1001, 1000, &[]));
        assert!(!uid_allowed(0, 1000, &[]));
        assert!(uid_allowed(1001, 1000, &[1001, 1002]));
        assert!(uid_allowed(1002, 1000, &[1001, 1002]));
        assert!(!uid_allowed(1003, 1000, &[1001, 1002]));
    }

    #[test]
    fn ids_are_salvaged_from_invalid_requests() {
        assert_eq!(salvage_id(br#"{"id":5,"op":"nope"}"#), Some(5));
        assert_eq!(salvage_id(br#"{"id":"x"}"#), None);
        assert_eq!(salvage_id(b"\xff\x00garbage"), None);
    }
}
