//! Inequalities: `5 \geq x` is `x \leq 5`, `-x > -1` is `x < 1`, and `1 < x \leq 3` is the
//! interval `(1, 3]`. Both sides are turned to read ascending (`a < b`), then compared side by
//! side, as the sign of `a - b` at sample points, or as the interval they describe.

use super::Verdict;
use super::equiv::{all_vars, close, sample_env};
use super::expr::{Expr, Op};
use super::parse::parse_expr;
use super::structure::Relation;

/// Sample points at which `a - b` of both inequalities must be of one sign before they are
/// called equal by proportionality.
const MIN_AGREEING_POINTS: usize = 4;
/// Agreement of the ratio of two differences across sample points.
const RATIO_RELATIVE_TOLERANCE: f64 = 1e-9;
/// A ratio this close to zero is no ratio (one difference vanished).
const MIN_RATIO: f64 = 1e-9;

/// An inequality read ascending: `sides[0] rel sides[1] rel ...` with every relation `<` or `<=`.
#[derive(Debug, Clone)]
pub(super) struct Ascending {
    sides: Vec<String>,
    strict: Vec<bool>,
}

impl Ascending {
    /// Reads `sides` and `relations` ascending; `None` for a mixed chain such as `1 < x > 0`.
    pub(super) fn new(mut sides: Vec<String>, relations: &[Relation]) -> Option<Ascending> {
        let ascending = relations.first()?.ascending();
        if relations.iter().any(|r| r.ascending() != ascending) {
            return None;
        }
        let mut strict: Vec<bool> = relations.iter().map(|r| r.strict()).collect();
        if !ascending {
            sides.reverse();
            strict.reverse();
        }
        Some(Ascending { sides, strict })
    }

    /// The interval this inequality describes when it bounds one variable by constants
    /// (`x < 1` is `(-\infty,1)`, `1 \leq x < 2` is `[1,2)`), as normalized interval text.
    pub(super) fn as_interval(&self) -> Option<String> {
        let is_var = |s: &str| matches!(parse_expr(s), Some(Expr::Var(_)));
        let is_const = |s: &str| parse_expr(s).is_some_and(|e| all_vars(&[&e]).is_empty());
        let open = |strict: bool| if strict { '(' } else { '[' };
        let close = |strict: bool| if strict { ')' } else { ']' };
        match (self.sides.as_slice(), self.strict.as_slice()) {
            ([a, b], [s]) if is_var(a) && is_const(b) => {
                Some(format!("(-\\infty,{b}{}", close(*s)))
            }
            ([a, b], [s]) if is_const(a) && is_var(b) => Some(format!("{}{a},\\infty)", open(*s))),
            ([a, x, b], [s1, s2]) if is_const(a) && is_var(x) && is_const(b) => {
                Some(format!("{}{a},{b}{}", open(*s1), close(*s2)))
            }
            _ => None,
        }
    }
}

/// Compares two ascending inequalities; `rec` compares two sides.
pub(super) fn compare(
    g: &Ascending,
    p: &Ascending,
    rec: &dyn Fn(&str, &str) -> Verdict,
) -> Verdict {
    if g.strict != p.strict {
        return Verdict::NotEqual;
    }
    if g.sides.len() == p.sides.len()
        && g.sides
            .iter()
            .zip(&p.sides)
            .all(|(a, b)| rec(a, b) == Verdict::Equal)
    {
        return Verdict::Equal;
    }
    match (g.sides.as_slice(), p.sides.as_slice()) {
        ([a1, b1], [a2, b2]) => compare_differences((a1, b1), (a2, b2)),
        _ if g.sides.len() != p.sides.len() => Verdict::NotEqual,
        _ => Verdict::Undecided,
    }
}

/// `a1 < b1` against `a2 < b2` (same strictness): equal when `a1 - b1` is a positive multiple
/// of `a2 - b2` at the sample points, different when the two disagree on a point.
fn compare_differences(g: (&str, &str), p: (&str, &str)) -> Verdict {
    let parsed = (
        parse_expr(g.0),
        parse_expr(g.1),
        parse_expr(p.0),
        parse_expr(p.1),
    );
    let (Some(a1), Some(b1), Some(a2), Some(b2)) = parsed else {
        return Verdict::Undecided;
    };
    let d1 = Expr::Bin(Op::Sub, Box::new(a1), Box::new(b1));
    let d2 = Expr::Bin(Op::Sub, Box::new(a2), Box::new(b2));
    let vars = all_vars(&[&d1, &d2]);
    let mut ratio: Option<f64> = None;
    let mut proportional = true;
    let mut points = 0;
    for round in 0..super::equiv::SAMPLE_ROUNDS {
        let env = sample_env(&vars, round);
        let (x, y) = (d1.eval(&env), d2.eval(&env));
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        if (x < 0.0) != (y < 0.0) && x.abs() > MIN_RATIO && y.abs() > MIN_RATIO {
            // One holds at this point and the other does not.
            return Verdict::NotEqual;
        }
        if y.abs() < MIN_RATIO {
            continue;
        }
        let r = x / y;
        match ratio {
            None => ratio = Some(r),
            Some(first) if !close(first, r, RATIO_RELATIVE_TOLERANCE, 0.0) => proportional = false,
            Some(_) => {}
        }
        points += 1;
    }
    if proportional && points >= MIN_AGREEING_POINTS && ratio.is_some_and(|r| r > MIN_RATIO) {
        Verdict::Equal
    } else {
        Verdict::Undecided
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::equivalent;
    use Verdict::{Equal as E, NotEqual as N};

    #[test]
    fn reading_ascending_and_as_intervals() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = Ascending::new(s(&["5", "x"]), &[Relation::GreaterEqual]);
        assert_eq!(
            a.and_then(|a| a.as_interval()).as_deref(),
            Some("(-\\infty,5]")
        );
        let chain = Ascending::new(s(&["1", "x", "2"]), &[Relation::Less, Relation::LessEqual]);
        assert_eq!(
            chain.and_then(|a| a.as_interval()).as_deref(),
            Some("(1,2]")
        );
        assert!(
            Ascending::new(s(&["1", "x", "0"]), &[Relation::Less, Relation::Greater]).is_none()
        );
    }

    #[test]
    fn flipped_and_negated_forms() {
        for (g, p, want) in [
            ("5 \\geq x", "x \\leq 5", E),
            ("-x > -1", "x < 1", E),
            ("3x \\ge 6", "x \\geq 2", E),
            ("-x > -1", "x > 1", N),
            ("x < 1", "x \\leq 1", N),
            ("x^2 < 1", "x < 1", N),
        ] {
            assert_eq!(equivalent(g, p), want, "{g} vs {p}");
        }
    }
}
