//! A differential test against HuggingFace's `math-verify` (PyPI, pinned, in a venv this test
//! owns): a corpus built here of gold answers in MATH-style formats, each with equivalent and
//! non-equivalent rewrites, goes through both graders. The agreement rate and every
//! disagreement, with who is right, go to `$CARGO_TARGET_TMPDIR/math-verify/report.md`; each
//! disagreement must be adjudicated in `tests/data/math_verify_adjudicated.tsv` (the truth
//! and who has it), and both graders must give the verdict recorded there, so a change on
//! either side shows up here.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use start::rft::score::Scorer;
use start_grade::answer::Verdict;

use crate::{sandbox, venv};

/// The math-verify release compared against.
const MATH_VERIFY: &str = "math-verify==0.9.0";
/// Below this share of agreeing pairs the test fails (the rest must be adjudicated anyway).
const MIN_AGREEMENT: f64 = 0.8;

/// `(gold, equivalent rewrites, non-equivalent rewrites)`, gold answers as MATH writes them.
const CORPUS: &[(&str, &[&str], &[&str])] = &[
    (
        "\\frac{1}{2}",
        &["0.5", "\\dfrac12", "1/2", "\\frac{2}{4}"],
        &["2", "0.52", "\\frac{1}{3}"],
    ),
    (
        "\\frac{3}{4}",
        &["0.75", "\\tfrac{3}{4}", "75\\%", "3:4"],
        &["\\frac{4}{3}", "0.7"],
    ),
    (
        "42",
        &["42.0", "x = 42", "\\boxed{42}", "42."],
        &["24", "41.9"],
    ),
    ("-7", &["-7.0", "- 7"], &["7", "-6"]),
    (
        "7425000",
        &["7,425,000", "7\\,425\\,000", "7{,}425{,}000"],
        &["7,425,001", "742500"],
    ),
    ("1000", &["1 000", "1,000", "10^3"], &["100", "1000.1"]),
    ("1000.99", &["1000,99"], &["1000,9", "100099"]),
    ("0.111", &["0,111"], &["111"]),
    (
        "28\\%",
        &["28", "28 \\%", "28 percent", "0.28"],
        &["29\\%", "2.8"],
    ),
    (
        "5",
        &["\\$5", "5 dollars", "5\\text{ cm}", "5 m^2", "€5"],
        &["\\$6", "6 cm"],
    ),
    (
        "45^\\circ",
        &["45", "45^{\\circ}", "45 degrees"],
        &["46^\\circ", "135"],
    ),
    ("11", &["x = 5+5+1 = 11", "a=11"], &["x = 5+5 = 10"]),
    (
        "\\frac{1}{3}",
        &["x = 1/3", "0.333333"],
        &["0.33", "x = 1/4"],
    ),
    (
        "x \\leq 5",
        &["5 \\geq x", "x \\le 5", "x<=5", "(-\\infty, 5]"],
        &["x < 5", "x \\geq 5"],
    ),
    (
        "x < 1",
        &["-x > -1", "1 > x", "(-\\infty, 1)"],
        &["x > 1", "x \\leq 1"],
    ),
    (
        "x \\geq 3",
        &["x \\geqslant 3", "x >= 3", "3 \\le x"],
        &["x > 3", "x \\leq 3"],
    ),
    (
        "(-\\infty, 2) \\cup (3, \\infty)",
        &[
            "(3, \\infty) \\cup (-\\infty, 2)",
            "(-\\infty,2)\\cup(3,\\infty)",
        ],
        &["(-\\infty, 2] \\cup (3, \\infty)", "(2, 3)"],
    ),
    ("[1, 4)", &["[1,4)", "1 \\le x < 4"], &["(1, 4)", "[1, 4]"]),
    (
        "\\{1, 2, 3\\}",
        &["\\{3, 2, 1\\}", "1, 2, 3", "3,1,2"],
        &["\\{1, 2\\}", "\\{1, 2, 4\\}"],
    ),
    (
        "2, -3",
        &["-3, 2", "x = 2, x = -3", "2 \\text{ or } -3"],
        &["2, 3", "2"],
    ),
    (
        "(1, -2)",
        &["(1,-2)", "\\left(1, -2\\right)"],
        &["(-2, 1)", "(1, 2)"],
    ),
    (
        "(\\frac{1}{2}, \\sqrt{3})",
        &["(0.5, \\sqrt3)", "(\\dfrac12, 3^{1/2})"],
        &["(\\sqrt3, \\frac12)"],
    ),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        &[
            "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
            "[[1, 2], [3, 4]]",
        ],
        &[
            "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
            "[[1, 2], [3, 5]]",
        ],
    ),
    (
        "\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}",
        &["\\begin{pmatrix}2\\\\-1\\end{pmatrix}"],
        &["\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}"],
    ),
    (
        "\\sqrt{2}",
        &["2^{1/2}", "\\frac{2}{\\sqrt{2}}", "1.41421356"],
        &["\\sqrt{3}", "1.41"],
    ),
    (
        "2\\sqrt{2}",
        &["\\sqrt{8}", "2 \\sqrt 2"],
        &["\\sqrt{6}", "4"],
    ),
    (
        "\\sqrt[3]{2}",
        &["2^{1/3}", "2^{\\frac{1}{3}}"],
        &["\\sqrt{2}", "\\sqrt[4]{2}"],
    ),
    (
        "\\frac{5}{2}",
        &["2\\frac{1}{2}", "2.5"],
        &["2\\frac{1}{3}", "\\frac{2}{5}"],
    ),
    (
        "3 \\times 10^5",
        &["300000", "3\\cdot 10^{5}", "3e5"],
        &["3 \\times 10^6", "30000"],
    ),
    (
        "6.02 \\times 10^{23}",
        &["6.02e23", "602000000000000000000000"],
        &["6.02 \\times 10^{22}"],
    ),
    ("\\text{(B)}", &["B", "(B)", "\\textbf{(B)}"], &["C", "(A)"]),
    ("D", &["(D)", "\\text{D}"], &["A", "4"]),
    (
        "\\text{Monday}",
        &["Monday", "\\text{monday}"],
        &["Tuesday"],
    ),
    ("\\text{even}", &["even"], &["odd"]),
    (
        "\\pi",
        &["3.14159265", "\\frac{2\\pi}{2}"],
        &["3.14", "2\\pi"],
    ),
    (
        "\\frac{\\pi}{4}",
        &["0.25\\pi", "\\frac14\\pi"],
        &["\\frac{\\pi}{3}"],
    ),
    ("2x + 1", &["1 + 2x", "x + x + 1"], &["2x - 1", "2x"]),
    (
        "x^2 - 1",
        &["(x-1)(x+1)", "(x+1)(x-1)"],
        &["(x-1)^2", "x^2+1"],
    ),
    (
        "\\frac{x+1}{2}",
        &["\\frac{x}{2} + \\frac12", "0.5x + 0.5"],
        &["\\frac{x}{2}"],
    ),
    ("y = 2x + 3", &["y = 3 + 2x", "2x + 3"], &["y = 2x - 3"]),
    ("e^{i\\pi}", &["-1"], &["1"]),
    ("\\sin^2 x + \\cos^2 x", &["1"], &["0"]),
    ("\\log_2 8", &["3"], &["2"]),
    ("5!", &["120"], &["24"]),
    ("\\infty", &["\\infty"], &["-\\infty"]),
    ("\\emptyset", &["\\{\\}", "\\varnothing"], &["\\{0\\}"]),
    ("0", &["0.0", "-0"], &["0.1"]),
    (
        "\\frac{\\sqrt{3}}{2}",
        &["\\frac{1}{2}\\sqrt{3}", "0.8660254"],
        &["\\frac{\\sqrt{2}}{2}"],
    ),
    (
        "1 \\pm \\sqrt{2}",
        &["1+\\sqrt2, 1-\\sqrt2"],
        &["1 + \\sqrt{2}"],
    ),
    ("12", &["12 \\text{ inches}", "\\boxed{12}"], &["13 inches"]),
    (
        "10",
        &["\\binom{5}{2}", "\\dbinom{5}{3}"],
        &["\\binom{5}{1}"],
    ),
    (
        "30^\\circ",
        &["\\angle A = 30^\\circ", "m\\angle B = 30"],
        &["60^\\circ"],
    ),
    ("x \\neq 1", &["x \\ne 1"], &["x = 1"]),
    (
        "(2, \\infty)",
        &["x > 2", "2 < x"],
        &["x \\geq 2", "[2, \\infty)"],
    ),
    ("[2, 3]", &["2 \\leq x \\leq 3"], &["2 < x < 3"]),
];

/// One compared pair and both verdicts.
struct Row {
    gold: String,
    pred: String,
    built_equal: bool,
    ours: Verdict,
    theirs: Option<bool>,
}

/// An adjudicated disagreement: the truth and who has it.
struct Adjudication {
    truth: bool,
    right: String,
    why: String,
}

fn adjudicated() -> HashMap<(String, String), Adjudication> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/math_verify_adjudicated.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 5, "bad line {l:?}");
            let truth = match cols[2] {
                "equal" => true,
                "not_equal" => false,
                other => panic!("bad truth {other:?}"),
            };
            assert!(
                matches!(cols[3], "ours" | "math-verify" | "neither"),
                "{l:?}"
            );
            (
                (cols[0].to_string(), cols[1].to_string()),
                Adjudication {
                    truth,
                    right: cols[3].to_string(),
                    why: cols[4].to_string(),
                },
            )
        })
        .collect()
}

#[test]
fn math_verify_differential() {
    let venv = venv::venv("math-verify", &[MATH_VERIFY], &[]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("math-verify");
    std::fs::create_dir_all(&dir).unwrap();
    let mut pairs = Vec::new();
    for (gold, equal, different) in CORPUS {
        pairs.extend(
            equal
                .iter()
                .map(|p| (gold.to_string(), p.to_string(), true)),
        );
        pairs.extend(
            different
                .iter()
                .map(|p| (gold.to_string(), p.to_string(), false)),
        );
    }
    let pairs_path = dir.join("pairs.jsonl");
    let text: String = pairs
        .iter()
        .map(|(g, p, _)| serde_json::json!({"gold": g, "pred": p}).to_string() + "\n")
        .collect();
    std::fs::write(&pairs_path, text).unwrap();
    let verdicts_path = dir.join("math-verify-verdicts.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/math_compare.py");
    start_daemon::testutil::TestCommand::new(venv.python())
        .arg(&script)
        .arg("verdicts")
        .arg(&pairs_path)
        .arg(&verdicts_path)
        .assert_success();
    let theirs: Vec<Option<bool>> = std::fs::read_to_string(&verdicts_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["math_verify"].as_bool())
        .collect();
    assert_eq!(theirs.len(), pairs.len());

    // Ours as `start score` runs it: the fast path, then sympy in the sandbox.
    let scorer = Scorer::new(Some(sandbox().into()));
    let rows: Vec<Row> = pairs
        .into_iter()
        .zip(theirs)
        .map(|((gold, pred, built_equal), theirs)| {
            let ours = scorer.equal(&gold, &pred).0;
            Row {
                gold,
                pred,
                built_equal,
                ours,
                theirs,
            }
        })
        .collect();

    let adjudicated = adjudicated();
    let mut report = String::new();
    let mut problems = Vec::new();
    let disagree: Vec<&Row> = rows
        .iter()
        .filter(|r| (r.ours == Verdict::Equal) != (r.theirs == Some(true)))
        .collect();
    let agreement = 1.0 - disagree.len() as f64 / rows.len() as f64;
    let right_by_construction = |ok: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| ok(r)).count();
    let ours_right = right_by_construction(&|r| (r.ours == Verdict::Equal) == r.built_equal);
    let theirs_right = right_by_construction(&|r| (r.theirs == Some(true)) == r.built_equal);
    let _ = writeln!(
        report,
        "# Answer checking: ours against {MATH_VERIFY}\n\n{} pairs from {} gold answers; \
         agreement {:.1}% ({} disagreements). Against the corpus's own labels (how each \
         rewrite was built): ours {ours_right}/{n}, math-verify {theirs_right}/{n}.\n\n\
         | gold | pred | ours | math-verify | truth | who is right | why |\n|---|---|---|---|---|---|---|",
        rows.len(),
        CORPUS.len(),
        agreement * 100.0,
        disagree.len(),
        n = rows.len(),
    );
    for r in &disagree {
        let ours_equal = r.ours == Verdict::Equal;
        let key = (r.gold.clone(), r.pred.clone());
        let (truth, right, why) = match adjudicated.get(&key) {
            Some(a) => {
                let winner = if a.truth == ours_equal {
                    "ours"
                } else {
                    "math-verify"
                };
                if a.right != winner {
                    problems.push(format!(
                        "{:?} vs {:?}: adjudicated {} right, but {winner} is",
                        r.gold, r.pred, a.right
                    ));
                }
                (
                    if a.truth { "equal" } else { "not equal" },
                    a.right.as_str(),
                    a.why.as_str(),
                )
            }
            None => {
                problems.push(format!(
                    "not adjudicated: {}\t{}\t(ours {:?}, math-verify {:?}, built {})",
                    r.gold, r.pred, r.ours, r.theirs, r.built_equal
                ));
                ("?", "?", "")
            }
        };
        let cell = |s: &str| format!("`{}`", s.replace('|', "\\|"));
        let _ = writeln!(
            report,
            "| {} | {} | {:?} | {} | {truth} | {right} | {why} |",
            cell(&r.gold),
            cell(&r.pred),
            r.ours,
            r.theirs.map_or("error".to_string(), |b| if b {
                "equal"
            } else {
                "not equal"
            }
            .to_string()),
        );
    }
    // An adjudicated pair the graders now agree on is stale: the data file must say the truth.
    for ((gold, pred), a) in &adjudicated {
        if let Some(r) = rows.iter().find(|r| &r.gold == gold && &r.pred == pred)
            && !disagree.iter().any(|d| std::ptr::eq(*d, r))
        {
            problems.push(format!(
                "adjudicated but now agreed on: {gold:?} vs {pred:?} ({})",
                a.right
            ));
        }
    }
    let report_path = dir.join("report.md");
    std::fs::write(&report_path, &report).unwrap();
    eprintln!(
        "report: {} (agreement {:.1}%)",
        report_path.display(),
        agreement * 100.0
    );
    assert!(
        problems.is_empty(),
        "{}\nreport: {}",
        problems.join("\n"),
        report_path.display()
    );
    assert!(agreement >= MIN_AGREEMENT, "agreement {agreement:.3}");
}
