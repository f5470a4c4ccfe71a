//! Counters behind the `stats` operation: requests by operation, errors by kind, restarts and a
//! window of recent latencies for percentiles.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::protocol::{ErrorKind, Latency, Stats};

/// Latency samples kept for percentiles.
const WINDOW: usize = 8192;

/// The daemon's counters; shared by every connection.
#[derive(Debug)]
pub struct Counters {
    started: Instant,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) worker_restarts: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<&'static str, u64>,
    errors: BTreeMap<ErrorKind, u64>,
    latencies_ms: VecDeque<f64>,
    samples: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: Instant::now(),
            connections_total: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            worker_restarts: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an answered request; `latency` for the executing operations.
    pub fn record(&self, op: &'static str, error: Option<ErrorKind>, latency: Option<Duration>) {
        let mut inner = self.lock();
        *inner.requests.entry(op).or_default() += 1;
        if let Some(kind) = error {
            *inner.errors.entry(kind).or_default() += 1;
        }
        if let Some(l) = latency {
            if inner.latencies_ms.len() == WINDOW {
                inner.latencies_ms.pop_front();
            }
            inner.latencies_ms.push_back(l.as_secs_f64() * 1e3);
            inner.samples += 1;
        }
    }

    /// Records an error that belongs to no request (an undecodable frame).
    pub fn record_error(&self, kind: ErrorKind) {
        *self.lock().errors.entry(kind).or_default() += 1;
    }

    /// The counters as a [`Stats`]; the caller fills in queue, workers and sessions.
    pub fn snapshot(&self) -> Stats {
        let inner = self.lock();
        let mut sorted: Vec<f64> = inner.latencies_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Stats {
            uptime_s: self.started.elapsed().as_secs_f64(),
            connections_total: self.connections_total.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
            requests: inner
                .requests
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            errors: inner
                .errors
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            worker_restarts: self.worker_restarts.load(Ordering::Relaxed),
            latency_ms: Latency {
                samples: inner.samples,
                p50: percentile(&sorted, 0.50),
                p90: percentile(&sorted, 0.90),
                p99: percentile(&sorted, 0.99),
                max: sorted.last().copied().unwrap_or(0.0),
            },
            ..Stats::default()
        }
    }
}

/// The `q` quantile of sorted samples (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn counts_requests_and_errors() {
        let c = Counters::default();
        c.record("exec", None, Some(Duration::from_millis(2)));
        c.record("exec", Some(ErrorKind::Busy), None);
        c.record_error(ErrorKind::BadRequest);
        let s = c.snapshot();
        assert_eq!(s.requests.get("exec"), Some(&2));
        assert_eq!(s.errors.get("busy"), Some(&1));
        assert_eq!(s.errors.get("bad_request"), Some(&1));
        assert_eq!(s.latency_ms.samples, 1);
        assert_eq!(s.latency_ms.p50, 2.0);
    }
}
