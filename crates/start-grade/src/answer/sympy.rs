//! The symbolic fallback for pairs the fast path leaves undecided: a Python program that
//! compares the answers with sympy in the sandbox, and the reader of the verdict it prints.
//! The answers reach Python only as escaped string literals and as expressions printed from
//! the parsed tree with whitelisted names, never as code.

use std::fmt::Write as _;

use super::equiv::equivalent;
use super::expr::{Constant, Expr, Func, Op};
use super::normalize::{align_equations, normalize, strip_assignment};
use super::parse::parse_expr;
use super::structure::{Shape, classify};
use super::{IMAGINARY_UNIT, Verdict};

/// Bytes of sandbox output [`parse_sympy_verdict`] looks at.
const MAX_VERDICT_OUTPUT_BYTES: usize = 1024;
/// Single-letter names that mean something else to `sympify` and must be made symbols.
const SYMPY_RESERVED_LETTERS: &str = "EINOQS";

/// Converts a scalar LaTeX answer to a Python expression for `sympy.sympify`
/// (`\frac{a}{b}` → `(a/b)`, `x^2` → `(x**2)`, `\sqrt{x}` → `sqrt(x)`, `\pi` → `pi`,
/// `2x` → `(2*x)`); `None` if it is not a scalar this module can parse (sets, equations,
/// unknown commands). The output contains only numbers, operators, parentheses, sympy function
/// and constant names and `Symbol('name')` with an alphanumeric name, so it is safe to evaluate.
///
/// # Examples
///
/// ```
/// use start_grade::answer::latex_to_python;
///
/// assert_eq!(latex_to_python("\\frac{1}{2}").as_deref(), Some("(1/2)"));
/// assert_eq!(latex_to_python("\\pi r^2").as_deref(), Some("(pi*(r**2))"));
/// assert_eq!(latex_to_python("__import__('os')"), None);
/// ```
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

impl Expr {
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

impl Func {
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
///
/// # Examples
///
/// ```
/// use start_grade::answer::{Verdict, parse_sympy_verdict, sympy_check_code};
///
/// let code = sympy_check_code("x^2 - 1", "(x-1)(x+1)");
/// // Each element travels as its normalized LaTeX and its `sympify`-able Python, both as
/// // string literals; the program prints its verdict on its last line.
/// assert!(code.contains("mode = 'ordered'"));
/// assert!(code.contains("('x^2-1', '((x**2) - 1)')"));
/// assert!(code.ends_with("print(_verdict)\n"));
/// // Run `code` in the sandbox, then read what it printed:
/// assert_eq!(parse_sympy_verdict("EQUAL\n"), Verdict::Equal);
///
/// // A pair the fast path decides needs no sympy: the program just prints the verdict.
/// assert_eq!(sympy_check_code("(1,2)", "[1,2]"), "print('NOT_EQUAL')\n");
/// ```
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
///
/// # Examples
///
/// ```
/// use start_grade::answer::{Verdict, parse_sympy_verdict};
///
/// assert_eq!(parse_sympy_verdict("EQUAL\n"), Verdict::Equal);
/// assert_eq!(parse_sympy_verdict("SymPyDeprecationWarning: ...\nNOT_EQUAL\n\n"), Verdict::NotEqual);
/// assert_eq!(parse_sympy_verdict("UNDECIDED\n"), Verdict::Undecided);
/// assert_eq!(parse_sympy_verdict("Traceback (most recent call last): ..."), Verdict::Undecided);
/// ```
pub fn parse_sympy_verdict(stdout: &str) -> Verdict {
    let start = stdout.ceil_char_boundary(stdout.len().saturating_sub(MAX_VERDICT_OUTPUT_BYTES));
    match stdout[start..]
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
}
