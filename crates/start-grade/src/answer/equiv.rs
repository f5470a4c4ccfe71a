//! Deciding equivalence: both answers are normalized and classified by shape, structures are
//! compared element by element, numbers exactly as rationals or within a tolerance, and
//! expressions with variables at sample points.

use std::collections::BTreeSet;

use super::expr::{Expr, Op};
use super::inequality::{self, Ascending};
use super::normalize::{align_equations, normalize};
use super::parse::parse_expr;
use super::rational::Rat;
use super::structure::{Shape, classify, leading_choice_letter};
use super::{DEFAULT_ABSOLUTE_TOLERANCE, EquivOptions, IMAGINARY_UNIT, Verdict};

/// Nesting of sets/tuples/lists compared recursively.
const MAX_STRUCTURE_DEPTH: usize = 4;
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
/// Rounds of sample points tried (one per sample value).
pub(super) const SAMPLE_ROUNDS: usize = SAMPLE_VALUES.len();

/// What the comparison of one pair of answers knows besides their texts.
struct Ctx {
    opts: EquivOptions,
    gold_percent: bool,
    pred_percent: bool,
}

/// Decides whether `pred` is equivalent to the reference answer `gold`, with the default
/// [`EquivOptions`]; see the [module doc](crate::answer) for the rules.
///
/// # Examples
///
/// ```
/// use start_grade::answer::{Verdict, equivalent};
///
/// assert_eq!(equivalent("\\frac{1}{2}", "0.5"), Verdict::Equal);
/// assert_eq!(equivalent("\\{1,2\\}", "\\{2,1\\}"), Verdict::Equal);
/// assert_eq!(equivalent("x^2-1", "(x-1)(x+1)"), Verdict::Equal);
/// assert_eq!(equivalent("(1,2)", "[1,2]"), Verdict::NotEqual);
/// assert_eq!(equivalent("\\frac{1}{3}", "0.33"), Verdict::NotEqual);
/// // Beyond the fast path: the symbolic check decides this one.
/// assert_eq!(equivalent("e^{i\\pi}", "-1"), Verdict::Undecided);
/// ```
pub fn equivalent(gold: &str, pred: &str) -> Verdict {
    equivalent_with(gold, pred, &EquivOptions::default())
}

/// [`equivalent`] with explicit options (tolerances, percent handling, sampling).
///
/// # Examples
///
/// ```
/// use start_grade::answer::{EquivOptions, Verdict, equivalent_with};
///
/// let strict = EquivOptions {
///     percent_as_fraction: false,
///     ..EquivOptions::default()
/// };
/// assert_eq!(equivalent_with("10\\%", "10", &strict), Verdict::Equal);
/// assert_eq!(equivalent_with("10\\%", "0.1", &strict), Verdict::NotEqual);
///
/// let loose = EquivOptions {
///     relative_tolerance: 1e-2,
///     ..EquivOptions::default()
/// };
/// assert_eq!(equivalent_with("\\pi", "3.14", &loose), Verdict::Equal);
/// assert_eq!(equivalent_with("\\pi", "3.14", &EquivOptions::default()), Verdict::NotEqual);
/// ```
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
    // A decimal comma (`1000,99`) is read as one only against a number: against a list it
    // stays the list `1000, 99`.
    let scalar = |t: &str| matches!(classify(t), Shape::Scalar(_));
    if let Some(decimal) = p.decimal_comma.take()
        && scalar(&g.text)
    {
        p.text = decimal;
    } else if let Some(decimal) = g.decimal_comma.take()
        && scalar(&p.text)
    {
        g.text = decimal;
    }
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
        (Inequality(s1, r1), Inequality(s2, r2)) => {
            match (Ascending::new(s1, &r1), Ascending::new(s2, &r2)) {
                (Some(a), Some(b)) => inequality::compare(&a, &b, &rec),
                _ => Verdict::Undecided,
            }
        }
        (Inequality(s, r), Interval { .. }) | (Inequality(s, r), Tuple(_)) => Ascending::new(s, &r)
            .and_then(|a| a.as_interval())
            .map_or(Verdict::NotEqual, |i| rec(&i, p)),
        (Interval { .. } | Tuple(_), Inequality(s, r)) => Ascending::new(s, &r)
            .and_then(|a| a.as_interval())
            .map_or(Verdict::NotEqual, |i| rec(g, &i)),
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

pub(super) fn close(a: f64, b: f64, relative: f64, absolute: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= absolute.max(relative * a.abs().max(b.abs())) * TOLERANCE_SLACK
}

pub(super) fn all_vars<'a>(exprs: &[&'a Expr]) -> Vec<&'a str> {
    let mut vars = BTreeSet::new();
    for e in exprs {
        e.vars(&mut vars);
    }
    vars.into_iter().collect()
}

/// Variable assignments for sample round `round`.
pub(super) fn sample_env<'a>(vars: &[&'a str], round: usize) -> Vec<(&'a str, f64)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::MAX_ANSWER_BYTES;
    use Verdict::{Equal as E, NotEqual as N, Undecided as U};

    /// `(gold, pred, expected)`: one case per comparison path here; the full table, by
    /// class, is `tests/all/data/equivalence.tsv` (read by `tests/all/equivalence.rs`).
    const CASES: &[(&str, &str, Verdict)] = &[
        ("\\frac{1}{2}", "0.5", E),
        ("\\frac{1}{3}", "0.33", N),
        ("1000.99", "1000,99", E),
        ("2, 3", "3,2", E),
        ("x^2-1", "(x-1)(x+1)", E),
        ("x^2", "2x", N),
        ("e^{i\\pi}", "-1", U),
        ("y = 2x + 3", "y = 3 + 2x", E),
        ("x \\leq 5", "5 \\geq x", E),
        ("x < 1", "(-\\infty, 1)", E),
        ("\\{1,2\\}", "\\{2,1\\}", E),
        ("(1,2)", "[1,2]", N),
        (
            "[[1,2],[3,4]]",
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            E,
        ),
        ("(A)", "A", E),
        ("yes", "no", N),
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
}
