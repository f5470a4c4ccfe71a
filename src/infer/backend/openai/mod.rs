//! Any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, llama-cpp-python) through its
//! streaming `/completions` endpoint.
//!
//! Each request sends the whole text so far (prompt plus assistant text) as a raw prompt; servers
//! with prefix caching then reuse their KV cache for the shared prefix. A truncation or an append
//! closes the current stream; the next piece opens a new one. One generation may span many
//! requests:
//!
//! - **Sizing.** Each request asks for `max_tokens` = what the trajectory's token budget
//!   ([`SampleParams::budget_tokens`]) still allows, capped by
//!   [`OpenAiOptions::max_tokens_per_request`] and by the room the context has left. The context
//!   length is [`OpenAiOptions::context_tokens`], else the server's `/models` `max_model_len`
//!   (vLLM and SGLang give it), else unknown (the server's own limit then decides). The prompt's
//!   tokens come from the server: the previous request's `usage` (asked for with
//!   `stream_options.include_usage`) or a context-overflow refusal (`context.rs`).
//! - **Continuation.** A `finish_reason: "length"` that came from the request's own `max_tokens`
//!   while budget and context are left is not an end: the next request continues from the text
//!   so far, so a long thought spans requests. The generation ends with [`EndReason::Length`]
//!   only when the context is full: the room left is zero, the server stopped short of the
//!   `max_tokens` it was asked for, a request made no progress, or the server refused the
//!   prompt as longer than its context.
//! - **Faults.** A refused or dropped connection, a read that waits longer than
//!   [`OpenAiOptions::read_timeout`] (a stalled stream), a stream that breaks or ends without a
//!   finish reason, and HTTP 408/425/429/5xx are retried from the text so far, with exponential
//!   backoff and at least the server's `Retry-After` (`retry.rs`), up to
//!   [`OpenAiOptions::attempts`] failures in a row (text received resets the count). A
//!   context-overflow 400 is re-sized and resent. Any other 4xx, and a stream the server accepted
//!   but kept garbling or ending early, is [`BackendError::Refused`]: that trajectory ends with
//!   an error, the others go on. A server that stays unreachable (connections, timeouts, 5xx)
//!   is [`BackendError::Unreachable`], which stops a batch.
//! - **Servers without `usage`** (llama-cpp-python): one event stands for one token, and a
//!   `length` finish after fewer events than asked for counts as the server's context being
//!   full. A server that packs several tokens into one event may so end a thought early.
//! - **Counting.** Generated tokens are counted one per event while a request streams and
//!   replaced by the server's `usage` when it comes (servers without it, such as
//!   llama-cpp-python, keep the event count). [`Counters::prompt_tokens`] is the first request's
//!   prompt; `decoded_tokens` sums prompt and completion over requests (prefix-cache hits
//!   included); `context_tokens` is the last count of the whole text; `appended_tokens` is
//!   estimated from bytes.
//!
//! Concurrency is bounded by the caller's worker count (`start infer --jobs`).

mod context;
mod events;
mod generation;
mod request;

use std::io::{BufReader, Read};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::{Backend, BackendError, ChatTemplate, Generation, RenderedPrompt, SampleParams};
use crate::infer::template::Preset;
use crate::retry;
pub use crate::retry::{MAX_BACKOFF, MAX_RETRY_AFTER};
pub use context::{BYTES_PER_TOKEN_GUESS, Overflow, parse_overflow};

#[cfg(doc)]
use super::EndReason;
#[cfg(doc)]
use crate::trajectory::Counters;

/// Longest server-sent-event line accepted, in bytes.
pub const MAX_EVENT_LINE_BYTES: usize = 1 << 20;
/// Longest error body kept for a message, in bytes.
const MAX_ERROR_BODY_BYTES: u64 = 4096;
/// Longest `/models` reply read, in bytes.
const MAX_MODELS_BYTES: u64 = 1 << 20;
/// Failures in a row (of one generation) before giving up.
pub const DEFAULT_ATTEMPTS: u32 = 8;
/// Default wait before the first retry; doubled each time up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest wait for any read (the response's head, or the next bytes of a stream).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// `max_tokens` of a request that nothing else bounds (no budget, cap nor known context).
pub const FALLBACK_MAX_TOKENS: u64 = 4096;
/// Context-overflow refusals re-sized and resent in a row before the context counts as full.
pub const MAX_OVERFLOW_RETRIES: u32 = 4;

/// Where and how to reach the server.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiOptions {
    /// The API base, such as `http://localhost:8000/v1`.
    pub base_url: String,
    /// The served model's name.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Cap on each request's `max_tokens`; `None` asks for all that the trajectory's budget and
    /// the context allow.
    pub max_tokens_per_request: Option<u64>,
    /// The model's context window, in tokens; `None` asks the server's `/models` for its
    /// `max_model_len` (once per backend) and, where it gives none, leaves the limit to it.
    pub context_tokens: Option<u64>,
    /// Stop strings sent with each request.
    pub stop: Vec<String>,
    /// Failures in a row before a generation gives up.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub backoff: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the response's head or the next bytes of a stream; a stream quiet for
    /// longer is stalled, and retried.
    pub read_timeout: Duration,
}

impl OpenAiOptions {
    /// Options for `base_url` and `model` with the defaults for the rest.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiOptions {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            max_tokens_per_request: None,
            context_tokens: None,
            stop: Vec::new(),
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// Why one request got no stream.
#[derive(Debug)]
enum Failure {
    /// Worth retrying: the connection failed or timed out, or the server is busy.
    Transient {
        reason: String,
        /// What the server's `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// The prompt and `max_tokens` do not fit the server's context.
    Overflow(Overflow),
    /// Refused for good (a 4xx).
    Refused(String),
}

/// A client of one server and model.
#[derive(Debug)]
pub struct OpenAiBackend {
    options: OpenAiOptions,
    url: String,
    models_url: String,
    agent: ureq::Agent,
    discovered_context: OnceLock<Option<u64>>,
    template: ChatTemplate,
}

impl OpenAiBackend {
    /// A client for `options` (nothing is sent yet).
    pub fn new(options: OpenAiOptions) -> Self {
        let base = options.base_url.trim_end_matches('/');
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .max_idle_connections(1024)
            .max_idle_connections_per_host(1024)
            .build();
        OpenAiBackend {
            url: format!("{base}/completions"),
            models_url: format!("{base}/models"),
            options,
            agent: ureq::Agent::new_with_config(config),
            discovered_context: OnceLock::new(),
            template: ChatTemplate::preset(Preset::ChatMl),
        }
    }

    /// Renders prompts with `template` (the served model's own; default ChatML). The server
    /// gets the rendered text as a raw prompt, less a BOS the template wrote (the server's
    /// tokenizer adds it).
    pub fn with_template(mut self, template: ChatTemplate) -> Self {
        self.template = template;
        self
    }

    /// The options it was made with.
    pub fn options(&self) -> &OpenAiOptions {
        &self.options
    }

    /// The model's context window: the option, else the server's `max_model_len` (asked once),
    /// else unknown.
    pub fn context_tokens(&self) -> Option<u64> {
        self.options.context_tokens.or_else(|| {
            *self
                .discovered_context
                .get_or_init(|| self.discover_context())
        })
    }

    /// The `max_model_len` of the served model in `/models`, if the server gives one.
    fn discover_context(&self) -> Option<u64> {
        let mut request = self.agent.get(&self.models_url);
        if let Some(key) = &self.options.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let response = request.call().ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut text = String::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_MODELS_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        max_model_len(&serde_json::from_str(&text).ok()?, &self.options.model)
    }

    /// Sends one streaming request.
    fn send(&self, body: &Value) -> Result<BufReader<ureq::BodyReader<'static>>, Failure> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Accept", "text/event-stream");
        if let Some(key) = &self.options.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let response = request.send_json(body).map_err(|e| Failure::Transient {
            reason: e.to_string(),
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(BufReader::new(response.into_body().into_reader()));
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let mut text = String::new();
        let _ = response
            .into_body()
            .into_reader()
            .take(MAX_ERROR_BODY_BYTES)
            .read_to_string(&mut text);
        let reason = format!("HTTP {status}: {}", text.trim());
        if retry::is_transient(status) {
            return Err(Failure::Transient {
                reason,
                retry_after,
            });
        }
        match parse_overflow(&text) {
            Some(overflow) if status == 400 || status == 413 || status == 422 => {
                Err(Failure::Overflow(overflow))
            }
            _ => Err(Failure::Refused(reason)),
        }
    }
}

/// The `max_model_len` of `model` in a `/models` reply (or of its only model).
fn max_model_len(models: &Value, model: &str) -> Option<u64> {
    let data = models.get("data")?.as_array()?;
    let entry = data
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(model))
        .or(if data.len() == 1 { data.first() } else { None })?;
    entry.get("max_model_len")?.as_u64().filter(|n| *n > 0)
}

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        format!(
            "openai:{} model={}",
            self.options.base_url, self.options.model
        )
    }

    fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    fn start<'a>(
        &'a self,
        prompt: &RenderedPrompt,
        params: &SampleParams,
    ) -> Result<Box<dyn Generation + 'a>, BackendError> {
        Ok(Box::new(generation::OpenAiGeneration::new(
            self,
            prompt.completion_text().to_string(),
            params.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_served_models_context() {
        let vllm = json!({"object": "list", "data": [
            {"id": "other", "max_model_len": 4096},
            {"id": "qwq", "max_model_len": 32768},
        ]});
        assert_eq!(max_model_len(&vllm, "qwq"), Some(32768));
        assert_eq!(max_model_len(&vllm, "absent"), None);
        let one = json!({"data": [{"id": "a", "max_model_len": 2048}]});
        assert_eq!(max_model_len(&one, "alias"), Some(2048));
        let llama_cpp = json!({"data": [{"id": "m", "owned_by": "me"}]});
        assert_eq!(max_model_len(&llama_cpp, "m"), None);
    }
}
