//! When to retry an HTTP request and how long to wait: exponential backoff from a base, capped,
//! and at least what a server's `Retry-After` asks. Shared by every HTTP client here (the
//! OpenAI-compatible backend, the SandboxFusion-compatible executor).

use std::time::Duration;

/// Longest wait between two attempts that backoff alone gives.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Whether an HTTP status says "try again later": a timeout, rate limiting, or a server error.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` header's delay, when it is given in seconds (an HTTP date is ignored: the
/// backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

/// The wait before retrying after the `failures`-th failure in a row (1-based): `base` doubled
/// each time up to [`MAX_BACKOFF`], and never less than `retry_after`.
pub fn wait(base: Duration, failures: u32, retry_after: Option<Duration>) -> Duration {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    let backoff = base.saturating_mul(doubling).min(MAX_BACKOFF);
    backoff.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_honours_retry_after() {
        let base = Duration::from_millis(100);
        assert_eq!(wait(base, 1, None), base);
        assert_eq!(wait(base, 3, None), Duration::from_millis(400));
        assert_eq!(wait(base, 40, None), MAX_BACKOFF);
        let asked = Some(Duration::from_secs(2));
        assert_eq!(wait(base, 1, asked), Duration::from_secs(2));
        assert_eq!(
            wait(base, 1, Some(Duration::from_secs(9999))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("100000"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert!(is_transient(503) && is_transient(429) && !is_transient(400));
    }
}
