//! Where hints go: the insertion policy, each trajectory's [`Placement`] (what it has used of the
//! policy's budgets), and the scanner that finds insertion points and code blocks in a growing
//! generation.
//!
//! START inserts a hint (a) right after a conjunction that marks reflection or a change of
//! approach ("Wait", "Alternatively") and (b) just before the generation would end (before
//! `</think>` or the end of sequence). The scanner works on the model's own text only, a piece at
//! a time, and never reports a point twice; the driver in [`crate::infer::driver`] acts on what it
//! finds (truncate, append a hint, run code).
//!
//! The two kinds of points have separate budgets, so trigger hints never starve the
//! end-of-thinking hint, the paper's test-time lever. Trigger hints are spread over the thought
//! by a minimum gap: a trigger word gets a hint only once the model has generated
//! [`InsertPolicy::hint_gap_tokens`] tokens since the last hint (or since the start), and then
//! with [`InsertPolicy::trigger_probability`]. The rule needs nothing but the past, so it works
//! while streaming; since the thought's length is not known in advance, the gap is absolute:
//! set it to about a third of the model's typical thought, so that the trigger hints fall
//! across the thought rather than on its first "Wait"s. Once the thinking has ended (the model
//! wrote `</think>` and no hint was put before it), no hint of either kind follows.

use serde::{Deserialize, Serialize};
use start_grade::fence::{CodeScanner, FenceEvent};

use crate::infer::hints::{Hint, TESTCASE_SLOT};
use crate::trajectory::{InsertPoint, THINK_END};

/// The default trigger words.
pub const DEFAULT_TRIGGERS: &[&str] = &["Wait", "Alternatively"];
/// Longest trigger word accepted, in bytes.
pub const MAX_TRIGGER_BYTES: usize = 64;
/// Most trigger words accepted.
pub const MAX_TRIGGERS: usize = 32;
/// Default budget of hints after trigger words, per trajectory.
pub const DEFAULT_MAX_TRIGGER_HINTS: u32 = 2;
/// Default budget of hints before the end of thinking, per trajectory.
pub const DEFAULT_MAX_END_HINTS: u32 = 1;
/// Default minimum gap between trigger hints, in generated tokens: a reasoning model's thought
/// runs to 8,000-32,000 tokens, so two trigger hints land past its opening.
pub const DEFAULT_HINT_GAP_TOKENS: u64 = 2048;

/// When and how often hints are inserted.
///
/// Every field has a default (serde fills in what a stored policy lacks), so a policy written
/// before the separate budgets existed still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsertPolicy {
    /// Words after which a hint may go (whole words, case-sensitive).
    pub triggers: Vec<String>,
    /// Insert after trigger words.
    pub after_triggers: bool,
    /// Insert before the end of thinking (`</think>` or end of sequence).
    pub before_end: bool,
    /// Probability that a trigger occurrence past the gap gets a hint (0..=1).
    pub trigger_probability: f64,
    /// Generated tokens (as the backend counts them, the count `max_tokens` caps) since the
    /// last hint, or since the start, before a trigger word may get a hint. Spreads trigger
    /// hints over the thought; 0 lets the first trigger words take them.
    pub hint_gap_tokens: u64,
    /// The most hints after trigger words in one trajectory.
    pub max_trigger_hints: u32,
    /// The most hints before the end of thinking in one trajectory. Each one makes the model
    /// think on (with a tool call); the next end of thinking may get the next.
    pub max_end_hints: u32,
    /// The most hints of both kinds together. Trigger hints never take the end hints' share:
    /// they stop while the hints used plus the end hints still to come would reach it.
    /// Default: the two budgets' sum (no further cap).
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
            hint_gap_tokens: DEFAULT_HINT_GAP_TOKENS,
            max_trigger_hints: DEFAULT_MAX_TRIGGER_HINTS,
            max_end_hints: DEFAULT_MAX_END_HINTS,
            max_hints: DEFAULT_MAX_TRIGGER_HINTS + DEFAULT_MAX_END_HINTS,
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

    /// End hints still to come that trigger hints must leave room for.
    fn end_hints_reserved(&self, end_hints_used: u32) -> u32 {
        if self.before_end {
            self.max_end_hints.saturating_sub(end_hints_used)
        } else {
            0
        }
    }
}

/// Whether a hint may be inserted more than once in a trajectory. A hint with the `{testcase}`
/// slot (the code debug hint) may not: it recalls the same samples each time, and a second copy
/// only makes the model repeat its debug program.
pub fn once_per_trajectory(hint: &Hint) -> bool {
    hint.text.contains(TESTCASE_SLOT)
}

/// What one trajectory has used of its [`InsertPolicy`], and whether its thinking has ended:
/// decides each insertion point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    trigger_hints: u32,
    end_hints: u32,
    /// Generated tokens when the last hint went in (0 before the first).
    last_hint_tokens: u64,
    thinking_over: bool,
    /// Ids of the once-per-trajectory hints used.
    used_once: Vec<String>,
}

impl Placement {
    /// A trajectory's placement before its first token.
    pub fn new() -> Self {
        Placement::default()
    }

    /// Hints inserted after trigger words so far.
    pub fn trigger_hints(&self) -> u32 {
        self.trigger_hints
    }

    /// Hints inserted before the end of thinking so far.
    pub fn end_hints(&self) -> u32 {
        self.end_hints
    }

    /// Whether the model ended its thinking (a `</think>` that got no hint before it).
    pub fn thinking_over(&self) -> bool {
        self.thinking_over
    }

    /// Whether a trigger word seen after `generated_tokens` tokens may get a hint (before the
    /// probability draw): thinking goes on, the trigger budget and the total leave room (with
    /// the end hints' share kept), and the gap since the last hint has passed.
    pub fn trigger_allowed(&self, policy: &InsertPolicy, generated_tokens: u64) -> bool {
        let used = self.trigger_hints + self.end_hints;
        !self.thinking_over
            && policy.after_triggers
            && self.trigger_hints < policy.max_trigger_hints
            && u64::from(used) + u64::from(policy.end_hints_reserved(self.end_hints))
                < u64::from(policy.max_hints)
            && generated_tokens.saturating_sub(self.last_hint_tokens) >= policy.hint_gap_tokens
    }

    /// Whether the end of thinking (or of the sequence) may get a hint: thinking goes on and
    /// the end budget and the total leave room. Trigger hints used before do not matter.
    pub fn end_allowed(&self, policy: &InsertPolicy) -> bool {
        !self.thinking_over
            && policy.before_end
            && self.end_hints < policy.max_end_hints
            && self.trigger_hints + self.end_hints < policy.max_hints
    }

    /// Whether `hint` may go in now (a once-per-trajectory hint that was used may not).
    pub fn hint_available(&self, hint: &Hint) -> bool {
        !(once_per_trajectory(hint) && self.used_once.contains(&hint.id))
    }

    /// Records a hint inserted at `point` after `generated_tokens` tokens.
    pub fn inserted(&mut self, hint: &Hint, point: &InsertPoint, generated_tokens: u64) {
        match point {
            InsertPoint::AfterTrigger { .. } => self.trigger_hints += 1,
            InsertPoint::BeforeThinkEnd | InsertPoint::BeforeEos => self.end_hints += 1,
        }
        self.last_hint_tokens = generated_tokens;
        if once_per_trajectory(hint) {
            self.used_once.push(hint.id.clone());
        }
    }

    /// Records that the model ended its thinking and no hint went before it: no hint follows.
    pub fn end_thinking(&mut self) {
        self.thinking_over = true;
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

    /// Stops looking for trigger words (the thinking is over: none can get a hint).
    pub fn stop_triggers(&mut self) {
        self.triggers.clear();
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

    fn hint(id: &str, text: &str) -> Hint {
        Hint {
            id: id.into(),
            kind: crate::problem::ProblemKind::Math,
            text: text.into(),
        }
    }

    const END: InsertPoint = InsertPoint::BeforeEos;

    fn after_wait() -> InsertPoint {
        InsertPoint::AfterTrigger {
            word: "Wait".into(),
        }
    }

    #[test]
    fn budgets_are_separate_and_the_total_keeps_the_end_share() {
        let policy = InsertPolicy {
            hint_gap_tokens: 0,
            ..InsertPolicy::default()
        };
        let h = hint("general", "maybe.\n```python\n");
        let mut p = Placement::new();
        for _ in 0..policy.max_trigger_hints {
            assert!(p.trigger_allowed(&policy, 0));
            p.inserted(&h, &after_wait(), 0);
        }
        assert!(
            !p.trigger_allowed(&policy, 0),
            "the trigger budget is spent"
        );
        assert!(p.end_allowed(&policy), "the end hint is not starved");
        p.inserted(&h, &END, 0);
        assert!(!p.end_allowed(&policy));
        assert_eq!((p.trigger_hints(), p.end_hints()), (2, 1));

        // A total of 2 with one end hint to come leaves one trigger hint.
        let total = InsertPolicy {
            max_hints: 2,
            ..policy.clone()
        };
        let mut p = Placement::new();
        p.inserted(&h, &after_wait(), 0);
        assert!(!p.trigger_allowed(&total, 0));
        assert!(p.end_allowed(&total));
        // ... and two when no end hint is wanted.
        let no_end = InsertPolicy {
            before_end: false,
            ..total.clone()
        };
        assert!(p.trigger_allowed(&no_end, 0));
        assert!(!p.end_allowed(&no_end));
        let none = InsertPolicy {
            after_triggers: false,
            ..policy
        };
        assert!(!Placement::new().trigger_allowed(&none, 0));
    }

    #[test]
    fn the_gap_counts_from_the_start_and_from_each_hint() {
        let policy = InsertPolicy {
            hint_gap_tokens: 100,
            max_trigger_hints: 5,
            max_hints: 6,
            ..InsertPolicy::default()
        };
        let h = hint("general", "maybe.\n```python\n");
        let mut p = Placement::new();
        assert!(!p.trigger_allowed(&policy, 99));
        assert!(p.trigger_allowed(&policy, 100));
        p.inserted(&h, &after_wait(), 150);
        assert!(!p.trigger_allowed(&policy, 249));
        assert!(p.trigger_allowed(&policy, 250));
        // An end hint restarts the gap too; the end hint itself needs no gap.
        assert!(p.end_allowed(&policy));
        p.inserted(&h, &END, 260);
        assert!(!p.trigger_allowed(&policy, 300));
        assert!(p.trigger_allowed(&policy, 360));
    }

    #[test]
    fn nothing_after_the_thinking_and_the_debug_hint_once() {
        let policy = InsertPolicy::default();
        let mut p = Placement::new();
        p.end_thinking();
        assert!(p.thinking_over());
        assert!(!p.trigger_allowed(&policy, u64::MAX));
        assert!(!p.end_allowed(&policy));

        let debug = hint("debug", "Tests: {testcase}\n```python\n");
        let general = hint("general", "maybe.\n```python\n");
        assert!(once_per_trajectory(&debug) && !once_per_trajectory(&general));
        let mut p = Placement::new();
        p.inserted(&debug, &after_wait(), 0);
        p.inserted(&general, &after_wait(), 0);
        assert!(!p.hint_available(&debug));
        assert!(p.hint_available(&general));
    }

    #[test]
    fn old_policies_still_read() {
        let old: InsertPolicy =
            serde_json::from_str(r#"{"max_hints": 2, "trigger_probability": 0.5}"#).unwrap();
        assert_eq!(old.max_hints, 2);
        assert_eq!(old.trigger_probability, 0.5);
        assert_eq!(old.max_end_hints, DEFAULT_MAX_END_HINTS);
        assert_eq!(old.hint_gap_tokens, DEFAULT_HINT_GAP_TOKENS);
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
