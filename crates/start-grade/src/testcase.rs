//! Sample test cases extracted from a problem statement.
//!
//! START's debug hint for code questions recalls the problem's sample tests in its `{testcase}`
//! slot, and the judge later runs candidate programs against them. Both need the sample inputs
//! and expected outputs that the statement shows, pulled out of free text whose layout depends
//! on where the problem came from:
//!
//! - Codeforces: an `Examples` (or `Example`, `-----Examples-----`) heading, then alternating
//!   `Input` / `Output` headings, each followed by a ```` ``` ```` fenced block, a 4-space
//!   indented block, or plain lines up to the next heading (such as `Note`).
//! - AtCoder and LiveCodeBench: `Sample Input 1` / `Sample Output 1` headings (also unnumbered,
//!   and the Japanese `入力例 1` / `出力例 1`), each followed by a block; a plain block ends at
//!   the first blank line, so the explanation prose after a sample output is not taken.
//! - LeetCode: `Example 1:` then `Input: nums = [2,7], target = 9` and `Output: [0,1]` lines
//!   (also `**Input:**` markdown and `<strong>Input:</strong>` HTML), with `Explanation:`
//!   ignored. An input made of `name = value` arguments on one line is a
//!   [`TestKind::Functional`] test; anything else (`Input: 3` then more lines) is
//!   [`TestKind::Stdio`].
//!
//! Inputs are paired with outputs by sample number where both carry one, otherwise in order;
//! nothing is ever invented, and [`extract_report`] says what could not be paired. The statement
//! is untrusted: work is bounded by [`MAX_STATEMENT_BYTES`] and [`MAX_TESTS`], and nothing here
//! panics or slices inside a UTF-8 character.

use serde::{Deserialize, Serialize};

/// Statements longer than this many bytes are cut (at a character boundary) before scanning.
pub const MAX_STATEMENT_BYTES: usize = 512 * 1024;
/// At most this many test cases are extracted from one statement.
pub const MAX_TESTS: usize = 64;
/// [`render_for_hint`] shows at most this many test cases.
pub const MAX_HINT_TESTS: usize = 8;
/// [`render_for_hint`] output stays within this many bytes, its truncation note included.
pub const MAX_HINT_BYTES: usize = 4 * 1024;
/// Each input or output shown by [`render_for_hint`] is cut to this many bytes.
pub const MAX_HINT_FIELD_BYTES: usize = 1024;
/// [`functional_args`] gives up on inputs with more arguments than this.
pub const MAX_FUNCTIONAL_ARGS: usize = 64;

/// Bytes kept free in the hint budget for the "more test cases not shown" note.
const HINT_NOTE_RESERVE_BYTES: usize = 128;
/// Input/output events scanned before giving up (twice the tests, plus slack for unpaired ones).
const MAX_EVENTS: usize = 4 * MAX_TESTS;
/// Sample numbers with more digits than this are treated as unnumbered.
const MAX_SAMPLE_NUMBER_DIGITS: usize = 6;
/// Longest HTML tag (`<strong>`, `<strong class="example">`) skipped as heading decoration.
const MAX_TAG_CHARS: usize = 64;

/// How a test case is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestKind {
    /// The program reads `input` on stdin and must print `output` on stdout.
    Stdio,
    /// LeetCode style: a function is called with the arguments written in `input` and must
    /// return the value written in `output`.
    Functional,
}

/// One sample test case as the statement shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// For [`TestKind::Stdio`] the exact stdin text, ending with a newline; for
    /// [`TestKind::Functional`] the argument text as written, such as
    /// `nums = [2,7,11,15], target = 9` (see [`functional_args`]).
    pub input: String,
    /// For [`TestKind::Stdio`] the expected stdout, ending with a newline; for
    /// [`TestKind::Functional`] the expected value text, such as `[0,1]`.
    pub output: String,
    /// How the test is run.
    pub kind: TestKind,
}

/// The result of [`extract`]: the statement's sample tests, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extraction {
    /// At least one input was paired with its expected output, in statement order.
    Found(Vec<TestCase>),
    /// No test case could be extracted.
    NotFound {
        /// What was looked for and what went wrong, for logs and reports.
        reason: String,
    },
}

/// [`Extraction`] plus what was skipped on the way (unpaired samples, truncation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractReport {
    /// The extracted tests, or why there are none.
    pub extraction: Extraction,
    /// Human-readable notes on anything dropped; empty when every sample was paired.
    pub warnings: Vec<String>,
}

/// Extracts the sample test cases shown in a problem statement.
///
/// ```
/// # use start::testcase::{extract, Extraction};
/// let statement = "Sample Input 1\n\n3\n1 2 3\n\nSample Output 1\n\n6\n";
/// let Extraction::Found(tests) = extract(statement) else { panic!() };
/// assert_eq!(tests[0].input, "3\n1 2 3\n");
/// assert_eq!(tests[0].output, "6\n");
/// ```
pub fn extract(statement: &str) -> Extraction {
    extract_report(statement).extraction
}

/// Like [`extract`], and also reports samples that could not be paired or were cut off.
pub fn extract_report(statement: &str) -> ExtractReport {
    let mut warnings = Vec::new();
    let statement = if statement.len() > MAX_STATEMENT_BYTES {
        warnings.push(format!(
            "statement is {} bytes; only the first {MAX_STATEMENT_BYTES} were scanned",
            statement.len()
        ));
        truncate_at_char_boundary(statement, MAX_STATEMENT_BYTES)
    } else {
        statement
    };
    let normalised = statement.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let events = scan(&lines, &mut warnings);
    let (tests, inputs, outputs) = pair(events, &mut warnings);
    let extraction = if !tests.is_empty() {
        Extraction::Found(tests)
    } else if statement.trim().is_empty() {
        Extraction::NotFound {
            reason: "the statement is empty".to_string(),
        }
    } else if inputs == 0 && outputs == 0 {
        Extraction::NotFound {
            reason: "no sample tests found: looked for \"Sample Input N\"/\"Sample Output N\", \
                     \"入力例\"/\"出力例\", an \"Examples\" section with Input/Output blocks, \
                     and \"Example N:\" with \"Input:\"/\"Output:\" lines"
                .to_string(),
        }
    } else {
        Extraction::NotFound {
            reason: format!(
                "found {inputs} sample input(s) and {outputs} sample output(s) \
                 but could not pair any non-empty input with a non-empty output"
            ),
        }
    };
    ExtractReport {
        extraction,
        warnings,
    }
}

/// Splits a LeetCode-style argument text such as `nums = [2,7], target = 9` into
/// `[("nums", "[2,7]"), ("target", "9")]`.
///
/// Commas inside brackets, braces, parentheses and quoted strings do not split. Returns `None`
/// when the text is not a comma-separated list of `identifier = value` (unbalanced brackets, an
/// unterminated quote, a missing name or value, or more than [`MAX_FUNCTIONAL_ARGS`] arguments).
///
/// ```
/// # use start::testcase::functional_args;
/// let args = functional_args(r#"words = ["a,b", "c"], k = 2"#).unwrap();
/// assert_eq!(args[0], ("words".to_string(), r#"["a,b", "c"]"#.to_string()));
/// assert_eq!(args[1], ("k".to_string(), "2".to_string()));
/// ```
pub fn functional_args(input: &str) -> Option<Vec<(String, String)>> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_STATEMENT_BYTES {
        return None;
    }
    let mut args = Vec::new();
    for part in split_top_level_commas(input)? {
        if args.len() == MAX_FUNCTIONAL_ARGS {
            return None;
        }
        let (name, value) = part.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        if !is_identifier(name) || value.is_empty() || value.starts_with('=') {
            return None;
        }
        args.push((name.to_string(), value.to_string()));
    }
    Some(args)
}

/// Renders test cases for the debug hint's `{testcase}` slot.
///
/// Stdio tests read `Sample N`, `Input:` and `Expected output:` with fenced blocks; functional
/// tests read `Example N: Input: ... -> Expected: ...`. At most [`MAX_HINT_TESTS`] tests and
/// [`MAX_HINT_BYTES`] bytes are rendered, each field cut to [`MAX_HINT_FIELD_BYTES`]; a final
/// note says how many tests were left out. Returns an empty string for no tests.
pub fn render_for_hint(tests: &[TestCase]) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for (index, test) in tests.iter().enumerate() {
        if index == MAX_HINT_TESTS {
            break;
        }
        let block = render_one(index + 1, test);
        let separator = if out.is_empty() { 0 } else { 2 };
        if out.len() + separator + block.len() > MAX_HINT_BYTES - HINT_NOTE_RESERVE_BYTES {
            break;
        }
        if separator > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&block);
        shown += 1;
    }
    let omitted = tests.len() - shown;
    if omitted > 0 {
        out.push_str(&format!(
            "\n\n({omitted} more test case(s) not shown; {shown} of {} included)",
            tests.len()
        ));
    }
    out
}

fn render_one(number: usize, test: &TestCase) -> String {
    match test.kind {
        TestKind::Stdio => {
            let input = clip_field(test.input.strip_suffix('\n').unwrap_or(&test.input));
            let output = clip_field(test.output.strip_suffix('\n').unwrap_or(&test.output));
            let fence = fence_for(&input, &output);
            format!(
                "Sample {number}\nInput:\n{fence}\n{input}\n{fence}\n\
                 Expected output:\n{fence}\n{output}\n{fence}"
            )
        }
        TestKind::Functional => format!(
            "Example {number}: Input: {} -> Expected: {}",
            clip_field(&test.input),
            clip_field(&test.output)
        ),
    }
}

/// Cuts a field to [`MAX_HINT_FIELD_BYTES`], saying so.
fn clip_field(text: &str) -> String {
    if text.len() <= MAX_HINT_FIELD_BYTES {
        text.to_string()
    } else {
        format!(
            "{}… (truncated, {} bytes in all)",
            truncate_at_char_boundary(text, MAX_HINT_FIELD_BYTES),
            text.len()
        )
    }
}

/// A backtick fence longer than any backtick run in the contents, so the fence cannot close early.
fn fence_for(a: &str, b: &str) -> String {
    let longest = |s: &str| s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest(a).max(longest(b)).max(2) + 1)
}

// ---------------------------------------------------------------------------------------------
// Scanning

/// What one statement line is, for the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line<'a> {
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
    fn is_marker(self) -> bool {
        !matches!(self, Line::Blank | Line::Text)
    }
}

/// A sample input or output found by the scanner.
#[derive(Debug)]
enum Event {
    Input {
        number: Option<u32>,
        text: String,
        kind: TestKind,
    },
    Output {
        number: Option<u32>,
        text: String,
    },
}

/// How a plain (unfenced, unindented) block ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainEnd {
    /// At the first blank line or marker (AtCoder / LiveCodeBench `Sample Input N`).
    Blank,
    /// At the next marker only (Codeforces `Input` / `Output` in an examples section).
    Marker,
}

/// Whether the scanner is inside an examples section, and which example number it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Outside,
    Inside(Option<u32>),
}

fn scan(lines: &[&str], warnings: &mut Vec<String>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut section = Section::Outside;
    let mut i = 0;
    while i < lines.len() {
        if events.len() >= MAX_EVENTS {
            warnings.push(format!(
                "stopped scanning after {MAX_EVENTS} sample inputs/outputs"
            ));
            break;
        }
        let section_number = match section {
            Section::Inside(number) => Some(number),
            Section::Outside => None,
        };
        match (classify(lines[i]), section_number) {
            (Line::SampleIn(number), _) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Blank);
                events.push(Event::Input {
                    number,
                    text,
                    kind: TestKind::Stdio,
                });
                i = next;
            }
            (Line::SampleOut(number), _) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Blank);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::ExamplesHeading, _) => {
                section = Section::Inside(None);
                i += 1;
            }
            (Line::ExampleN(number), _) => {
                section = Section::Inside(Some(number));
                i += 1;
            }
            (Line::InputHeading, Some(number)) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Marker);
                let kind = guess_kind(&text);
                events.push(Event::Input { number, text, kind });
                i = next;
            }
            (Line::OutputHeading, Some(number)) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Marker);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::InputInline(rest), Some(number)) => {
                let (text, next) = read_inline(lines, i, rest);
                let kind = guess_kind(&text);
                events.push(Event::Input { number, text, kind });
                i = next;
            }
            (Line::OutputInline(rest), Some(number)) => {
                let (text, next) = read_inline(lines, i, rest);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::HardEnd, _) => {
                section = Section::Outside;
                i += 1;
            }
            _ => i += 1,
        }
    }
    events
}

/// Functional when the input is one line of `name = value` arguments, stdio otherwise.
fn guess_kind(text: &str) -> TestKind {
    if !text.contains('\n') && functional_args(text).is_some() {
        TestKind::Functional
    } else {
        TestKind::Stdio
    }
}

/// Pairs inputs with outputs: an output takes the pending input with its number, else the oldest
/// pending input. Returns the tests and how many inputs and outputs were seen.
fn pair(events: Vec<Event>, warnings: &mut Vec<String>) -> (Vec<TestCase>, usize, usize) {
    let mut pending: Vec<(Option<u32>, String, TestKind)> = Vec::new();
    let mut tests = Vec::new();
    let (mut inputs, mut outputs) = (0, 0);
    for event in events {
        match event {
            Event::Input { number, text, kind } => {
                inputs += 1;
                pending.push((number, text, kind));
            }
            Event::Output { number, text } => {
                outputs += 1;
                let position = number
                    .and_then(|n| pending.iter().position(|(m, _, _)| *m == Some(n)))
                    .or(if pending.is_empty() { None } else { Some(0) });
                let Some(position) = position else {
                    warnings.push(format!(
                        "sample output{} has no matching input; skipped",
                        label(number)
                    ));
                    continue;
                };
                let (in_number, input, kind) = pending.remove(position);
                if input.trim().is_empty() || text.trim().is_empty() {
                    warnings.push(format!(
                        "sample{} has an empty input or output; test skipped",
                        label(number.or(in_number))
                    ));
                    continue;
                }
                if tests.len() == MAX_TESTS {
                    warnings.push(format!("only the first {MAX_TESTS} tests were kept"));
                    break;
                }
                tests.push(make_test(input, text, kind));
            }
        }
    }
    for (number, _, _) in pending {
        warnings.push(format!(
            "sample input{} has no matching output; skipped",
            label(number)
        ));
    }
    (tests, inputs, outputs)
}

fn label(number: Option<u32>) -> String {
    number.map(|n| format!(" {n}")).unwrap_or_default()
}

fn make_test(input: String, output: String, kind: TestKind) -> TestCase {
    match kind {
        TestKind::Stdio => TestCase {
            input: with_final_newline(input),
            output: with_final_newline(output),
            kind,
        },
        TestKind::Functional => TestCase {
            input: input.trim().to_string(),
            output: output.trim().to_string(),
            kind,
        },
    }
}

fn with_final_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Blocks

/// Reads the block that follows a heading at `start`: a fenced block, a `<pre>` block, a 4-space
/// indented block, or plain lines ending as `end` says. Returns its text (surrounding blank lines
/// trimmed, inner lines exact) and the index of the first line after it.
fn read_block(lines: &[&str], start: usize, end: PlainEnd) -> (String, usize) {
    let mut i = start;
    // Skip blank lines and the "Copy" buttons that copied web pages carry.
    while i < lines.len()
        && (lines[i].trim().is_empty() || lines[i].trim().eq_ignore_ascii_case("copy"))
    {
        i += 1;
    }
    if i >= lines.len() {
        return (String::new(), i);
    }
    if let Some((indent, fence_char, fence_len)) = fence_open(lines[i]) {
        return read_fenced(lines, i + 1, indent, fence_char, fence_len);
    }
    if lines[i].trim().eq_ignore_ascii_case("<pre>") {
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim().eq_ignore_ascii_case("</pre>") {
            j += 1;
        }
        let text = join_trimmed(&lines[i + 1..j]);
        return (text, (j + 1).min(lines.len()));
    }
    if classify(lines[i]).is_marker() {
        return (String::new(), i);
    }
    if indented(lines[i]) {
        let mut j = i;
        while j < lines.len() && (lines[j].trim().is_empty() || indented(lines[j])) {
            j += 1;
        }
        let dedented: Vec<&str> = lines[i..j].iter().map(|line| dedent(line)).collect();
        return (join_trimmed(&dedented), j);
    }
    let mut j = i;
    while j < lines.len() {
        let kind = classify(lines[j]);
        let stop = match end {
            PlainEnd::Blank => kind != Line::Text,
            PlainEnd::Marker => kind.is_marker(),
        };
        if stop {
            break;
        }
        j += 1;
    }
    (join_trimmed(&lines[i..j]), j)
}

/// Reads fenced lines from `start` up to the closing fence (or the end), removing up to the
/// opening fence's indentation from each line.
fn read_fenced(
    lines: &[&str],
    start: usize,
    indent: usize,
    fence_char: char,
    fence_len: usize,
) -> (String, usize) {
    let mut j = start;
    while j < lines.len() && !fence_closes(lines[j], fence_char, fence_len) {
        j += 1;
    }
    let content: Vec<&str> = lines[start..j]
        .iter()
        .map(|line| strip_spaces(line, indent))
        .collect();
    (join_trimmed(&content), (j + 1).min(lines.len()))
}

/// Reads `Input: <rest>` on line `at` and the lines that continue it (up to a blank line,
/// marker or fence), decoding HTML entities when the marker line is HTML.
fn read_inline<'a>(lines: &[&'a str], at: usize, rest: &'a str) -> (String, usize) {
    let mut collected = vec![rest];
    let mut j = at + 1;
    while j < lines.len() && classify(lines[j]) == Line::Text {
        collected.push(lines[j]);
        j += 1;
    }
    let text = join_trimmed(&collected);
    // `<strong>Input:</strong> s = &quot;ab&quot;` is LeetCode's HTML form.
    let is_html = lines.get(at).is_some_and(|line| line.contains("</"));
    let text = if is_html {
        decode_entities(&text)
    } else {
        text
    };
    (text, j)
}

/// Joins lines with `\n` after dropping leading and trailing whitespace-only lines.
fn join_trimmed(lines: &[&str]) -> String {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

fn indented(line: &str) -> bool {
    line.starts_with("    ") || line.starts_with('\t')
}

fn dedent(line: &str) -> &str {
    line.strip_prefix('\t')
        .unwrap_or_else(|| strip_spaces(line, 4))
}

/// Removes up to `count` leading ASCII spaces.
fn strip_spaces(line: &str, count: usize) -> &str {
    let spaces = line.bytes().take(count).take_while(|&b| b == b' ').count();
    // Spaces are one byte each, so `spaces` is a character boundary.
    line.get(spaces..).unwrap_or(line)
}

/// An opening fence: returns its indentation, character and length.
fn fence_open(line: &str) -> Option<(usize, char, usize)> {
    let trimmed = line.trim_start_matches(' ');
    let indent = line.len() - trimmed.len();
    let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let fence_len = trimmed.chars().take_while(|c| *c == fence_char).count();
    if fence_len < 3 {
        return None;
    }
    // A backtick fence's info string may not contain backticks (CommonMark).
    let info = &trimmed[fence_len..];
    if fence_char == '`' && info.contains('`') {
        return None;
    }
    Some((indent, fence_char, fence_len))
}

fn fence_closes(line: &str, fence_char: char, fence_len: usize) -> bool {
    let trimmed = line.trim();
    trimmed.chars().all(|c| c == fence_char) && trimmed.chars().count() >= fence_len
}

// ---------------------------------------------------------------------------------------------
// Line classification

fn classify(line: &str) -> Line<'_> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Blank;
    }
    if fence_open(line).is_some()
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

/// Decodes the HTML entities that LeetCode's HTML statements use in example values.
fn decode_entities(text: &str) -> String {
    const ENTITIES: [(&str, &str); 7] = [
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&nbsp;", " "),
        ("&amp;", "&"),
    ];
    let mut out = text.to_string();
    // `&amp;` goes last so that `&amp;lt;` decodes to `&lt;`, not `<`.
    for (entity, plain) in ENTITIES {
        if out.contains(entity) {
            out = out.replace(entity, plain);
        }
    }
    out
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

// ---------------------------------------------------------------------------------------------
// Small helpers

/// Splits at commas outside brackets and quotes; `None` when brackets or quotes are unbalanced.
fn split_top_level_commas(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth: usize = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || quote.is_some() {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(statement: &str) -> Vec<TestCase> {
        match extract(statement) {
            Extraction::Found(tests) => tests,
            Extraction::NotFound { reason } => panic!("no tests found: {reason}"),
        }
    }

    fn stdio(input: &str, output: &str) -> TestCase {
        TestCase {
            input: input.to_string(),
            output: output.to_string(),
            kind: TestKind::Stdio,
        }
    }

    fn functional(input: &str, output: &str) -> TestCase {
        TestCase {
            input: input.to_string(),
            output: output.to_string(),
            kind: TestKind::Functional,
        }
    }

    const CODEFORCES: &str = "\
A. Watermelon Pairs
time limit per test: 1 second
memory limit per test: 256 megabytes

You are given n integers a_1, ..., a_n. Count the pairs i < j with a_i + a_j even.

Input
The first line contains one integer n (1 <= n <= 2*10^5).
The second line contains n integers a_1, ..., a_n.

Output
Print one integer: the number of pairs.

Examples
Input
4
1 2 3 4
Output
2
Input
3
 5  7 9
Output
3

Note
In the first example the pairs are (1, 3) and (2, 4).
";

    #[test]
    fn codeforces_plain_examples() {
        assert_eq!(
            found(CODEFORCES),
            vec![stdio("4\n1 2 3 4\n", "2\n"), stdio("3\n 5  7 9\n", "3\n")]
        );
    }

    #[test]
    fn codeforces_fenced_and_indented_blocks_with_crlf() {
        let fenced = "\
## Input\r\nThe only line contains t.\r\n\r\n## Output\r\nPrint it.\r\n\r\n## Examples\r\n\r\n\
**Input**\r\n```\r\n2\r\nab\r\n\r\ncd  \r\n```\r\n**Output**\r\n```text\r\nYES\r\nNO\r\n```\r\n\r\n\
**Input**\r\n\r\n```\r\n1\r\nzz\r\n```\r\n\r\n**Output**\r\n```\r\nNO\r\n```\r\n\r\n## Note\r\nNothing.\r\n";
        assert_eq!(
            found(fenced),
            vec![
                stdio("2\nab\n\ncd  \n", "YES\nNO\n"),
                stdio("1\nzz\n", "NO\n")
            ]
        );

        let indented =
            "Examples\n\nInput\n\n    3\n    1 2 3\n\nOutput\n\n    6\n\nNote\n\nEasy.\n";
        assert_eq!(found(indented), vec![stdio("3\n1 2 3\n", "6\n")]);
    }

    #[test]
    fn taco_style_dashed_headings() {
        let statement = "\
Some story.

-----Input-----

The first line contains n.

-----Output-----

Print the answer.

-----Examples-----
Input
5

Output
120

Input
0

Output
1

-----Note-----

0! = 1.
";
        assert_eq!(
            found(statement),
            vec![stdio("5\n", "120\n"), stdio("0\n", "1\n")]
        );
    }

    const ATCODER: &str = "\
Problem Statement
Takahashi has N cards. The i-th card has A_i written on it.
Find the maximum sum of two different cards.

Constraints
2 <= N <= 100

Input
Input is given from Standard Input in the following format:
N
A_1 A_2 ... A_N

Output
Print the answer.

Sample Input 1
3
1 5 3

Sample Output 1
8

Choose the second and third cards: 5 + 3 = 8.

Sample Input 2
2
-1 -1

Sample Output 2
-2

Sample Input 3
4
10 10 10 10

Sample Output 3
20
";

    #[test]
    fn atcoder_numbered_samples_skip_explanations() {
        assert_eq!(
            found(ATCODER),
            vec![
                stdio("3\n1 5 3\n", "8\n"),
                stdio("2\n-1 -1\n", "-2\n"),
                stdio("4\n10 10 10 10\n", "20\n"),
            ]
        );
    }

    #[test]
    fn atcoder_japanese_and_copy_buttons() {
        let statement = "\
問題文
整数 N が与えられます。

制約
1 <= N <= 9

入力
N

出力
答えを出力せよ。

入力例 1
Copy
3

出力例 1
Copy
6

入力例 2
1

出力例 2
1
";
        assert_eq!(
            found(statement),
            vec![stdio("3\n", "6\n"), stdio("1\n", "1\n")]
        );
    }

    #[test]
    fn samples_paired_by_number_not_order() {
        let statement =
            "Sample Input 1\n1\nSample Input 2\n2\n\nSample Output 2\nB\nSample Output 1\nA\n";
        assert_eq!(
            found(statement),
            vec![stdio("2\n", "B\n"), stdio("1\n", "A\n")]
        );
    }

    #[test]
    fn livecodebench_stdio_statement() {
        let statement = "\
You are given a string S of length N consisting of A and B.
Print the number of positions i such that S_i = S_{i+1}.

Input

The input is given from Standard Input in the following format:
N
S

Output

Print the answer as an integer.

Constraints


- 2 \\leq N \\leq 100

Sample Input 1

5
AABBA

Sample Output 1

2

S_1 = S_2 = A and S_3 = S_4 = B.

Sample Input 2

2
AB

Sample Output 2

0
";
        assert_eq!(
            found(statement),
            vec![stdio("5\nAABBA\n", "2\n"), stdio("2\nAB\n", "0\n")]
        );
    }

    #[test]
    fn livecodebench_example_blocks_for_stdio() {
        let statement = "\
Read n and n numbers; print their sum, then their maximum.

Example 1:

Input: 3
1 2 3
Output: 6
3

Example 2:

Input:
1
-7
Output:
-7
-7
";
        assert_eq!(
            found(statement),
            vec![stdio("3\n1 2 3\n", "6\n3\n"), stdio("1\n-7\n", "-7\n-7\n")]
        );
    }

    #[test]
    fn leetcode_plain_text_two_sum() {
        let statement = "\
Given an array of integers nums and an integer target, return indices of the two numbers such that they add up to target.

Example 1:

Input: nums = [2,7,11,15], target = 9
Output: [0,1]
Explanation: Because nums[0] + nums[1] == 9, we return [0, 1].

Example 2:

Input: nums = [3,2,4], target = 6
Output: [1,2]

Example 3:

Input: nums = [3,3], target = 6
Output: [0,1]

\u{a0}
Constraints:

2 <= nums.length <= 10^4
";
        assert_eq!(
            found(statement),
            vec![
                functional("nums = [2,7,11,15], target = 9", "[0,1]"),
                functional("nums = [3,2,4], target = 6", "[1,2]"),
                functional("nums = [3,3], target = 6", "[0,1]"),
            ]
        );
    }

    #[test]
    fn leetcode_markdown_bold_in_fences() {
        let statement = r#"
Given a string `s`, return *the longest palindromic substring* in `s`.

**Example 1:**

```
**Input:** s = "babad"
**Output:** "bab"
**Explanation:** "aba" is also a valid answer.
```

**Example 2:**

```
**Input:** s = "cb,bd"
**Output:** "bb"
```

**Constraints:**

* `1 <= s.length <= 1000`
"#;
        assert_eq!(
            found(statement),
            vec![
                functional(r#"s = "babad""#, r#""bab""#),
                functional(r#"s = "cb,bd""#, r#""bb""#),
            ]
        );
    }

    #[test]
    fn leetcode_html_statement() {
        let statement = "<p>Given a string <code>s</code>, return the longest palindrome.</p>\n\
<p>&nbsp;</p>\n<p><strong class=\"example\">Example 1:</strong></p>\n\n<pre>\n\
<strong>Input:</strong> s = &quot;a&lt;b&quot;, k = 3\n<strong>Output:</strong> &quot;bab&quot;\n\
<strong>Explanation:</strong> &quot;aba&quot; is also a valid answer.\n</pre>\n\n\
<p><strong class=\"example\">Example 2:</strong></p>\n<pre>\n\
<strong>Input:</strong> s = &quot;cbbd&quot;, k = 1\n<strong>Output:</strong> true\n</pre>\n\
<p>&nbsp;</p>\n<p><strong>Constraints:</strong></p>\n";
        assert_eq!(
            found(statement),
            vec![
                functional(r#"s = "a<b", k = 3"#, r#""bab""#),
                functional(r#"s = "cbbd", k = 1"#, "true"),
            ]
        );
    }

    #[test]
    fn no_samples_is_not_found_with_reason() {
        let statement = "Prove that there are infinitely many primes.\n\nInput\nNothing.\n";
        match extract(statement) {
            Extraction::NotFound { reason } => assert!(reason.contains("no sample tests")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(extract(""), Extraction::NotFound { .. }));
        assert!(matches!(extract("  \n\n"), Extraction::NotFound { .. }));
    }

    #[test]
    fn unmatched_counts_pair_what_they_can_and_warn() {
        let statement = "Sample Input 1\n1\n\nSample Output 1\n2\n\nSample Input 2\n5\n";
        let report = extract_report(statement);
        assert_eq!(
            report.extraction,
            Extraction::Found(vec![stdio("1\n", "2\n")])
        );
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].contains("input 2"));

        let only_outputs = "Sample Output 1\n2\n";
        match extract(only_outputs) {
            Extraction::NotFound { reason } => assert!(reason.contains("0 sample input")),
            other => panic!("unexpected {other:?}"),
        }

        // A heading whose content is missing (an image, say) gives no test, not an empty one.
        let missing = "Sample Input 1\n\nSample Output 1\n\n6\n";
        assert!(matches!(extract(missing), Extraction::NotFound { .. }));
    }

    #[test]
    fn functional_args_split_respects_brackets_and_quotes() {
        let args = functional_args(r#"grid = [[1,2],[3,4]], s = "a, b = c", t = 'x', k = -3"#);
        assert_eq!(
            args,
            Some(vec![
                ("grid".into(), "[[1,2],[3,4]]".into()),
                ("s".into(), r#""a, b = c""#.into()),
                ("t".into(), "'x'".into()),
                ("k".into(), "-3".into()),
            ])
        );
        assert_eq!(
            functional_args(r#"s = "a\"b,""#),
            Some(vec![("s".into(), r#""a\"b,""#.into())])
        );
        for bad in [
            "",
            "3",
            "[1,2]",
            "nums = [1,2",
            "a = 1,",
            "= 3",
            "1x = 2",
            "s = \"open",
            "a == b",
            "a = 1)",
        ] {
            assert_eq!(functional_args(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn render_stdio_and_functional() {
        let tests = vec![
            stdio("3\n1 2 3\n", "6\n"),
            functional("nums = [2,7], target = 9", "[0,1]"),
        ];
        assert_eq!(
            render_for_hint(&tests),
            "Sample 1\nInput:\n```\n3\n1 2 3\n```\nExpected output:\n```\n6\n```\n\n\
             Example 2: Input: nums = [2,7], target = 9 -> Expected: [0,1]"
        );
        assert_eq!(render_for_hint(&[]), "");
        // Content with a backtick fence gets a longer fence.
        let rendered = render_for_hint(&[stdio("```\n", "x\n")]);
        assert!(rendered.starts_with("Sample 1\nInput:\n````\n```\n````"));
    }

    #[test]
    fn render_is_bounded() {
        let many: Vec<TestCase> = (0..20).map(|i| stdio(&format!("{i}\n"), "0\n")).collect();
        let rendered = render_for_hint(&many);
        assert!(rendered.contains("Sample 8\n"));
        assert!(!rendered.contains("Sample 9\n"));
        assert!(rendered.ends_with("(12 more test case(s) not shown; 8 of 20 included)"));

        let big: Vec<TestCase> = (0..5)
            .map(|_| stdio(&"é".repeat(5000), &"9".repeat(5000)))
            .collect();
        let rendered = render_for_hint(&big);
        assert!(rendered.len() <= MAX_HINT_BYTES, "{}", rendered.len());
        assert!(rendered.contains("(truncated, 10000 bytes in all)"));
        assert!(rendered.contains("more test case(s) not shown"));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let mut inputs: Vec<String> = vec![
            "Sample Input".into(),
            "Sample Input 99999999999999999999\nx\nSample Output 99999999999999999999\ny".into(),
            "```".into(),
            "Examples\nInput\n```\nunterminated".into(),
            "Example 1:\nInput:".into(),
            "Example 1:\nInput: a = [[[[\nOutput: ]]]]".into(),
            "<pre><pre></pre><strong".into(),
            "<".repeat(10_000),
            "入力例 1\n「こんにちは」\n出力例 1\n🎉\u{200d}🎉".into(),
            "\u{feff}Sample Input 1\r\n\r\n\u{1F600}\r\nSample Output 1\r\n\u{0301}\r".into(),
            "\0\u{1}\u{7f}\u{10ffff}".repeat(1000),
            "Sample Input 1\n".repeat(MAX_EVENTS + 10),
            "Examples\n".to_string() + &"Input\n1\nOutput\n1\n".repeat(MAX_TESTS * 2),
        ];
        // Larger than the scan limit, with a multi-byte character straddling the cut.
        let mut huge = "Sample Input 1\n1\nSample Output 1\n1\n\n".to_string();
        while huge.len() < MAX_STATEMENT_BYTES - 1 {
            huge.push('a');
        }
        huge.push_str("éééé");
        inputs.push(huge);
        for input in &inputs {
            let report = extract_report(input);
            if let Extraction::Found(tests) = &report.extraction {
                assert!(tests.len() <= MAX_TESTS);
                let rendered = render_for_hint(tests);
                assert!(rendered.len() <= MAX_HINT_BYTES);
            }
        }
        let report = extract_report(&inputs[inputs.len() - 1]);
        assert_eq!(
            report.extraction,
            Extraction::Found(vec![stdio("1\n", "1\n")])
        );
        assert!(report.warnings[0].contains("only the first"));

        let many = extract_report(&inputs[12]);
        match many.extraction {
            Extraction::Found(tests) => assert_eq!(tests.len(), MAX_TESTS),
            other => panic!("unexpected {other:?}"),
        }
    }
}
