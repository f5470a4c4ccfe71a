//! A backend that replays given text: for tests of the driver, no model needed.
//!
//! The script is the text the "model" writes, split into pieces at whitespace. When the driver
//! truncates or appends, the script goes on from where it was (what was cut is not replayed),
//! so a test can check exactly what the driver did with each piece. Its prompts are rendered
//! like any backend's (ChatML unless [`ScriptedBackend::with_template`] says otherwise), and the
//! last prompt it was started with is kept ([`ScriptedBackend::last_prompt`]) for tests to read.

use std::sync::Mutex;
use std::time::Duration;

use super::{
    Backend, BackendError, ChatTemplate, EndReason, Generation, Piece, RenderedPrompt, SampleParams,
};
use crate::infer::template::Preset;
use crate::trajectory::Counters;

/// Replays one script for every prompt.
#[derive(Debug)]
pub struct ScriptedBackend {
    script: String,
    delay: Duration,
    template: ChatTemplate,
    last_prompt: Mutex<Option<String>>,
}

impl ScriptedBackend {
    /// A backend that writes `script` for every prompt.
    pub fn new(script: impl Into<String>) -> Self {
        ScriptedBackend {
            script: script.into(),
            delay: Duration::ZERO,
            template: ChatTemplate::preset(Preset::ChatMl),
            last_prompt: Mutex::new(None),
        }
    }

    /// Renders prompts with `template` instead of ChatML.
    pub fn with_template(mut self, template: ChatTemplate) -> Self {
        self.template = template;
        self
    }

    /// The text (its [`RenderedPrompt::completion_text`]) of the last prompt a generation was
    /// started with.
    pub fn last_prompt(&self) -> Option<String> {
        self.last_prompt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sleeps `delay` before each piece (to make a run slow enough to interrupt in a test).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Backend for ScriptedBackend {
    fn describe(&self) -> String {
        format!("scripted ({} bytes)", self.script.len())
    }

    fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    fn start<'a>(
        &'a self,
        prompt: &RenderedPrompt,
        _params: &SampleParams,
    ) -> Result<Box<dyn Generation + 'a>, BackendError> {
        *self.last_prompt.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(prompt.completion_text().to_string());
        Ok(Box::new(ScriptedGeneration {
            pieces: split_pieces(&self.script),
            next: 0,
            text_len: 0,
            delay: self.delay,
            counters: Counters {
                requests: 1,
                ..Counters::default()
            },
        }))
    }
}

/// Splits text into pieces that each end after a run of whitespace (like word tokens).
pub fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if in_space && !c.is_whitespace() {
            pieces.push(std::mem::take(&mut current));
        }
        in_space = c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

struct ScriptedGeneration {
    pieces: Vec<String>,
    next: usize,
    text_len: usize,
    delay: Duration,
    counters: Counters,
}

impl Generation for ScriptedGeneration {
    fn next_piece(&mut self) -> Result<Piece, BackendError> {
        let Some(piece) = self.pieces.get(self.next) else {
            return Ok(Piece::End(EndReason::Eos));
        };
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.next += 1;
        self.text_len += piece.len();
        self.counters.generated_tokens += 1;
        self.counters.decoded_tokens += 1;
        self.counters.context_tokens += 1;
        Ok(Piece::Text(piece.clone()))
    }

    fn truncate(&mut self, len: usize) -> Result<(), BackendError> {
        if len > self.text_len {
            return Err(BackendError::Invalid(format!(
                "truncate to {len} bytes, but the text has {}",
                self.text_len
            )));
        }
        self.text_len = len;
        Ok(())
    }

    fn append(&mut self, text: &str) -> Result<(), BackendError> {
        self.text_len += text.len();
        let tokens = split_pieces(text).len() as u64;
        self.counters.appended_tokens += tokens;
        self.counters.decoded_tokens += tokens;
        self.counters.context_tokens += tokens;
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::backend::Prompt;

    #[test]
    fn pieces_rejoin() {
        let text = "Hello  world,\nthis is\tit ";
        let pieces = split_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces[0], "Hello  ");
    }

    #[test]
    fn replays_then_ends() {
        let backend = ScriptedBackend::new("a b");
        let prompt = Prompt {
            system: None,
            user: "hi".into(),
        };
        let rendered = backend.render(&prompt).unwrap();
        let mut g = backend.start(&rendered, &SampleParams::default()).unwrap();
        assert_eq!(
            backend.last_prompt().as_deref(),
            Some("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        );
        assert_eq!(g.next_piece().unwrap(), Piece::Text("a ".into()));
        assert_eq!(g.next_piece().unwrap(), Piece::Text("b".into()));
        assert_eq!(g.next_piece().unwrap(), Piece::End(EndReason::Eos));
        assert!(g.truncate(5).is_err());
    }
}
