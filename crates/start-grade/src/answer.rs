//! Final answers of math trajectories: extraction and equivalence checking.
//!
//! Hint-RFT keeps a self-generated trajectory only if its final answer is right, so scoring needs
//! to pull the answer out of a long, untrusted reasoning text ([`extract_answer`]) and to decide
//! whether it matches the reference ([`equivalent`]). The fast path here is pure Rust and decides
//! most pairs; when it cannot, it says [`Verdict::Undecided`] and the caller runs the program
//! from [`sympy_check_code`] in the sandbox and reads its output with [`parse_sympy_verdict`].
//!
//! Every input is untrusted: extraction looks only at the last [`MAX_SCAN_BYTES`] of a text,
//! equivalence only at answers up to [`MAX_ANSWER_BYTES`], parsing is recursive descent with a
//! depth and node budget (no regexes, no backtracking), and nothing here panics on any input.
//!
//! The grading rules, in the spirit of the MATH/PRM800K and Qwen math graders:
//!
//! - LaTeX is normalized first: `\dfrac`/`\tfrac` become `\frac`; `\left`, `\right`, spacing
//!   commands, `$`, math delimiters and `\text{..}`-like wrappers go; degrees (`^\circ`), unit
//!   words after a number (`cm`, `inches`, `dollars`, `square units`, ...), thousands separators
//!   (`1,000`, `1{,}000`), a leading assignment (`x =`, `k=`, `\theta =`) and trailing periods
//!   are dropped; `\cdot` and `\times` become `*`. Equal strings after this are [`Verdict::Equal`].
//! - Numbers compare exactly as rationals (`0.5` = `1/2` = `\frac12`). If the exact values differ
//!   and either side was written with a decimal point, or if either side needs real arithmetic
//!   (`\sqrt2`, `\pi`), they compare with a relative tolerance ([`EquivOptions`], default
//!   `1e-6`, boundary inclusive, so `0.333333` = `1/3` but `0.33` != `1/3`). Two plain numbers
//!   that differ are always [`Verdict::NotEqual`].
//! - Percent: `50\%` equals both `50` and `0.5` (as common graders accept); switch the second
//!   off with [`EquivOptions::percent_as_fraction`].
//! - Expressions with variables are evaluated at fixed sample points: any clear disagreement is
//!   [`Verdict::NotEqual`] (`x^2` vs `2x`), agreement at enough points is [`Verdict::Equal`]
//!   (`2x+1` vs `1+2x`); anything the parser does not know is [`Verdict::Undecided`].
//! - `\{..\}` sets and bare comma lists (lists of solutions) compare unordered; `(a, b, ..)`
//!   tuples, matrices and a tuple against a bare list compare in order; a two-element bracket
//!   with a `[` or `]` is an interval, whose bracket kinds must match (`[1,2)` != `[1,2]`) and
//!   which never equals a tuple (`(1,2)` != `[1,2]`). A one-element set equals its element.
//!   `a \pm b` is the list `a+b, a-b`; `\cup` joins intervals, compared unordered.
//! - A gold answer that is a choice letter `A`-`E` (`(A)`, `\text{(A)}`) needs a choice letter;
//!   two words (`yes`, `\text{Evelyn}`) compare case-insensitively.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// How many bytes at the end of a trajectory extraction looks at; the answer is at the end, and
/// the bound keeps work linear in a fixed size whatever the model wrote.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;
/// The longest answer (bytes) that is extracted or compared; longer ones are not answers.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024;
/// Default relative tolerance for approximate numbers.
pub const DEFAULT_RELATIVE_TOLERANCE: f64 = 1e-6;
/// Default absolute tolerance, used for values near zero.
pub const DEFAULT_ABSOLUTE_TOLERANCE: f64 = 1e-9;

/// How many `\boxed` occurrences (from the last) extraction tries before giving up.
const MAX_BOXED_CANDIDATES: usize = 16;
/// Nesting depth the expression parser accepts (guards the stack).
const MAX_PARSE_DEPTH: usize = 48;
/// Expression nodes the parser builds at most (bounds evaluation and printing).
const MAX_EXPR_NODES: usize = 512;
/// Nesting of sets/tuples/lists compared recursively.
const MAX_STRUCTURE_DEPTH: usize = 4;
/// Elements of one set, tuple, list or matrix compared at most (matching is quadratic).
const MAX_ELEMENTS: usize = 64;
/// Passes unwrapping `\text{..}`-like commands (nested wrappers need one pass each).
const MAX_UNWRAP_PASSES: usize = 8;
/// Trailing unit words stripped at most (`sq ft`, `square units`).
const MAX_UNIT_WORDS: usize = 3;
/// Largest integer exponent evaluated exactly.
const MAX_EXACT_EXPONENT: i128 = 256;
/// Largest factorial evaluated exactly (34! overflows i128).
const MAX_EXACT_FACTORIAL: i128 = 33;
/// Largest factorial evaluated in floating point (171! overflows f64).
const MAX_FLOAT_FACTORIAL: f64 = 170.0;
/// Sample values with a magnitude above this are skipped (too imprecise to compare).
const MAX_SAMPLE_MAGNITUDE: f64 = 1e12;
/// Sample points that must agree before two expressions with variables are called equal.
const MIN_IDENTITY_POINTS: usize = 4;
/// Agreement needed at a sample point for an identity (tighter than the answer tolerance).
const IDENTITY_RELATIVE_TOLERANCE: f64 = 1e-9;
/// Makes the tolerance boundary inclusive despite rounding (`0.333333` vs `1/3`).
const TOLERANCE_SLACK: f64 = 1.0 + 1e-9;
/// Values given to variables when sampling; irregular so that coincidences are unlikely.
const SAMPLE_VALUES: [f64; 8] = [
    0.5377, 1.8339, -2.2588, 0.8622, 0.3188, -1.3077, 2.7694, -0.4336,
];
/// Bytes of sandbox output [`parse_sympy_verdict`] looks at.
const MAX_VERDICT_OUTPUT_BYTES: usize = 1024;

/// Commands that introduce a boxed final answer.
const BOX_COMMANDS: [&str; 2] = ["\\boxed", "\\fbox"];
/// Phrases that introduce a final answer in prose (matched case-insensitively).
const ANSWER_PHRASES: [&str; 5] = [
    "final answer is",
    "final answer:",
    "the answer is",
    "answer is:",
    "answer:",
];
/// Wrappers whose argument is kept as plain text.
const TEXT_COMMANDS: &str = "text textbf textit textrm textnormal textup mbox hbox mathrm mathbf mathit mathsf \
     mathtt operatorname emph boldsymbol bm";
/// Whether `word` is one of the whitespace-separated words of `list`.
fn in_list(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

/// Stands in for `\\` while spacing commands are replaced (a control char: never LaTeX).
const ROW_BREAK_PLACEHOLDER: &str = "\u{1}";
/// Plain substring replacements applied during normalization, in order.
const REPLACEMENTS: [(&str, &str); 32] = [
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\circ", ""),
    ("\u{b0}", ""),
    ("{,}", ""),
    ("\\%", "%"),
    ("\\!", ""),
    ("\\,", " "),
    ("\\;", " "),
    ("\\:", " "),
    ("\\ ", " "),
    ("~", " "),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("\\displaystyle", ""),
    ("\\cdot", "*"),
    ("\\times", "*"),
    ("\\ast", "*"),
    ("\\div", "/"),
    ("\\approx", "="),
    ("\\emptyset", "\\{\\}"),
    ("\\varnothing", "\\{\\}"),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\u{d7}", "*"),
    ("\u{b7}", "*"),
    ("\u{2212}", "-"),
    ("\u{3c0}", "\\pi"),
    ("\u{221e}", "\\infty"),
];
/// Sizing commands removed wherever they stand (`\left(` is `(`).
const SIZING_COMMANDS: &str = "left right bigl bigr Bigl Bigr big Big";
/// Unit and count words dropped after a number (compared in ASCII lowercase).
const UNIT_WORDS: &str = "cm mm km meters meter metres metre inches inch feet foot ft yards yard yd miles mile \
     mph kg grams gram pounds pound lbs lb ounces ounce oz liters liter litres litre ml \
     gallons gallon cups cup seconds second sec minutes minute mins hours hour hrs hr days \
     day weeks week months month years year dollars dollar cents cent euros degrees degree \
     deg radians radian units unit square sq cubic percent points point people persons \
     students ways pages apples marbles";
/// Greek letters read as variables.
const GREEK: &str = "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu \
     nu xi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Sigma \
     Phi Omega";
/// Matrix environments compared element-wise.
const MATRIX_ENVS: &str = "pmatrix bmatrix Bmatrix matrix smallmatrix";
/// Function names recognized without a backslash when followed by `(`.
const PLAIN_FUNCTIONS: [(&str, Func); 7] = [
    ("sqrt", Func::Sqrt),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("tan", Func::Tan),
    ("exp", Func::Exp),
    ("log", Func::Ln),
    ("ln", Func::Ln),
];
/// The variable read as the imaginary unit by the sympy check (and never called different
/// by sampling, which treats it as a real variable).
const IMAGINARY_UNIT: &str = "i";
/// Single-letter names that mean something else to `sympify` and must be made symbols.
const SYMPY_RESERVED_LETTERS: &str = "EINOQS";

/// The outcome of comparing a predicted answer with the gold one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The answers are equivalent.
    Equal,
    /// The answers differ.
    NotEqual,
    /// The fast path cannot tell; a symbolic check ([`sympy_check_code`]) is needed.
    Undecided,
}

/// Knobs of [`equivalent_with`]; [`Default`] gives the documented grading rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquivOptions {
    /// Relative tolerance for approximate numbers (default [`DEFAULT_RELATIVE_TOLERANCE`]).
    pub relative_tolerance: f64,
    /// Absolute tolerance near zero (default [`DEFAULT_ABSOLUTE_TOLERANCE`]).
    pub absolute_tolerance: f64,
    /// Whether `50\%` also equals `0.5` (default true; `50\%` always equals `50`).
    pub percent_as_fraction: bool,
    /// Whether expressions with variables are compared at sample points (default true);
    /// when false they are [`Verdict::Undecided`] unless equal as strings.
    pub numeric_identity: bool,
}

impl Default for EquivOptions {
    fn default() -> Self {
        Self {
            relative_tolerance: DEFAULT_RELATIVE_TOLERANCE,
            absolute_tolerance: DEFAULT_ABSOLUTE_TOLERANCE,
            percent_as_fraction: true,
            numeric_identity: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Extraction

/// Extracts the final answer of a reasoning text: the content of the last `\boxed{..}` (or
/// `\boxed x`, `\fbox{..}`) with balanced braces, else what follows the last "the answer is" /
/// "final answer:" phrase (trimmed of `$` and a trailing period), else `None`.
///
/// # Examples
///
/// ```ignore
/// assert_eq!(extract_answer("so \\boxed{\\frac{1}{2}}.").as_deref(), Some("\\frac{1}{2}"));
/// assert_eq!(extract_answer("Thus the answer is 42.").as_deref(), Some("42"));
/// ```
pub fn extract_answer(text: &str) -> Option<String> {
    let text = tail(text, MAX_SCAN_BYTES);
    extract_boxed(text).or_else(|| extract_phrase(text))
}

/// Like [`extract_answer`], but falls back to the last non-empty line (at most
/// [`MAX_ANSWER_BYTES`]), for outputs that state the answer without a marker.
pub fn extract_answer_or_last_line(text: &str) -> Option<String> {
    extract_answer(text).or_else(|| {
        tail(text, MAX_SCAN_BYTES)
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| truncate(line, MAX_ANSWER_BYTES).to_string())
    })
}

/// The last `max_bytes` of `s`, starting on a char boundary.
fn tail(s: &str, max_bytes: usize) -> &str {
    let mut start = s.len().saturating_sub(max_bytes);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s.get(start..).unwrap_or("")
}

/// The first `max_bytes` of `s`, ending on a char boundary.
fn truncate(s: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn extract_boxed(s: &str) -> Option<String> {
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
fn matching_brace(s: &str, open: usize) -> Option<usize> {
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

// ---------------------------------------------------------------------------------------------
// Normalization

/// An answer after LaTeX normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Normalized {
    text: String,
    percent: bool,
    /// The text before a leading `name =` was dropped (equal to `text` when none was).
    full: String,
}

/// When one answer is an equation and the other was `v = expr` (and so became `expr`), the
/// other is compared whole: `x + y = 1` against `y = 1 - x`.
fn align_equations(g: &mut Normalized, p: &mut Normalized) {
    let equation = |t: &str| matches!(classify(t), Shape::Equation(..));
    if equation(&g.text) && p.full != p.text && !equation(&p.text) && equation(&p.full) {
        p.text = p.full.clone();
    } else if equation(&p.text) && g.full != g.text && !equation(&g.text) && equation(&g.full) {
        g.text = g.full.clone();
    }
}

fn normalize(raw: &str) -> Option<Normalized> {
    if raw.len() > MAX_ANSWER_BYTES {
        return None;
    }
    let mut s = raw.trim().to_string();
    if BOX_COMMANDS.iter().any(|c| s.contains(c))
        && let Some(inner) = extract_boxed(&s)
    {
        s = inner;
    }
    for delim in ["\\(", "\\)", "\\[", "\\]", "\\$", "$"] {
        s = s.replace(delim, "");
    }
    s = unwrap_text_commands(&s);
    // Protect `\\` (a matrix row break) from the spacing commands `\ `, `\,` and `\;`.
    s = s.replace("\\\\", ROW_BREAK_PLACEHOLDER);
    for (from, to) in REPLACEMENTS {
        s = s.replace(from, to);
    }
    s = s.replace(ROW_BREAK_PLACEHOLDER, "\\\\");
    for name in SIZING_COMMANDS.split_whitespace() {
        s = replace_command(&s, name, "");
    }
    s = replace_command(&s, "in", "=");
    s = replace_word(&s, "or", ",");
    s = replace_word(&s, "and", ",");
    let mut percent = s.contains('%');
    s = s.replace('%', "");
    s = strip_units(&s, &mut percent);
    s = compact(&s);
    while s.ends_with('.') || s.ends_with(',') {
        s.pop();
    }
    if is_thousands(&s) {
        s = s.replace(',', "");
    }
    let text = strip_assignment(&s).to_string();
    Some(Normalized {
        text,
        percent,
        full: s,
    })
}

/// Replaces `\name` (not followed by a letter, so `\right` spares `\rightarrow`) with `with`.
fn replace_command(s: &str, name: &str, with: &str) -> String {
    let pattern = format!("\\{name}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&pattern) {
        let (head, tail) = rest.split_at(i);
        let after = tail.get(pattern.len()..).unwrap_or("");
        out.push_str(head);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&pattern);
        } else {
            out.push_str(with);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Replaces the whole word `word` (not inside another word or command name) with `with`.
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let (head, tail) = rest.split_at(i);
        let after = tail.get(word.len()..).unwrap_or("");
        let before_ok = head
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '\\');
        let after_ok = after
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        out.push_str(head);
        out.push_str(if before_ok && after_ok { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

fn unwrap_text_commands(s: &str) -> String {
    let mut current = s.to_string();
    for _ in 0..MAX_UNWRAP_PASSES {
        let next = unwrap_once(&current);
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Replaces each `\text{X}`-like wrapper with ` X `; a wrapper without braces is dropped.
fn unwrap_once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(offset) = s.get(i..).and_then(|r| r.find('\\')) {
        let start = i + offset;
        out.push_str(s.get(i..start).unwrap_or(""));
        let after_slash = s.get(start + 1..).unwrap_or("");
        let name_len = after_slash
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_slash.len());
        let name_end = start + 1 + name_len;
        let name = s.get(start + 1..name_end).unwrap_or("");
        if in_list(TEXT_COMMANDS, name) {
            let rest = s.get(name_end..).unwrap_or("");
            let open = name_end + (rest.len() - rest.trim_start().len());
            if s.get(open..).is_some_and(|r| r.starts_with('{'))
                && let Some(close) = matching_brace(s, open)
            {
                out.push(' ');
                out.push_str(s.get(open + 1..close).unwrap_or(""));
                out.push(' ');
                i = close + 1;
                continue;
            }
            i = name_end;
            continue;
        }
        if name.is_empty() {
            // A control symbol such as `\{` or `\\`: copy it whole.
            let len = after_slash.chars().next().map_or(0, char::len_utf8);
            out.push_str(s.get(start..start + 1 + len).unwrap_or("\\"));
            i = start + 1 + len;
        } else {
            out.push_str(s.get(start..name_end).unwrap_or(""));
            i = name_end;
        }
    }
    out.push_str(s.get(i..).unwrap_or(""));
    out
}

/// Drops trailing unit words (and a `^2`/`^3` after them) that follow a number or a group.
fn strip_units(s: &str, percent: &mut bool) -> String {
    let mut current = s.trim_end().to_string();
    for _ in 0..MAX_UNIT_WORDS {
        let trimmed = current.trim_end();
        let mut base = trimmed;
        for power in ["^{2}", "^{3}", "^2", "^3"] {
            if let Some(b) = base.strip_suffix(power) {
                base = b.trim_end();
                break;
            }
        }
        let head = base.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let word = base.get(head.len()..).unwrap_or("").to_ascii_lowercase();
        let follows_value = head
            .chars()
            .next_back()
            .is_some_and(|c| c.is_whitespace() || c.is_ascii_digit() || c == '}' || c == ')');
        if word.is_empty()
            || !in_list(UNIT_WORDS, &word)
            || !follows_value
            || head.trim().is_empty()
        {
            break;
        }
        if word == "percent" {
            *percent = true;
        }
        current = head.trim_end().to_string();
    }
    current
}

/// Removes whitespace, keeping one space where it ends a command name before a letter
/// (`\pi r` must not become `\pir`).
fn compact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut command_len: Option<usize> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            if command_len.is_some_and(|n| n > 0)
                && chars.peek().is_some_and(|n| n.is_ascii_alphabetic())
            {
                out.push(' ');
            }
            command_len = None;
            continue;
        }
        command_len = match (c, command_len) {
            ('\\', Some(0)) => None,
            ('\\', _) => Some(0),
            (c, Some(n)) if c.is_ascii_alphabetic() => Some(n + 1),
            _ => None,
        };
        out.push(c);
    }
    out
}

/// Whether `s` is a number with comma thousands separators, such as `-1,234,567.5`.
fn is_thousands(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let mut groups = int.split(',');
    let first_ok = groups
        .next()
        .is_some_and(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()));
    let rest: Vec<&str> = groups.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Drops a leading `name =` when the name is a simple variable (`x`, `a_1`, `\theta`, `f(x)`).
fn strip_assignment(s: &str) -> &str {
    let Some((lhs, rhs)) = s.split_once('=') else {
        return s;
    };
    if rhs.contains('=') || rhs.trim().is_empty() {
        return s;
    }
    if is_simple_name(lhs.trim()) {
        rhs.trim()
    } else {
        s
    }
}

fn is_simple_name(s: &str) -> bool {
    if let Some(greek) = s.strip_prefix('\\') {
        return in_list(GREEK, greek);
    }
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest = chars.as_str();
    first.is_ascii_alphabetic()
        && (rest.is_empty()
            || rest.bytes().all(|b| b.is_ascii_digit())
            || rest.strip_prefix('_').is_some_and(|sub| {
                sub.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'{' || b == b'}')
            })
            || (rest.len() == 3
                && rest.starts_with('(')
                && rest.ends_with(')')
                && rest.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic)))
}

// ---------------------------------------------------------------------------------------------
// Exact rationals

/// A rational with `i128` parts, always reduced with a positive denominator; every operation
/// is checked and gives `None` on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rat {
    num: i128,
    den: i128,
}

impl Rat {
    const ONE: Rat = Rat { num: 1, den: 1 };
    const HUNDREDTH: Rat = Rat { num: 1, den: 100 };

    fn new(num: i128, den: i128) -> Option<Rat> {
        if den == 0 {
            return None;
        }
        let g = i128::try_from(gcd(num.unsigned_abs(), den.unsigned_abs())).ok()?;
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            num = num.checked_neg()?;
            den = den.checked_neg()?;
        }
        Some(Rat { num, den })
    }

    fn int(n: i128) -> Rat {
        Rat { num: n, den: 1 }
    }

    /// Parses `digits[.digits][e[-]digits]` exactly (`0.125` is `1/8`, `1e-2` is `1/100`).
    fn from_decimal(text: &str) -> Option<Rat> {
        if let Some((mantissa, exponent)) = text.split_once('e') {
            let exponent: i128 = exponent.parse().ok()?;
            return Rat::from_decimal(mantissa)?.mul(Rat::int(10).pow(Rat::int(exponent))?);
        }
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let digits = format!("{int}{frac}");
        let num: i128 = digits.parse().ok()?;
        let den = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        Rat::new(num, den)
    }

    fn add(self, o: Rat) -> Option<Rat> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Rat::new(num, self.den.checked_mul(o.den)?)
    }

    fn neg(self) -> Option<Rat> {
        Some(Rat {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    fn sub(self, o: Rat) -> Option<Rat> {
        self.add(o.neg()?)
    }

    fn mul(self, o: Rat) -> Option<Rat> {
        Rat::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    fn div(self, o: Rat) -> Option<Rat> {
        Rat::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    fn pow(self, e: Rat) -> Option<Rat> {
        if e.den != 1 || e.num.abs() > MAX_EXACT_EXPONENT {
            return None;
        }
        let mut result = Rat::ONE;
        let mut base = if e.num < 0 { Rat::ONE.div(self)? } else { self };
        let mut n = e.num.unsigned_abs();
        while n > 0 {
            if n & 1 == 1 {
                result = result.mul(base)?;
            }
            n >>= 1;
            if n > 0 {
                base = base.mul(base)?;
            }
        }
        Some(result)
    }

    fn sqrt(self) -> Option<Rat> {
        if self.num < 0 {
            return None;
        }
        let root = |n: i128| {
            let r = n.unsigned_abs().isqrt();
            let r = i128::try_from(r).ok()?;
            (r.checked_mul(r)? == n).then_some(r)
        };
        Rat::new(root(self.num)?, root(self.den)?)
    }

    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

// ---------------------------------------------------------------------------------------------
// Expressions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Ln,
    Exp,
}

impl Func {
    fn from_command(name: &str) -> Option<Func> {
        Some(match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "cot" => Func::Cot,
            "sec" => Func::Sec,
            "csc" => Func::Csc,
            "arcsin" => Func::Asin,
            "arccos" => Func::Acos,
            "arctan" => Func::Atan,
            "ln" | "log" => Func::Ln,
            "exp" => Func::Exp,
            _ => return None,
        })
    }

    fn apply(self, x: f64) -> f64 {
        match self {
            Func::Sqrt => x.sqrt(),
            Func::Abs => x.abs(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Cot => 1.0 / x.tan(),
            Func::Sec => 1.0 / x.cos(),
            Func::Csc => 1.0 / x.sin(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Ln => x.ln(),
            Func::Exp => x.exp(),
        }
    }

    fn python_name(self) -> &'static str {
        match self {
            Func::Sqrt => "sqrt",
            Func::Abs => "Abs",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Cot => "cot",
            Func::Sec => "sec",
            Func::Csc => "csc",
            Func::Asin => "asin",
            Func::Acos => "acos",
            Func::Atan => "atan",
            Func::Ln => "log",
            Func::Exp => "exp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Constant {
    Pi,
    E,
    Infinity,
}

/// A parsed scalar answer.
#[derive(Debug, Clone)]
enum Expr {
    /// A literal; `text` holds only ASCII digits, at most one `.` and an `e[-]digits` exponent.
    Num {
        text: String,
        exact: Option<Rat>,
        value: f64,
    },
    /// A variable; the name holds only ASCII letters, digits and `_`.
    Var(String),
    Const(Constant),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
    /// `Root(index, radicand)`.
    Root(Box<Expr>, Box<Expr>),
    /// `Log(base, argument)`.
    Log(Box<Expr>, Box<Expr>),
    Factorial(Box<Expr>),
}

impl Expr {
    fn exact(&self) -> Option<Rat> {
        match self {
            Expr::Num { exact, .. } => *exact,
            Expr::Neg(e) => e.exact()?.neg(),
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.exact()?, b.exact()?);
                match op {
                    Op::Add => x.add(y),
                    Op::Sub => x.sub(y),
                    Op::Mul => x.mul(y),
                    Op::Div => x.div(y),
                    Op::Pow => x.pow(y),
                }
            }
            Expr::Call(Func::Sqrt, e) => e.exact()?.sqrt(),
            Expr::Call(Func::Abs, e) => {
                let x = e.exact()?;
                if x.num < 0 { x.neg() } else { Some(x) }
            }
            Expr::Factorial(e) => {
                let x = e.exact()?;
                if x.den != 1 || !(0..=MAX_EXACT_FACTORIAL).contains(&x.num) {
                    return None;
                }
                (1..=x.num).try_fold(Rat::ONE, |acc, k| acc.mul(Rat::int(k)))
            }
            _ => None,
        }
    }

    fn eval(&self, env: &[(&str, f64)]) -> f64 {
        match self {
            Expr::Num { value, .. } => *value,
            Expr::Var(name) => env
                .iter()
                .find(|(k, _)| k == name)
                .map_or(f64::NAN, |(_, v)| *v),
            Expr::Const(Constant::Pi) => std::f64::consts::PI,
            Expr::Const(Constant::E) => std::f64::consts::E,
            Expr::Const(Constant::Infinity) => f64::INFINITY,
            Expr::Neg(e) => -e.eval(env),
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(env), b.eval(env));
                match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    Op::Mul => x * y,
                    Op::Div => x / y,
                    Op::Pow => x.powf(y),
                }
            }
            Expr::Call(f, e) => f.apply(e.eval(env)),
            Expr::Root(n, e) => {
                let (n, x) = (n.eval(env), e.eval(env));
                let odd = n.fract() == 0.0 && n.rem_euclid(2.0) == 1.0;
                if x < 0.0 && odd {
                    -(-x).powf(1.0 / n)
                } else {
                    x.powf(1.0 / n)
                }
            }
            Expr::Log(b, e) => e.eval(env).ln() / b.eval(env).ln(),
            Expr::Factorial(e) => {
                let x = e.eval(env);
                if x.fract() != 0.0 || !(0.0..=MAX_FLOAT_FACTORIAL).contains(&x) {
                    return f64::NAN;
                }
                let mut acc = 1.0;
                let mut k = 2.0;
                while k <= x {
                    acc *= k;
                    k += 1.0;
                }
                acc
            }
        }
    }

    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Num { .. } | Expr::Var(_) | Expr::Const(_) => Vec::new(),
            Expr::Neg(e) | Expr::Call(_, e) | Expr::Factorial(e) => vec![e],
            Expr::Bin(_, a, b) | Expr::Root(a, b) | Expr::Log(a, b) => vec![a, b],
        }
    }

    fn vars<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        if let Expr::Var(name) = self {
            out.insert(name);
        }
        for child in self.children() {
            child.vars(out);
        }
    }

    fn any(&self, pred: &dyn Fn(&Expr) -> bool) -> bool {
        pred(self) || self.children().into_iter().any(|c| c.any(pred))
    }

    fn has_decimal(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Num { text, .. } if text.contains('.')))
    }

    fn has_infinity(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Const(Constant::Infinity)))
    }

    /// Prints the expression as `sympify`-able Python; the output uses only digits, `.`,
    /// operators, parentheses, whitelisted sympy names and `Symbol('..')` with a safe name.
    fn to_python(&self, out: &mut String) {
        match self {
            Expr::Num { text, exact, .. } => {
                if let Some(r) = exact.filter(|r| r.den == 1 && !text.contains('.')) {
                    let _ = write!(out, "{}", r.num);
                } else if text.contains(['.', 'e']) {
                    out.push_str("Rational('");
                    out.push_str(text);
                    out.push_str("')");
                } else {
                    let digits = text.trim_start_matches('0');
                    out.push_str(if digits.is_empty() { "0" } else { digits });
                }
            }
            Expr::Var(name) => {
                let bare = name.len() == 1 && !SYMPY_RESERVED_LETTERS.contains(name.as_str());
                if name == IMAGINARY_UNIT {
                    out.push('I');
                } else if bare {
                    out.push_str(name);
                } else {
                    let _ = write!(out, "Symbol('{name}')");
                }
            }
            Expr::Const(Constant::Pi) => out.push_str("pi"),
            Expr::Const(Constant::E) => out.push('E'),
            Expr::Const(Constant::Infinity) => out.push_str("oo"),
            Expr::Neg(e) => {
                out.push_str("(-");
                e.to_python(out);
                out.push(')');
            }
            Expr::Bin(op, a, b) => {
                let sym = match op {
                    Op::Add => " + ",
                    Op::Sub => " - ",
                    Op::Mul => "*",
                    Op::Div => "/",
                    Op::Pow => "**",
                };
                out.push('(');
                a.to_python(out);
                out.push_str(sym);
                b.to_python(out);
                out.push(')');
            }
            Expr::Call(f, e) => {
                out.push_str(f.python_name());
                out.push('(');
                e.to_python(out);
                out.push(')');
            }
            Expr::Root(n, e) | Expr::Log(n, e) => {
                out.push_str(if matches!(self, Expr::Root(..)) {
                    "root("
                } else {
                    "log("
                });
                e.to_python(out);
                out.push_str(", ");
                n.to_python(out);
                out.push(')');
            }
            Expr::Factorial(e) => {
                out.push_str("factorial(");
                e.to_python(out);
                out.push(')');
            }
        }
    }
}

/// Recursive-descent parser for normalized scalar LaTeX (`2x^2+\frac{\sqrt3}{2}\pi`), with
/// implicit multiplication; `None` means "not something this module understands".
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    nodes: usize,
}

/// Whether `arg` (a `\frac` argument without braces or spaces) starts like a differential:
/// `d`, `dx`, `d^2`, `\partial`, `\partialx`, `\mathrm{d}x`, `\mathrmd`.
fn is_differential(arg: &str) -> bool {
    let rest = arg
        .strip_prefix("\\partial")
        .or_else(|| arg.strip_prefix("\\mathrmd"))
        .or_else(|| arg.strip_prefix('d'));
    match rest {
        None => false,
        Some(rest) => {
            rest.is_empty()
                || rest.starts_with('^')
                || (rest.len() <= 6 && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '^'))
        }
    }
}

fn parse_expr(text: &str) -> Option<Expr> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    let e = p.parse_sum()?;
    p.skip_ws();
    (p.pos == p.chars.len()).then_some(e)
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn node(&mut self, e: Expr) -> Option<Expr> {
        self.nodes += 1;
        (self.nodes <= MAX_EXPR_NODES).then_some(e)
    }

    fn guarded(&mut self, f: fn(&mut Parser) -> Option<Expr>) -> Option<Expr> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return None;
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn parse_sum(&mut self) -> Option<Expr> {
        self.guarded(|p| {
            let mut lhs = p.parse_term()?;
            loop {
                p.skip_ws();
                let op = match p.peek() {
                    Some('+') => Op::Add,
                    Some('-') => Op::Sub,
                    _ => return Some(lhs),
                };
                p.pos += 1;
                let rhs = p.parse_term()?;
                lhs = p.node(Expr::Bin(op, Box::new(lhs), Box::new(rhs)))?;
            }
        })
    }

    fn parse_term(&mut self) -> Option<Expr> {
        let mut lhs = self.parse_unary()?;
        loop {
            self.skip_ws();
            let (op, rhs) = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    (Op::Mul, self.parse_unary()?)
                }
                Some('/') => {
                    self.pos += 1;
                    (Op::Div, self.parse_unary()?)
                }
                _ if self.starts_operand() => (Op::Mul, self.parse_power()?),
                _ => return Some(lhs),
            };
            lhs = self.node(Expr::Bin(op, Box::new(lhs), Box::new(rhs)))?;
        }
    }

    fn starts_operand(&self) -> bool {
        match self.peek() {
            Some(c) if c.is_ascii_alphanumeric() || c == '(' || c == '{' => true,
            Some('.') => self.peek_at(1).is_some_and(|c| c.is_ascii_digit()),
            Some('\\') => self.peek_at(1).is_some_and(|c| c.is_ascii_alphabetic()),
            _ => false,
        }
    }

    fn parse_unary(&mut self) -> Option<Expr> {
        self.guarded(|p| {
            p.skip_ws();
            match p.peek() {
                Some('-') => {
                    p.pos += 1;
                    let e = p.parse_unary()?;
                    p.node(Expr::Neg(Box::new(e)))
                }
                Some('+') => {
                    p.pos += 1;
                    p.parse_unary()
                }
                _ => p.parse_power(),
            }
        })
    }

    fn parse_power(&mut self) -> Option<Expr> {
        let base = self.parse_postfix()?;
        self.skip_ws();
        if self.peek() != Some('^') {
            return Some(base);
        }
        self.pos += 1;
        let exponent = self.parse_exponent()?;
        self.node(Expr::Bin(Op::Pow, Box::new(base), Box::new(exponent)))
    }

    /// A superscript: `{..}`, one digit (`x^23` is `x^2 3` in LaTeX), or one primary.
    fn parse_exponent(&mut self) -> Option<Expr> {
        self.guarded(|p| {
            p.skip_ws();
            match p.peek() {
                Some('-') => {
                    p.pos += 1;
                    let e = p.parse_exponent()?;
                    p.node(Expr::Neg(Box::new(e)))
                }
                Some(c) if c.is_ascii_digit() => {
                    p.pos += 1;
                    p.number(c.to_string())
                }
                _ => p.parse_primary(),
            }
        })
    }

    fn parse_postfix(&mut self) -> Option<Expr> {
        let mut e = self.parse_primary()?;
        while self.peek() == Some('!') {
            self.pos += 1;
            e = self.node(Expr::Factorial(Box::new(e)))?;
        }
        Some(e)
    }

    fn parse_primary(&mut self) -> Option<Expr> {
        self.guarded(|p| {
            p.skip_ws();
            match p.peek()? {
                '0'..='9' | '.' => p.parse_number(),
                '(' => p.group(')'),
                '{' => p.group('}'),
                '[' => p.group(']'),
                '|' => {
                    p.pos += 1;
                    let e = p.parse_sum()?;
                    if !p.eat('|') {
                        return None;
                    }
                    p.node(Expr::Call(Func::Abs, Box::new(e)))
                }
                '\\' => p.parse_command(),
                c if c.is_ascii_alphabetic() => p.parse_word(),
                _ => None,
            }
        })
    }

    fn group(&mut self, close: char) -> Option<Expr> {
        self.pos += 1;
        let e = self.parse_sum()?;
        self.eat(close).then_some(e)
    }

    fn parse_number(&mut self) -> Option<Expr> {
        let mut text = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            text.push(c);
            self.pos += 1;
        }
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            text.push('.');
            self.pos += 1;
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                text.push(c);
                self.pos += 1;
            }
        }
        if text.is_empty() {
            return None;
        }
        // Scientific notation `1e-5`: an `e` followed by digits is an exponent, not Euler's e.
        let sign = matches!(self.peek_at(1), Some('+' | '-'));
        let digit_at = if sign { 2 } else { 1 };
        if matches!(self.peek(), Some('e' | 'E'))
            && self.peek_at(digit_at).is_some_and(|c| c.is_ascii_digit())
        {
            text.push('e');
            if self.peek_at(1) == Some('-') {
                text.push('-');
            }
            self.pos += digit_at;
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                text.push(c);
                self.pos += 1;
            }
        }
        self.number(text)
    }

    fn number(&mut self, text: String) -> Option<Expr> {
        let value: f64 = text.parse().ok()?;
        let exact = Rat::from_decimal(&text);
        self.node(Expr::Num { text, exact, value })
    }

    fn parse_word(&mut self) -> Option<Expr> {
        for (name, func) in PLAIN_FUNCTIONS {
            if self.matches_word(name) && self.peek_at(name.len()) == Some('(') {
                self.pos += name.len();
                let arg = self.parse_primary()?;
                return self.node(Expr::Call(func, Box::new(arg)));
            }
        }
        if self.matches_word("pi") {
            self.pos += 2;
            return self.node(Expr::Const(Constant::Pi));
        }
        let letter = self.peek()?;
        self.pos += 1;
        if letter == 'e' && self.peek() != Some('_') {
            return self.node(Expr::Const(Constant::E));
        }
        let name = self.with_subscript(letter.to_string())?;
        self.node(Expr::Var(name))
    }

    fn matches_word(&self, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(k, c)| self.peek_at(k) == Some(c))
    }

    /// Appends a `_1` / `_{12}` subscript to a variable name, if one follows.
    fn with_subscript(&mut self, mut name: String) -> Option<String> {
        if self.peek() != Some('_') {
            return Some(name);
        }
        self.pos += 1;
        name.push('_');
        if self.peek() == Some('{') {
            self.pos += 1;
            while let Some(c) = self.peek().filter(char::is_ascii_alphanumeric) {
                name.push(c);
                self.pos += 1;
            }
            if self.peek() != Some('}') {
                return None;
            }
            self.pos += 1;
        } else {
            let c = self.peek().filter(char::is_ascii_alphanumeric)?;
            name.push(c);
            self.pos += 1;
        }
        (!name.ends_with('_')).then_some(name)
    }

    fn parse_command(&mut self) -> Option<Expr> {
        self.pos += 1; // the backslash
        let mut name = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_alphabetic) {
            name.push(c);
            self.pos += 1;
        }
        match name.as_str() {
            "frac" => {
                let start = self.pos;
                let num = self.parse_arg()?;
                let middle = self.pos;
                let den = self.parse_arg()?;
                // `\frac{d}{dx}` and `\frac{\partial^2}{\partial x^2}` are operators, not
                // quotients: this parser does not know calculus, so it gives up (undecided)
                // rather than read them as `d / (d x)`.
                let text = |from: usize, to: usize| -> String {
                    self.chars[from..to]
                        .iter()
                        .filter(|c| !c.is_whitespace() && !matches!(c, '{' | '}'))
                        .collect()
                };
                if is_differential(&text(start, middle)) && is_differential(&text(middle, self.pos))
                {
                    return None;
                }
                self.node(Expr::Bin(Op::Div, Box::new(num), Box::new(den)))
            }
            "sqrt" => {
                if self.eat('[') {
                    let index = self.parse_sum()?;
                    if !self.eat(']') {
                        return None;
                    }
                    let arg = self.parse_arg()?;
                    self.node(Expr::Root(Box::new(index), Box::new(arg)))
                } else {
                    let arg = self.parse_arg()?;
                    self.node(Expr::Call(Func::Sqrt, Box::new(arg)))
                }
            }
            "pi" => self.node(Expr::Const(Constant::Pi)),
            "infty" | "infinity" => self.node(Expr::Const(Constant::Infinity)),
            "log" if self.peek() == Some('_') => {
                self.pos += 1;
                let base = self.parse_arg()?;
                let arg = self.parse_function_arg()?;
                self.node(Expr::Log(Box::new(base), Box::new(arg)))
            }
            _ => {
                if let Some(func) = Func::from_command(&name) {
                    self.skip_ws();
                    let power = if self.peek() == Some('^') {
                        self.pos += 1;
                        Some(self.parse_exponent()?)
                    } else {
                        None
                    };
                    let arg = self.parse_function_arg()?;
                    let call = self.node(Expr::Call(func, Box::new(arg)))?;
                    return match power {
                        Some(p) => self.node(Expr::Bin(Op::Pow, Box::new(call), Box::new(p))),
                        None => Some(call),
                    };
                }
                if in_list(GREEK, &name) {
                    let name = self.with_subscript(name)?;
                    return self.node(Expr::Var(name));
                }
                None
            }
        }
    }

    /// A command argument: a braced group or a single digit, letter or command (`\frac12`).
    fn parse_arg(&mut self) -> Option<Expr> {
        self.skip_ws();
        match self.peek()? {
            '{' => self.parse_primary(),
            c if c.is_ascii_digit() => {
                self.pos += 1;
                self.number(c.to_string())
            }
            c if c.is_ascii_alphabetic() => {
                self.pos += 1;
                if c == 'e' {
                    self.node(Expr::Const(Constant::E))
                } else {
                    self.node(Expr::Var(c.to_string()))
                }
            }
            '\\' => self.parse_primary(),
            _ => None,
        }
    }

    /// The argument of `\sin`, `\ln`, ...: a group, or the next power (`\ln 2`, `\sin x`).
    fn parse_function_arg(&mut self) -> Option<Expr> {
        self.skip_ws();
        match self.peek()? {
            '(' | '{' => self.parse_primary(),
            _ => self.parse_power(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structure

/// The shape of a normalized answer; elements are normalized element texts.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Choice(char),
    Matrix(Vec<Vec<String>>),
    Interval {
        left: char,
        right: char,
        lo: String,
        hi: String,
    },
    Tuple(Vec<String>),
    Set(Vec<String>),
    List(Vec<String>),
    Union(Vec<String>),
    Equation(String, String),
    Scalar(String),
    TooBig,
}

fn choice_letter(s: &str) -> Option<char> {
    let inner = s
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .or_else(|| s.strip_suffix(')'))
        .unwrap_or(s);
    let mut chars = inner.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ 'A'..='E'), None) => Some(c),
        _ => None,
    }
}

/// The choice letter a prediction starts with, as in `(B) 12`.
fn leading_choice_letter(s: &str) -> Option<char> {
    choice_letter(s).or_else(|| {
        let rest = s.strip_prefix('(')?;
        let mut chars = rest.chars();
        match (chars.next(), chars.next()) {
            (Some(c @ 'A'..='E'), Some(')')) => Some(c),
            _ => None,
        }
    })
}

/// Splits `s` at `sep` where no bracket of any kind is open.
fn split_top_level<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut skip_to = 0;
    for (i, c) in s.char_indices() {
        if i < skip_to {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && s.get(i..).is_some_and(|r| r.starts_with(sep)) {
            parts.push(s.get(start..i).unwrap_or(""));
            start = i + sep.len();
            skip_to = start;
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// Whether the bracket at byte `open` of `s` closes exactly at its last char.
fn closes_at_end(s: &str, open: usize) -> bool {
    let mut depth = 0usize;
    let Some(body) = s.get(open..) else {
        return false;
    };
    for (i, c) in body.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return open + i + c.len_utf8() == s.len();
                }
            }
            _ => {}
        }
    }
    false
}

fn elements(parts: Vec<&str>) -> Vec<String> {
    parts
        .into_iter()
        .map(|p| strip_assignment(p.trim()).to_string())
        .collect()
}

fn classify(s: &str) -> Shape {
    if let Some(c) = choice_letter(s) {
        return Shape::Choice(c);
    }
    let shape = classify_structure(s);
    let too_big = match &shape {
        Shape::Tuple(v) | Shape::Set(v) | Shape::List(v) | Shape::Union(v) => {
            v.len() > MAX_ELEMENTS
        }
        Shape::Matrix(rows) => rows.iter().map(Vec::len).sum::<usize>() > MAX_ELEMENTS,
        _ => false,
    };
    if too_big { Shape::TooBig } else { shape }
}

fn classify_structure(s: &str) -> Shape {
    if let Some(m) = parse_matrix(s) {
        return m;
    }
    if s.matches("\\pm").count() == 1 && !s.contains("\\pmod") {
        return Shape::List(vec![s.replacen("\\pm", "+", 1), s.replacen("\\pm", "-", 1)]);
    }
    let union = split_top_level(s, "\\cup");
    if union.len() > 1 {
        return Shape::Union(elements(union));
    }
    if s.len() >= 4 && s.starts_with("\\{") && s.ends_with("\\}") && closes_at_end(s, 1) {
        let inner = s.get(2..s.len() - 2).unwrap_or("");
        if inner.trim().is_empty() {
            return Shape::Set(Vec::new());
        }
        return Shape::Set(elements(split_top_level(inner, ",")));
    }
    let first = s.chars().next();
    let last = s.chars().next_back();
    if let (Some(left @ ('(' | '[')), Some(right @ (')' | ']'))) = (first, last)
        && s.len() >= 2
        && closes_at_end(s, 0)
    {
        {
            let inner = s.get(1..s.len() - 1).unwrap_or("");
            let parts = elements(split_top_level(inner, ","));
            if parts.len() == 2 && (left == '[' || right == ']') {
                let mut parts = parts.into_iter();
                let lo = parts.next().unwrap_or_default();
                let hi = parts.next().unwrap_or_default();
                return Shape::Interval {
                    left,
                    right,
                    lo,
                    hi,
                };
            }
            if parts.len() >= 2 {
                return Shape::Tuple(parts);
            }
        }
    }
    let list = split_top_level(s, ",");
    if list.len() > 1 {
        return Shape::List(elements(list));
    }
    let sides = split_top_level(s, "=");
    if let [lhs, rhs] = sides.as_slice()
        && !lhs.trim().is_empty()
        && !rhs.trim().is_empty()
    {
        return Shape::Equation(lhs.trim().to_string(), rhs.trim().to_string());
    }
    Shape::Scalar(s.to_string())
}

fn parse_matrix(s: &str) -> Option<Shape> {
    let rest = s.strip_prefix("\\begin{")?;
    let (env, body) = rest.split_once('}')?;
    if !in_list(MATRIX_ENVS, env) {
        return None;
    }
    let body = body.strip_suffix(&format!("\\end{{{env}}}"))?;
    let rows: Vec<Vec<String>> = split_top_level(body, "\\\\")
        .into_iter()
        .filter(|row| !row.trim().is_empty())
        .map(|row| elements(split_top_level(row, "&")))
        .collect();
    Some(Shape::Matrix(rows))
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// What the comparison of one pair of answers knows besides their texts.
struct Ctx {
    opts: EquivOptions,
    gold_percent: bool,
    pred_percent: bool,
}

/// Decides whether `pred` is equivalent to the reference answer `gold`, with the default
/// [`EquivOptions`]; see the module doc for the rules.
///
/// # Examples
///
/// ```ignore
/// assert_eq!(equivalent("\\frac{1}{2}", "0.5"), Verdict::Equal);
/// assert_eq!(equivalent("(1,2)", "[1,2]"), Verdict::NotEqual);
/// ```
pub fn equivalent(gold: &str, pred: &str) -> Verdict {
    equivalent_with(gold, pred, &EquivOptions::default())
}

/// [`equivalent`] with explicit options (tolerances, percent handling, sampling).
pub fn equivalent_with(gold: &str, pred: &str, opts: &EquivOptions) -> Verdict {
    let (Some(mut g), Some(mut p)) = (normalize(gold), normalize(pred)) else {
        return if gold.trim() == pred.trim() {
            Verdict::Equal
        } else {
            Verdict::Undecided
        };
    };
    if g.text.is_empty() {
        return Verdict::Undecided;
    }
    if p.text.is_empty() {
        return Verdict::NotEqual;
    }
    align_equations(&mut g, &mut p);
    let ctx = Ctx {
        opts: *opts,
        gold_percent: g.percent,
        pred_percent: p.percent,
    };
    compare(&g.text, &p.text, &ctx, 0)
}

fn verdict(equal: bool) -> Verdict {
    if equal {
        Verdict::Equal
    } else {
        Verdict::NotEqual
    }
}

fn compare(g: &str, p: &str, ctx: &Ctx, depth: usize) -> Verdict {
    use Shape::*;
    if g == p {
        return Verdict::Equal;
    }
    if depth > MAX_STRUCTURE_DEPTH {
        return Verdict::Undecided;
    }
    let gold = classify(g);
    if let Choice(a) = gold {
        return verdict(leading_choice_letter(p) == Some(a));
    }
    let rec = |a: &str, b: &str| compare(a, b, ctx, depth + 1);
    match (gold, classify(p)) {
        (TooBig, _) | (_, TooBig) => Verdict::Undecided,
        (_, Choice(_)) => Verdict::NotEqual,
        (Matrix(a), Matrix(b)) => {
            let dims = |m: &Vec<Vec<String>>| m.iter().map(Vec::len).collect::<Vec<_>>();
            if dims(&a) != dims(&b) {
                return Verdict::NotEqual;
            }
            ordered(&a.concat(), &b.concat(), &rec)
        }
        (Matrix(m), Tuple(t)) if is_vector(&m) => ordered(&m.concat(), &t, &rec),
        (Tuple(t), Matrix(m)) if is_vector(&m) => ordered(&t, &m.concat(), &rec),
        (
            Interval {
                left: l1,
                right: r1,
                lo: lo1,
                hi: hi1,
            },
            Interval {
                left: l2,
                right: r2,
                lo: lo2,
                hi: hi2,
            },
        ) => {
            if (l1, r1) != (l2, r2) {
                return Verdict::NotEqual;
            }
            ordered(&[lo1, hi1], &[lo2, hi2], &rec)
        }
        (Tuple(a), Tuple(b) | List(b)) | (List(a), Tuple(b)) => ordered(&a, &b, &rec),
        (Set(a) | List(a), Set(b) | List(b)) | (Union(a), Union(b)) => unordered(&a, &b, &rec),
        (Set(a), Scalar(s)) if a.len() == 1 => a.first().map_or(Verdict::Undecided, |x| rec(x, &s)),
        (Scalar(s), Set(b)) if b.len() == 1 => b.first().map_or(Verdict::Undecided, |x| rec(&s, x)),
        (Equation(l1, r1), Equation(l2, r2)) => compare_equations((&l1, &r1), (&l2, &r2), ctx),
        (Scalar(a), Scalar(b)) => compare_scalars(&a, &b, ctx),
        (Equation(..), Scalar(_)) | (Scalar(_), Equation(..)) => Verdict::Undecided,
        _ => Verdict::NotEqual,
    }
}

fn is_vector(m: &[Vec<String>]) -> bool {
    m.len() == 1 || m.iter().all(|row| row.len() == 1)
}

fn ordered(a: &[String], b: &[String], rec: &dyn Fn(&str, &str) -> Verdict) -> Verdict {
    if a.len() != b.len() {
        return Verdict::NotEqual;
    }
    let mut undecided = false;
    for (x, y) in a.iter().zip(b) {
        match rec(x, y) {
            Verdict::NotEqual => return Verdict::NotEqual,
            Verdict::Undecided => undecided = true,
            Verdict::Equal => {}
        }
    }
    if undecided {
        Verdict::Undecided
    } else {
        Verdict::Equal
    }
}

/// Matches each gold element with an unused equal predicted one (greedy; equality is an
/// equivalence, so greedy matching is exact when every comparison is decided).
fn unordered(a: &[String], b: &[String], rec: &dyn Fn(&str, &str) -> Verdict) -> Verdict {
    if a.len() != b.len() {
        return Verdict::NotEqual;
    }
    let mut used = vec![false; b.len()];
    let mut undecided = false;
    for x in a {
        let mut found = false;
        let mut maybe = false;
        for (j, y) in b.iter().enumerate() {
            if used.get(j).copied().unwrap_or(true) {
                continue;
            }
            match rec(x, y) {
                Verdict::Equal => {
                    if let Some(u) = used.get_mut(j) {
                        *u = true;
                    }
                    found = true;
                    break;
                }
                Verdict::Undecided => maybe = true,
                Verdict::NotEqual => {}
            }
        }
        if !found {
            if !maybe {
                return Verdict::NotEqual;
            }
            undecided = true;
        }
    }
    if undecided {
        Verdict::Undecided
    } else {
        Verdict::Equal
    }
}

/// Letters only, at least two: a word answer such as `yes` or a name.
fn is_word(s: &str) -> bool {
    s.len() >= 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) && s != "pi"
}

fn is_plain_number(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'/')
}

fn compare_scalars(g: &str, p: &str, ctx: &Ctx) -> Verdict {
    let (gw, pw) = (is_word(g), is_word(p));
    if gw && pw {
        return verdict(g.eq_ignore_ascii_case(p));
    }
    if (gw && is_plain_number(p)) || (pw && is_plain_number(g)) {
        return Verdict::NotEqual;
    }
    if gw || pw {
        return Verdict::Undecided;
    }
    let (Some(ge), Some(pe)) = (parse_expr(g), parse_expr(p)) else {
        return Verdict::Undecided;
    };
    let mut verdicts = vec![compare_exprs(&ge, &pe, Rat::ONE, Rat::ONE, &ctx.opts)];
    if ctx.opts.percent_as_fraction && ctx.gold_percent != ctx.pred_percent {
        let (gs, ps) = if ctx.gold_percent {
            (Rat::HUNDREDTH, Rat::ONE)
        } else {
            (Rat::ONE, Rat::HUNDREDTH)
        };
        verdicts.push(compare_exprs(&ge, &pe, gs, ps, &ctx.opts));
    }
    if verdicts.contains(&Verdict::Equal) {
        Verdict::Equal
    } else if verdicts.iter().all(|v| *v == Verdict::NotEqual) {
        Verdict::NotEqual
    } else {
        Verdict::Undecided
    }
}

fn close(a: f64, b: f64, relative: f64, absolute: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= absolute.max(relative * a.abs().max(b.abs())) * TOLERANCE_SLACK
}

fn all_vars<'a>(exprs: &[&'a Expr]) -> Vec<&'a str> {
    let mut vars = BTreeSet::new();
    for e in exprs {
        e.vars(&mut vars);
    }
    vars.into_iter().collect()
}

/// Variable assignments for sample round `round`.
fn sample_env<'a>(vars: &[&'a str], round: usize) -> Vec<(&'a str, f64)> {
    vars.iter()
        .enumerate()
        .map(|(i, v)| {
            let base = SAMPLE_VALUES
                .get((round + 3 * i) % SAMPLE_VALUES.len())
                .copied()
                .unwrap_or(1.0);
            (*v, base + 0.01 * i as f64)
        })
        .collect()
}

fn compare_exprs(g: &Expr, p: &Expr, g_scale: Rat, p_scale: Rat, opts: &EquivOptions) -> Verdict {
    let vars = all_vars(&[g, p]);
    let (rel, abs) = (opts.relative_tolerance, opts.absolute_tolerance);
    if vars.is_empty() {
        let exact = |e: &Expr, scale: Rat| e.exact().and_then(|x| x.mul(scale));
        if let (Some(a), Some(b)) = (exact(g, g_scale), exact(p, p_scale)) {
            if a == b {
                return Verdict::Equal;
            }
            if !g.has_decimal() && !p.has_decimal() {
                return Verdict::NotEqual;
            }
        }
        let a = g.eval(&[]) * g_scale.to_f64();
        let b = p.eval(&[]) * p_scale.to_f64();
        let overflowed = |x: f64, e: &Expr| x.is_infinite() && !e.has_infinity();
        if a.is_nan() || b.is_nan() || overflowed(a, g) || overflowed(b, p) {
            return Verdict::Undecided;
        }
        return verdict(close(a, b, rel, abs));
    }
    if !opts.numeric_identity {
        return Verdict::Undecided;
    }
    let mut agreeing = 0;
    let mut unsure = false;
    for round in 0..SAMPLE_VALUES.len() {
        let env = sample_env(&vars, round);
        let a = g.eval(&env) * g_scale.to_f64();
        let b = p.eval(&env) * p_scale.to_f64();
        let usable = |x: f64| x.is_finite() && x.abs() <= MAX_SAMPLE_MAGNITUDE;
        // A point where both sides vanish (or underflow: `x^{1000}` at 0.5) tells nothing.
        if !usable(a) || !usable(b) || (a.abs() <= abs && b.abs() <= abs) {
            continue;
        }
        if !close(a, b, rel, abs) {
            // Polynomials in `i` that differ may still agree once `i^2 = -1` (`e^{i\pi}` vs `-1`).
            return if vars.contains(&IMAGINARY_UNIT) {
                Verdict::Undecided
            } else {
                Verdict::NotEqual
            };
        }
        if close(a, b, IDENTITY_RELATIVE_TOLERANCE, abs) {
            agreeing += 1;
        } else {
            unsure = true;
        }
    }
    if agreeing >= MIN_IDENTITY_POINTS && !unsure {
        Verdict::Equal
    } else {
        Verdict::Undecided
    }
}

/// Equations are equal when their sides match, or when `lhs - rhs` agree up to a constant
/// factor (sign included) at the sample points.
fn compare_equations(g: (&str, &str), p: (&str, &str), ctx: &Ctx) -> Verdict {
    let parsed = (
        parse_expr(g.0),
        parse_expr(g.1),
        parse_expr(p.0),
        parse_expr(p.1),
    );
    let (Some(l1), Some(r1), Some(l2), Some(r2)) = parsed else {
        return Verdict::Undecided;
    };
    let one = Rat::ONE;
    if compare_exprs(&l1, &l2, one, one, &ctx.opts) == Verdict::Equal {
        return compare_exprs(&r1, &r2, one, one, &ctx.opts);
    }
    let d1 = Expr::Bin(Op::Sub, Box::new(l1), Box::new(r1));
    let d2 = Expr::Bin(Op::Sub, Box::new(l2), Box::new(r2));
    if proportional(&d1, &d2) {
        Verdict::Equal
    } else {
        Verdict::Undecided
    }
}

fn proportional(a: &Expr, b: &Expr) -> bool {
    let vars = all_vars(&[a, b]);
    let mut ratio: Option<f64> = None;
    let mut points = 0;
    for round in 0..SAMPLE_VALUES.len() {
        let env = sample_env(&vars, round);
        let (x, y) = (a.eval(&env), b.eval(&env));
        if !x.is_finite() || !y.is_finite() || y.abs() < DEFAULT_ABSOLUTE_TOLERANCE {
            continue;
        }
        let r = x / y;
        match ratio {
            None => ratio = Some(r),
            Some(first) if !close(first, r, IDENTITY_RELATIVE_TOLERANCE, 0.0) => return false,
            Some(_) => {}
        }
        points += 1;
    }
    points >= MIN_IDENTITY_POINTS && ratio.is_some_and(|r| r.abs() > DEFAULT_ABSOLUTE_TOLERANCE)
}

// ---------------------------------------------------------------------------------------------
// Sympy fallback

/// Converts a scalar LaTeX answer to a Python expression for `sympy.sympify`
/// (`\frac{a}{b}` → `(a/b)`, `x^2` → `(x**2)`, `\sqrt{x}` → `sqrt(x)`, `\pi` → `pi`,
/// `2x` → `(2*x)`); `None` if it is not a scalar this module can parse (sets, equations,
/// unknown commands). The output contains only numbers, operators, parentheses, sympy function
/// and constant names and `Symbol('name')` with an alphanumeric name, so it is safe to evaluate.
pub fn latex_to_python(expr: &str) -> Option<String> {
    let normalized = normalize(expr)?;
    element_to_python(&normalized.text)
}

fn element_to_python(text: &str) -> Option<String> {
    let e = parse_expr(strip_assignment(text))?;
    let mut out = String::new();
    e.to_python(&mut out);
    Some(out)
}

/// Quotes `s` as a Python string literal, escaping everything but printable ASCII.
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        let code = u32::from(c);
        let _ = match c {
            '\\' => write!(out, "\\\\"),
            '\'' => write!(out, "\\'"),
            ' '..='~' => write!(out, "{c}"),
            _ if code < 0x100 => write!(out, "\\x{code:02x}"),
            _ if code < 0x1_0000 => write!(out, "\\u{code:04x}"),
            _ => write!(out, "\\U{code:08x}"),
        };
    }
    out.push('\'');
    out
}

/// A list of `(latex, python-or-None)` element pairs as Python source.
fn py_items(items: &[(String, Option<String>)]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|(latex, python)| {
            let python = python.as_deref().map_or_else(|| "None".to_string(), py_str);
            format!("({}, {})", py_str(latex), python)
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn items(texts: &[String]) -> Vec<(String, Option<String>)> {
    texts
        .iter()
        .map(|t| (t.clone(), element_to_python(t)))
        .collect()
}

fn equation_item(lhs: &str, rhs: &str) -> (String, Option<String>) {
    let python = match (element_to_python(lhs), element_to_python(rhs)) {
        (Some(l), Some(r)) => Some(format!("({l} - ({r}))")),
        _ => None,
    };
    (format!("({lhs})-({rhs})"), python)
}

/// How the Python program compares the element lists.
enum Plan {
    Decided(Verdict),
    Compare {
        mode: &'static str,
        golds: Vec<Vec<(String, Option<String>)>>,
        pred: Vec<(String, Option<String>)>,
    },
}

fn plan(gold: &str, pred: &str) -> Plan {
    use Shape::*;
    let (Some(mut g), Some(mut p)) = (normalize(gold), normalize(pred)) else {
        return Plan::Decided(Verdict::Undecided);
    };
    align_equations(&mut g, &mut p);
    let compare_plan = |mode, gold: Vec<(String, Option<String>)>, pred| Plan::Compare {
        mode,
        golds: vec![gold],
        pred,
    };
    match (classify(&g.text), classify(&p.text)) {
        (Scalar(a), Scalar(b)) => {
            let gold_item = (a.clone(), element_to_python(&a));
            let mut golds = vec![vec![gold_item.clone()]];
            if g.percent != p.percent {
                let scaled = |(latex, python): (String, Option<String>), up: bool| {
                    if up {
                        (
                            format!("100*({latex})"),
                            python.map(|x| format!("(100*{x})")),
                        )
                    } else {
                        (
                            format!("\\frac{{{latex}}}{{100}}"),
                            python.map(|x| format!("({x}/100)")),
                        )
                    }
                };
                // Gold `50%` also matches `0.5`; gold `0.5` also matches `50%`.
                golds.push(vec![scaled(gold_item, p.percent)]);
            }
            Plan::Compare {
                mode: "ordered",
                golds,
                pred: vec![(b.clone(), element_to_python(&b))],
            }
        }
        (Tuple(a), Tuple(b) | List(b)) | (List(a), Tuple(b)) => {
            compare_plan("ordered", items(&a), items(&b))
        }
        (Matrix(a), Matrix(b)) if a.iter().map(Vec::len).eq(b.iter().map(Vec::len)) => {
            compare_plan("ordered", items(&a.concat()), items(&b.concat()))
        }
        (
            Interval {
                left: l1,
                right: r1,
                lo: a1,
                hi: b1,
            },
            Interval {
                left: l2,
                right: r2,
                lo: a2,
                hi: b2,
            },
        ) if (l1, r1) == (l2, r2) => compare_plan("ordered", items(&[a1, b1]), items(&[a2, b2])),
        (Set(a) | List(a), Set(b) | List(b)) => compare_plan("unordered", items(&a), items(&b)),
        (Equation(l1, r1), Equation(l2, r2)) => compare_plan(
            "equation",
            vec![equation_item(&l1, &r1)],
            vec![equation_item(&l2, &r2)],
        ),
        _ => Plan::Decided(equivalent(gold, pred)),
    }
}

/// Python source that, run with sympy available, prints exactly one of `EQUAL`, `NOT_EQUAL`
/// or `UNDECIDED` for `gold` vs `pred`: each element is parsed with
/// `sympy.parsing.latex.parse_latex` if that works, else with `sympify` of
/// [`latex_to_python`]'s conversion, and compared by `simplify(a - b) == 0` (sets unordered,
/// tuples in order, equations up to a constant factor). Both answers are embedded only as
/// escaped string literals; run the program in the sandbox with a time limit.
pub fn sympy_check_code(gold: &str, pred: &str) -> String {
    let (mode, golds, pred) = match plan(gold, pred) {
        Plan::Decided(v) => {
            let word = match v {
                Verdict::Equal => "EQUAL",
                Verdict::NotEqual => "NOT_EQUAL",
                Verdict::Undecided => "UNDECIDED",
            };
            return format!("print({})\n", py_str(word));
        }
        Plan::Compare { mode, golds, pred } => (mode, golds, pred),
    };
    let golds: Vec<String> = golds.iter().map(|g| py_items(g)).collect();
    SYMPY_TEMPLATE
        .replace("@MODE@", &py_str(mode))
        .replace("@GOLDS@", &format!("[{}]", golds.join(", ")))
        .replace("@PRED@", &py_items(&pred))
}

/// The sympy program; `@MODE@`, `@GOLDS@` and `@PRED@` are replaced with Python literals.
const SYMPY_TEMPLATE: &str = r#"def _main():
    try:
        from sympy import simplify, sympify, N, Symbol, Rational
    except Exception:
        return "UNDECIDED"
    try:
        from sympy.parsing.latex import parse_latex as _parse_latex
    except Exception:
        _parse_latex = None
    mode = @MODE@
    golds = @GOLDS@
    pred = @PRED@

    def value(item):
        latex, python = item
        if _parse_latex is not None:
            try:
                return _parse_latex(latex)
            except Exception:
                pass
        if python is None:
            return None
        try:
            return sympify(python)
        except Exception:
            return None

    def same(a, b):
        if a is None or b is None:
            return None
        try:
            d = simplify(a - b)
            if d == 0:
                return True
            if d.is_number:
                return bool(abs(complex(N(d))) < 1e-9)
            r = d.equals(0)
            return None if r is None else bool(r)
        except Exception:
            return None

    def same_equation(a, b):
        first = same(a, b)
        if first or same(a, -b):
            return True
        try:
            q = simplify(a / b)
            if q.is_number and q != 0:
                return True
        except Exception:
            return None
        return first

    def judge(gold):
        gv = [value(x) for x in gold]
        pv = [value(x) for x in pred]
        if len(gv) != len(pv):
            return False
        if mode != "unordered":
            cmp = same_equation if mode == "equation" else same
            results = [cmp(a, b) for a, b in zip(gv, pv)]
            if all(r is True for r in results):
                return True
            if any(r is False for r in results):
                return False
            return None
        used = [False] * len(pv)
        undecided = False
        for a in gv:
            found = False
            maybe = False
            for j, b in enumerate(pv):
                if used[j]:
                    continue
                r = same(a, b)
                if r is True:
                    used[j] = True
                    found = True
                    break
                if r is None:
                    maybe = True
            if not found:
                if not maybe:
                    return False
                undecided = True
        return None if undecided else True

    verdicts = [judge(g) for g in golds]
    if any(v is True for v in verdicts):
        return "EQUAL"
    if all(v is False for v in verdicts):
        return "NOT_EQUAL"
    return "UNDECIDED"


try:
    _verdict = _main()
except BaseException:
    _verdict = "UNDECIDED"
print(_verdict)
"#;

/// Reads the verdict printed by a [`sympy_check_code`] program: its last non-empty line must be
/// exactly `EQUAL` or `NOT_EQUAL`; anything else (errors, timeouts, noise) is `Undecided`.
pub fn parse_sympy_verdict(stdout: &str) -> Verdict {
    match tail(stdout, MAX_VERDICT_OUTPUT_BYTES)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
    {
        Some("EQUAL") => Verdict::Equal,
        Some("NOT_EQUAL") => Verdict::NotEqual,
        _ => Verdict::Undecided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Equal as E, NotEqual as N, Undecided as U};

    /// `(gold, pred, expected)`.
    const CASES: &[(&str, &str, Verdict)] = &[
        // Plain numbers and fractions.
        ("42", "42", E),
        ("42", "43", N),
        ("-3", "3", N),
        ("-3", "-3", E),
        ("1/2", "2", N),
        ("0.5", "1/2", E),
        ("\\frac{1}{2}", "0.5", E),
        ("\\dfrac12", "1/2", E),
        ("\\tfrac{3}{4}", "0.75", E),
        ("\\frac{2}{4}", "\\frac{1}{2}", E),
        ("\\frac{1}{3}", "0.3333333", E),
        ("\\frac{1}{3}", "0.333333", E),
        ("\\frac{1}{3}", "0.33", N),
        ("\\frac{1}{3}", "\\frac{1}{4}", N),
        ("-\\frac{1}{2}", "\\frac{-1}{2}", E),
        ("-\\frac{1}{2}", "\\frac{1}{2}", N),
        ("3", "3.0", E),
        ("3", "3.00001", N),
        (".5", "0.5", E),
        ("1000", "1,000", E),
        ("1,000", "1000", E),
        ("1{,}000", "1000", E),
        ("1,234,567", "1234567", E),
        ("1\\,000", "1000", E),
        ("2^{10}", "1024", E),
        ("5!", "120", E),
        ("10^{-2}", "0.01", E),
        ("0", "0.0", E),
        ("100", "1e2", E),
        ("0.00001", "1e-5", E),
        ("0", "-0", E),
        ("7", "\\frac{14}{2}", E),
        ("12345678901234567890", "12345678901234567891", N),
        // Dollars, units, degrees, percent.
        ("5 \\text{ cm}", "5", E),
        ("5", "5 \\text{ cm}", E),
        ("5", "5cm", E),
        ("12", "12 inches", E),
        ("20", "\\$20", E),
        ("20", "20 dollars", E),
        ("8", "8 \\text{ square units}", E),
        ("3", "3 \\mbox{ cm}^2", E),
        ("90^\\circ", "90", E),
        ("90^{\\circ}", "90", E),
        ("90", "90 degrees", E),
        ("90", "91^\\circ", N),
        ("10\\%", "10", E),
        ("10\\%", "0.1", E),
        ("10%", "10", E),
        ("0.1", "10\\%", E),
        ("10\\%", "20", N),
        ("25", "25 percent", E),
        // Assignments, periods, spaces, dollars.
        ("5", "x = 5", E),
        ("5", "k=5", E),
        ("5", "\\theta = 5", E),
        ("5", "5.", E),
        ("$5$", "5", E),
        ("3", "\\boxed{3}", E),
        ("5", "x = 6", N),
        ("\\frac{\\pi}{2}", "\\left(\\frac{\\pi}{2}\\right)", E),
        // Multiplication signs, roots, pi.
        ("2\\cdot 3", "6", E),
        ("2 \\times 3", "2*3", E),
        ("\\sqrt{2}", "\\sqrt2", E),
        ("\\sqrt{2}", "sqrt(2)", E),
        ("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}", E),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", E),
        ("\\frac{\\sqrt{2}}{2}", "0.7071068", E),
        ("2\\sqrt{2}", "\\sqrt{8}", E),
        ("\\sqrt{2}", "\\sqrt{3}", N),
        ("\\sqrt[3]{8}", "2", E),
        ("\\sqrt{16}", "4", E),
        ("2\\pi", "2 \\pi", E),
        ("2\\pi", "6.2831853", E),
        ("\\pi", "3.14", N),
        ("\\pi r^2", "r^2\\pi", E),
        ("e^2", "7.3890561", E),
        ("\\ln 1", "0", E),
        ("\\log_2 8", "3", E),
        ("\\sin^2 x + \\cos^2 x", "1", E),
        // Variables.
        ("x^2", "2x", N),
        ("2x+1", "1+2x", E),
        ("x^2-1", "(x-1)(x+1)", E),
        ("x^2-1", "(x-1)(x-1)", N),
        ("a_1 + a_2", "a_2 + a_1", E),
        ("\\frac{x}{2}", "0.5x", E),
        ("2x", "2y", N),
        ("\\alpha + 1", "1 + \\alpha", E),
        ("\\sqrt{x^2}", "x", N),
        ("2i + 1", "1 + 2i", E),
        ("e^{i\\pi}", "-1", U),
        ("\\lfloor x \\rfloor", "x", U),
        ("f'(x)", "2x", U),
        ("\\frac{d}{dx} x^2", "2x", U),
        ("\\frac{d^2}{dx^2}(x^3)", "6x", U),
        ("\\frac{\\partial}{\\partial x} x y", "y", U),
        ("\\frac{dy}{dx}", "2x", U),
        ("\\frac{d}{2}", "0.5d", E),
        // Equations.
        ("y = 2x + 3", "y = 3 + 2x", E),
        ("y = 2x + 3", "y = 2x + 4", N),
        ("2x + 3y = 6", "4x + 6y = 12", E),
        ("x + y = 1", "x + y - 1 = 0", E),
        ("x + y = 1", "y = 1 - x", E),
        ("y = 1 - x", "x + y = 1", E),
        ("x^{1000}", "x^{1001}", U),
        ("x^{3}", "x^{3}+x^{40}", N),
        ("y = 2x + 3", "2x + 3", E),
        // Sets, lists, tuples, intervals.
        ("\\{1,2\\}", "\\{2,1\\}", E),
        ("\\{1,2\\}", "\\{1,3\\}", N),
        ("\\{1,2\\}", "\\{1,2,3\\}", N),
        ("1, 2", "2, 1", E),
        ("1, 2", "\\{2, 1\\}", E),
        ("x = 1, x = 2", "2, 1", E),
        ("1 \\text{ or } 2", "2, 1", E),
        ("\\{3\\}", "3", E),
        ("3", "\\{3\\}", E),
        ("\\emptyset", "\\{\\}", E),
        ("(1,2)", "(1,2)", E),
        ("(1,2)", "(2,1)", N),
        ("(1,2)", "[1,2]", N),
        ("(1, 2)", "(1,\\ 2)", E),
        ("(\\frac{1}{2}, 3)", "(0.5, 3)", E),
        ("(1,2)", "1, 2", E),
        ("[1,2)", "[1,2]", N),
        ("[1,2)", "[1, 2)", E),
        ("(-\\infty, 3]", "(-\\infty,3]", E),
        ("(-\\infty, 3]", "\\left(-\\infty, 3\\right]", E),
        ("(-\\infty, 3]", "(-\\infty, 3)", N),
        ("[0, \\frac{1}{2}]", "[0, 0.5]", E),
        (
            "(-\\infty, 1) \\cup (2, \\infty)",
            "(2, \\infty) \\cup (-\\infty, 1)",
            E,
        ),
        ("(-\\infty, 1) \\cup (2, \\infty)", "(-\\infty, 1)", N),
        ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", E),
        ("\\{(1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}", E),
        ("\\{(1,2), (3,4)\\}", "\\{(4,3), (1,2)\\}", N),
        // Matrices.
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
            E,
        ),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}",
            N,
        ),
        (
            "\\begin{pmatrix} 1 & 2 \\end{pmatrix}",
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
            N,
        ),
        (
            "\\begin{pmatrix} \\frac12 \\\\ 2 \\end{pmatrix}",
            "(0.5, 2)",
            E,
        ),
        // Multiple choice and words.
        ("(A)", "A", E),
        ("A", "\\text{(A)}", E),
        ("\\textbf{(C)}", "C", E),
        ("B", "(B) 12", E),
        ("A", "B", N),
        ("(D)", "42", N),
        ("\\text{yes}", "Yes", E),
        ("\\text{Evelyn}", "evelyn", E),
        ("yes", "no", N),
        ("odd", "5", N),
        // Text units inside text wrappers, plain string equality.
        ("\\text{5 apples}", "5", E),
        ("\\mathrm{cm}", "\\mathrm{cm}", E),
        ("\\textit{unknownword} 3", "3", N),
        ("", "5", U),
        ("5", "", N),
    ];

    #[test]
    fn equivalence_table() {
        let mut failures = Vec::new();
        for (gold, pred, want) in CASES {
            let got = equivalent(gold, pred);
            if got != *want {
                failures.push(format!("{gold:?} vs {pred:?}: want {want:?}, got {got:?}"));
            }
        }
        assert!(CASES.len() >= 110, "only {} cases", CASES.len());
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn options_change_the_rules() {
        let strict = EquivOptions {
            percent_as_fraction: false,
            ..EquivOptions::default()
        };
        assert_eq!(equivalent_with("10\\%", "0.1", &strict), N);
        assert_eq!(equivalent_with("10\\%", "10", &strict), E);
        let loose = EquivOptions {
            relative_tolerance: 1e-2,
            ..EquivOptions::default()
        };
        assert_eq!(equivalent_with("\\pi", "3.14", &loose), E);
        let no_sampling = EquivOptions {
            numeric_identity: false,
            ..EquivOptions::default()
        };
        assert_eq!(equivalent_with("x^2", "2x", &no_sampling), U);
    }

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

    #[test]
    fn deep_nesting_is_undecided_not_a_crash() {
        let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert_eq!(equivalent(&deep, "2"), U);
        let deep_braces = format!("{}1{}", "{".repeat(1000), "}".repeat(1000));
        assert_eq!(equivalent(&deep_braces, "2"), U);
        let minus = format!("{}1", "-".repeat(2000));
        assert_eq!(equivalent(&minus, "1"), U);
        let sum = vec!["1"; 1500].join("+");
        assert_eq!(equivalent(&sum, "1500"), U);
        assert_eq!(equivalent(&"9".repeat(MAX_ANSWER_BYTES + 1), "9"), U);
        assert_eq!(equivalent("2^{100000}", "2^{100001}"), U);
    }

    #[test]
    fn latex_to_python_conversions() {
        let cases: &[(&str, Option<&str>)] = &[
            ("\\frac{1}{2}", Some("(1/2)")),
            ("2x", Some("(2*x)")),
            ("x^2", Some("(x**2)")),
            ("\\sqrt{x}", Some("sqrt(x)")),
            ("\\sqrt[3]{x}", Some("root(x, 3)")),
            ("\\pi r^2", Some("(pi*(r**2))")),
            ("0.5", Some("Rational('0.5')")),
            ("2.5e-3", Some("Rational('2.5e-3')")),
            ("3e2", Some("300")),
            ("-\\infty", Some("(-oo)")),
            ("e^{x}", Some("(E**x)")),
            ("\\ln(x)", Some("log(x)")),
            ("N + S", Some("(Symbol('N') + Symbol('S'))")),
            ("3 + 2i", Some("(3 + (2*I))")),
            ("\\theta_1", Some("Symbol('theta_1')")),
            ("y = 3x", Some("(3*x)")),
            ("\\{1, 2\\}", None),
            ("__import__('os')", None),
            ("\\unknown{1}", None),
        ];
        for (latex, want) in cases {
            assert_eq!(latex_to_python(latex).as_deref(), *want, "latex {latex:?}");
        }
    }

    #[test]
    fn sympy_code_is_safe_and_complete() {
        let hostile = "'); import os; os.system('rm -rf /'); ('\n\"\"\"\u{0}é😀";
        let code = sympy_check_code(hostile, "x^2 + \\frac{1}{2}");
        // Every quote of the input is escaped.
        let raw = code.matches("');importos").count();
        assert!(
            raw > 0 && raw == code.matches("\\');importos").count(),
            "{code}"
        );
        assert!(code.contains("\\x00") && code.contains("\\xe9") && code.contains("\\U0001f600"));
        let code = sympy_check_code("x^2 - 1", "(x-1)(x+1)");
        assert!(code.contains("print(_verdict)"));
        assert!(code.contains("'((x**2) - 1)'"));
        assert!(code.contains("mode = 'ordered'"));
        let code = sympy_check_code("\\{1, x\\}", "\\{x, 1\\}");
        assert!(code.contains("mode = 'unordered'"));
        let code = sympy_check_code("x + y = 1", "2x + 2y = 2");
        assert!(code.contains("mode = 'equation'"));
        assert_eq!(sympy_check_code("(1,2)", "[1,2]"), "print('NOT_EQUAL')\n");
        let code = sympy_check_code("50\\%", "\\frac{1}{2}");
        assert!(code.contains("/100)"));
    }

    #[test]
    fn python_string_escaping() {
        assert_eq!(py_str("a'b\\c"), "'a\\'b\\\\c'");
        assert_eq!(py_str("\n\t"), "'\\x0a\\x09'");
        assert_eq!(py_str("\u{2212}"), "'\\u2212'");
    }

    #[test]
    fn sympy_verdict_parsing() {
        assert_eq!(parse_sympy_verdict("EQUAL\n"), E);
        assert_eq!(parse_sympy_verdict("warning\nNOT_EQUAL\n\n"), N);
        assert_eq!(parse_sympy_verdict("UNDECIDED"), U);
        assert_eq!(parse_sympy_verdict("EQUAL!"), U);
        assert_eq!(parse_sympy_verdict("Traceback ..."), U);
        assert_eq!(parse_sympy_verdict(""), U);
    }

    #[test]
    fn verdict_serializes_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Verdict::NotEqual).ok().as_deref(),
            Some("\"not_equal\"")
        );
    }

    #[test]
    fn fuzz_no_panics() {
        const PIECES: &[&str] = &[
            "\\boxed{",
            "\\fbox",
            "{",
            "}",
            "\\{",
            "\\}",
            "(",
            ")",
            "[",
            "]",
            "\\frac",
            "\\sqrt",
            "1",
            "2",
            "0.5",
            "x",
            "y",
            "e",
            "^",
            "_",
            "-",
            "+",
            "*",
            "/",
            ",",
            "=",
            "|",
            "!",
            ".",
            " ",
            "\n",
            "$",
            "%",
            "\\%",
            "\\text{",
            "cm",
            " or ",
            "\\pi",
            "\\infty",
            "\\cup",
            "\\pm",
            "\\left",
            "\\right",
            "\\begin{pmatrix}",
            "\\end{pmatrix}",
            "&",
            "\\\\",
            "é",
            "😀",
            "\u{0}",
            "the answer is ",
            "(A)",
            "\\",
            "\\sin",
            "\\log_",
            "\\in",
            "°",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..4000 {
            let mut make = || {
                let len = next() % 24;
                (0..len)
                    .map(|_| PIECES[next() % PIECES.len()])
                    .collect::<String>()
            };
            let (a, b) = (make(), make());
            let _ = extract_answer(&a);
            let _ = extract_answer_or_last_line(&a);
            let _ = equivalent(&a, &b);
            let _ = equivalent(&a, &a);
            let _ = latex_to_python(&a);
            let _ = sympy_check_code(&a, &b);
            // Byte-level junk: cut strings at odd places via lossy UTF-8.
            let bytes: Vec<u8> = a.bytes().rev().collect();
            let junk = String::from_utf8_lossy(&bytes);
            let _ = equivalent(&junk, &b);
            let _ = extract_answer(&junk);
        }
    }
}
