//! A request's limits and its budget, from SandboxFusion's fields.
//!
//! verl waits `compile_timeout + run_timeout + 10 s` for an answer and retries only on a 504,
//! so a request waits in the queue (retrying a full one) while it can still be answered in
//! that budget, and gets a 504 once it cannot.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::error::ApiError;
use crate::pool::Failure;
use crate::protocol::ErrorKind;

/// Added to a request's own timeouts to make its budget, as verl's client does (its
/// `API_TIMEOUT`).
pub const BUDGET_MARGIN: Duration = Duration::from_secs(10);
/// How much before the end of its budget a request that has not started is answered 504, so
/// that the answer reaches the client before it gives up.
pub const ANSWER_HEADROOM: Duration = Duration::from_millis(500);
/// How long a request waits before trying a full queue again (doubling up to
/// [`MAX_QUEUE_RETRY`]).
pub const FIRST_QUEUE_RETRY: Duration = Duration::from_millis(5);
/// The longest wait between tries of a full queue.
pub const MAX_QUEUE_RETRY: Duration = Duration::from_millis(100);

/// `value` seconds as a duration, for the field `name`: finite and non-negative (zero only
/// where `zero_ok`), and at most `ceiling` (larger values are lowered to it, as every
/// request's limits are lowered to the server's ceilings).
pub fn seconds(
    name: &str,
    value: f64,
    zero_ok: bool,
    ceiling: Duration,
) -> Result<Duration, ApiError> {
    if !value.is_finite() || value < 0.0 || (value == 0.0 && !zero_ok) {
        return Err(ApiError::invalid(format!(
            "{name} must be a {} number of seconds, not {value}",
            if zero_ok { "non-negative" } else { "positive" }
        )));
    }
    Ok(Duration::from_secs_f64(value.min(ceiling.as_secs_f64())))
}

/// `memory_limit_MB` as bytes: zero or less means `default`; otherwise at most `ceiling`.
pub fn memory_bytes(mib: i64, default: u64, ceiling: u64) -> u64 {
    if mib <= 0 {
        default.min(ceiling)
    } else {
        (mib as u64).saturating_mul(1 << 20).min(ceiling)
    }
}

/// When a request with these timeouts must have its answer.
pub fn deadline(started: Instant, budget: Duration) -> Instant {
    started + budget.saturating_sub(ANSWER_HEADROOM)
}

/// Runs `submit` (one try at queueing a job and waiting for its answer) until it is not
/// refused as busy, or until `deadline`, when the request gets a 504; each retry of a full
/// queue is counted in `retries`. Dropping a job's answer makes the pool skip it, so a job
/// given up here never runs.
pub async fn queued<T, F, Fut>(
    deadline: Instant,
    budget: Duration,
    retries: &AtomicU64,
    mut submit: F,
) -> Result<Result<T, Failure>, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let tries = async {
        let mut wait = FIRST_QUEUE_RETRY;
        loop {
            match submit().await {
                Err((ErrorKind::Busy, _)) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_QUEUE_RETRY);
                }
                other => return other,
            }
        }
    };
    tokio::time::timeout_at(deadline, tries)
        .await
        .map_err(|_| ApiError::budget(budget))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timeouts_are_checked_and_lowered_to_the_ceiling() {
        let c = Duration::from_secs(60);
        assert_eq!(
            seconds("t", 1.5, false, c).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(seconds("t", 1e300, false, c).unwrap(), c);
        assert!(seconds("t", -1.0, false, c).is_err());
        assert!(seconds("t", f64::NAN, false, c).is_err());
        assert!(seconds("t", 0.0, false, c).is_err());
        assert_eq!(seconds("t", 0.0, true, c).unwrap(), Duration::ZERO);
    }

    #[test]
    fn memory_defaults_and_ceilings() {
        assert_eq!(memory_bytes(-1, 512 << 20, 2 << 30), 512 << 20);
        assert_eq!(memory_bytes(1024, 512 << 20, 2 << 30), 1 << 30);
        assert_eq!(memory_bytes(i64::MAX, 512 << 20, 2 << 30), 2 << 30);
    }

    #[tokio::test]
    async fn a_full_queue_is_retried_until_the_deadline() {
        let mut n = 0;
        let retries = AtomicU64::new(0);
        let r = queued(
            Instant::now() + Duration::from_secs(5),
            Duration::from_secs(5),
            &retries,
            || {
                n += 1;
                let busy = n < 3;
                async move {
                    if busy {
                        Err((ErrorKind::Busy, "full".to_string()))
                    } else {
                        Ok(7)
                    }
                }
            },
        )
        .await;
        assert_eq!(r.unwrap().unwrap(), 7);
        assert_eq!(retries.load(Ordering::Relaxed), 2);
        let r: Result<Result<(), Failure>, ApiError> = queued(
            Instant::now() + Duration::from_millis(50),
            Duration::from_millis(50),
            &retries,
            || async { Err((ErrorKind::Busy, "full".to_string())) },
        )
        .await;
        assert_eq!(
            r.unwrap_err().status,
            axum::http::StatusCode::GATEWAY_TIMEOUT
        );
    }
}
