//! Pairs the Rust fast path leaves undecided, decided by sympy in the sandbox.

use start::rft::score::{Method, Scorer, check_pair};
use start_grade::answer::{Verdict, equivalent};

use crate::sandbox;

#[test]
fn undecided_pairs_go_through_sympy() {
    let scorer = Scorer::new(Some(sandbox()));
    let cases = [
        ("e^{i\\pi}", "-1", Verdict::Equal),
        ("e^{i\\pi}", "1", Verdict::NotEqual),
        ("e^{i\\pi/2}", "i", Verdict::Equal),
        ("2^{100000}", "2^{100001}", Verdict::NotEqual),
        ("x^{1000}", "x^{1001}", Verdict::NotEqual),
    ];
    for (gold, pred, want) in cases {
        assert_eq!(
            equivalent(gold, pred),
            Verdict::Undecided,
            "{gold} vs {pred}"
        );
        let (got, method) = scorer.equal(gold, pred);
        assert_eq!(method, Method::Sympy, "{gold} vs {pred}");
        assert_eq!(got, want, "{gold} vs {pred}");
    }
    assert!(check_pair(Some(sandbox()), "e^{i\\pi}", "-1"));
    // Without a sandbox an undecided pair is not counted as equal.
    assert!(!check_pair(None, "e^{i\\pi}", "-1"));
}
