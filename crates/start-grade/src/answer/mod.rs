//! Final answers of math trajectories: extraction and equivalence checking.
//!
//! Hint-RFT keeps a self-generated trajectory only if its final answer is right, so scoring needs
//! to pull the answer out of a long, untrusted reasoning text ([`extract_answer`]) and to decide
//! whether it matches the reference ([`equivalent`]). The fast path here is pure Rust and decides
//! most pairs; when it cannot, it says [`Verdict::Undecided`] and the caller runs the program
//! from [`sympy_check_code`] in the sandbox and reads its output with [`parse_sympy_verdict`].
//!
//! Extraction takes, first match wins, the last `\boxed{..}`/`\fbox{..}`, else what follows
//! the last "the answer is"-like phrase, else the last math span (`$$..$$`, `\[..\]`, `$..$`,
//! `\(..\)`, whichever closes last).
//!
//! Every input is untrusted: extraction looks only at the last [`MAX_SCAN_BYTES`] of a text,
//! equivalence only at answers up to [`MAX_ANSWER_BYTES`], parsing is recursive descent with a
//! depth and node budget (no regexes, no backtracking), and nothing here panics on any input.
//!
//! The grading rules, in the spirit of the MATH/PRM800K and Qwen math graders:
//!
//! - LaTeX is normalized first: `\dfrac`/`\tfrac` become `\frac`; `\left`, `\right`, spacing
//!   commands, `$`, math delimiters and `\text{..}`-like wrappers go; degrees (`^\circ`),
//!   currency signs (`\$`, `€`, `£`), unit words after a number (`cm`, `inches`, `dollars`,
//!   `square units`, `USD`, and short symbols such as `m^2` or `s` after a space), thousands
//!   separators (`7,425,000`, `1{,}000`, `1\,000`, `1 000`), a leading assignment (`x =`,
//!   `\theta =`, `(x, y) =`), all but the last side of a chain (`x = 5+5+1 = 11` is `11`) and
//!   trailing periods are dropped; `\cdot` and `\times` become `*`; `\geq`, `\ge`,
//!   `\geqslant`, `>=` and `≥` are one relation (likewise for `<`). Equal strings after this are
//!   [`Verdict::Equal`].
//! - A decimal comma (`1000,99`, `0,111`: two digit runs joined by one comma without a space,
//!   not thousands) is read as a decimal point only against a number; against a list it stays
//!   a list (`2,3` = `3, 2`).
//! - A mixed number `2\frac{1}{2}` is `5/2` (an integer right before a fraction of integers);
//!   `3\frac{\pi}{2}` stays a product.
//! - Inequalities are read ascending (`5 \geq x` is `x \leq 5`) and compared side by side, or
//!   as the sign of `lhs - rhs` at sample points (`-x > -1` = `x < 1`, `2x < 6` = `x < 3`);
//!   strictness must match. One variable bounded by constants equals its interval
//!   (`1 \leq x < 2` = `[1, 2)`, `x < 1` = `(-\infty, 1)`).
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
//!   `a \pm b` is the list `a+b, a-b`; `\cup` joins intervals, compared unordered. A nested
//!   list `[[1, 2], [3, 4]]` is a matrix, equal to the `pmatrix`/`bmatrix` with those rows.
//! - A gold answer that is a choice letter `A`-`E` (`(A)`, `\text{(A)}`) needs a choice letter;
//!   two words (`yes`, `\text{Evelyn}`) compare case-insensitively.
//!
//! The code follows an answer's way through the grader, one module per step: `extract` finds
//! it at the end of the text, `normalize` rewrites its LaTeX into a canonical plain form,
//! `structure` tells a set from a tuple, an interval, an inequality or an equation,
//! `inequality` compares inequalities, `parse` reads a scalar into
//! an `expr` tree that evaluates over exact `rational`s or at sample points, `equiv` decides,
//! and `sympy` writes the symbolic fallback program and reads its verdict.

use serde::{Deserialize, Serialize};

mod equiv;
mod expr;
mod extract;
mod inequality;
mod normalize;
mod parse;
mod rational;
mod structure;
mod sympy;

pub use equiv::{equivalent, equivalent_with};
pub use extract::{extract_answer, extract_answer_or_last_line};
pub use sympy::{latex_to_python, parse_sympy_verdict, sympy_check_code};

/// How many bytes at the end of a trajectory extraction looks at; the answer is at the end, and
/// the bound keeps work linear in a fixed size whatever the model wrote.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;
/// The longest answer (bytes) that is extracted or compared; longer ones are not answers.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024;
/// Default relative tolerance for approximate numbers.
pub const DEFAULT_RELATIVE_TOLERANCE: f64 = 1e-6;
/// Default absolute tolerance, used for values near zero.
pub const DEFAULT_ABSOLUTE_TOLERANCE: f64 = 1e-9;

/// Greek letters read as variables.
const GREEK: &str = "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu \
     nu xi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Sigma \
     Phi Omega";
/// The variable read as the imaginary unit by the sympy check (and never called different
/// by sampling, which treats it as a real variable).
const IMAGINARY_UNIT: &str = "i";

/// Whether `word` is one of the whitespace-separated words of `list`.
fn in_list(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_serializes_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Verdict::NotEqual).ok().as_deref(),
            Some("\"not_equal\"")
        );
    }
}
