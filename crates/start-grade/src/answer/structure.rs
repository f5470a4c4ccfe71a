//! The shape of a normalized answer: a choice letter, a matrix, an interval, a tuple, a set, a
//! list, a union, an equation or a scalar. The shape decides how two answers are compared:
//! element by element in order, unordered, or as scalars.

use super::in_list;
use super::normalize::{GREATER_EQUAL_CHAR, LESS_EQUAL_CHAR, strip_assignment};

/// Elements of one set, tuple, list or matrix compared at most (matching is quadratic).
const MAX_ELEMENTS: usize = 64;
/// Matrix environments compared element-wise.
const MATRIX_ENVS: &str = "pmatrix bmatrix Bmatrix matrix smallmatrix";

/// The shape of a normalized answer; elements are normalized element texts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Shape {
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
    /// `a < b`, `a \geq b`, or a chain `a < x \leq b`: the sides and the relations between
    /// them (one fewer than the sides).
    Inequality(Vec<String>, Vec<Relation>),
    Scalar(String),
    TooBig,
}

/// A relation of an inequality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relation {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

impl Relation {
    fn from_char(c: char) -> Option<Relation> {
        Some(match c {
            '<' => Relation::Less,
            LESS_EQUAL_CHAR => Relation::LessEqual,
            '>' => Relation::Greater,
            GREATER_EQUAL_CHAR => Relation::GreaterEqual,
            _ => return None,
        })
    }

    /// Whether the relation excludes equality.
    pub(super) fn strict(self) -> bool {
        matches!(self, Relation::Less | Relation::Greater)
    }

    /// Whether the left side is the smaller one.
    pub(super) fn ascending(self) -> bool {
        matches!(self, Relation::Less | Relation::LessEqual)
    }
}

/// The sides and relations of `s` if it is an inequality (a relation outside any bracket).
fn split_inequality(s: &str) -> Option<Shape> {
    let mut sides = Vec::new();
    let mut relations = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0
            && let Some(r) = Relation::from_char(c)
        {
            sides.push(s.get(start..i).unwrap_or("").trim().to_string());
            relations.push(r);
            start = i + c.len_utf8();
            if relations.len() > MAX_ELEMENTS {
                return Some(Shape::TooBig);
            }
        }
    }
    if relations.is_empty() {
        return None;
    }
    sides.push(s.get(start..).unwrap_or("").trim().to_string());
    if sides.iter().any(String::is_empty) || s.contains('=') {
        return None;
    }
    Some(Shape::Inequality(sides, relations))
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
pub(super) fn leading_choice_letter(s: &str) -> Option<char> {
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

pub(super) fn classify(s: &str) -> Shape {
    if let Some(c) = choice_letter(s) {
        return Shape::Choice(c);
    }
    let shape = classify_structure(s);
    let too_big = match &shape {
        Shape::Tuple(v) | Shape::Set(v) | Shape::List(v) | Shape::Union(v) => {
            v.len() > MAX_ELEMENTS
        }
        Shape::Matrix(rows) => rows.iter().map(Vec::len).sum::<usize>() > MAX_ELEMENTS,
        Shape::Inequality(sides, _) => sides.len() > MAX_ELEMENTS,
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
            if left == '['
                && right == ']'
                && let Some(rows) = nested_rows(&parts)
            {
                return Shape::Matrix(rows);
            }
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
    if let Some(inequality) = split_inequality(s) {
        return inequality;
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

/// The rows of a nested list `[[1, 2], [3, 4]]` (the parts of the outer list), if every part
/// is itself a bracketed list: a matrix written as in Python or Mathematica.
fn nested_rows(parts: &[String]) -> Option<Vec<Vec<String>>> {
    parts
        .iter()
        .map(|row| {
            let inner = row.strip_prefix('[')?.strip_suffix(']')?;
            closes_at_end(row, 0).then(|| elements(split_top_level(inner, ",")))
        })
        .collect()
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
