//! One generation against the server: the text so far, the open stream, and the bookkeeping that
//! sizes, continues and retries its requests (the rules are in the [module docs](super)).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use super::context::{Ledger, guess_tokens};
use super::events::{self, Finish, Line, Usage};
use super::{
    FALLBACK_MAX_TOKENS, Failure, MAX_EVENT_LINE_BYTES, MAX_OVERFLOW_RETRIES, OpenAiBackend,
    request,
};
use crate::infer::backend::{BackendError, EndReason, Generation, Piece, SampleParams};
use crate::retry;
use crate::trajectory::Counters;

/// The request in flight.
#[derive(Debug)]
struct Request {
    /// The `max_tokens` it asked for.
    max_tokens: u64,
    /// Tokens of its prompt, as estimated when it was sent.
    start_tokens: Option<u64>,
    /// Generated tokens of the generation before it.
    generated_before: u64,
    /// Text events received.
    events: u64,
    finish: Option<Finish>,
    usage: Option<Usage>,
}

/// Why reading the stream failed, and whether the failure is this stream's own (the server
/// accepted the request and then sent garbage) rather than the connection's.
struct StreamFault {
    reason: String,
    local: bool,
}

pub(super) struct OpenAiGeneration<'a> {
    backend: &'a OpenAiBackend,
    params: SampleParams,
    prompt: String,
    text: String,
    stream: Option<BufReader<ureq::BodyReader<'static>>>,
    current: Option<Request>,
    /// Tokens of the whole text, as far as the server counted them.
    ledger: Ledger,
    /// The context window, in tokens, if known.
    context: Option<u64>,
    /// Failures in a row since the last text.
    failures: u32,
    /// Context-overflow refusals in a row since the last text.
    overflows: u32,
    /// A smaller `max_tokens` for the next request, after a refusal that gave no numbers.
    shrink: Option<u64>,
    counters: Counters,
}

impl<'a> OpenAiGeneration<'a> {
    pub(super) fn new(backend: &'a OpenAiBackend, prompt: String, params: SampleParams) -> Self {
        OpenAiGeneration {
            context: backend.context_tokens(),
            backend,
            params,
            prompt,
            text: String::new(),
            stream: None,
            current: None,
            ledger: Ledger::default(),
            failures: 0,
            overflows: 0,
            shrink: None,
            counters: Counters::default(),
        }
    }

    fn full_len(&self) -> usize {
        self.prompt.len() + self.text.len()
    }

    /// `max_tokens` of the next request whose prompt takes `prompt_tokens`; `None` when the
    /// context has no room left.
    fn request_size(&self, prompt_tokens: Option<u64>) -> Option<u64> {
        let room = match (self.context, prompt_tokens) {
            (Some(context), Some(prompt)) => Some(context.saturating_sub(prompt)),
            _ => None,
        };
        if room == Some(0) {
            return None;
        }
        let budget = self
            .params
            .budget_tokens
            .map(|b| b.saturating_sub(self.counters.generated_tokens).max(1));
        let cap = self
            .backend
            .options
            .max_tokens_per_request
            .map(|n| n.max(1));
        [budget, cap, self.shrink, room]
            .into_iter()
            .flatten()
            .min()
            .or(Some(FALLBACK_MAX_TOKENS))
    }

    /// Opens the next request, retrying what can be retried; `false` when the context has no
    /// room left.
    fn open(&mut self) -> Result<bool, BackendError> {
        loop {
            let full = format!("{}{}", self.prompt, self.text);
            let start_tokens = self.ledger.estimate(full.len());
            let Some(max_tokens) = self.request_size(start_tokens) else {
                return Ok(false);
            };
            let body = request::body(&self.backend.options, &self.params, &full, max_tokens);
            match self.backend.send(&body) {
                Ok(stream) => {
                    self.counters.requests += 1;
                    self.stream = Some(stream);
                    self.shrink = None;
                    self.current = Some(Request {
                        max_tokens,
                        start_tokens,
                        generated_before: self.counters.generated_tokens,
                        events: 0,
                        finish: None,
                        usage: None,
                    });
                    return Ok(true);
                }
                Err(Failure::Transient {
                    reason,
                    retry_after,
                }) => self.fail(reason, retry_after, false)?,
                Err(Failure::Overflow(overflow)) => {
                    self.overflows += 1;
                    if let Some(context) = overflow.context {
                        self.context = Some(context);
                    }
                    match overflow.prompt {
                        Some(prompt) => {
                            self.ledger.set(full.len(), prompt);
                            if self.counters.requests == 0 {
                                self.counters.prompt_tokens = prompt;
                            }
                        }
                        None if max_tokens <= 1 => return Ok(false),
                        None => self.shrink = Some(max_tokens / 2),
                    }
                    if self.overflows > MAX_OVERFLOW_RETRIES {
                        return Ok(false);
                    }
                }
                Err(Failure::Refused(reason)) => {
                    return Err(BackendError::Refused {
                        url: self.backend.url.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// Counts one more failure in a row and waits before the next attempt; the error once the
    /// attempts are spent.
    fn fail(
        &mut self,
        reason: String,
        retry_after: Option<Duration>,
        local: bool,
    ) -> Result<(), BackendError> {
        self.failures += 1;
        let attempts = self.backend.options.attempts.max(1);
        if self.failures >= attempts {
            let url = self.backend.url.clone();
            let reason = format!("{reason} (after {attempts} attempts)");
            return Err(if local {
                BackendError::Refused { url, reason }
            } else {
                BackendError::Unreachable { url, reason }
            });
        }
        std::thread::sleep(retry::wait(
            self.backend.options.backoff,
            self.failures,
            retry_after,
        ));
        Ok(())
    }

    /// Reads the next line of the stream; `None` at its end.
    fn read_line(&mut self) -> Result<Option<Line>, StreamFault> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let mut line = Vec::new();
        let n = stream
            .by_ref()
            .take(MAX_EVENT_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| StreamFault {
                reason: if e.kind() == std::io::ErrorKind::TimedOut {
                    format!(
                        "the stream stalled (nothing for {:?})",
                        self.backend.options.read_timeout
                    )
                } else {
                    format!("the stream broke: {e}")
                },
                local: false,
            })?;
        if n == 0 {
            return Ok(None);
        }
        if line.len() > MAX_EVENT_LINE_BYTES {
            return Err(StreamFault {
                reason: format!("an event line is over {MAX_EVENT_LINE_BYTES} bytes"),
                local: true,
            });
        }
        events::parse(&String::from_utf8_lossy(&line))
            .map(Some)
            .map_err(|reason| StreamFault {
                reason,
                local: true,
            })
    }

    /// Settles the request in flight: its tokens into the counters and the ledger.
    fn drop_stream(&mut self) {
        self.stream = None;
        let Some(request) = self.current.take() else {
            return;
        };
        let full = self.full_len();
        match request.usage {
            Some(usage) => {
                self.counters.generated_tokens = request.generated_before + usage.completion_tokens;
                if self.counters.prompt_tokens == 0 {
                    self.counters.prompt_tokens = usage.prompt_tokens;
                }
                let total = usage.prompt_tokens + usage.completion_tokens;
                self.counters.decoded_tokens += total;
                self.counters.context_tokens = total;
                self.ledger.set(full, total);
            }
            None => {
                self.counters.decoded_tokens += request.events;
                if let Some(start) = request.start_tokens {
                    let total = start + request.events;
                    self.counters.context_tokens = total;
                    self.ledger.set(full, total);
                }
            }
        }
    }

    /// The stream ended (`done`: with `[DONE]`); the generation's end, or `None` to go on with
    /// a new request.
    fn close(&mut self, done: bool) -> Result<Option<EndReason>, BackendError> {
        let Some(request) = self.current.as_ref() else {
            return Ok(None);
        };
        let (finish, max_tokens, usage, events) = (
            request.finish,
            request.max_tokens,
            request.usage,
            request.events,
        );
        self.drop_stream();
        match finish {
            Some(Finish::Stop) => Ok(Some(EndReason::Eos)),
            // The server gave up on the request: llama-cpp-python ends a stream with `[DONE]`
            // and no reason when another request interrupts it, and with nothing when the
            // prompt does not fit; a cut connection looks the same. Go on from the text so far.
            None => {
                let reason = if done {
                    "the server ended the stream early ([DONE] without a finish reason)"
                } else {
                    "the stream ended before its finish reason"
                };
                self.fail(reason.to_string(), None, true)?;
                Ok(None)
            }
            Some(Finish::Length) => {
                // Stopped short of what it was asked for (or with nothing): the server's
                // context is full. Without usage, the event count stands in.
                let completion = usage.map_or(events, |u| u.completion_tokens);
                Ok((completion < max_tokens).then_some(EndReason::Length))
            }
        }
    }
}

impl Generation for OpenAiGeneration<'_> {
    fn next_piece(&mut self) -> Result<Piece, BackendError> {
        loop {
            if self.current.is_none() && !self.open()? {
                return Ok(Piece::End(EndReason::Length));
            }
            match self.read_line() {
                Ok(Some(Line::Skip)) => {}
                Ok(Some(Line::Chunk {
                    text,
                    finish,
                    usage,
                })) => {
                    let Some(request) = self.current.as_mut() else {
                        continue;
                    };
                    request.usage = usage.or(request.usage);
                    request.finish = finish.or(request.finish);
                    if !text.is_empty() {
                        request.events += 1;
                        self.counters.generated_tokens += 1;
                        self.failures = 0;
                        self.overflows = 0;
                        self.text.push_str(&text);
                        return Ok(Piece::Text(text));
                    }
                }
                Ok(line) => {
                    if let Some(end) = self.close(line == Some(Line::Done))? {
                        return Ok(Piece::End(end));
                    }
                }
                Err(fault) => {
                    // Past the finish reason, only the usage is lost.
                    if self.current.as_ref().is_some_and(|r| r.finish.is_some()) {
                        if let Some(end) = self.close(true)? {
                            return Ok(Piece::End(end));
                        }
                        continue;
                    }
                    self.drop_stream();
                    self.fail(fault.reason, None, fault.local)?;
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
        self.drop_stream();
        self.text.truncate(len);
        self.ledger.truncate(self.full_len());
        Ok(())
    }

    fn append(&mut self, text: &str) -> Result<(), BackendError> {
        self.drop_stream();
        self.text.push_str(text);
        self.counters.appended_tokens += guess_tokens(text.len());
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}
