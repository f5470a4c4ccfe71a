//! The SandboxFusion-compatible HTTP API (`startd --http ADDR`), beside the unix socket and
//! sharing its worker pool, ceilings, counters and graceful shutdown.
//!
//! Modules: `run_code` (`POST /run_code`), `jupyter` (`POST /run_jupyter`), `files` (`files`
//! and `fetch_files`), `budget` (timeouts, memory, the queue-or-504 budget), `metrics`
//! (`/health`, `/metrics`), `auth` (the optional bearer token), `error` (refusals); the
//! request and reply types are the crate's [`crate::sandbox_fusion`], shared with clients.
//! Every route is also served under [`HttpConfig::prefix`] when one is set.
//!
//! Limits on clients: bodies are capped ([`HttpConfig::max_body_bytes`]), request headers
//! must arrive within [`HttpConfig::header_timeout`] and bodies within
//! [`HttpConfig::body_timeout`], and at most [`HttpConfig::max_connections`] connections are
//! served at once (the rest wait in the listen backlog).

mod auth;
mod budget;
mod error;
mod files;
mod jupyter;
mod metrics;
mod run_code;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

pub use crate::sandbox_fusion::{
    CellError, CellRunResult, CommandRunResult, CommandRunStatus, RunCodeRequest, RunCodeResponse,
    RunJupyterRequest, RunJupyterResponse, RunStatus, SUPPORTED_LANGUAGES,
};
pub use budget::{ANSWER_HEADROOM, BUDGET_MARGIN};
pub use error::ApiError;
pub use files::{MAX_FILES, MAX_PATH_BYTES};
pub use jupyter::{MAX_CELLS, SESSION_IDLE_TIMEOUT};
pub use metrics::LATENCY_BUCKETS_S;

use crate::server::{Context, ServerError};
use crate::shutdown::Shutdown;

/// Default of [`HttpConfig::max_body_bytes`]: 16 MiB (room for the code limit's 4 MiB and
/// base64 files).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// Default of [`HttpConfig::header_timeout`]: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`HttpConfig::body_timeout`]: 30 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`HttpConfig::max_connections`]: 4096 (an RL trainer may hold one per rollout
/// thread).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The environment variable whose value is every reply's `executor_pod_name`, as in
/// SandboxFusion (the Kubernetes manifests set it from the pod's name).
pub const POD_NAME_ENV: &str = "MY_POD_NAME";

/// How the HTTP API is served.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Whether a non-loopback `addr` is allowed (`--http-allow-remote`): the API runs code
    /// for whoever reaches it, so exposing it must be asked for.
    pub allow_remote: bool,
    /// A path prefix every route is also served under (e.g. `/faas/sandbox`); empty for none.
    pub prefix: String,
    /// Largest request body; larger ones get 413. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// How long a request's headers may take to arrive. Default [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive; past it the reply is 408. Default
    /// [`DEFAULT_BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// Connections served at once. Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// The bearer token clients must send, if any (`--http-token-file`).
    pub token: Option<String>,
    /// Added to a request's timeouts to make its budget. Default [`BUDGET_MARGIN`].
    pub budget_margin: Duration,
    /// Every reply's `executor_pod_name`. Default: [`POD_NAME_ENV`] from the environment.
    pub pod_name: Option<String>,
}

impl HttpConfig {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        HttpConfig {
            addr,
            allow_remote: false,
            prefix: String::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            token: None,
            budget_margin: BUDGET_MARGIN,
            pod_name: std::env::var(POD_NAME_ENV).ok().filter(|s| !s.is_empty()),
        }
    }
}

/// Normalizes a route prefix: `""` or `"/"` for none, else a leading `/` and no trailing one.
///
/// # Errors
/// A prefix with characters a route cannot hold.
pub fn normalize_prefix(prefix: &str) -> Result<String, ServerError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "-_./~".contains(c)))
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(ServerError::Http(format!(
            "--http-prefix {prefix:?} must be a path like /faas/sandbox"
        )));
    }
    Ok(format!("/{trimmed}"))
}

/// What every HTTP handler shares.
pub(crate) struct Http {
    pub ctx: Arc<Context>,
    pub config: HttpConfig,
    pub metrics: metrics::Metrics,
    pub shutdown: Shutdown,
    pub token_digest: Option<[u8; 32]>,
}

/// Reads a request's JSON body within the body cap and the body timeout.
pub(crate) async fn read_json<T: DeserializeOwned>(
    http: &Http,
    req: Request,
) -> Result<T, ApiError> {
    let limit = http.config.max_body_bytes;
    let body: Bytes = tokio::time::timeout(
        http.config.body_timeout,
        axum::body::to_bytes(req.into_body(), limit),
    )
    .await
    .map_err(|_| ApiError::slow_body())?
    .map_err(|_| ApiError::too_large(limit))?;
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid(format!("the request does not fit the model: {e}")),
            _ => ApiError::bad_json(format!("the request body is not valid JSON: {e}")),
        }
    })
}

async fn root() -> &'static str {
    "startd: a SandboxFusion-compatible Python sandbox (POST /run_code, POST /run_jupyter)\n"
}

async fn ping() -> axum::Json<&'static str> {
    axum::Json("pong")
}

/// The routes, under `/` and under the prefix.
fn router(http: Arc<Http>) -> Router {
    let guarded = Router::new()
        .route("/run_code", post(run_code::handle))
        .route("/run_jupyter", post(jupyter::handle))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            http.clone(),
            auth::require,
        ));
    // Liveness checks stay open, so probes need no token.
    let open = Router::new()
        .route("/", get(root))
        .route("/v1/ping", get(ping))
        .route("/health", get(metrics::health));
    let routes = open.merge(guarded);
    let mut app = routes.clone();
    if !http.config.prefix.is_empty() {
        app = app.nest(&http.config.prefix, routes);
    }
    app.fallback(|req: Request| async move { ApiError::not_found(req.uri().path()) })
        .layer(axum::middleware::from_fn_with_state(
            http.clone(),
            metrics::count,
        ))
        .with_state(http)
}

/// Binds the HTTP listener, refusing a non-loopback address unless it is allowed, and
/// warning when it is.
///
/// # Errors
/// [`ServerError::Http`] for a refused address or a failed bind.
pub async fn bind(config: &HttpConfig) -> Result<TcpListener, ServerError> {
    let ip = config.addr.ip();
    if !ip.is_loopback() {
        if !config.allow_remote {
            return Err(ServerError::Http(format!(
                "{} is not a loopback address: the HTTP API runs code for whoever reaches it; \
                 pass --http-allow-remote to serve it there (behind a token or a network policy)",
                config.addr
            )));
        }
        tracing::warn!(
            addr = %config.addr,
            token = config.token.is_some(),
            "the HTTP API is served on a non-loopback address: anyone who can reach it can run code"
        );
    }
    TcpListener::bind(config.addr)
        .await
        .map_err(|e| ServerError::Http(format!("cannot listen on {}: {e}", config.addr)))
}

/// Serves HTTP on `listener` until `stop` turns true; the returned receiver yields `None`
/// once every connection has finished (in-flight requests finish within the shutdown's
/// grace, then get 503).
pub(crate) fn spawn(
    listener: TcpListener,
    ctx: Arc<Context>,
    config: HttpConfig,
    shutdown: Shutdown,
    mut stop: watch::Receiver<bool>,
) -> mpsc::Receiver<()> {
    let (done_tx, done_rx) = mpsc::channel::<()>(1);
    let header_timeout = config.header_timeout;
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let http = Arc::new(Http {
        ctx,
        token_digest: config.token.as_deref().map(auth::digest),
        config,
        metrics: metrics::Metrics::default(),
        shutdown: shutdown.clone(),
    });
    let app = router(http);
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (app, shutdown, done) = (app.clone(), shutdown.clone(), done_tx.clone());
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout);
                let conn =
                    builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = shutdown.draining() => {
                        // Finish the request in flight, then close instead of keeping alive.
                        conn.as_mut().graceful_shutdown();
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            // Handlers answer 503 once forced; give them a moment to be written.
                            _ = async {
                                shutdown.forced().await;
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            } => {}
                        }
                    }
                }
                drop(permit);
                drop(done);
            });
        }
        drop(listener);
    });
    done_rx
}
