//! Test cases: the one schema a program's tests are written in ([`Tests`]), and the sample
//! tests extracted from a problem statement ([`extract`]).
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
//!
//! The work is split by step: `line` classifies each statement line (a heading, a marker, a
//! fence, text), `block` reads the sample text that follows a heading, `scan` walks the lines
//! into sample inputs and outputs and pairs them into tests, and `render` writes tests into
//! the hint.

use serde::{Deserialize, Serialize};

mod block;
mod line;
mod render;
mod scan;
mod suite;

pub use render::render_for_hint;
use scan::{pair, scan};
pub use suite::{FnTest, StdioTest, Tests};

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
/// # Examples
///
/// ```
/// use start_grade::testcase::{Extraction, TestKind, extract};
///
/// let statement = "Sample Input 1\n\n3\n1 2 3\n\nSample Output 1\n\n6\n";
/// let Extraction::Found(tests) = extract(statement) else { panic!("no tests") };
/// assert_eq!(tests[0].input, "3\n1 2 3\n");
/// assert_eq!(tests[0].output, "6\n");
/// assert_eq!(tests[0].kind, TestKind::Stdio);
///
/// let leetcode = "Example 1:\nInput: nums = [2,7], target = 9\nOutput: [0,1]\n";
/// let Extraction::Found(tests) = extract(leetcode) else { panic!("no tests") };
/// assert_eq!(tests[0].input, "nums = [2,7], target = 9");
/// assert_eq!(tests[0].output, "[0,1]");
/// assert_eq!(tests[0].kind, TestKind::Functional);
///
/// assert!(matches!(extract("Prove it."), Extraction::NotFound { .. }));
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
        &statement[..statement.floor_char_boundary(MAX_STATEMENT_BYTES)]
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
/// # Examples
///
/// ```
/// use start_grade::testcase::functional_args;
///
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

#[cfg(test)]
mod tests;
