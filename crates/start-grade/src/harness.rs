//! What each code benchmark's own harness does beyond running the program: how it compares a
//! stdin/stdout program's output with the expected output ([`StdoutRule`]), and which imports it
//! runs before the program ([`StdoutRule::import_header`], [`LIVECODEBENCH_IMPORTS`]).
//!
//! A reward that judges differently from the benchmark trains toward the wrong target: APPS
//! accepts a permuted token set that LiveCodeBench rejects, LiveCodeBench compares numbers as
//! exact decimals where CodeContests allows `1e-5`, and both APPS and LiveCodeBench import
//! `typing`, `collections` and more before the program, so a solution that writes `List[int]`
//! without importing it passes there. Each rule here follows its harness's source:
//!
//! - [`StdoutRule::Lines`] (the default): this project's rule, [`crate::compare::compare_stdout`]
//!   with its [`CompareOptions`] (CRLF, trailing whitespace and final blank lines forgiven,
//!   non-integers within a tolerance).
//! - [`StdoutRule::Exact`]: the bytes must be equal.
//! - [`StdoutRule::LiveCodeBench`] (`lcb_runner/evaluation/testing_util.py`, `grade_stdio`): both
//!   texts are stripped, split at `\n` and each line stripped; the line counts must be equal;
//!   each line pair is equal, or both are whitespace-separated lists of numbers that are equal
//!   as Python `Decimal`s (`1.0` equals `1`, `0.5` does not equal `0.50000001`: no tolerance).
//! - [`StdoutRule::Apps`] (`eval/testing_util.py`, `run_test`): the stripped non-blank lines are
//!   equal; or every line is one number and they agree as `numpy.allclose` does
//!   (`|a - e| <= 1e-8 + 1e-5 * |e|`); or the set of each line's set of tokens is equal (APPS
//!   ignores token order and repeats here); or the same with every token a number rounded to 3
//!   decimals.
//! - [`StdoutRule::CodeContests`] (`execution/tester_sandboxer.cc`, `OutputsMatch`): the texts
//!   split at any whitespace (line breaks included) into lowercased tokens, which are equal, or
//!   as many and pairwise equal, where two numeric tokens match within `1e-5` absolutely.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compare::{CompareOptions, Comparison, MAX_DIFF_LINE_CHARS, compare_stdout};

/// CodeContests' tolerance for two numeric tokens (`kDoublePrecision`): absolute.
pub const CODECONTESTS_TOLERANCE: f64 = 1e-5;
/// APPS' `numpy.allclose` relative tolerance (numpy's default `rtol`).
pub const APPS_RELATIVE_TOLERANCE: f64 = 1e-5;
/// APPS' `numpy.allclose` absolute tolerance (numpy's default `atol`).
pub const APPS_ABSOLUTE_TOLERANCE: f64 = 1e-8;
/// The decimals APPS rounds numbers to in its last, set-based comparison.
pub const APPS_ROUND_DECIMALS: usize = 3;
/// Longest decimal exponent a [`StdoutRule::LiveCodeBench`] number may have; longer reads as not
/// a number (Python would accept it, but no expected output holds one).
pub const MAX_DECIMAL_EXPONENT_DIGITS: usize = 9;

/// The imports LiveCodeBench runs before every program, stdin/stdout and functional alike (its
/// `import_string`). LeetCode's own Python judge pre-imports much the same, so functional tests
/// run after these too.
pub const LIVECODEBENCH_IMPORTS: &str = "from string import *\nfrom re import *\n\
from datetime import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\n\
from copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\n\
from itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\n\
from sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n\
import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\n\
import copy\nimport math\nimport random\nimport statistics\nimport itertools\nimport functools\n\
import operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n";

/// The imports APPS runs before every program.
pub const APPS_IMPORTS: &str = "import sys\nimport time\nimport itertools\n\
from itertools import accumulate, product, permutations, combinations\nimport collections\n\
from collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n\
from functools import lru_cache\nimport math\n\
from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2\nimport fractions\n\
from typing import List, Tuple\nimport numpy as np\nimport random\nimport heapq\n\
from heapq import *\n";

/// The module name the in-guest test harness ([`GUEST_HARNESS`]) is imported as.
pub const GUEST_HARNESS_MODULE: &str = "_judge";

/// The in-guest test harness for functional, HumanEval and MBPP tests: each test is one call
/// (`call`, `check` or `asserts`) that runs the program as its benchmark's harness does and
/// prints one JSON line saying what happened (see the file's own header). The runtime defines
/// it in its snapshot, so a test pays neither for compiling it nor for the pages that loading
/// it writes.
pub const GUEST_HARNESS: &str = include_str!("guest_harness.py");

/// Calls that exercise every path of [`GUEST_HARNESS`] (passed, a failed assert with both its
/// sides, an error, a syntax error; each entry), run before the snapshot is taken: a fresh
/// interpreter then starts with that code already specialized and its lazy state built, rather
/// than rebuilding (and writing pages that a restore copies back) on every test. It leaves
/// the harness's state as loading it does.
pub const GUEST_HARNESS_WARM_UP: &str = "import _judge\n\
for _p in ('return x + 1', 'return x', 'return 1 / 0', 'return (', 'print(x)'):\n    \
_judge.check('    ' + _p + '\\n', 'def f(x):\\n', 'def check(c):\\n    assert c(1) == 2\\n', 'f', \
1024, 100, 100)\n\
_judge.call('def f(x):\\n    return [x, None]\\n', 'import math\\n', 'f', '[1]', 1024, 100, 100)\n\
_judge.asserts('def f(x):\\n    return x\\n', 'import math\\n', 'y = 1\\n', 'assert f(y) == 2\\n', \
True, 1024, 100, 100)\n\
_judge._suite.clear()\ndel _judge, _p";

/// How a stdin/stdout test's output is compared: the rule of the benchmark the test comes from
/// (see the module doc for each). Written in a test file as `"compare": "livecodebench"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StdoutRule {
    /// This project's line rule, [`compare_stdout`] with the judge's [`CompareOptions`].
    #[default]
    #[serde(rename = "lines")]
    Lines,
    /// Byte-equal output.
    #[serde(rename = "exact")]
    Exact,
    /// LiveCodeBench's `grade_stdio`: stripped lines, numbers as exact decimals.
    #[serde(rename = "livecodebench")]
    LiveCodeBench,
    /// APPS' `run_test`: stripped lines, `allclose` numbers, then line token sets.
    #[serde(rename = "apps")]
    Apps,
    /// CodeContests' `OutputsMatch`: whitespace-separated lowercase tokens, numbers within 1e-5.
    #[serde(rename = "codecontests")]
    CodeContests,
}

impl StdoutRule {
    /// Whether this is the default rule (so a test file need not name it).
    pub fn is_default(&self) -> bool {
        *self == StdoutRule::default()
    }

    /// The code the benchmark's harness runs before the program, if any.
    pub fn import_header(&self) -> Option<&'static str> {
        match self {
            StdoutRule::LiveCodeBench => Some(LIVECODEBENCH_IMPORTS),
            StdoutRule::Apps => Some(APPS_IMPORTS),
            StdoutRule::Lines | StdoutRule::Exact | StdoutRule::CodeContests => None,
        }
    }

    /// Compares a program's stdout with the expected stdout by this rule; `opts` applies to
    /// [`StdoutRule::Lines`] only (the benchmarks' rules are fixed).
    ///
    /// # Examples
    ///
    /// ```
    /// use start_grade::compare::CompareOptions;
    /// use start_grade::harness::StdoutRule;
    ///
    /// let opts = CompareOptions::default();
    /// // LiveCodeBench: numbers as decimals, exactly.
    /// assert!(StdoutRule::LiveCodeBench.compare("1.50 2\n", "  1.5   2.0", &opts).is_match());
    /// assert!(!StdoutRule::LiveCodeBench.compare("0.5\n", "0.5000001\n", &opts).is_match());
    /// // CodeContests: tokens, line breaks ignored, numbers within 1e-5.
    /// assert!(StdoutRule::CodeContests.compare("1 2\nYES\n", "1\n2.000001 yes", &opts).is_match());
    /// ```
    pub fn compare(&self, expected: &str, actual: &str, opts: &CompareOptions) -> Comparison {
        match self {
            StdoutRule::Lines => compare_stdout(expected, actual, opts),
            StdoutRule::Exact => {
                if expected == actual {
                    Comparison::Match
                } else {
                    mismatch(
                        "exact",
                        format!(
                            "the output is not byte-equal to the expected output; first \
                             difference at byte {}",
                            first_difference_byte(expected, actual)
                        ),
                    )
                }
            }
            StdoutRule::LiveCodeBench => livecodebench(expected, actual),
            StdoutRule::Apps => apps(expected, actual),
            StdoutRule::CodeContests => codecontests(expected, actual),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LiveCodeBench

fn livecodebench(expected: &str, actual: &str) -> Comparison {
    // Python's `str.strip` and `str.split("\n")`, as `get_stripped_lines` does.
    let lines = |text: &str| -> Vec<String> {
        text.trim()
            .split('\n')
            .map(|line| line.trim().to_string())
            .collect()
    };
    let (e, a) = (lines(expected), lines(actual));
    if e.len() != a.len() {
        return mismatch(
            "livecodebench",
            format!(
                "mismatched output length: expected {} line(s), got {}",
                e.len(),
                a.len()
            ),
        );
    }
    for (index, (x, y)) in e.iter().zip(&a).enumerate() {
        if x == y {
            continue;
        }
        let same = match (decimal_line(x), decimal_line(y)) {
            (Some(dx), Some(dy)) => {
                dx.len() == dy.len() && dx.iter().zip(&dy).all(|(p, q)| p.equals(q))
            }
            _ => false,
        };
        if !same {
            return mismatch("livecodebench", line_diff(index, x, y));
        }
    }
    Comparison::Match
}

fn decimal_line(line: &str) -> Option<Vec<Decimal>> {
    line.split_whitespace().map(Decimal::parse).collect()
}

/// A number as Python's `Decimal` reads it, normalised so that equal values compare equal.
#[derive(Debug, PartialEq)]
enum Decimal {
    /// Any zero (`0`, `-0.00`, `0e5`).
    Zero,
    /// `±digits × 10^exponent`, digits without leading or trailing zeros.
    Finite {
        negative: bool,
        digits: String,
        exponent: i64,
    },
    Infinite {
        negative: bool,
    },
    /// Never equal to anything, itself included.
    NaN,
}

impl Decimal {
    fn equals(&self, other: &Decimal) -> bool {
        !matches!(self, Decimal::NaN) && self == other
    }

    /// Python `Decimal(token)`: a sign, digits with an optional point (underscores between
    /// digits allowed), an optional exponent; or `Inf`, `Infinity`, `NaN`, `sNaN` in any case.
    fn parse(token: &str) -> Option<Decimal> {
        let (negative, body) = match token.as_bytes().first() {
            Some(b'-') => (true, &token[1..]),
            Some(b'+') => (false, &token[1..]),
            _ => (false, token),
        };
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            return Some(Decimal::Infinite { negative });
        }
        if lower.strip_prefix('s').unwrap_or(&lower).starts_with("nan") {
            let payload = lower.trim_start_matches('s').trim_start_matches("nan");
            return payload
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then_some(Decimal::NaN);
        }
        let (mantissa, exponent) = match lower.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (lower.as_str(), None),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        let int_digits = python_digits(int_part)?;
        let frac_digits = python_digits(frac_part)?;
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let mut exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let (sign, digits) = match e.as_bytes().first() {
                    Some(b'-') => (-1, &e[1..]),
                    Some(b'+') => (1, &e[1..]),
                    _ => (1, e),
                };
                let digits = python_digits(digits)?;
                if digits.is_empty() || digits.len() > MAX_DECIMAL_EXPONENT_DIGITS {
                    return None;
                }
                sign * digits.parse::<i64>().ok()?
            }
        };
        exponent -= i64::try_from(frac_digits.len()).ok()?;
        let all = format!("{int_digits}{frac_digits}");
        let trimmed = all.trim_start_matches('0');
        if trimmed.is_empty() {
            return Some(Decimal::Zero);
        }
        let significant = trimmed.trim_end_matches('0');
        exponent += i64::try_from(trimmed.len() - significant.len()).ok()?;
        Some(Decimal::Finite {
            negative,
            digits: significant.to_string(),
            exponent,
        })
    }
}

/// ASCII digits with single underscores between them (Python's numeric literal rule), the
/// underscores removed; `None` for anything else. An empty part is allowed (`.5`, `5.`).
fn python_digits(part: &str) -> Option<String> {
    if part.starts_with('_') || part.ends_with('_') || part.contains("__") {
        return None;
    }
    part.bytes()
        .all(|b| b.is_ascii_digit() || b == b'_')
        .then(|| part.replace('_', ""))
}

// ---------------------------------------------------------------------------------------------
// APPS

fn apps(expected: &str, actual: &str) -> Comparison {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| line.trim().to_string())
            .filter(|line| !line.is_empty())
            .collect()
    };
    let (e, a) = (lines(expected), lines(actual));
    if e == a {
        return Comparison::Match;
    }
    // Each line one number, `numpy.allclose(actual, expected)`.
    let floats =
        |lines: &[String]| -> Option<Vec<f64>> { lines.iter().map(|l| python_float(l)).collect() };
    if let (Some(ef), Some(af)) = (floats(&e), floats(&a))
        && ef.len() == af.len()
        && ef.iter().zip(&af).all(|(x, y)| {
            (y - x).abs() <= APPS_ABSOLUTE_TOLERANCE + APPS_RELATIVE_TOLERANCE * x.abs()
        })
    {
        return Comparison::Match;
    }
    // The set of each line's token set, as strings, then as numbers rounded to 3 decimals.
    let token_sets = |lines: &[String]| -> BTreeSet<BTreeSet<String>> {
        lines
            .iter()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    if token_sets(&e) == token_sets(&a) {
        return Comparison::Match;
    }
    let rounded_sets = |lines: &[String]| -> Option<BTreeSet<BTreeSet<String>>> {
        lines
            .iter()
            .map(|l| l.split_whitespace().map(rounded).collect())
            .collect()
    };
    if let (Some(x), Some(y)) = (rounded_sets(&e), rounded_sets(&a))
        && x == y
    {
        return Comparison::Match;
    }
    let index = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let empty = String::new();
    let diff = format!(
        "{} (expected {} non-blank line(s), got {})",
        line_diff(
            index,
            e.get(index).unwrap_or(&empty),
            a.get(index).unwrap_or(&empty)
        ),
        e.len(),
        a.len()
    );
    mismatch("apps", diff)
}

/// Python's `float(text)`: surrounding whitespace, `inf`, `nan` and digit underscores allowed.
fn python_float(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.contains('_') {
        let ok = text
            .split(|c: char| !c.is_ascii_digit() && c != '_')
            .all(|run| !run.starts_with('_') && !run.ends_with('_') && !run.contains("__"));
        if !ok {
            return None;
        }
    }
    text.replace('_', "").parse::<f64>().ok()
}

/// `round(float(token), 3)` as text (so that a set can hold it); `-0.000` reads as `0.000`, as
/// Python's `-0.0 == 0.0`.
fn rounded(token: &str) -> Option<String> {
    let value = python_float(token)?;
    let text = format!("{value:.prec$}", prec = APPS_ROUND_DECIMALS);
    Some(match text.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
        _ => text,
    })
}

// ---------------------------------------------------------------------------------------------
// CodeContests

fn codecontests(expected: &str, actual: &str) -> Comparison {
    // `absl::ByAnyChar(" \n\t\r\v")`, empty parts skipped, then lowercased.
    let tokens = |text: &str| -> Vec<String> {
        text.split([' ', '\n', '\t', '\r', '\u{b}'])
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let (e, a) = (tokens(expected), tokens(actual));
    if e.len() != a.len() {
        return mismatch(
            "codecontests",
            format!("expected {} token(s), got {}", e.len(), a.len()),
        );
    }
    for (index, (x, y)) in e.iter().zip(&a).enumerate() {
        let same = match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) => (p - q).abs() < CODECONTESTS_TOLERANCE,
            _ => x == y,
        };
        if !same {
            return mismatch(
                "codecontests",
                format!("token {}: expected {}, got {}", index + 1, clip(x), clip(y)),
            );
        }
    }
    Comparison::Match
}

// ---------------------------------------------------------------------------------------------
// Reports

fn line_diff(index: usize, expected: &str, actual: &str) -> String {
    let mut diff = format!("line {} differs:\n", index + 1);
    let _ = write!(
        diff,
        "  expected: {}\n  actual:   {}",
        clip(expected),
        clip(actual)
    );
    diff
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_DIFF_LINE_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…", &text[..end]),
    }
}

fn first_difference_byte(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

fn mismatch(rule: &str, diff: String) -> Comparison {
    let mut diff = format!("[{rule}] {diff}");
    if diff.len() > crate::compare::MAX_DIFF_BYTES {
        diff.truncate(diff.floor_char_boundary(crate::compare::MAX_DIFF_BYTES - "…".len()));
        diff.push('…');
    }
    Comparison::Mismatch { diff }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rule: StdoutRule, expected: &str, actual: &str) -> bool {
        rule.compare(expected, actual, &CompareOptions::default())
            .is_match()
    }

    #[test]
    fn rules_parse_by_name_and_default_to_lines() {
        let rule: StdoutRule = serde_json::from_str("\"livecodebench\"").unwrap();
        assert_eq!(rule, StdoutRule::LiveCodeBench);
        assert!(StdoutRule::default().is_default());
        assert!(serde_json::from_str::<StdoutRule>("\"lcb\"").is_err());
        assert_eq!(
            StdoutRule::LiveCodeBench.import_header(),
            Some(LIVECODEBENCH_IMPORTS)
        );
        assert!(StdoutRule::CodeContests.import_header().is_none());
        assert!(APPS_IMPORTS.contains("from typing import List"));
    }

    #[test]
    fn exact_is_byte_equal() {
        assert!(ok(StdoutRule::Exact, "1\n", "1\n"));
        assert!(!ok(StdoutRule::Exact, "1\n", "1"));
        assert!(!ok(StdoutRule::Exact, "1\n", "1\r\n"));
    }

    #[test]
    fn livecodebench_strips_lines_and_compares_decimals_exactly() {
        let r = StdoutRule::LiveCodeBench;
        assert!(ok(r, "3\n1 2 3\n", "\n  3  \n1 2 3\n\n\n"));
        assert!(ok(r, "1 2 3\n", "1   2\t3\n")); // numbers: token lists
        assert!(ok(r, "0.5\n", "0.50\n"));
        assert!(ok(r, "100\n", "1e2\n"));
        assert!(ok(r, "0\n", "-0.000\n"));
        assert!(ok(r, "1_000\n", "1000\n"));
        assert!(ok(r, "inf\n", "Infinity\n"));
        assert!(!ok(r, "nan\n", "NaN\n")); // NaN equals nothing
        assert!(!ok(r, "0.3333333\n", "0.33333333\n")); // no tolerance
        assert!(!ok(r, "a b\n", "a  b\n")); // words: the line must be equal
        assert!(!ok(r, "1\n2\n", "1\n\n2\n")); // an inner blank line counts
        assert!(!ok(r, "1\n", "1\n2\n"));
        assert_eq!(Decimal::parse("1e9999999999"), None); // an exponent past the bound
        let Comparison::Mismatch { diff } = r.compare("1\n", "1\n2\n", &CompareOptions::default())
        else {
            panic!()
        };
        assert!(diff.contains("mismatched output length"), "{diff}");
    }

    #[test]
    fn decimals_normalise() {
        assert_eq!(Decimal::parse("1.500"), Decimal::parse("15e-1"));
        assert_eq!(Decimal::parse("-0"), Some(Decimal::Zero));
        assert_ne!(Decimal::parse("-1"), Decimal::parse("1"));
        for bad in [
            "", "-", ".", "1e", "1_", "_1", "1__0", "0x10", "1.2.3", "e5", "1e+",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(Decimal::parse("sNaN12"), Some(Decimal::NaN));
    }

    #[test]
    fn apps_is_lenient_as_its_harness_is() {
        let r = StdoutRule::Apps;
        assert!(ok(r, "1 2\n\n3\n", "  1 2  \n3\n\n"));
        assert!(ok(r, "0.3333333\n", "0.33333334\n")); // allclose
        assert!(!ok(r, "0.333\n", "0.334\n"));
        assert!(ok(r, "1 2\n3 4\n", "4 3\n2 1\n")); // the token-set comparison
        assert!(ok(r, "1.0001 2\n", "1.00012 2.0004\n")); // rounded to 3 decimals
        assert!(!ok(r, "1 2\n", "1 3\n"));
        assert!(!ok(r, "YES\n", "yes\n"));
    }

    #[test]
    fn codecontests_compares_tokens_with_tolerance() {
        let r = StdoutRule::CodeContests;
        assert!(ok(r, "1 2\n3\n", "1\n2 3"));
        assert!(ok(r, "YES\n", "yes\n"));
        assert!(ok(r, "0.5\n", "0.500009\n"));
        assert!(!ok(r, "0.5\n", "0.50002\n"));
        assert!(!ok(r, "1 2\n", "1 2 3\n"));
        assert!(!ok(r, "a\n", "b\n"));
    }

    #[test]
    fn reports_are_bounded() {
        let long = "x".repeat(100_000);
        for rule in [
            StdoutRule::Exact,
            StdoutRule::LiveCodeBench,
            StdoutRule::Apps,
            StdoutRule::CodeContests,
        ] {
            let Comparison::Mismatch { diff } =
                rule.compare(&long, "y", &CompareOptions::default())
            else {
                panic!("{rule:?}")
            };
            assert!(diff.len() <= crate::compare::MAX_DIFF_BYTES, "{rule:?}");
        }
    }
}
