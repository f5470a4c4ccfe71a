//! Pairs the Rust fast path leaves undecided, decided by sympy in the sandbox.

use start::rft::score::{Method, Scorer, check_pair};
use start_grade::answer::{Verdict, equivalent};

use crate::sandbox;

#[test]
fn undecided_pairs_go_through_sympy() {
    let scorer = Scorer::new(Some(sandbox().into()));
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

/// The symbolic check runs under a wall-time cap: past it the pair is undecided (never equal),
/// and the call returns soon after the cap.
#[test]
fn sympy_check_is_capped_in_time() {
    let mut scorer = Scorer::new(Some(sandbox().into()));
    scorer.sympy_limits.wall_time = std::time::Duration::from_millis(50);
    let started = std::time::Instant::now();
    let (got, method) = scorer.equal("e^{i\\pi}", "-1");
    let took = started.elapsed();
    assert_eq!(method, Method::Sympy);
    // Importing sympy alone takes longer than 50 ms, so the check cannot finish.
    assert_eq!(got, Verdict::Undecided);
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}
