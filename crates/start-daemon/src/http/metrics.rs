//! `GET /health` (ready while a worker is up and the server is not draining), `GET /metrics`
//! (Prometheus text), and the counters behind them: requests by route and status, refusals
//! by kind, a latency histogram, plus the daemon's own (queue depth, worker restarts).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Http;
use super::error::ErrorKindTag;
use crate::sandbox_fusion::RunStatus;

/// The latency histogram's bucket bounds, in seconds.
pub const LATENCY_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The HTTP server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Tries of a full job queue that were retried (requests waiting instead of refused).
    pub queue_retries: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// (route, status code) -> requests.
    requests: BTreeMap<(&'static str, u16), u64>,
    /// Refusal kind -> count.
    errors: BTreeMap<&'static str, u64>,
    /// Per route: bucket counts (one per bound, then +Inf), sum of seconds, count.
    latency: BTreeMap<&'static str, (Vec<u64>, f64, u64)>,
    /// (route, reply status: Success, Failed, SandboxError) -> replies.
    statuses: BTreeMap<(&'static str, &'static str), u64>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(
        &self,
        route: &'static str,
        status: u16,
        error: Option<&'static str>,
        latency: Duration,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.requests.entry((route, status)).or_default() += 1;
        if let Some(kind) = error {
            *inner.errors.entry(kind).or_default() += 1;
        }
        let s = latency.as_secs_f64();
        let h = inner
            .latency
            .entry(route)
            .or_insert_with(|| (vec![0; LATENCY_BUCKETS_S.len() + 1], 0.0, 0));
        let i = LATENCY_BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        h.0[i] += 1;
        h.1 += s;
        h.2 += 1;
    }

    /// Counts one run's reply by its SandboxFusion status.
    pub fn record_status(&self, route: &'static str, status: RunStatus) {
        let name = match status {
            RunStatus::Success => "Success",
            RunStatus::Failed => "Failed",
            RunStatus::SandboxError => "SandboxError",
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.statuses.entry((route, name)).or_default() += 1;
    }

    /// The Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP startd_http_requests_total HTTP requests answered, by route and status code."
        );
        let _ = writeln!(out, "# TYPE startd_http_requests_total counter");
        for ((route, code), n) in &inner.requests {
            let _ = writeln!(
                out,
                "startd_http_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP startd_http_errors_total HTTP requests refused, by kind."
        );
        let _ = writeln!(out, "# TYPE startd_http_errors_total counter");
        for (kind, n) in &inner.errors {
            let _ = writeln!(out, "startd_http_errors_total{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP startd_http_replies_total Run replies, by route and status \
             (SandboxError is the server's fault, Failed the program's)."
        );
        let _ = writeln!(out, "# TYPE startd_http_replies_total counter");
        for ((route, status), n) in &inner.statuses {
            let _ = writeln!(
                out,
                "startd_http_replies_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP startd_http_request_duration_seconds Time from request to reply."
        );
        let _ = writeln!(out, "# TYPE startd_http_request_duration_seconds histogram");
        for (route, (buckets, sum, count)) in &inner.latency {
            let mut cumulative = 0;
            for (i, n) in buckets.iter().enumerate() {
                cumulative += n;
                let le = LATENCY_BUCKETS_S
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "startd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "startd_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "startd_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
    }
}

/// The route name a path is counted under (a fixed set, so that labels stay few).
fn route_name(path: &str, prefix: &str) -> &'static str {
    let path = path
        .strip_prefix(prefix)
        .filter(|p| p.starts_with('/') || p.is_empty())
        .unwrap_or(path);
    match path {
        "/run_code" => "run_code",
        "/run_jupyter" => "run_jupyter",
        "/v1/ping" => "ping",
        "/health" => "health",
        "/metrics" => "metrics",
        "/" | "" => "root",
        _ => "other",
    }
}

/// Middleware: counts every request.
pub async fn count(State(http): State<Arc<Http>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = route_name(req.uri().path(), &http.config.prefix);
    let response = next.run(req).await;
    let error = response.extensions().get::<ErrorKindTag>().map(|t| t.0);
    http.metrics
        .record(route, response.status().as_u16(), error, started.elapsed());
    response
}

/// `GET /health`: 200 while at least one worker is up and the server is not draining, 503
/// otherwise (the readiness and liveness probes' target); the body says which.
pub async fn health(State(http): State<Arc<Http>>) -> Response {
    let workers = http.ctx.pool.worker_stats();
    let up = workers.iter().filter(|w| w.pid != 0).count();
    let draining = http.shutdown.is_draining();
    let ready = up > 0 && !draining;
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "workers": workers.len(),
        "workers_up": up,
        "draining": draining,
        "queue_depth": http.ctx.pool.queue_depth(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: the HTTP counters and the daemon's, in Prometheus text format.
pub async fn metrics(State(http): State<Arc<Http>>) -> Response {
    let mut out = String::new();
    http.metrics.render(&mut out);
    let stats = http.ctx.stats();
    let _ = writeln!(
        out,
        "# HELP startd_requests_total Daemon operations answered (socket and HTTP), by operation."
    );
    let _ = writeln!(out, "# TYPE startd_requests_total counter");
    for (op, n) in &stats.requests {
        let _ = writeln!(out, "startd_requests_total{{op=\"{op}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP startd_errors_total Daemon error replies, by kind."
    );
    let _ = writeln!(out, "# TYPE startd_errors_total counter");
    for (kind, n) in &stats.errors {
        let _ = writeln!(out, "startd_errors_total{{kind=\"{kind}\"}} {n}");
    }
    let gauges = [
        (
            "startd_queue_depth",
            "Jobs waiting for a worker.",
            stats.queue_depth,
        ),
        (
            "startd_sessions_open",
            "Sessions open.",
            stats.sessions_open,
        ),
        (
            "startd_workers",
            "Worker slots.",
            stats.workers.len() as u64,
        ),
        (
            "startd_workers_up",
            "Workers running.",
            stats.workers.iter().filter(|w| w.pid != 0).count() as u64,
        ),
        (
            "startd_workers_busy",
            "Workers running a job.",
            stats.workers.iter().filter(|w| w.busy).count() as u64,
        ),
        (
            "startd_connections_open",
            "Unix-socket connections open.",
            stats.connections_open,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let _ = writeln!(
        out,
        "# HELP startd_http_queue_retries_total Tries of a full job queue retried (requests \
         that waited instead of being refused).\n\
         # TYPE startd_http_queue_retries_total counter\nstartd_http_queue_retries_total {}",
        http.metrics.queue_retries.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP startd_worker_restarts_total Workers replaced after dying or hanging.\n\
         # TYPE startd_worker_restarts_total counter\nstartd_worker_restarts_total {}",
        stats.worker_restarts
    );
    let _ = writeln!(
        out,
        "# HELP startd_uptime_seconds Seconds since startd started.\n\
         # TYPE startd_uptime_seconds gauge\nstartd_uptime_seconds {}",
        stats.uptime_s
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("run_code", 200, None, Duration::from_millis(3));
        m.record("run_code", 504, Some("budget"), Duration::from_secs(100));
        m.record_status("run_code", RunStatus::Failed);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("startd_http_requests_total{route=\"run_code\",code=\"504\"} 1"),
            "{out}"
        );
        assert!(out.contains("startd_http_errors_total{kind=\"budget\"} 1"));
        assert!(out.contains("startd_http_replies_total{route=\"run_code\",status=\"Failed\"} 1"));
        assert!(out.contains("route=\"run_code\",le=\"0.005\"} 1"));
        assert!(out.contains("route=\"run_code\",le=\"+Inf\"} 2"));
        assert_eq!(
            route_name("/faas/sandbox/run_code", "/faas/sandbox"),
            "run_code"
        );
        assert_eq!(route_name("/run_code", "/faas/sandbox"), "run_code");
        assert_eq!(route_name("/x", ""), "other");
    }
}
