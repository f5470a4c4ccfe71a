//! The `start score --pairs`, `start filter` and `start export` commands on small files.

use crate::start;

#[test]
fn pairs_are_written_back_with_equal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\"}\n{\"gold\": \"(1,2)\", \"pred\": \"[1,2]\"}\n\nbad\n",
    )
    .unwrap();
    let st = start()
        .args(["score", "--no-sandbox", "--pairs"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_success();
    let text = std::fs::read_to_string(&output).unwrap();
    let equal: Vec<bool> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["equal"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(equal, [true, false]);
    assert!(String::from_utf8_lossy(&st.stderr).contains("2 pairs, 1 equal, 1 bad lines"));
}
