//! Finding the final answer in a long, untrusted reasoning text, looking only at the end of the
//! text so that the work stays bounded whatever the model wrote. The priority, first match
//! wins:
//!
//! 1. the last `\boxed{..}` or `\fbox{..}` (the convention models are trained to follow);
//! 2. what follows the last "the answer is" / "final answer:"-like phrase;
//! 3. the last math span, whichever delimiter it has: `$$..$$`, `\[..\]`, `$..$` or `\(..\)`
//!    (the one that closes last; an escaped `\$` is a dollar sign, not a delimiter).

use super::{MAX_ANSWER_BYTES, MAX_SCAN_BYTES};

/// How many `\boxed` occurrences (from the last) extraction tries before giving up.
const MAX_BOXED_CANDIDATES: usize = 16;
/// Commands that introduce a boxed final answer.
pub(super) const BOX_COMMANDS: [&str; 2] = ["\\boxed", "\\fbox"];
/// Phrases that introduce a final answer in prose (matched case-insensitively).
const ANSWER_PHRASES: [&str; 5] = [
    "final answer is",
    "final answer:",
    "the answer is",
    "answer is:",
    "answer:",
];

/// Extracts the final answer of a reasoning text: the content of the last `\boxed{..}` (or
/// `\boxed x`, `\fbox{..}`) with balanced braces, else what follows the last "the answer is" /
/// "final answer:" phrase (trimmed of `$` and a trailing period), else the content of the last
/// math span (`$$..$$`, `\[..\]`, `$..$`, `\(..\)`), else `None`.
///
/// # Examples
///
/// ```
/// use start_grade::answer::extract_answer;
///
/// assert_eq!(extract_answer("so \\boxed{\\frac{1}{2}}.").as_deref(), Some("\\frac{1}{2}"));
/// assert_eq!(extract_answer("first \\boxed{1}, then \\boxed{2}").as_deref(), Some("2"));
/// assert_eq!(extract_answer("Thus the answer is 42.").as_deref(), Some("42"));
/// assert_eq!(extract_answer("so $x = 2$ and then $$y = 3$$").as_deref(), Some("y = 3"));
/// assert_eq!(extract_answer("costs \\$5, so \\(7\\)").as_deref(), Some("7"));
/// assert_eq!(extract_answer("no marker here"), None);
/// ```
pub fn extract_answer(text: &str) -> Option<String> {
    let start = text.ceil_char_boundary(text.len().saturating_sub(MAX_SCAN_BYTES));
    let text = &text[start..];
    extract_boxed(text)
        .or_else(|| extract_phrase(text))
        .or_else(|| last_math_span(text))
}

/// Like [`extract_answer`], but falls back to the last non-empty line (at most
/// [`MAX_ANSWER_BYTES`]), for outputs that state the answer without a marker.
///
/// ```
/// use start_grade::answer::extract_answer_or_last_line;
///
/// assert_eq!(extract_answer_or_last_line("so it is\n12\n\n").as_deref(), Some("12"));
/// assert_eq!(extract_answer_or_last_line("x \\boxed{9}\nlater").as_deref(), Some("9"));
/// ```
pub fn extract_answer_or_last_line(text: &str) -> Option<String> {
    extract_answer(text).or_else(|| {
        let start = text.ceil_char_boundary(text.len().saturating_sub(MAX_SCAN_BYTES));
        text[start..]
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| line[..line.floor_char_boundary(MAX_ANSWER_BYTES)].to_string())
    })
}

pub(super) fn extract_boxed(s: &str) -> Option<String> {
    let mut ends: Vec<(usize, usize)> = BOX_COMMANDS
        .iter()
        .flat_map(|cmd| s.match_indices(cmd).map(|(i, m)| (i, i + m.len())))
        .collect();
    ends.sort_unstable_by_key(|&(start, _)| std::cmp::Reverse(start));
    ends.into_iter()
        .take(MAX_BOXED_CANDIDATES)
        .find_map(|(_, end)| boxed_content(s.get(end..)?))
}

/// The argument of a box command whose name has just ended at the start of `rest`.
fn boxed_content(rest: &str) -> Option<String> {
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None; // `\boxedfoo` is another command
    }
    let body = rest.trim_start_matches([' ', '\t']);
    let content = if body.starts_with('{') {
        let close = matching_brace(body, 0)?;
        body.get(1..close)?
    } else {
        let end = body
            .find(|c: char| c.is_whitespace() || c == '$')
            .unwrap_or(body.len());
        body.get(..end)?
    };
    let content = content.trim();
    (!content.is_empty() && content.len() <= MAX_ANSWER_BYTES).then(|| content.to_string())
}

/// Byte index of the `}` closing the `{` at byte `open` of `s`; `\{` and `\}` do not count.
pub(super) fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in s.get(open..)?.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The delimiters of a math span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MathDelim {
    /// `$..$`
    Dollar,
    /// `$$..$$`
    Display,
    /// `\(..\)`
    Paren,
    /// `\[..\]`
    Bracket,
}

/// The trimmed content of the math span that closes last in `s`, if it is a possible answer
/// (not empty, at most [`MAX_ANSWER_BYTES`]). One left-to-right pass; spans do not nest.
fn last_math_span(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut last: Option<(usize, usize)> = None;
    let mut open: Option<(MathDelim, usize)> = None;
    let mut i = 0;
    // Every index compared or sliced at is that of an ASCII byte, so slices fall on char
    // boundaries whatever the text holds.
    while let Some(&c) = b.get(i) {
        let next = b.get(i + 1).copied();
        match (open, c, next) {
            (None, b'\\', Some(b'(')) => open = Some((MathDelim::Paren, i + 2)),
            (None, b'\\', Some(b'[')) => open = Some((MathDelim::Bracket, i + 2)),
            (None, b'$', Some(b'$')) => open = Some((MathDelim::Display, i + 2)),
            (None, b'$', _) => open = Some((MathDelim::Dollar, i + 1)),
            (Some((MathDelim::Paren, start)), b'\\', Some(b')'))
            | (Some((MathDelim::Bracket, start)), b'\\', Some(b']'))
            | (Some((MathDelim::Display, start)), b'$', Some(b'$')) => {
                last = Some((start, i));
                open = None;
            }
            (Some((MathDelim::Dollar, start)), b'$', _) => {
                last = Some((start, i));
                open = None;
                i += 1;
                continue;
            }
            _ => {}
        }
        // A backslash escapes the next byte (`\$` is a dollar sign); two-byte delimiters are
        // skipped whole.
        let two = c == b'\\' || (c == b'$' && next == Some(b'$'));
        i += if two { 2 } else { 1 };
    }
    let (start, end) = last?;
    let content = s.get(start..end)?.trim();
    (!content.is_empty() && content.len() <= MAX_ANSWER_BYTES).then(|| content.to_string())
}

fn extract_phrase(s: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so positions in `lower` are positions in `s`.
    let lower = s.to_ascii_lowercase();
    let mut ends: Vec<usize> = ANSWER_PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| i + p.len()))
        .collect();
    ends.sort_unstable_by(|a, b| b.cmp(a));
    ends.dedup();
    ends.into_iter()
        .find_map(|end| clean_phrase_answer(s.get(end..)?))
}

/// The answer written after an answer phrase: the rest of its line (or the next line), up to
/// the end of the sentence, without `$`, math delimiters, markdown stars and a final period.
fn clean_phrase_answer(rest: &str) -> Option<String> {
    let line = rest
        .lines()
        .take(2)
        .map(|l| l.trim().trim_start_matches(':').trim())
        .find(|l| !l.is_empty())?;
    let line = line.trim_matches('*').trim();
    let sentence = match line.find(". ") {
        Some(i) => line.get(..i).unwrap_or(line),
        None => line,
    };
    let mut answer = sentence.to_string();
    for delim in ["\\(", "\\)", "\\[", "\\]", "$"] {
        answer = answer.replace(delim, "");
    }
    let answer = answer
        .trim()
        .trim_end_matches('.')
        .trim()
        .trim_matches('*')
        .trim();
    (!answer.is_empty() && answer.len() <= MAX_ANSWER_BYTES).then(|| answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "so \\boxed{\\frac{1}{\\sqrt{2}}}.",
                Some("\\frac{1}{\\sqrt{2}}"),
            ),
            ("first \\boxed{1} then \\boxed{2}", Some("2")),
            ("\\boxed{\\{1,2\\}}", Some("\\{1,2\\}")),
            ("answer \\fbox{7}", Some("7")),
            ("$\\boxed 5$", Some("5")),
            ("Therefore, the answer is 42.", Some("42")),
            ("The final answer is $\\frac{3}{4}$.", Some("\\frac{3}{4}")),
            ("Final Answer: 17\nmore", Some("17")),
            ("The answer is 3.14. Done", Some("3.14")),
            ("the answer is 1. later the answer is 2.", Some("2")),
            ("**Final answer:** 12", Some("12")),
            ("ok \\boxed{1} and \\boxed{2", Some("1")),
            ("\\boxed{unbalanced", None),
            ("no answer here", None),
            ("", None),
            ("π ≈ \\boxed{3.14159…}", Some("3.14159…")),
            ("réponse: the answer is 数学", Some("数学")),
            // The last math span, whatever its delimiters.
            ("so $x=1$ and finally $x = 2$.", Some("x = 2")),
            ("display $$\\frac12$$ then \\[3\\]", Some("3")),
            ("inline \\(4\\) after \\[5\\]", Some("5")),
            ("money \\$5 and \\$6, so $7$", Some("7")),
            ("open $5 never closed", None),
            ("empty $$ $$", None),
            ("é$é$ü", Some("é")),
            ("\\boxed{1} beats $2$", Some("1")),
            ("the answer is 3, as $x=4$ shows", Some("3, as x=4 shows")),
        ];
        for (text, want) in cases {
            assert_eq!(extract_answer(text).as_deref(), *want, "text {text:?}");
        }
        assert_eq!(
            extract_answer_or_last_line("a\nlast line\n\n").as_deref(),
            Some("last line")
        );
        assert_eq!(
            extract_answer_or_last_line("x \\boxed{9}").as_deref(),
            Some("9")
        );
        assert_eq!(extract_answer_or_last_line(" \n "), None);
    }

    #[test]
    fn extraction_on_huge_and_hostile_input() {
        let mut huge = "é{".repeat(200_000);
        huge.push_str("\\boxed{");
        huge.push_str(&"{".repeat(100_000));
        assert_eq!(extract_answer(&huge), None);
        let mut long = "x".repeat(1_000_000);
        long.push_str(" \\boxed{5}");
        assert_eq!(extract_answer(&long).as_deref(), Some("5"));
        let many = "\\boxed{".repeat(50_000);
        assert_eq!(extract_answer(&many), None);
        // A multi-byte char straddling the scan window boundary.
        // 2^16 is not a multiple of 3, so the window starts inside a `€`.
        let straddle = "€".repeat(MAX_SCAN_BYTES / 3 + 7);
        assert_eq!(
            extract_answer_or_last_line(&straddle).map(|s| s.len()),
            Some(MAX_ANSWER_BYTES - 1)
        );
    }
}
