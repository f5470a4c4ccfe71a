//! The answer-equivalence table: every line of `tests/all/data/equivalence.tsv` is one pair with
//! its expected verdict, grouped by the class of rule it exercises; each class must have cases
//! both ways (equal and not equal), and every pair is also checked with the answers swapped
//! where the rule is symmetric (a swapped pair must never flip an equal into not equal).

use std::collections::{BTreeMap, BTreeSet};

use start_grade::answer::{EquivOptions, Verdict, equivalent_with};

/// One line of the table.
struct Case {
    line: usize,
    class: String,
    gold: String,
    pred: String,
    want: Verdict,
    opts: EquivOptions,
}

fn verdict(word: &str) -> Verdict {
    match word {
        "equal" => Verdict::Equal,
        "not_equal" => Verdict::NotEqual,
        "undecided" => Verdict::Undecided,
        other => panic!("unknown verdict {other:?}"),
    }
}

fn options(text: &str) -> EquivOptions {
    let mut opts = EquivOptions::default();
    for kv in text.split(',').filter(|s| !s.trim().is_empty()) {
        let (k, v) = kv.split_once('=').expect("key=value");
        match k.trim() {
            "percent_as_fraction" => opts.percent_as_fraction = v.trim().parse().unwrap(),
            "numeric_identity" => opts.numeric_identity = v.trim().parse().unwrap(),
            "relative_tolerance" => opts.relative_tolerance = v.trim().parse().unwrap(),
            "absolute_tolerance" => opts.absolute_tolerance = v.trim().parse().unwrap(),
            other => panic!("unknown option {other:?}"),
        }
    }
    opts
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/equivalence.tsv");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 4, "line {}: {l:?}", i + 1);
            Case {
                line: i + 1,
                class: cols[0].to_string(),
                gold: cols[1].to_string(),
                pred: cols[2].to_string(),
                want: verdict(cols[3]),
                opts: options(cols.get(4).copied().unwrap_or("")),
            }
        })
        .collect()
}

#[test]
fn every_line_of_the_table() {
    let cases = cases();
    assert!(cases.len() >= 250, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = equivalent_with(&c.gold, &c.pred, &c.opts);
            (got != c.want).then(|| {
                format!(
                    "line {} [{}] {:?} vs {:?}: want {:?}, got {got:?}",
                    c.line, c.class, c.gold, c.pred, c.want
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_class_is_tested_both_ways() {
    let mut seen: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for c in cases() {
        let way = match c.want {
            Verdict::Equal => "equal",
            Verdict::NotEqual => "not_equal",
            Verdict::Undecided => "undecided",
        };
        seen.entry(c.class).or_default().insert(way);
    }
    let required = [
        "thousands",
        "decimal_comma",
        "percent",
        "units",
        "assignment",
        "inequality",
        "interval",
        "set",
        "tuple",
        "matrix",
        "fraction",
        "root",
        "mixed_number",
        "scientific",
        "choice",
        "text",
        "symbolic",
        "tolerance",
    ];
    for class in required {
        let ways = seen.get(class).cloned().unwrap_or_default();
        assert!(
            ways.contains("equal") && ways.contains("not_equal"),
            "class {class} needs equal and not_equal cases, has {ways:?}"
        );
    }
}

/// Equal pairs stay equal with the answers swapped, except where the rule is one-way on
/// purpose (a choice-letter gold accepts `(B) 12`; a decimal comma is read against a number).
#[test]
fn equal_pairs_are_symmetric() {
    let one_way = ["choice", "decimal_comma"];
    let broken: Vec<String> = cases()
        .iter()
        .filter(|c| c.want == Verdict::Equal && !one_way.contains(&c.class.as_str()))
        .filter(|c| equivalent_with(&c.pred, &c.gold, &c.opts) == Verdict::NotEqual)
        .map(|c| format!("line {}: {:?} vs {:?}", c.line, c.pred, c.gold))
        .collect();
    assert!(
        broken.is_empty(),
        "swapped pairs called not equal:\n{}",
        broken.join("\n")
    );
}
