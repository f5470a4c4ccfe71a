//! The extraction table: every line of `tests/all/data/extraction.jsonl` is a model response and
//! the answer [`extract_answer`] must find in it (`null`: none), by rule of the priority
//! (boxed, answer phrase, display math, inline math).

use start_grade::answer::extract_answer;

#[test]
fn every_line_of_the_table() {
    let text = include_str!("data/extraction.jsonl");
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let response = row["text"].as_str().unwrap();
        let want = row["answer"].as_str();
        let got = extract_answer(response);
        if got.as_deref() != want {
            failures.push(format!("line {}: want {want:?}, got {got:?}", i + 1));
        }
        n += 1;
    }
    assert!(n >= 15);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
