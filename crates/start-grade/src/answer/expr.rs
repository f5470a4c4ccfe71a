//! The expression tree of a scalar answer, evaluated exactly (as a rational, when every step is
//! rational) or in floating point at the sample points given to its variables.

use std::collections::BTreeSet;

use super::rational::Rat;

/// Largest factorial evaluated exactly (34! overflows i128).
const MAX_EXACT_FACTORIAL: i128 = 33;
/// Largest factorial evaluated in floating point (171! overflows f64).
const MAX_FLOAT_FACTORIAL: f64 = 170.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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
    pub(super) fn from_command(name: &str) -> Option<Func> {
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Constant {
    Pi,
    E,
    Infinity,
}

/// A parsed scalar answer.
#[derive(Debug, Clone)]
pub(super) enum Expr {
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
    pub(super) fn exact(&self) -> Option<Rat> {
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

    pub(super) fn eval(&self, env: &[(&str, f64)]) -> f64 {
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

    pub(super) fn vars<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
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

    pub(super) fn has_decimal(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Num { text, .. } if text.contains('.')))
    }

    pub(super) fn has_infinity(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Const(Constant::Infinity)))
    }
}
