//! LaTeX normalization: rewriting an answer into a canonical plain form (no `\left`, spacing
//! commands, `$`, `\text{..}` wrappers, units, degrees, thousands separators or leading
//! `x =`), so that most answers that are written differently but mean the same become equal
//! strings before anything is parsed.

use super::extract::{BOX_COMMANDS, extract_boxed, matching_brace};
use super::structure::{Shape, classify};
use super::{GREEK, MAX_ANSWER_BYTES, in_list};

/// Passes unwrapping `\text{..}`-like commands (nested wrappers need one pass each).
const MAX_UNWRAP_PASSES: usize = 8;
/// Trailing unit words stripped at most (`sq ft`, `square units`).
const MAX_UNIT_WORDS: usize = 3;
/// Wrappers whose argument is kept as plain text.
const TEXT_COMMANDS: &str = "text textbf textit textrm textnormal textup mbox hbox mathrm mathbf mathit mathsf \
     mathtt operatorname emph boldsymbol bm";
/// Stands in for `\\` while spacing commands are replaced (a control char: never LaTeX).
const ROW_BREAK_PLACEHOLDER: &str = "\u{1}";
/// Plain substring replacements applied during normalization, in order.
const REPLACEMENTS: [(&str, &str); 44] = [
    ("\\dfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
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
    // Relations become one char each ([`LESS_EQUAL`], [`GREATER_EQUAL`]), so that no `=` is
    // left inside `<=` for the equation splitter to find.
    ("<=", LESS_EQUAL),
    ("=<", LESS_EQUAL),
    (">=", GREATER_EQUAL),
    ("=>", GREATER_EQUAL),
    // Currency signs (`\$` goes with the math delimiters).
    ("\u{20ac}", ""),
    ("\u{a3}", ""),
    ("\u{a5}", ""),
    ("\\euro", ""),
    ("\\pounds", ""),
    ("\\yen", ""),
];
/// The canonical `<=` of a normalized answer (one char, so it holds no `=`).
pub(super) const LESS_EQUAL: &str = "\u{2264}";
/// The canonical `>=` of a normalized answer.
pub(super) const GREATER_EQUAL: &str = "\u{2265}";
/// [`LESS_EQUAL`] as a char.
pub(super) const LESS_EQUAL_CHAR: char = '\u{2264}';
/// [`GREATER_EQUAL`] as a char.
pub(super) const GREATER_EQUAL_CHAR: char = '\u{2265}';
/// Relation commands and the canonical relation each becomes (`\le` must not eat `\left`,
/// so these are replaced as whole command names, after the sizing commands are gone).
const RELATION_COMMANDS: [(&str, &str); 10] = [
    ("leqslant", LESS_EQUAL),
    ("geqslant", GREATER_EQUAL),
    ("leq", LESS_EQUAL),
    ("geq", GREATER_EQUAL),
    ("le", LESS_EQUAL),
    ("ge", GREATER_EQUAL),
    ("lt", "<"),
    ("gt", ">"),
    ("nless", GREATER_EQUAL),
    ("ngtr", LESS_EQUAL),
];
/// Sizing commands removed wherever they stand (`\left(` is `(`).
const SIZING_COMMANDS: &str = "left right bigl bigr Bigl Bigr big Big";
/// Unit and count words dropped after a number (compared in ASCII lowercase).
const UNIT_WORDS: &str = "cm mm km meters meter metres metre inches inch feet foot ft yards yard yd miles mile \
     mph kg grams gram pounds pound lbs lb ounces ounce oz liters liter litres litre ml \
     gallons gallon cups cup seconds second sec minutes minute mins hours hour hrs hr days \
     day weeks week months month years year dollars dollar cents cent euros degrees degree \
     deg radians radian units unit square sq cubic percent pct points point people persons \
     students ways pages apples marbles usd eur";
/// Short unit symbols dropped only when a space separates them from the value (`5 m^2`,
/// `\text{ s}`), since `5m` may be a product with the variable `m`.
const SPACED_UNIT_WORDS: &str = "m s g L h";
/// Unit words that mean the value was a percentage.
const PERCENT_WORDS: &str = "percent pct";

/// An answer after LaTeX normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Normalized {
    pub(super) text: String,
    pub(super) percent: bool,
    /// The answer read with a decimal comma (`1000,99` as `1000.99`) when it was written as
    /// two digit runs joined by one comma with no space, and not as thousands; whether that
    /// reading applies depends on the other answer (see `equiv`).
    pub(super) decimal_comma: Option<String>,
    /// The text before a leading `name =` was dropped (equal to `text` when none was).
    full: String,
}

/// When one answer is an equation and the other was `v = expr` (and so became `expr`), the
/// other is compared whole: `x + y = 1` against `y = 1 - x`.
pub(super) fn align_equations(g: &mut Normalized, p: &mut Normalized) {
    let equation = |t: &str| matches!(classify(t), Shape::Equation(..));
    if equation(&g.text) && p.full != p.text && !equation(&p.text) && equation(&p.full) {
        p.text = p.full.clone();
    } else if equation(&p.text) && g.full != g.text && !equation(&g.text) && equation(&g.full) {
        g.text = g.full.clone();
    }
}

pub(super) fn normalize(raw: &str) -> Option<Normalized> {
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
    s = replace_command(&s, "ne", "\\neq");
    for (name, with) in RELATION_COMMANDS {
        s = replace_command(&s, name, with);
    }
    s = replace_command(&s, "in", "=");
    s = replace_word(&s, "or", ",");
    s = replace_word(&s, "and", ",");
    let mut percent = s.contains('%');
    s = s.replace('%', "");
    s = strip_units(&s, &mut percent);
    let decimal_comma = decimal_comma(s.trim());
    s = compact(&s);
    while s.ends_with('.') || s.ends_with(',') {
        s.pop();
    }
    if is_thousands(&s) {
        s = s.replace(',', "");
    }
    if let Some(quotient) = ratio(&s) {
        s = quotient;
    }
    let text = strip_assignment(&s).to_string();
    Some(Normalized {
        text,
        percent,
        decimal_comma,
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
        // A short symbol is a unit only after a space that follows a value (`5 m`), never
        // after an operator (`N + S`).
        let spaced = head.ends_with(char::is_whitespace)
            && head
                .trim_end()
                .ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
        let original = base.get(head.len()..).unwrap_or("");
        let known = in_list(UNIT_WORDS, &word) || (spaced && in_list(SPACED_UNIT_WORDS, original));
        if word.is_empty() || !known || !follows_value || head.trim().is_empty() {
            break;
        }
        if in_list(PERCENT_WORDS, &word) {
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

/// `s` with its comma read as a decimal point, if `s` is `[-]digits,digits` (no space) and
/// not a number with thousands separators.
fn decimal_comma(s: &str) -> Option<String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once(',')?;
    let runs = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    (runs(int) && runs(frac) && !is_thousands(s)).then(|| s.replacen(',', ".", 1))
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
    // A first group with a leading zero (`0,111`) is a decimal comma, never thousands.
    let first_ok = groups.next().is_some_and(|g| {
        (1..=3).contains(&g.len())
            && g.bytes().all(|b| b.is_ascii_digit())
            && !(g.starts_with('0') && int.contains(','))
    });
    let rest: Vec<&str> = groups.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Drops a leading `name =` when the name is a simple variable (`x`, `a_1`, `\theta`, `f(x)`),
/// and keeps only the last side of a chain of equalities (`x = 5+5+1 = 11` is `11`), where
/// the final value stands.
pub(super) fn strip_assignment(s: &str) -> &str {
    if let Some((chain, last)) = s.rsplit_once('=')
        && chain.contains('=')
        && !last.trim().is_empty()
        && !s.contains(['<', '>', ',', LESS_EQUAL_CHAR, GREATER_EQUAL_CHAR])
    {
        return last.trim();
    }
    let Some((lhs, rhs)) = s.split_once('=') else {
        return s;
    };
    if rhs.contains('=') || rhs.trim().is_empty() {
        return s;
    }
    if is_simple_name(lhs.trim()) || is_name_tuple(lhs.trim()) {
        rhs.trim()
    } else {
        s
    }
}

/// Whether `s` is a tuple of simple names, as in `(x, y) = (1, 2)`.
fn is_name_tuple(s: &str) -> bool {
    s.strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .is_some_and(|inner| {
            inner.contains(',') && inner.split(',').all(|n| is_simple_name(n.trim()))
        })
}

/// A ratio of two whole numbers `3:4` as the quotient `3/4` (the one colon, digits either side).
fn ratio(s: &str) -> Option<String> {
    let (a, b) = s.split_once(':')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    (digits(a) && digits(b)).then(|| format!("{a}/{b}"))
}

fn is_simple_name(s: &str) -> bool {
    // An angle's name: `\angle A`, `\angle ABC`, `m\angle B`.
    if let Some(vertex) = s.strip_prefix("m").unwrap_or(s).strip_prefix("\\angle") {
        let vertex = vertex.trim();
        return !vertex.is_empty() && vertex.bytes().all(|b| b.is_ascii_uppercase());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        normalize(s).map(|n| n.text).unwrap_or_default()
    }

    #[test]
    fn separators_and_decimal_commas() {
        assert_eq!(text("7,425,000"), "7425000");
        assert_eq!(text("1 000"), "1000");
        assert_eq!(text("1\\,000"), "1000");
        // `0,111` is never thousands (a group does not start with 0).
        assert!(!is_thousands("0,111"));
        assert_eq!(decimal_comma("0,111").as_deref(), Some("0.111"));
        assert_eq!(decimal_comma("1000,99").as_deref(), Some("1000.99"));
        assert_eq!(decimal_comma("-3,5").as_deref(), Some("-3.5"));
        assert_eq!(decimal_comma("1,000"), None);
        assert_eq!(decimal_comma("1, 5"), None);
        assert_eq!(decimal_comma("1,2,3"), None);
    }

    #[test]
    fn units_percent_and_relations() {
        assert_eq!(text("12 \\text{ m}^2"), "12");
        assert_eq!(text("€5"), "5");
        assert_eq!(text("N + S"), "N+S");
        assert_eq!(text("3m"), "3m");
        let n = normalize("28 pct");
        assert_eq!(
            n.as_ref().map(|n| (n.text.as_str(), n.percent)),
            Some(("28", true))
        );
        assert_eq!(text("x \\geqslant 3"), format!("x{GREATER_EQUAL}3"));
        assert_eq!(text("x >= 3"), format!("x{GREATER_EQUAL}3"));
        assert_eq!(
            text("\\left( x \\le 3 \\right)"),
            format!("(x{LESS_EQUAL}3)")
        );
    }

    #[test]
    fn assignments_and_chains() {
        assert_eq!(strip_assignment("x=5+5+1=11"), "11");
        assert_eq!(strip_assignment("x=1/3"), "1/3");
        assert_eq!(strip_assignment("(x,y)=(1,2)"), "(1,2)");
        assert_eq!(strip_assignment("x=1,x=2"), "x=1,x=2");
        assert_eq!(strip_assignment("2x+1=3"), "2x+1=3");
        assert_eq!(text("\\angle A = 30^\\circ"), "30");
        assert_eq!(text("m\\angle ABC = 45"), "45");
        assert_eq!(text("3:4"), "3/4");
        assert_eq!(text("x \\ne 1"), text("x \\neq 1"));
    }
}
