//! A recursive-descent parser from normalized scalar LaTeX (`2x^2+\frac{\sqrt3}{2}\pi`) to an
//! expression tree, bounded in depth and size; what it does not know (calculus, unknown
//! commands) is `None`, never a guess.

use super::expr::{Constant, Expr, Func, Op};
use super::rational::Rat;
use super::{GREEK, in_list};

/// Nesting depth the expression parser accepts (guards the stack).
const MAX_PARSE_DEPTH: usize = 48;
/// Expression nodes the parser builds at most (bounds evaluation and printing).
const MAX_EXPR_NODES: usize = 512;
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

/// The integer a literal stands for, with its sign (`3`, `-3`), if `e` is one.
fn integer_literal(e: &Expr) -> Option<(bool, &Expr)> {
    match e {
        Expr::Num { text, .. } if text.bytes().all(|b| b.is_ascii_digit()) => Some((false, e)),
        Expr::Neg(inner) => match integer_literal(inner)? {
            (false, n) => Some((true, n)),
            _ => None,
        },
        _ => None,
    }
}

/// `whole` and `frac` as the mixed number `whole frac` (`-2\frac12` is `-(2 + 1/2)`), if
/// `whole` is an integer literal and `frac` a quotient of two.
fn mixed_number(whole: &Expr, frac: Expr) -> Option<Expr> {
    let (negative, n) = integer_literal(whole)?;
    let Expr::Bin(Op::Div, num, den) = &frac else {
        return None;
    };
    if !matches!(integer_literal(num)?, (false, _)) || !matches!(integer_literal(den)?, (false, _))
    {
        return None;
    }
    let sum = Expr::Bin(Op::Add, Box::new(n.clone()), Box::new(frac));
    Some(if negative {
        Expr::Neg(Box::new(sum))
    } else {
        sum
    })
}

pub(super) fn parse_expr(text: &str) -> Option<Expr> {
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
        // A mixed number `2\frac{1}{2}` is `2 + 1/2`, not `2 * 1/2`: an integer written
        // right before a fraction of two integers (as MATH answers write them).
        self.skip_ws();
        if self.matches_word("\\frac") && integer_literal(&lhs).is_some() {
            let save = (self.pos, self.nodes);
            if let Some(frac) = self.parse_power()
                && let Some(mixed) = mixed_number(&lhs, frac)
            {
                lhs = self.node(mixed)?;
            } else {
                (self.pos, self.nodes) = save;
            }
        }
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
            "binom" => {
                // `\binom{n}{k}` as `n! / (k! (n-k)!)`: exact for integers, and the
                // factorials' own bounds apply.
                let n = self.parse_arg()?;
                let k = self.parse_arg()?;
                let n_minus_k =
                    self.node(Expr::Bin(Op::Sub, Box::new(n.clone()), Box::new(k.clone())))?;
                let fact = |p: &mut Parser, e: Expr| p.node(Expr::Factorial(Box::new(e)));
                let top = fact(self, n)?;
                let (kf, rest) = (fact(self, k)?, fact(self, n_minus_k)?);
                let bottom = self.node(Expr::Bin(Op::Mul, Box::new(kf), Box::new(rest)))?;
                self.node(Expr::Bin(Op::Div, Box::new(top), Box::new(bottom)))
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
