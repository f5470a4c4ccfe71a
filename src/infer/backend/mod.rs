//! Model backends behind one trait: a [`Backend`] starts a [`Generation`], a stream of text that
//! the driver can cut back ([`Generation::truncate`]) and extend with text of its own
//! ([`Generation::append`]: a hint, an output block) before generating on.
//!
//! - `llama` (feature `llama`, on by default): llama.cpp in-process through `llama-cpp-2`,
//!   loading a local GGUF; truncate and append reuse the KV cache, so only new tokens are decoded.
//! - [`openai`]: any OpenAI-compatible server (vLLM, SGLang, llama-server) through its streaming
//!   completions endpoint.
//! - [`scripted`]: replays given text; for tests.

#[cfg(feature = "llama")]
pub mod llama;
pub mod openai;
pub mod scripted;

use serde::{Deserialize, Serialize};

pub use crate::infer::template::{ChatTemplate, RenderedPrompt, TemplateError};
use crate::trajectory::Counters;

/// Default context window, in tokens.
pub const DEFAULT_CONTEXT_TOKENS: u32 = 4096;

/// Longest piece of text a backend hands over at once, in bytes; longer ones are split.
pub const MAX_PIECE_BYTES: usize = 64 * 1024;

/// How to sample. Every field has a value that turns it off (the defaults), so the same
/// parameters mean the same thing to every backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleParams {
    /// Temperature; 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass (1 keeps every token).
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps them all.
    #[serde(default)]
    pub top_k: u32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps them all.
    #[serde(default)]
    pub min_p: f32,
    /// OpenAI's presence penalty: subtracted from the logit of every token already in the text;
    /// 0 is off.
    #[serde(default)]
    pub presence_penalty: f32,
    /// Multiplicative repetition penalty on tokens already in the text (vLLM's
    /// `repetition_penalty`, llama.cpp's `repeat_penalty`); 1 is off.
    #[serde(default = "no_repetition_penalty")]
    pub repetition_penalty: f32,
    /// Seed of the sampler.
    pub seed: u64,
    /// Tokens the whole generation may sample, across all its requests: the trajectory's budget
    /// (the driver sets it from its `max_tokens`). A server backend sizes each request's
    /// `max_tokens` from what is left; `None` leaves that to the backend's own caps.
    #[serde(default)]
    pub budget_tokens: Option<u64>,
}

fn no_repetition_penalty() -> f32 {
    1.0
}

impl Default for SampleParams {
    fn default() -> Self {
        SampleParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            presence_penalty: 0.0,
            repetition_penalty: no_repetition_penalty(),
            seed: 0,
            budget_tokens: None,
        }
    }
}

/// The prompt of one trajectory, as a conversation: a backend's [`ChatTemplate`] renders it
/// into the text the model is given ([`Backend::render`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// System message, if any.
    pub system: Option<String>,
    /// The user's message (the problem, with its instructions).
    pub user: String,
}

/// What [`Generation::next_piece`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// More text (possibly empty while a multi-byte character is incomplete).
    Text(String),
    /// The generation stopped.
    End(EndReason),
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model ended its sequence (end-of-sequence token, or a server's `stop`).
    Eos,
    /// The context window is full: no room is left for another token (a server's length stop
    /// that a new request could not get past).
    Length,
}

/// A failure of the backend itself (not of the model's text).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The model file is missing or unreadable.
    #[error("cannot load the model {path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The inference engine failed (decode, context, tokenizer).
    #[error("inference failed: {0}")]
    Engine(String),
    /// A server could not be reached or kept failing.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The last error.
        reason: String,
    },
    /// A server answered with something that is not the completions protocol.
    #[error("bad reply from {url}: {reason}")]
    Protocol {
        /// The endpoint.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The server refused this generation for good (an HTTP 4xx other than a context overflow,
    /// or a stream that kept failing after the server accepted it): only this trajectory is
    /// affected, and the driver records it as ended by an error.
    #[error("{url} refused the request: {reason}")]
    Refused {
        /// The endpoint.
        url: String,
        /// The status and the server's message.
        reason: String,
    },
    /// The driver asked for something impossible (truncating past the end).
    #[error("invalid request to the backend: {0}")]
    Invalid(String),
    /// The chat template failed on a prompt.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// A model that can start generations. Shared across worker threads.
pub trait Backend: Send + Sync {
    /// A short description for logs and trajectories (`llama:/path/model.gguf`).
    fn describe(&self) -> String;

    /// The chat template that renders this backend's prompts: the one it was given, else its
    /// default (a GGUF's own embedded template; ChatML for a server).
    fn chat_template(&self) -> &ChatTemplate;

    /// Renders `prompt` with [`Backend::chat_template`]: the exact text before the
    /// assistant's, which [`Backend::start`] is then given.
    ///
    /// # Errors
    /// [`BackendError::Template`] when the template fails on it.
    fn render(&self, prompt: &Prompt) -> Result<RenderedPrompt, BackendError> {
        Ok(self.chat_template().render(prompt)?)
    }

    /// Starts one generation after `prompt`, a text rendered by [`Backend::render`] (or by
    /// any [`ChatTemplate`]): every backend gives the model the same text for it (its
    /// [`RenderedPrompt::completion_text`], tokenized with special tokens parsed and the BOS
    /// added as the model's tokenizer adds it).
    ///
    /// # Errors
    /// [`BackendError`] when the engine cannot start it (context allocation, tokenizer).
    fn start<'a>(
        &'a self,
        prompt: &RenderedPrompt,
        params: &SampleParams,
    ) -> Result<Box<dyn Generation + 'a>, BackendError>;
}

/// One generation in progress: the assistant's text, grown by the model and by the driver.
pub trait Generation {
    /// Generates the next piece of text.
    ///
    /// # Errors
    /// [`BackendError`] on an engine or network failure.
    fn next_piece(&mut self) -> Result<Piece, BackendError>;

    /// Cuts the assistant's text back to its first `len` bytes (a character boundary of what
    /// was returned and appended so far).
    ///
    /// # Errors
    /// [`BackendError::Invalid`] when `len` is past the end.
    fn truncate(&mut self, len: usize) -> Result<(), BackendError>;

    /// Appends text that the model did not write (a hint, an output block).
    ///
    /// # Errors
    /// [`BackendError`] on an engine failure.
    fn append(&mut self, text: &str) -> Result<(), BackendError>;

    /// Token accounting so far.
    fn counters(&self) -> Counters;
}

/// Buffers bytes until they form valid UTF-8, so pieces never split a character.
#[cfg(feature = "llama")]
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Buffer {
    pending: Vec<u8>,
}

#[cfg(feature = "llama")]
impl Utf8Buffer {
    /// Adds bytes; returns the longest valid prefix and keeps an incomplete tail (at most 3
    /// bytes). Invalid bytes become U+FFFD.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => {
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return text;
            }
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }

    /// Drops an incomplete tail.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(all(test, feature = "llama"))]
mod tests {
    use super::*;

    #[test]
    fn utf8_buffer_holds_split_characters() {
        let mut b = Utf8Buffer::default();
        let bytes = "é!".as_bytes();
        assert_eq!(b.push(&bytes[..1]), "");
        assert_eq!(b.push(&bytes[1..]), "é!");
        assert_eq!(b.push(&[0xff, b'a']), "\u{fffd}a");
    }
}
