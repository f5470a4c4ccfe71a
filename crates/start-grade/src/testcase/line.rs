//! Classifying one statement line for the scanner: a sample heading (`Sample Input 1`,
//! `入力例 1`, `Example 2:`), an `Input` / `Output` marker, a fence, a heading that ends the
//! examples, or plain text, through the markdown and HTML decoration around it.

use crate::fence::FenceLine;

/// Sample numbers with more digits than this are treated as unnumbered.
const MAX_SAMPLE_NUMBER_DIGITS: usize = 6;
/// Longest HTML tag (`<strong>`, `<strong class="example">`) skipped as heading decoration.
const MAX_TAG_CHARS: usize = 64;

/// What one statement line is, for the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// Only whitespace.
    Blank,
    /// Anything that is not a heading or marker below (sample data, prose).
    Text,
    /// A code fence (```` ``` ````, `~~~`) or an HTML `<pre>` / `</pre>` line.
    Fence,
    /// `Sample Input 1`, `入力例 1`.
    SampleIn(Option<u32>),
    /// `Sample Output 1`, `出力例 1`.
    SampleOut(Option<u32>),
    /// `Examples`, `Example:`, `Sample tests`: starts a section with Input/Output blocks.
    ExamplesHeading,
    /// `Example 1:`: starts one numbered example.
    ExampleN(u32),
    /// `Input` / `Input:` alone on its line.
    InputHeading,
    /// `Output` / `Output:` alone on its line.
    OutputHeading,
    /// `Input: <text>`, holding the text after the marker.
    InputInline(&'a str),
    /// `Output: <text>`, holding the text after the marker.
    OutputInline(&'a str),
    /// `Explanation`: ends a block but not the examples section.
    SoftEnd,
    /// `Note`, `Constraints` and other headings that end the examples section.
    HardEnd,
}

impl Line<'_> {
    pub(super) fn is_marker(self) -> bool {
        !matches!(self, Line::Blank | Line::Text)
    }
}

/// What `line` is; decoration such as `**`, `##` or `<strong>` around it does not count.
pub(super) fn classify(line: &str) -> Line<'_> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Blank;
    }
    if FenceLine::parse(line).is_some()
        || trimmed.eq_ignore_ascii_case("<pre>")
        || trimmed.eq_ignore_ascii_case("</pre>")
    {
        return Line::Fence;
    }
    let body = strip_decoration(trimmed);
    if body.is_empty() {
        return Line::Text;
    }
    classify_body(body).unwrap_or(Line::Text)
}

fn classify_body(body: &str) -> Option<Line<'_>> {
    // "Sample Input 1", "Example Input 2", "入力例 1" and their outputs.
    for (prefix, is_input) in [("入力例", true), ("出力例", false)] {
        if let Some(rest) = body.strip_prefix(prefix) {
            let mut c = Cursor(rest);
            c.spaces();
            let number = c.number();
            return c.heading_end().then_some(sample_line(is_input, number));
        }
    }
    if let Some(line) = sample_heading(body) {
        return Some(line);
    }
    // "Input" / "Input:" / "Input: nums = [1]" and the same for Output.
    for (word, is_input) in [("input", true), ("output", false)] {
        let mut c = Cursor(body);
        if !c.word(word) {
            continue;
        }
        let mut heading = c;
        heading.spaces();
        heading.number();
        if heading.heading_end() {
            return Some(if is_input {
                Line::InputHeading
            } else {
                Line::OutputHeading
            });
        }
        if let Some(rest) = c.inline_rest() {
            return Some(if is_input {
                Line::InputInline(rest)
            } else {
                Line::OutputInline(rest)
            });
        }
    }
    let mut c = Cursor(body);
    if c.word("explanation") && (c.heading_end() || c.inline_rest().is_some()) {
        return Some(Line::SoftEnd);
    }
    const HARD_ENDS: [&str; 16] = [
        "note",
        "notes",
        "constraints",
        "hint",
        "hints",
        "follow-up",
        "follow up",
        "followup",
        "scoring",
        "subtask",
        "subtasks",
        "input format",
        "output format",
        "input specification",
        "output specification",
        "problem statement",
    ];
    for word in HARD_ENDS {
        let mut c = Cursor(body);
        if c.word(word) && (c.heading_end() || c.inline_rest().is_some()) {
            return Some(Line::HardEnd);
        }
    }
    for word in ["注意", "制約", "入力", "出力", "解説", "問題文"] {
        if let Some(rest) = body.strip_prefix(word)
            && Cursor(rest).heading_end()
        {
            return Some(Line::HardEnd);
        }
    }
    None
}

/// `Sample Input 1`, `Example Output`, `Sample Test Case Input #2`, `Examples`, `Example 3:`.
fn sample_heading(body: &str) -> Option<Line<'_>> {
    let mut c = Cursor(body);
    let plural = c
        .word_or_plural("sample")
        .or_else(|| c.word_or_plural("example"))?;
    c.spaces();
    // Optional "test", "tests", "test case", "test cases".
    let mut t = c;
    if t.word_or_plural("test").is_some() {
        t.spaces();
        if t.word_or_plural("case").is_some() {
            t.spaces();
        }
        c = t;
    }
    for (word, is_input) in [("input", true), ("output", false)] {
        let mut io = c;
        if io.word(word) {
            io.spaces();
            io.eat_char('#');
            io.spaces();
            let number = io.number();
            io.spaces();
            io.word("copy");
            return io.heading_end().then_some(sample_line(is_input, number));
        }
    }
    let mut numbered = c;
    numbered.eat_char('#');
    numbered.spaces();
    if let Some(number) = numbered.number() {
        return (!plural && numbered.heading_end()).then_some(Line::ExampleN(number));
    }
    c.heading_end().then_some(Line::ExamplesHeading)
}

fn sample_line(is_input: bool, number: Option<u32>) -> Line<'static> {
    if is_input {
        Line::SampleIn(number)
    } else {
        Line::SampleOut(number)
    }
}

/// Strips leading markdown / HTML decoration: `#`, `>`, `*`, `_`, `=`, `-`, `~`, `|`, and short
/// tags such as `<strong>`.
fn strip_decoration(mut s: &str) -> &str {
    loop {
        let before = s.len();
        s = s.trim_start_matches(|c: char| c.is_whitespace() || "#>*_=-~|".contains(c));
        s = skip_tag(s).unwrap_or(s);
        if s.len() == before {
            return s;
        }
    }
}

/// Skips one leading short HTML tag such as `<strong>`, `</b>` or `<strong class="example">`.
fn skip_tag(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('<')?;
    let close = inner
        .char_indices()
        .take(MAX_TAG_CHARS + 1)
        .find(|(_, c)| *c == '>' || *c == '<')
        .filter(|(_, c)| *c == '>')
        .map(|(i, _)| i)?;
    let tag = &inner[..close];
    let tag = tag.strip_prefix('/').unwrap_or(tag);
    let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
    let name = &tag[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(&inner[close + 1..])
}

/// A tiny parser over a heading's text.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    /// Consumes `word` (ASCII, case-insensitive) if it is next and not followed by a letter.
    fn word(&mut self, word: &str) -> bool {
        let bytes = self.0.as_bytes();
        if bytes.len() < word.len() || !bytes[..word.len()].eq_ignore_ascii_case(word.as_bytes()) {
            return false;
        }
        // The matched bytes equal ASCII bytes, so `word.len()` is a character boundary.
        let rest = &self.0[word.len()..];
        if rest.chars().next().is_some_and(char::is_alphabetic) {
            return false;
        }
        self.0 = rest;
        true
    }

    /// Consumes `word` or its plural `word` + `s`; returns whether it was plural.
    fn word_or_plural(&mut self, word: &str) -> Option<bool> {
        let mut plural = *self;
        if plural.word(&format!("{word}s")) {
            *self = plural;
            Some(true)
        } else if self.word(word) {
            Some(false)
        } else {
            None
        }
    }

    fn eat_char(&mut self, c: char) -> bool {
        if let Some(rest) = self.0.strip_prefix(c) {
            self.0 = rest;
            true
        } else {
            false
        }
    }

    fn spaces(&mut self) {
        self.0 = self.0.trim_start();
    }

    /// Consumes ASCII digits; returns their value when there are few enough to be a number.
    fn number(&mut self) -> Option<u32> {
        let digits = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, rest) = self.0.split_at(digits);
        self.0 = rest;
        if digits > MAX_SAMPLE_NUMBER_DIGITS {
            return None;
        }
        number.parse().ok()
    }

    /// True when only decoration (whitespace, `:`, `*`, `#`, `-`, `=`, tags ...) is left.
    fn heading_end(self) -> bool {
        let mut s = self.0;
        loop {
            let before = s.len();
            s = s.trim_start_matches(|c: char| c.is_whitespace() || "#*_=-~|:：.".contains(c));
            s = skip_tag(s).unwrap_or(s);
            if s.is_empty() {
                return true;
            }
            if s.len() == before {
                return false;
            }
        }
    }

    /// After a marker word: `: text`, `:** text`, `**: text`, `:</strong> text`; returns `text`.
    fn inline_rest(self) -> Option<&'a str> {
        let s = self.0.trim_start().trim_start_matches('*').trim_start();
        let s = s.strip_prefix(':').or_else(|| s.strip_prefix('：'))?;
        let mut s = s.trim_start().trim_start_matches('*').trim_start();
        while let Some(rest) = skip_tag(s) {
            s = rest.trim_start();
        }
        let s = s.trim_end();
        (!s.is_empty()).then_some(s)
    }
}
