//! Any OpenAI-compatible server (vLLM, SGLang, llama-server) through its `/completions` endpoint,
//! streamed with server-sent events.
//!
//! Each request sends the whole text so far (prompt plus assistant text) as a raw prompt; servers
//! with prefix caching (all three above) then reuse their KV cache for the shared prefix. A
//! truncation or an append closes the current stream; the next piece opens a new one. Transient
//! failures (connection errors, 408, 429, 5xx) are retried with exponential backoff before any
//! text arrived. Concurrency is bounded by the caller's worker count (`start infer --jobs`).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Backend, BackendError, ChatTemplate, EndReason, Generation, Piece, RenderedPrompt, SampleParams,
};
use crate::infer::template::Preset;
use crate::trajectory::Counters;

/// Longest server-sent-event line accepted, in bytes.
pub const MAX_EVENT_LINE_BYTES: usize = 1 << 20;
/// Longest error body kept for a message, in bytes.
const MAX_ERROR_BODY_BYTES: u64 = 4096;
/// Attempts per request (the first plus retries).
pub const DEFAULT_ATTEMPTS: u32 = 4;

/// Where and how to reach the server.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiOptions {
    /// The API base, such as `http://localhost:8000/v1`.
    pub base_url: String,
    /// The served model's name.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// `max_tokens` of each request.
    pub max_tokens_per_request: u32,
    /// Stop strings sent with each request.
    pub stop: Vec<String>,
    /// Attempts per request before giving up.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub backoff: Duration,
    /// Connect and first-byte timeout.
    pub timeout: Duration,
}

impl OpenAiOptions {
    /// Options for `base_url` and `model` with the defaults for the rest.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiOptions {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            max_tokens_per_request: 4096,
            stop: Vec::new(),
            attempts: DEFAULT_ATTEMPTS,
            backoff: Duration::from_millis(250),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A client of one server and model.
#[derive(Debug)]
pub struct OpenAiBackend {
    options: OpenAiOptions,
    url: String,
    agent: ureq::Agent,
    template: ChatTemplate,
}

impl OpenAiBackend {
    /// A client for `options` (nothing is sent yet).
    pub fn new(options: OpenAiOptions) -> Self {
        let url = format!("{}/completions", options.base_url.trim_end_matches('/'));
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.timeout))
            .timeout_recv_response(Some(options.timeout))
            .build();
        OpenAiBackend {
            options,
            url,
            agent: ureq::Agent::new_with_config(config),
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

    /// Opens one streaming request, retrying transient failures.
    fn open(
        &self,
        prompt: &str,
        params: &SampleParams,
    ) -> Result<BufReader<ureq::BodyReader<'static>>, BackendError> {
        let mut body = json!({
            "model": self.options.model,
            "prompt": prompt,
            "max_tokens": self.options.max_tokens_per_request,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stream": true,
        });
        if !self.options.stop.is_empty() {
            body["stop"] = json!(self.options.stop);
        }
        let mut wait = self.options.backoff;
        let mut last = String::new();
        for attempt in 0..self.options.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
            }
            let mut request = self
                .agent
                .post(&self.url)
                .header("Accept", "text/event-stream");
            if let Some(key) = &self.options.api_key {
                request = request.header("Authorization", &format!("Bearer {key}"));
            }
            match request.send_json(&body) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if (200..300).contains(&status) {
                        return Ok(BufReader::new(response.into_body().into_reader()));
                    }
                    let mut text = String::new();
                    let _ = response
                        .into_body()
                        .into_reader()
                        .take(MAX_ERROR_BODY_BYTES)
                        .read_to_string(&mut text);
                    last = format!("HTTP {status}: {}", text.trim());
                    if !matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                        return Err(BackendError::Protocol {
                            url: self.url.clone(),
                            reason: last,
                        });
                    }
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(BackendError::Unreachable {
            url: self.url.clone(),
            reason: format!("{last} (after {} attempts)", self.options.attempts.max(1)),
        })
    }
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
        Ok(Box::new(OpenAiGeneration {
            backend: self,
            params: params.clone(),
            prompt: prompt.completion_text().to_string(),
            text: String::new(),
            stream: None,
            pending_end: None,
            counters: Counters::default(),
        }))
    }
}

struct OpenAiGeneration<'a> {
    backend: &'a OpenAiBackend,
    params: SampleParams,
    prompt: String,
    text: String,
    stream: Option<BufReader<ureq::BodyReader<'static>>>,
    pending_end: Option<EndReason>,
    counters: Counters,
}

/// One parsed event of the stream.
enum Event {
    Text(String, Option<EndReason>),
    Done,
}

impl OpenAiGeneration<'_> {
    fn protocol(&self, reason: impl Into<String>) -> BackendError {
        BackendError::Protocol {
            url: self.backend.url.clone(),
            reason: reason.into(),
        }
    }

    /// Reads the next `data:` event, or `None` at the end of the stream.
    fn read_event(&mut self) -> Result<Option<Event>, BackendError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            let mut line = Vec::new();
            let n = stream
                .by_ref()
                .take(MAX_EVENT_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| BackendError::Unreachable {
                    url: self.backend.url.clone(),
                    reason: format!("the stream broke: {e}"),
                })?;
            if n == 0 {
                return Ok(None);
            }
            if line.len() > MAX_EVENT_LINE_BYTES {
                return Err(self.protocol(format!(
                    "an event line is over {MAX_EVENT_LINE_BYTES} bytes"
                )));
            }
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue; // comments, `event:`, `id:`, blank separators
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                return Ok(Some(Event::Done));
            }
            let value: Value = serde_json::from_str(data)
                .map_err(|e| self.protocol(format!("an event is not JSON: {e}")))?;
            if let Some(err) = value.get("error") {
                return Err(self.protocol(format!("the server reported an error: {err}")));
            }
            let choice = value
                .get("choices")
                .and_then(|c| c.get(0))
                .ok_or_else(|| self.protocol("an event has no choices"))?;
            let text = choice
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let end = match choice.get("finish_reason").and_then(Value::as_str) {
                Some("length") => Some(EndReason::Length),
                Some(_) => Some(EndReason::Eos),
                None => None,
            };
            return Ok(Some(Event::Text(text, end)));
        }
    }
}

impl Generation for OpenAiGeneration<'_> {
    fn next_piece(&mut self) -> Result<Piece, BackendError> {
        if let Some(end) = self.pending_end.take() {
            self.stream = None;
            return Ok(Piece::End(end));
        }
        if self.stream.is_none() {
            let full = format!("{}{}", self.prompt, self.text);
            self.stream = Some(self.backend.open(&full, &self.params)?);
            self.counters.requests += 1;
        }
        loop {
            match self.read_event()? {
                Some(Event::Text(text, end)) => {
                    if text.is_empty() {
                        if let Some(end) = end {
                            self.stream = None;
                            return Ok(Piece::End(end));
                        }
                        continue;
                    }
                    self.pending_end = end;
                    self.counters.generated_tokens += 1;
                    self.text.push_str(&text);
                    return Ok(Piece::Text(text));
                }
                Some(Event::Done) | None => {
                    self.stream = None;
                    return Ok(Piece::End(EndReason::Eos));
                }
            }
        }
    }

    fn truncate(&mut self, len: usize) -> Result<(), BackendError> {
        if len > self.text.len() || !self.text.is_char_boundary(len) {
            return Err(BackendError::Invalid(format!(
                "truncate to {len} bytes, but the text has {}",
                self.text.len()
            )));
        }
        self.text.truncate(len);
        self.stream = None;
        self.pending_end = None;
        Ok(())
    }

    fn append(&mut self, text: &str) -> Result<(), BackendError> {
        self.text.push_str(text);
        self.stream = None;
        self.pending_end = None;
        self.counters.appended_tokens += 1;
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}
