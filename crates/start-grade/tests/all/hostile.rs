//! No verdict ever comes from a panic or a hang: random and adversarial strings (deep nesting,
//! towers such as `10^{10^{10}}`, huge numbers, long inputs, byte junk) go through extraction,
//! equivalence and the sympy program writer, each pair on a worker thread with a wall-time
//! cap, so that a hang fails the test instead of stalling it.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use start_grade::answer::{
    MAX_ANSWER_BYTES, equivalent, extract_answer, extract_answer_or_last_line, latex_to_python,
    sympy_check_code,
};

/// Wall time one pair may take through every entry point (release build, a busy 2-core
/// machine); the work is bounded by constants in the crate, so a pair takes milliseconds.
const PAIR_TIME_CAP: Duration = Duration::from_secs(5);

/// Runs every entry point on `(a, b)` on a worker thread; fails on a panic or past the cap.
fn check_pair(a: String, b: String) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let (a2, b2) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        let _ = extract_answer(&a2);
        let _ = extract_answer_or_last_line(&b2);
        let _ = equivalent(&a2, &b2);
        let _ = equivalent(&b2, &a2);
        let _ = equivalent(&a2, &a2);
        if let Some(x) = extract_answer(&a2) {
            let _ = equivalent(&x, &b2);
        }
        let _ = latex_to_python(&a2);
        let _ = sympy_check_code(&a2, &b2);
        let _ = tx.send(());
    });
    match rx.recv_timeout(PAIR_TIME_CAP) {
        Ok(()) => Ok(()),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "over {PAIR_TIME_CAP:?}: {:?} vs {:?}",
            short(&a),
            short(&b)
        ))),
        // The sender was dropped without sending: the worker panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(TestCaseError::fail(format!(
            "panicked: {:?} vs {:?}",
            short(&a),
            short(&b)
        ))),
    }
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Pieces of LaTeX that exercise every rule, glued at random.
const PIECES: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "{",
    "}",
    "\\{",
    "\\}",
    "(",
    ")",
    "[",
    "]",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[",
    "1",
    "2",
    "0",
    "9",
    "0.5",
    ",",
    "{,}",
    " ",
    "x",
    "y",
    "e",
    "i",
    "^",
    "_",
    "-",
    "+",
    "*",
    "/",
    "=",
    "<",
    ">",
    "\\leq",
    "\\geq",
    "\\ge",
    "\\le",
    "\\geqslant",
    ">=",
    "|",
    "!",
    ".",
    "\n",
    "$",
    "$$",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "%",
    "\\%",
    "pct",
    "\\text{",
    "cm",
    "m^2",
    "€",
    "\\$",
    "^\\circ",
    " or ",
    "\\pi",
    "\\infty",
    "\\cup",
    "\\pm",
    "\\left",
    "\\right",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\begin{bmatrix}",
    "\\end{bmatrix}",
    "&",
    "\\\\",
    "é",
    "😀",
    "\u{0}",
    "the answer is ",
    "(A)",
    "\\",
    "\\sin",
    "\\log_",
    "\\in",
    "°",
    "10^{10^{10}}",
    "99999999999999999999999",
    "e-5",
    "\\binom",
    ":",
    "\\angle",
    "\\ne",
    "!",
];

fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

/// Deeply nested or very long inputs, built from a template and a size.
fn adversarial() -> impl Strategy<Value = String> {
    let nest = |open: &'static str, close: &'static str| {
        (1usize..5000).prop_map(move |n| format!("{}1{}", open.repeat(n), close.repeat(n)))
    };
    prop_oneof![
        nest("(", ")"),
        nest("{", "}"),
        nest("\\{", "\\}"),
        nest("[", "]"),
        nest("\\frac{1}{", "}"),
        nest("\\sqrt{", "}"),
        nest("\\binom{10^{10}}{", "}"),
        nest("10^{", "}"),
        nest("\\boxed{", "}"),
        nest("\\left(", "\\right)"),
        nest("-", ""),
        nest("(1,", ")"),
        nest("\\begin{pmatrix}", "\\end{pmatrix}"),
        (1usize..5000).prop_map(|n| "9".repeat(n)),
        (1usize..200).prop_map(|n| format!("{}!", "9".repeat(n))),
        (1usize..64)
            .prop_map(|n| (0..n).map(|_| "10^{").collect::<String>() + "10" + &"}".repeat(n)),
        (1usize..3000).prop_map(|n| vec!["x"; n].join("+")),
        (1usize..3000).prop_map(|n| vec!["1"; n].join(",")),
        (1usize..2000).prop_map(|n| format!("\\{{{}\\}}", vec!["(1,2)"; n].join(","))),
        (1usize..2000).prop_map(|n| vec!["x<"; n].concat() + "1"),
        (1usize..2000).prop_map(|n| vec!["x="; n].concat() + "1"),
        (0usize..200_000).prop_map(|n| "$".repeat(n)),
        (0usize..100_000).prop_map(|n| format!("{}\\boxed{{5}}", "é{".repeat(n))),
        Just("2^{10^{10}}".to_string()),
        Just("10^{10^{10}}".to_string()),
        Just("(10^{10^{10}})!".to_string()),
        Just("x^{10^{10}}".to_string()),
        Just("\\sqrt[10^{10}]{2}".to_string()),
        Just(format!("1{}", "0".repeat(MAX_ANSWER_BYTES + 5))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_unicode(a in "\\PC{0,200}", b in "\\PC{0,200}") {
        check_pair(a, b)?;
    }

    #[test]
    fn glued_latex(a in pieces(), b in pieces()) {
        check_pair(a, b)?;
    }

    #[test]
    fn adversarial_against_latex(a in adversarial(), b in pieces()) {
        check_pair(a.clone(), b.clone())?;
        check_pair(b, a)?;
    }

    #[test]
    fn adversarial_against_itself(a in adversarial()) {
        check_pair(a.clone(), a)?;
    }

    #[test]
    fn byte_junk(bytes in prop::collection::vec(any::<u8>(), 0..4000), b in pieces()) {
        check_pair(String::from_utf8_lossy(&bytes).into_owned(), b)?;
    }
}
