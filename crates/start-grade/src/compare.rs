//! Comparing a program's result with a test's expected result, as the judge does.
//!
//! Sample outputs in problem statements and the outputs of correct programs differ in ways no
//! judge counts as wrong: CRLF line endings, trailing spaces, a missing or extra final newline,
//! and floating-point digits beyond the checker's tolerance. [`compare_stdout`] forgives exactly
//! those (each configurable in [`CompareOptions`]) for stdio tests, and [`compare_values`] does
//! the same for the JSON values of functional tests. A mismatch carries a short, bounded report
//! of the first difference, fit for a log line or for feeding back to the model.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default absolute-or-relative tolerance for comparing non-integer numbers.
pub const DEFAULT_FLOAT_TOLERANCE: f64 = 1e-6;
/// Lines and values shown in a diff are cut to this many characters.
pub const MAX_DIFF_LINE_CHARS: usize = 200;
/// A diff report is at most this many bytes.
pub const MAX_DIFF_BYTES: usize = 2048;
/// [`compare_values`] reports values nested deeper than this as a mismatch instead of recursing.
pub const MAX_VALUE_DEPTH: usize = 256;

/// Characters of context kept before the first difference when a long line is cut for a diff.
const DIFF_CONTEXT_CHARS: usize = 40;

/// What differences [`compare_stdout`] and [`compare_values`] forgive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Two numbers, at least one of them non-integer (a decimal point or an exponent), match
    /// when they differ by at most this much absolutely or relatively. Default
    /// [`DEFAULT_FLOAT_TOLERANCE`]; a negative or NaN tolerance means exact.
    pub float_tolerance: f64,
    /// Ignore whitespace at the end of each line. Default `true`.
    pub ignore_trailing_whitespace: bool,
    /// Ignore blank lines at the end of the output. Default `true`. A single final newline is
    /// never significant.
    pub ignore_blank_lines: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            float_tolerance: DEFAULT_FLOAT_TOLERANCE,
            ignore_trailing_whitespace: true,
            ignore_blank_lines: true,
        }
    }
}

/// The verdict of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// The actual result is accepted.
    Match,
    /// The actual result differs.
    Mismatch {
        /// The first difference, readable, at most [`MAX_DIFF_BYTES`] bytes.
        diff: String,
    },
}

impl Comparison {
    /// True for [`Comparison::Match`].
    pub fn is_match(&self) -> bool {
        matches!(self, Comparison::Match)
    }
}

/// Compares a program's stdout with the expected stdout.
///
/// Line endings are normalised (`\r\n` reads as `\n`), then, as `opts` says, trailing
/// whitespace on each line and blank lines at the end are dropped. Lines then match when equal,
/// or when they have the same whitespace between tokens and each differing token pair is two
/// numbers within `opts.float_tolerance`, the expected one and at least one of the pair having a
/// decimal point or an exponent (integers compare exactly).
///
/// # Examples
///
/// ```
/// use start_grade::compare::{CompareOptions, Comparison, compare_stdout};
///
/// let opts = CompareOptions::default();
/// // CRLF, a trailing blank line and digits within the tolerance are forgiven.
/// assert!(compare_stdout("0.3333333\n", "0.33333333\r\n\n", &opts).is_match());
/// // Integers compare exactly, and a mismatch names the first difference.
/// let Comparison::Mismatch { diff } = compare_stdout("1\n5\n", "1\n6\n", &opts) else {
///     panic!("5 and 6 differ");
/// };
/// assert!(diff.starts_with("first difference at line 2, column 1"), "{diff}");
/// ```
pub fn compare_stdout(expected: &str, actual: &str, opts: &CompareOptions) -> Comparison {
    let expected_lines = normalised_lines(expected, opts);
    let actual_lines = normalised_lines(actual, opts);
    let tolerance = sanitised_tolerance(opts.float_tolerance);
    for index in 0..expected_lines.len().max(actual_lines.len()) {
        let number = index + 1;
        match (expected_lines.get(index), actual_lines.get(index)) {
            (Some(e), Some(a)) => {
                if !lines_match(e, a, tolerance) {
                    let column = first_difference(e, a);
                    let mut diff = format!(
                        "first difference at line {number}, column {}:\n",
                        column + 1
                    );
                    let _ = write!(
                        diff,
                        "  expected: {}\n  actual:   {}",
                        show_line(e, column),
                        show_line(a, column)
                    );
                    return mismatch(diff);
                }
            }
            (Some(e), None) => {
                return mismatch(format!(
                    "actual output ended after {} line(s); expected line {number}: {}",
                    actual_lines.len(),
                    show_line(e, 0)
                ));
            }
            (None, Some(a)) => {
                return mismatch(format!(
                    "actual output has {} extra line(s) after the expected {} line(s); \
                     line {number}: {}",
                    actual_lines.len() - expected_lines.len(),
                    expected_lines.len(),
                    show_line(a, 0)
                ));
            }
            (None, None) => break,
        }
    }
    Comparison::Match
}

/// Compares a functional test's returned value with the expected value.
///
/// Deep equality: arrays element by element, objects key by key, integers exactly, and any pair
/// of numbers involving a non-integer within `opts.float_tolerance` (so `1` matches `1.0`).
/// The diff names the JSON path of the first difference, such as `$[2].name`.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use start_grade::compare::{CompareOptions, compare_values};
///
/// let opts = CompareOptions::default();
/// assert!(compare_values(&json!([1, 2.5]), &json!([1.0, 2.5000001]), &opts).is_match());
/// assert!(!compare_values(&json!({"a": [1]}), &json!({"a": [2]}), &opts).is_match());
/// ```
pub fn compare_values(expected: &Value, actual: &Value, opts: &CompareOptions) -> Comparison {
    let tolerance = sanitised_tolerance(opts.float_tolerance);
    let mut path = String::from("$");
    match value_difference(expected, actual, tolerance, &mut path, 0) {
        None => Comparison::Match,
        Some(diff) => mismatch(diff),
    }
}

// ---------------------------------------------------------------------------------------------
// Stdout

fn normalised_lines<'a>(text: &'a str, opts: &CompareOptions) -> Vec<&'a str> {
    // `str::lines` splits at `\n`, drops a `\r` before it, and ignores one final newline.
    let mut lines: Vec<&str> = if opts.ignore_trailing_whitespace {
        text.lines().map(str::trim_end).collect()
    } else {
        text.lines().collect()
    };
    if opts.ignore_blank_lines {
        while lines.last().is_some_and(|line| line.trim().is_empty()) {
            lines.pop();
        }
    }
    lines
}

fn lines_match(expected: &str, actual: &str, tolerance: f64) -> bool {
    if expected == actual {
        return true;
    }
    let mut e = segments(expected);
    let mut a = segments(actual);
    loop {
        match (e.next(), a.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x == y {
                    continue;
                }
                let is_space = |s: &str| s.starts_with(char::is_whitespace);
                if is_space(x) || is_space(y) || !tokens_match(x, y, tolerance) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Splits a line into alternating runs of whitespace and non-whitespace.
fn segments(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first.is_whitespace();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() != space)
            .map_or(rest.len(), |(i, _)| i);
        let (segment, tail) = rest.split_at(end);
        rest = tail;
        Some(segment)
    })
}

/// Two different tokens match only as numbers within tolerance, and only when the expected token
/// is a number and at least one of them is not an integer.
fn tokens_match(expected: &str, actual: &str, tolerance: f64) -> bool {
    let (Some((e, e_integer)), Some((a, a_integer))) =
        (parse_number(expected), parse_number(actual))
    else {
        return false;
    };
    if e_integer && a_integer {
        return false;
    }
    numbers_close(e, a, tolerance)
}

/// Parses a plain decimal number (`-12`, `3.5`, `.5`, `1e-9`); returns it and whether it is an
/// integer (no decimal point, no exponent). Rejects `inf`, `nan`, hex and the like.
fn parse_number(token: &str) -> Option<(f64, bool)> {
    let bytes = token.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits_before = count_digits(&bytes[i..]);
    i += digits_before;
    let mut integer = true;
    let mut digits_after = 0;
    if bytes.get(i) == Some(&b'.') {
        integer = false;
        i += 1;
        digits_after = count_digits(&bytes[i..]);
        i += digits_after;
    }
    if digits_before + digits_after == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        integer = false;
        i += 1;
        i += usize::from(matches!(bytes.get(i), Some(b'+' | b'-')));
        let exponent_digits = count_digits(&bytes[i..]);
        if exponent_digits == 0 {
            return None;
        }
        i += exponent_digits;
    }
    if i != bytes.len() {
        return None;
    }
    token.parse::<f64>().ok().map(|value| (value, integer))
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

fn numbers_close(e: f64, a: f64, tolerance: f64) -> bool {
    if !e.is_finite() || !a.is_finite() {
        return e == a;
    }
    let difference = (e - a).abs();
    difference <= tolerance || difference <= tolerance * e.abs().max(a.abs())
}

fn sanitised_tolerance(tolerance: f64) -> f64 {
    if tolerance >= 0.0 { tolerance } else { 0.0 }
}

/// Index (in characters) of the first character where two lines differ.
fn first_difference(e: &str, a: &str) -> usize {
    e.chars().zip(a.chars()).take_while(|(x, y)| x == y).count()
}

/// A line quoted for a diff, cut to [`MAX_DIFF_LINE_CHARS`] around `column` when long.
fn show_line(line: &str, column: usize) -> String {
    let length = line.chars().count();
    if length <= MAX_DIFF_LINE_CHARS {
        return format!("{line:?}");
    }
    let start = column
        .saturating_sub(DIFF_CONTEXT_CHARS)
        .min(length - MAX_DIFF_LINE_CHARS);
    let window: String = line.chars().skip(start).take(MAX_DIFF_LINE_CHARS).collect();
    let before = if start > 0 { "…" } else { "" };
    let after = if start + MAX_DIFF_LINE_CHARS < length {
        "…"
    } else {
        ""
    };
    format!("{before}{window:?}{after} ({length} chars)")
}

// ---------------------------------------------------------------------------------------------
// Values

/// The first difference between two values, or `None` when they match; `path` names where.
fn value_difference(
    expected: &Value,
    actual: &Value,
    tolerance: f64,
    path: &mut String,
    depth: usize,
) -> Option<String> {
    if depth > MAX_VALUE_DEPTH {
        return Some(format!(
            "at {}: values nested deeper than {MAX_VALUE_DEPTH} levels are not compared",
            show_path(path)
        ));
    }
    match (expected, actual) {
        (Value::Null, Value::Null) => None,
        (Value::Bool(e), Value::Bool(a)) if e == a => None,
        (Value::String(e), Value::String(a)) if e == a => None,
        (Value::Number(e), Value::Number(a)) if json_numbers_match(e, a, tolerance) => None,
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Some(format!(
                    "at {}: expected an array of length {}, got length {}\n  expected: {}\n  actual:   {}",
                    show_path(path),
                    e.len(),
                    a.len(),
                    show_value(expected),
                    show_value(actual)
                ));
            }
            for (index, (x, y)) in e.iter().zip(a).enumerate() {
                let length = path.len();
                let _ = write!(path, "[{index}]");
                let found = value_difference(x, y, tolerance, path, depth + 1);
                path.truncate(length);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Object(e), Value::Object(a)) => {
            for (key, x) in e {
                let length = path.len();
                push_key(path, key);
                let found = match a.get(key) {
                    None => Some(format!("at {}: key missing from actual", show_path(path))),
                    Some(y) => value_difference(x, y, tolerance, path, depth + 1),
                };
                path.truncate(length);
                if found.is_some() {
                    return found;
                }
            }
            a.keys().find(|key| !e.contains_key(*key)).map(|key| {
                push_key(path, key);
                format!("at {}: unexpected key in actual", show_path(path))
            })
        }
        _ => Some(format!(
            "at {}: expected {}, got {}",
            show_path(path),
            show_value(expected),
            show_value(actual)
        )),
    }
}

fn json_numbers_match(e: &serde_json::Number, a: &serde_json::Number, tolerance: f64) -> bool {
    let integer = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    if let (Some(x), Some(y)) = (integer(e), integer(a)) {
        return x == y;
    }
    match (e.as_f64(), a.as_f64()) {
        (Some(x), Some(y)) => numbers_close(x, y, tolerance),
        _ => false,
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        let _ = write!(path, ".{key}");
    } else {
        let _ = write!(path, "[{key:?}]");
    }
}

fn show_path(path: &str) -> String {
    clip_chars(path, MAX_DIFF_LINE_CHARS)
}

fn show_value(value: &Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| String::from("<unprintable>"));
    clip_chars(&text, MAX_DIFF_LINE_CHARS)
}

// ---------------------------------------------------------------------------------------------
// Bounds

fn clip_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

fn mismatch(mut diff: String) -> Comparison {
    if diff.len() > MAX_DIFF_BYTES {
        diff.truncate(diff.floor_char_boundary(MAX_DIFF_BYTES - "…".len()));
        diff.push('…');
    }
    Comparison::Mismatch { diff }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> CompareOptions {
        CompareOptions::default()
    }

    fn diff_of(result: Comparison) -> String {
        match result {
            Comparison::Mismatch { diff } => diff,
            Comparison::Match => panic!("expected a mismatch"),
        }
    }

    #[test]
    fn exact_match() {
        assert_eq!(
            compare_stdout("3\n1 2 3\n", "3\n1 2 3\n", &opts()),
            Comparison::Match
        );
        assert_eq!(compare_stdout("", "", &opts()), Comparison::Match);
    }

    #[test]
    fn trailing_whitespace_blank_lines_and_crlf() {
        assert!(compare_stdout("1 2\n3\n", "1 2   \n3\t\n\n\n", &opts()).is_match());
        assert!(compare_stdout("1 2\n3\n", "1 2\r\n3\r\n", &opts()).is_match());
        assert!(compare_stdout("6", "6\n", &opts()).is_match());
        assert!(compare_stdout("", "\n \n", &opts()).is_match());

        let strict = CompareOptions {
            ignore_trailing_whitespace: false,
            ignore_blank_lines: false,
            ..opts()
        };
        // One final newline and CRLF are never significant.
        assert!(compare_stdout("6", "6\n", &strict).is_match());
        assert!(compare_stdout("6\n", "6\r\n", &strict).is_match());
        assert!(!compare_stdout("6\n", "6 \n", &strict).is_match());
        assert!(!compare_stdout("6\n", "6\n\n", &strict).is_match());
        // Blank lines in the middle always count, and leading spaces too.
        assert!(!compare_stdout("1\n2\n", "1\n\n2\n", &opts()).is_match());
        assert!(!compare_stdout("1 2\n", " 1 2\n", &opts()).is_match());
        assert!(!compare_stdout("1 2\n", "1  2\n", &opts()).is_match());
    }

    #[test]
    fn float_tolerance() {
        assert!(compare_stdout("0.3333333\n", "0.33333333\n", &opts()).is_match());
        assert!(compare_stdout("1.5 2.0\n", "1.5000001 2\n", &opts()).is_match());
        assert!(compare_stdout("1e9\n", "1000000000.5\n", &opts()).is_match()); // relative
        assert!(compare_stdout("-0.0\n", "0\n", &opts()).is_match());
        assert!(!compare_stdout("0.333\n", "0.334\n", &opts()).is_match());
        // Only when the expected token is a number.
        assert!(!compare_stdout("abc\n", "0.1\n", &opts()).is_match());
        assert!(!compare_stdout("1.0\n", "one\n", &opts()).is_match());
        assert!(!compare_stdout("nan\n", "nan \n x", &opts()).is_match());
        assert!(!compare_stdout("inf\n", "1e999\n", &opts()).is_match());

        let exact = CompareOptions {
            float_tolerance: 0.0,
            ..opts()
        };
        assert!(!compare_stdout("0.3333333\n", "0.33333333\n", &exact).is_match());
        assert!(compare_stdout("0.5\n", "0.50\n", &exact).is_match());
        let nan = CompareOptions {
            float_tolerance: f64::NAN,
            ..opts()
        };
        assert!(!compare_stdout("0.3333333\n", "0.33333333\n", &nan).is_match());
    }

    #[test]
    fn integers_compare_exactly() {
        assert!(!compare_stdout("1000000000000\n", "1000000000001\n", &opts()).is_match());
        assert!(!compare_stdout("7\n", "07\n", &opts()).is_match());
        assert!(!compare_stdout("7\n", "+7\n", &opts()).is_match());
        // A decimal point on either side switches to tolerance.
        assert!(compare_stdout("7\n", "7.0000000001\n", &opts()).is_match());
        assert!(compare_stdout("7.0\n", "7\n", &opts()).is_match());
    }

    #[test]
    fn off_by_one_names_line_one() {
        let diff = diff_of(compare_stdout("5\n", "6\n", &opts()));
        assert_eq!(
            diff,
            "first difference at line 1, column 1:\n  expected: \"5\"\n  actual:   \"6\""
        );

        let diff = diff_of(compare_stdout("1\n2\n3\n", "1\n2\n", &opts()));
        assert!(
            diff.contains("ended after 2 line(s); expected line 3: \"3\""),
            "{diff}"
        );
        let diff = diff_of(compare_stdout("1\n", "1\n2\n3\n", &opts()));
        assert!(diff.contains("2 extra line(s)"), "{diff}");
        assert!(diff.contains("line 2: \"2\""), "{diff}");
    }

    #[test]
    fn long_lines_are_truncated_in_diff() {
        let expected = format!("{}X{}", "a".repeat(5000), "b".repeat(5000));
        let actual = format!("{}Y{}", "a".repeat(5000), "b".repeat(5000));
        let diff = diff_of(compare_stdout(&expected, &actual, &opts()));
        assert!(diff.contains("line 1, column 5001"), "{diff}");
        assert!(
            diff.contains('X') && diff.contains('Y'),
            "the window shows the difference"
        );
        assert!(diff.contains("(10001 chars)"));
        assert!(diff.len() < 2 * MAX_DIFF_LINE_CHARS + 200, "{}", diff.len());

        // Multi-byte characters and escapes never exceed the total bound or split a character.
        let weird = "é\u{1}".repeat(100_000);
        let diff = diff_of(compare_stdout(&weird, "x", &opts()));
        assert!(diff.len() <= MAX_DIFF_BYTES);
    }

    #[test]
    fn json_deep_compare() {
        let o = opts();
        assert!(compare_values(&json!([0, 1]), &json!([0, 1]), &o).is_match());
        assert!(compare_values(&json!(1), &json!(1.0), &o).is_match());
        assert!(compare_values(&json!(0.3333333), &json!(0.33333333), &o).is_match());
        assert!(
            compare_values(
                &json!({"a": [1, {"b": null}], "c": "x"}),
                &json!({"c": "x", "a": [1.0, {"b": null}]}),
                &o
            )
            .is_match()
        );
        assert!(
            !compare_values(
                &json!(9007199254740993_u64),
                &json!(9007199254740992_u64),
                &o
            )
            .is_match()
        );

        let diff = diff_of(compare_values(
            &json!([[1, 2], [3, 4]]),
            &json!([[1, 2], [3, 5]]),
            &o,
        ));
        assert_eq!(diff, "at $[1][1]: expected 4, got 5");
        let diff = diff_of(compare_values(&json!([1, 2]), &json!([1]), &o));
        assert!(
            diff.starts_with("at $: expected an array of length 2, got length 1"),
            "{diff}"
        );
        let diff = diff_of(compare_values(&json!({"a b": 1}), &json!({}), &o));
        assert_eq!(diff, "at $[\"a b\"]: key missing from actual");
        let diff = diff_of(compare_values(
            &json!({"a": 1}),
            &json!({"a": 1, "z": 2}),
            &o,
        ));
        assert_eq!(diff, "at $.z: unexpected key in actual");
        let diff = diff_of(compare_values(&json!(true), &json!(1), &o));
        assert_eq!(diff, "at $: expected true, got 1");
        let diff = diff_of(compare_values(&json!("x".repeat(1000)), &json!("y"), &o));
        assert!(diff.len() < MAX_DIFF_LINE_CHARS + 100, "{diff}");
    }

    #[test]
    fn deep_values_are_bounded() {
        let mut deep = json!(0);
        for _ in 0..(MAX_VALUE_DEPTH + 10) {
            deep = json!([deep]);
        }
        let diff = diff_of(compare_values(&deep, &deep, &opts()));
        assert!(diff.contains("nested deeper"), "{diff}");
        assert!(diff.len() <= MAX_DIFF_BYTES);
    }
}
