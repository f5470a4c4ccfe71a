//! One client connection: check the peer's uid, then read frames, answer each request in its
//! own task (so a client may pipeline), and write replies as they complete. At most
//! `max_in_flight` requests per connection run at once; past that the connection is simply
//! not read, which pushes back on the client.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc};

use crate::frame::{self, FrameError};
use crate::protocol::{ErrorKind, Op, Reply, ReplyResult, Request, Response};
use crate::server::Context;
use crate::shutdown::Shutdown;

/// Whether a peer with uid `peer` may connect to a daemon running as `own`, given the
/// `--allow-uid` list. The daemon's own uid is always allowed; nobody else is by default.
pub fn uid_allowed(peer: u32, own: u32, allow: &[u32]) -> bool {
    peer == own || allow.contains(&peer)
}

async fn send(write: &mut OwnedWriteHalf, reply: &Reply) -> Result<(), FrameError> {
    let body = match serde_json::to_vec(reply) {
        Ok(b) if b.len() <= frame::MAX_FRAME_BYTES => b,
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
    frame::write_frame(write, &body).await
}

/// How long a refused connection is read (and discarded) after its error reply.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// How many bytes a refused connection may send meanwhile.
const LINGER_BYTES: usize = 64 << 10;

/// Closes a refused connection gently: stop writing, then read what the client already sent
/// (bounded in time and bytes). A unix socket closed with unread data makes the peer's reads
/// fail with "connection reset", which would hide the error reply from the client.
async fn linger(read: &mut tokio::net::unix::OwnedReadHalf, write: &mut OwnedWriteHalf) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Serves one connection until the client closes it or the daemon shuts down.
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
        let _ = send(&mut write, &reply).await;
        linger(&mut read, &mut write).await;
        return;
    }

    let max_in_flight = ctx.max_in_flight.max(1);
    let (tx, mut rx) = mpsc::channel::<Reply>(max_in_flight + 1);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if send(&mut write, &reply).await.is_err() {
                break;
            }
        }
    });
    let limit = Arc::new(Semaphore::new(max_in_flight));

    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.draining() => break,
        };
        let frame = tokio::select! {
            f = frame::read_frame(&mut read) => f,
            _ = shutdown.draining() => break,
        };
        let body = match frame {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(FrameError::TooLarge(n)) => {
                ctx.counters.record_error(ErrorKind::FrameTooLarge);
                let _ = tx
                    .send(Reply::error(
                        None,
                        ErrorKind::FrameTooLarge,
                        format!(
                            "a frame of {n} bytes is over the limit of {} bytes; closing",
                            frame::MAX_FRAME_BYTES
                        ),
                    ))
                    .await;
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
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
                if tx.send(reply).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let (ctx, tx, shutdown) = (ctx.clone(), tx.clone(), shutdown.clone());
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
            let _ = tx.send(reply).await;
            drop(permit);
        });
    }

    // Let what is in flight finish; while draining, answer anything new at once.
    let all = limit.clone().acquire_many_owned(max_in_flight as u32);
    tokio::pin!(all);
    if shutdown.is_draining() {
        loop {
            tokio::select! {
                _ = &mut all => break,
                f = frame::read_frame(&mut read) => match f {
                    Ok(Some(body)) => {
                        let reply = Reply::error(
                            salvage_id(&body),
                            ErrorKind::ShuttingDown,
                            "the daemon is shutting down; no new requests",
                        );
                        ctx.counters.record_error(ErrorKind::ShuttingDown);
                        if tx.send(reply).await.is_err() {
                            break;
                        }
                    }
                    _ => {
                        let _ = (&mut all).await;
                        break;
                    }
                },
            }
        }
    } else {
        let _ = (&mut all).await;
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
