//! Where hints go: the insertion policy and the scanner that finds insertion points and code
//! blocks in a growing generation.
//!
//! START inserts a hint (a) right after a conjunction that marks reflection or a change of
//! approach ("Wait", "Alternatively") and (b) just before the generation would end (before
//! `</think>` or the end of sequence). The scanner works on the model's own text only, a piece at
//! a time, and never reports a point twice; the driver in [`crate::infer::driver`] acts on what it
//! finds (truncate, append a hint, run code).

use serde::{Deserialize, Serialize};
use start_grade::fence::{CodeScanner, FenceEvent};

use crate::trajectory::THINK_END;

/// The default trigger words.
pub const DEFAULT_TRIGGERS: &[&str] = &["Wait", "Alternatively"];
/// Longest trigger word accepted, in bytes.
pub const MAX_TRIGGER_BYTES: usize = 64;
/// Most trigger words accepted.
pub const MAX_TRIGGERS: usize = 32;

/// When and how often hints are inserted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsertPolicy {
    /// Words after which a hint may go (whole words, case-sensitive).
    pub triggers: Vec<String>,
    /// Insert after trigger words.
    pub after_triggers: bool,
    /// Insert before the end of thinking (`</think>` or end of sequence).
    pub before_end: bool,
    /// Probability that one trigger occurrence gets a hint (0..=1).
    pub trigger_probability: f64,
    /// The most hints in one trajectory.
    pub max_hints: u32,
    /// Text put between a trigger word and the hint (the hint itself starts lowercase or
    /// with "I").
    pub trigger_separator: String,
    /// Text put before a hint inserted at the end of thinking.
    pub end_prefix: String,
}

impl Default for InsertPolicy {
    fn default() -> Self {
        InsertPolicy {
            triggers: DEFAULT_TRIGGERS.iter().map(|s| s.to_string()).collect(),
            after_triggers: true,
            before_end: true,
            trigger_probability: 1.0,
            max_hints: 2,
            trigger_separator: ", ".into(),
            end_prefix: "\n\nWait, ".into(),
        }
    }
}

/// Why an [`InsertPolicy`] was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid insertion policy: {0}")]
pub struct PolicyError(pub String);

impl InsertPolicy {
    /// Checks the policy's bounds.
    ///
    /// # Errors
    /// [`PolicyError`] for a probability outside 0..=1, an empty or over-long trigger word, or
    /// more than [`MAX_TRIGGERS`] triggers.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(0.0..=1.0).contains(&self.trigger_probability) {
            return Err(PolicyError(format!(
                "the trigger probability must be between 0 and 1, not {}",
                self.trigger_probability
            )));
        }
        if self.triggers.len() > MAX_TRIGGERS {
            return Err(PolicyError(format!("at most {MAX_TRIGGERS} trigger words")));
        }
        for t in &self.triggers {
            if t.is_empty() || t.len() > MAX_TRIGGER_BYTES || t.contains('\n') {
                return Err(PolicyError(format!(
                    "trigger word {t:?} must be 1 to {MAX_TRIGGER_BYTES} bytes on one line"
                )));
            }
        }
        Ok(())
    }
}

/// What the scanner found in the model's text. Offsets are byte offsets in the whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole trigger word at `start..end`.
    Trigger {
        /// Which word.
        word: String,
        /// Where it starts.
        start: usize,
        /// Where it ends (the hint goes here).
        end: usize,
    },
    /// The model opened a ```` ```python ```` block itself; code starts at `code_start`.
    CodeOpen {
        /// Where the code starts (after the fence's newline).
        code_start: usize,
    },
    /// The end-of-thinking marker at `start`.
    ThinkEnd {
        /// Where `</think>` starts.
        start: usize,
    },
    /// A code block closed: the code is `code_start..fence_start`, the fence ends at
    /// `fence_end`.
    CodeClose {
        /// Where the code starts.
        code_start: usize,
        /// Where the closing fence starts.
        fence_start: usize,
        /// Where it ends.
        fence_end: usize,
    },
}

/// Finds insertion points and code blocks in text that grows at its end.
///
/// Code blocks are found by [`start_grade::fence::CodeScanner`], the rule the scorer reads
/// finished trajectories with; trigger words and `</think>` are looked for outside code only.
/// It remembers how far it has looked, so feeding it a long generation piece by piece costs
/// time linear in the text, and no point is reported twice.
#[derive(Debug, Clone)]
pub struct Scanner {
    triggers: Vec<String>,
    /// Nothing before this offset is looked at again for triggers and `</think>`.
    from: usize,
    /// Where code blocks open and close.
    fences: CodeScanner,
}

impl Scanner {
    /// A scanner for `triggers` (an empty list finds none), starting at offset `from`.
    pub fn new(triggers: &[String], from: usize) -> Self {
        Scanner {
            triggers: triggers.to_vec(),
            from,
            fences: CodeScanner::new(from),
        }
    }

    /// Whether the scanner is inside a code block, and where its code starts.
    pub fn code_start(&self) -> Option<usize> {
        self.fences.body_start()
    }

    /// Enters a code block whose code starts at `code_start` (after an inserted hint).
    pub fn enter_code(&mut self, code_start: usize) {
        self.fences.enter_code(code_start);
        self.from = code_start;
    }

    /// Restarts scanning at `from` (after the driver appended text of its own), outside code.
    pub fn reset(&mut self, from: usize) {
        self.fences.reset(from);
        self.from = from;
    }

    /// The next event in `text[from..]`, or `None` when nothing complete is there yet. An event
    /// is reported once: the scanner moves past it.
    pub fn next_event(&mut self, text: &str) -> Option<Event> {
        if self.fences.body_start().is_some() {
            // Inside code only the closing fence counts.
            let close = self.fences.next_event(text)?;
            return Some(self.fence_event(close));
        }
        let from = text.floor_char_boundary(self.from);
        let tail = &text[from..];
        let mut best: Option<(usize, Event)> = None;
        let mut consider = |pos: usize, event: Event| {
            if best.as_ref().is_none_or(|(p, _)| pos < *p) {
                best = Some((pos, event));
            }
        };
        if let Some(i) = tail.find(THINK_END) {
            consider(from + i, Event::ThinkEnd { start: from + i });
        }
        for word in &self.triggers {
            if let Some((start, end)) = find_whole_word(text, from, word) {
                consider(
                    start,
                    Event::Trigger {
                        word: word.clone(),
                        start,
                        end,
                    },
                );
            }
        }
        let open = self.fences.find(text);
        if let Some(open) =
            open.filter(|o| best.as_ref().is_none_or(|(p, _)| o.fence_start() <= *p))
        {
            return Some(self.fence_event(open));
        }
        match best {
            Some((_, event)) => {
                self.from = match &event {
                    Event::Trigger { end, .. } => *end,
                    Event::ThinkEnd { start } => start + THINK_END.len(),
                    Event::CodeOpen { code_start } => *code_start,
                    Event::CodeClose { fence_end, .. } => *fence_end,
                };
                Some(event)
            }
            None => {
                let longest = self
                    .triggers
                    .iter()
                    .map(String::len)
                    .chain([THINK_END.len()])
                    .max()
                    .unwrap_or(0);
                self.from = self.from.max(keep_tail(text, longest + 1));
                None
            }
        }
    }

    /// Moves past a fence event the code scanner found, and reports it.
    fn fence_event(&mut self, event: FenceEvent) -> Event {
        self.fences.accept(event);
        let (FenceEvent::Open { body_start: at, .. } | FenceEvent::Close { fence_end: at, .. }) =
            event;
        self.from = self.from.max(at);
        fence_to_event(event)
    }
}

/// The scanner's form of a fence event.
fn fence_to_event(event: FenceEvent) -> Event {
    match event {
        FenceEvent::Open { body_start, .. } => Event::CodeOpen {
            code_start: body_start,
        },
        FenceEvent::Close {
            body_start,
            fence_start,
            fence_end,
        } => Event::CodeClose {
            code_start: body_start,
            fence_start,
            fence_end,
        },
    }
}

/// The first whole-word occurrence of `word` in `text[from..]` whose next character is already
/// there (so "Wait" is not taken from "Waiting" before the "ing" arrives).
fn find_whole_word(text: &str, from: usize, word: &str) -> Option<(usize, usize)> {
    let mut search = from;
    while let Some(i) = text[search..].find(word) {
        let start = search + i;
        let end = start + word.len();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        match text[end..].chars().next() {
            None => return None,
            Some(c) if before_ok && !c.is_alphanumeric() => return Some((start, end)),
            Some(_) => search = end,
        }
    }
    None
}

/// An offset `keep` bytes before the end of `text`, on a character boundary.
fn keep_tail(text: &str, keep: usize) -> usize {
    text.floor_char_boundary(text.len().saturating_sub(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(scanner: &mut Scanner, pieces: &[&str]) -> Vec<Event> {
        let mut text = String::new();
        let mut events = Vec::new();
        for piece in pieces {
            text.push_str(piece);
            while let Some(e) = scanner.next_event(&text) {
                events.push(e);
            }
        }
        events
    }

    fn triggers() -> Vec<String> {
        DEFAULT_TRIGGERS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn trigger_words_are_whole_and_complete() {
        let mut s = Scanner::new(&triggers(), 0);
        let events = feed(
            &mut s,
            &[
                "So x=2. Wa",
                "it",
                ", no. Waiting is ",
                "bad. Alternatively",
            ],
        );
        assert_eq!(
            events,
            vec![Event::Trigger {
                word: "Wait".into(),
                start: 8,
                end: 12
            }]
        );
        let events = feed(
            &mut Scanner::new(&triggers(), 0),
            &["Alternatively, ", "try"],
        );
        assert!(
            matches!(&events[0], Event::Trigger { word, start: 0, end: 13 } if word == "Alternatively")
        );
    }

    #[test]
    fn code_blocks_and_think_end() {
        let mut s = Scanner::new(&triggers(), 0);
        let text = "Let me compute.\n```python\nprint(1)\n```\ndone </think>";
        let events = feed(&mut s, &[text]);
        assert_eq!(
            events,
            vec![
                Event::CodeOpen { code_start: 26 },
                Event::CodeClose {
                    code_start: 26,
                    fence_start: 35,
                    fence_end: 38
                },
                Event::ThinkEnd { start: 44 },
            ]
        );
    }

    #[test]
    fn fence_split_across_pieces_and_inline_backticks() {
        let mut s = Scanner::new(&[], 0);
        s.enter_code(0);
        let events = feed(&mut s, &["x = '```'\nprint(x)\n`", "`", "`\n"]);
        assert_eq!(
            events,
            vec![Event::CodeClose {
                code_start: 0,
                fence_start: 19,
                fence_end: 22
            }]
        );
    }

    #[test]
    fn no_trigger_inside_code() {
        let mut s = Scanner::new(&triggers(), 0);
        s.enter_code(0);
        let events = feed(&mut s, &["# Wait, this is code\n", "```\n"]);
        assert!(matches!(events[..], [Event::CodeClose { .. }]));
    }

    #[test]
    fn policy_validation() {
        assert!(InsertPolicy::default().validate().is_ok());
        let bad = InsertPolicy {
            trigger_probability: 1.5,
            ..InsertPolicy::default()
        };
        assert!(bad.validate().is_err());
        let bad = InsertPolicy {
            triggers: vec![String::new()],
            ..InsertPolicy::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn multibyte_text_does_not_panic() {
        let mut s = Scanner::new(&triggers(), 0);
        let events = feed(
            &mut s,
            &["é", "日本 ", "Wait", "… ", "```python\n", "π=3", "\n```"],
        );
        assert_eq!(events.len(), 3);
    }
}
