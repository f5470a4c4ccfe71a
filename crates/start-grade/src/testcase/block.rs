//! Reading the sample text that follows a heading: a fenced block, a `<pre>` block, an indented
//! block, plain lines, or the rest of an `Input: ...` line, with its exact inner lines.

use super::line::{Line, classify};
use crate::fence::FenceLine;

/// How a plain (unfenced, unindented) block ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlainEnd {
    /// At the first blank line or marker (AtCoder / LiveCodeBench `Sample Input N`).
    Blank,
    /// At the next marker only (Codeforces `Input` / `Output` in an examples section).
    Marker,
}

/// Reads the block that follows a heading at `start`: a fenced block, a `<pre>` block, a 4-space
/// indented block, or plain lines ending as `end` says. Returns its text (surrounding blank lines
/// trimmed, inner lines exact) and the index of the first line after it.
pub(super) fn read_block(lines: &[&str], start: usize, end: PlainEnd) -> (String, usize) {
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
    if let Some(fence) = FenceLine::parse(lines[i]) {
        return read_fenced(lines, i + 1, &fence);
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
fn read_fenced(lines: &[&str], start: usize, fence: &FenceLine<'_>) -> (String, usize) {
    let mut j = start;
    while j < lines.len() && !fence.is_closed_by(lines[j]) {
        j += 1;
    }
    let content: Vec<&str> = lines[start..j]
        .iter()
        .map(|line| strip_spaces(line, fence.indent))
        .collect();
    (join_trimmed(&content), (j + 1).min(lines.len()))
}

/// Reads `Input: <rest>` on line `at` and the lines that continue it (up to a blank line,
/// marker or fence), decoding HTML entities when the marker line is HTML.
pub(super) fn read_inline<'a>(lines: &[&'a str], at: usize, rest: &'a str) -> (String, usize) {
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
