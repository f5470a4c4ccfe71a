//! Extraction from whole statements as each source writes them, pairing, functional
//! arguments, and bounds on hostile input.

use super::scan::MAX_EVENTS;
use super::*;

fn found(statement: &str) -> Vec<TestCase> {
    match extract(statement) {
        Extraction::Found(tests) => tests,
        Extraction::NotFound { reason } => panic!("no tests found: {reason}"),
    }
}

pub(super) fn stdio(input: &str, output: &str) -> TestCase {
    TestCase {
        input: input.to_string(),
        output: output.to_string(),
        kind: TestKind::Stdio,
    }
}

pub(super) fn functional(input: &str, output: &str) -> TestCase {
    TestCase {
        input: input.to_string(),
        output: output.to_string(),
        kind: TestKind::Functional,
    }
}

const CODEFORCES: &str = "\
A. Watermelon Pairs
time limit per test: 1 second
memory limit per test: 256 megabytes

You are given n integers a_1, ..., a_n. Count the pairs i < j with a_i + a_j even.

Input
The first line contains one integer n (1 <= n <= 2*10^5).
The second line contains n integers a_1, ..., a_n.

Output
Print one integer: the number of pairs.

Examples
Input
4
1 2 3 4
Output
2
Input
3
 5  7 9
Output
3

Note
In the first example the pairs are (1, 3) and (2, 4).
";

#[test]
fn codeforces_plain_examples() {
    assert_eq!(
        found(CODEFORCES),
        vec![stdio("4\n1 2 3 4\n", "2\n"), stdio("3\n 5  7 9\n", "3\n")]
    );
}

#[test]
fn codeforces_fenced_and_indented_blocks_with_crlf() {
    let fenced = "\
## Input\r\nThe only line contains t.\r\n\r\n## Output\r\nPrint it.\r\n\r\n## Examples\r\n\r\n\
**Input**\r\n```\r\n2\r\nab\r\n\r\ncd  \r\n```\r\n**Output**\r\n```text\r\nYES\r\nNO\r\n```\r\n\r\n\
**Input**\r\n\r\n```\r\n1\r\nzz\r\n```\r\n\r\n**Output**\r\n```\r\nNO\r\n```\r\n\r\n## Note\r\nNothing.\r\n";
    assert_eq!(
        found(fenced),
        vec![
            stdio("2\nab\n\ncd  \n", "YES\nNO\n"),
            stdio("1\nzz\n", "NO\n")
        ]
    );

    let indented = "Examples\n\nInput\n\n    3\n    1 2 3\n\nOutput\n\n    6\n\nNote\n\nEasy.\n";
    assert_eq!(found(indented), vec![stdio("3\n1 2 3\n", "6\n")]);
}

#[test]
fn taco_style_dashed_headings() {
    let statement = "\
Some story.

-----Input-----

The first line contains n.

-----Output-----

Print the answer.

-----Examples-----
Input
5

Output
120

Input
0

Output
1

-----Note-----

0! = 1.
";
    assert_eq!(
        found(statement),
        vec![stdio("5\n", "120\n"), stdio("0\n", "1\n")]
    );
}

const ATCODER: &str = "\
Problem Statement
Takahashi has N cards. The i-th card has A_i written on it.
Find the maximum sum of two different cards.

Constraints
2 <= N <= 100

Input
Input is given from Standard Input in the following format:
N
A_1 A_2 ... A_N

Output
Print the answer.

Sample Input 1
3
1 5 3

Sample Output 1
8

Choose the second and third cards: 5 + 3 = 8.

Sample Input 2
2
-1 -1

Sample Output 2
-2

Sample Input 3
4
10 10 10 10

Sample Output 3
20
";

#[test]
fn atcoder_numbered_samples_skip_explanations() {
    assert_eq!(
        found(ATCODER),
        vec![
            stdio("3\n1 5 3\n", "8\n"),
            stdio("2\n-1 -1\n", "-2\n"),
            stdio("4\n10 10 10 10\n", "20\n"),
        ]
    );
}

#[test]
fn atcoder_japanese_and_copy_buttons() {
    let statement = "\
問題文
整数 N が与えられます。

制約
1 <= N <= 9

入力
N

出力
答えを出力せよ。

入力例 1
Copy
3

出力例 1
Copy
6

入力例 2
1

出力例 2
1
";
    assert_eq!(
        found(statement),
        vec![stdio("3\n", "6\n"), stdio("1\n", "1\n")]
    );
}

#[test]
fn samples_paired_by_number_not_order() {
    let statement =
        "Sample Input 1\n1\nSample Input 2\n2\n\nSample Output 2\nB\nSample Output 1\nA\n";
    assert_eq!(
        found(statement),
        vec![stdio("2\n", "B\n"), stdio("1\n", "A\n")]
    );
}

#[test]
fn livecodebench_stdio_statement() {
    let statement = "\
You are given a string S of length N consisting of A and B.
Print the number of positions i such that S_i = S_{i+1}.

Input

The input is given from Standard Input in the following format:
N
S

Output

Print the answer as an integer.

Constraints


- 2 \\leq N \\leq 100

Sample Input 1

5
AABBA

Sample Output 1

2

S_1 = S_2 = A and S_3 = S_4 = B.

Sample Input 2

2
AB

Sample Output 2

0
";
    assert_eq!(
        found(statement),
        vec![stdio("5\nAABBA\n", "2\n"), stdio("2\nAB\n", "0\n")]
    );
}

#[test]
fn livecodebench_example_blocks_for_stdio() {
    let statement = "\
Read n and n numbers; print their sum, then their maximum.

Example 1:

Input: 3
1 2 3
Output: 6
3

Example 2:

Input:
1
-7
Output:
-7
-7
";
    assert_eq!(
        found(statement),
        vec![stdio("3\n1 2 3\n", "6\n3\n"), stdio("1\n-7\n", "-7\n-7\n")]
    );
}

#[test]
fn leetcode_plain_text_two_sum() {
    let statement = "\
Given an array of integers nums and an integer target, return indices of the two numbers such that they add up to target.

Example 1:

Input: nums = [2,7,11,15], target = 9
Output: [0,1]
Explanation: Because nums[0] + nums[1] == 9, we return [0, 1].

Example 2:

Input: nums = [3,2,4], target = 6
Output: [1,2]

Example 3:

Input: nums = [3,3], target = 6
Output: [0,1]

\u{a0}
Constraints:

2 <= nums.length <= 10^4
";
    assert_eq!(
        found(statement),
        vec![
            functional("nums = [2,7,11,15], target = 9", "[0,1]"),
            functional("nums = [3,2,4], target = 6", "[1,2]"),
            functional("nums = [3,3], target = 6", "[0,1]"),
        ]
    );
}

#[test]
fn leetcode_markdown_bold_in_fences() {
    let statement = r#"
Given a string `s`, return *the longest palindromic substring* in `s`.

**Example 1:**

```
**Input:** s = "babad"
**Output:** "bab"
**Explanation:** "aba" is also a valid answer.
```

**Example 2:**

```
**Input:** s = "cb,bd"
**Output:** "bb"
```

**Constraints:**

* `1 <= s.length <= 1000`
"#;
    assert_eq!(
        found(statement),
        vec![
            functional(r#"s = "babad""#, r#""bab""#),
            functional(r#"s = "cb,bd""#, r#""bb""#),
        ]
    );
}

#[test]
fn leetcode_html_statement() {
    let statement = "<p>Given a string <code>s</code>, return the longest palindrome.</p>\n\
<p>&nbsp;</p>\n<p><strong class=\"example\">Example 1:</strong></p>\n\n<pre>\n\
<strong>Input:</strong> s = &quot;a&lt;b&quot;, k = 3\n<strong>Output:</strong> &quot;bab&quot;\n\
<strong>Explanation:</strong> &quot;aba&quot; is also a valid answer.\n</pre>\n\n\
<p><strong class=\"example\">Example 2:</strong></p>\n<pre>\n\
<strong>Input:</strong> s = &quot;cbbd&quot;, k = 1\n<strong>Output:</strong> true\n</pre>\n\
<p>&nbsp;</p>\n<p><strong>Constraints:</strong></p>\n";
    assert_eq!(
        found(statement),
        vec![
            functional(r#"s = "a<b", k = 3"#, r#""bab""#),
            functional(r#"s = "cbbd", k = 1"#, "true"),
        ]
    );
}

#[test]
fn no_samples_is_not_found_with_reason() {
    let statement = "Prove that there are infinitely many primes.\n\nInput\nNothing.\n";
    match extract(statement) {
        Extraction::NotFound { reason } => assert!(reason.contains("no sample tests")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(extract(""), Extraction::NotFound { .. }));
    assert!(matches!(extract("  \n\n"), Extraction::NotFound { .. }));
}

#[test]
fn unmatched_counts_pair_what_they_can_and_warn() {
    let statement = "Sample Input 1\n1\n\nSample Output 1\n2\n\nSample Input 2\n5\n";
    let report = extract_report(statement);
    assert_eq!(
        report.extraction,
        Extraction::Found(vec![stdio("1\n", "2\n")])
    );
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("input 2"));

    let only_outputs = "Sample Output 1\n2\n";
    match extract(only_outputs) {
        Extraction::NotFound { reason } => assert!(reason.contains("0 sample input")),
        other => panic!("unexpected {other:?}"),
    }

    // A heading whose content is missing (an image, say) gives no test, not an empty one.
    let missing = "Sample Input 1\n\nSample Output 1\n\n6\n";
    assert!(matches!(extract(missing), Extraction::NotFound { .. }));
}

#[test]
fn functional_args_split_respects_brackets_and_quotes() {
    let args = functional_args(r#"grid = [[1,2],[3,4]], s = "a, b = c", t = 'x', k = -3"#);
    assert_eq!(
        args,
        Some(vec![
            ("grid".into(), "[[1,2],[3,4]]".into()),
            ("s".into(), r#""a, b = c""#.into()),
            ("t".into(), "'x'".into()),
            ("k".into(), "-3".into()),
        ])
    );
    assert_eq!(
        functional_args(r#"s = "a\"b,""#),
        Some(vec![("s".into(), r#""a\"b,""#.into())])
    );
    for bad in [
        "",
        "3",
        "[1,2]",
        "nums = [1,2",
        "a = 1,",
        "= 3",
        "1x = 2",
        "s = \"open",
        "a == b",
        "a = 1)",
    ] {
        assert_eq!(functional_args(bad), None, "{bad:?}");
    }
}

#[test]
fn hostile_input_does_not_panic() {
    let mut inputs: Vec<String> = vec![
        "Sample Input".into(),
        "Sample Input 99999999999999999999\nx\nSample Output 99999999999999999999\ny".into(),
        "```".into(),
        "Examples\nInput\n```\nunterminated".into(),
        "Example 1:\nInput:".into(),
        "Example 1:\nInput: a = [[[[\nOutput: ]]]]".into(),
        "<pre><pre></pre><strong".into(),
        "<".repeat(10_000),
        "入力例 1\n「こんにちは」\n出力例 1\n🎉\u{200d}🎉".into(),
        "\u{feff}Sample Input 1\r\n\r\n\u{1F600}\r\nSample Output 1\r\n\u{0301}\r".into(),
        "\0\u{1}\u{7f}\u{10ffff}".repeat(1000),
        "Sample Input 1\n".repeat(MAX_EVENTS + 10),
        "Examples\n".to_string() + &"Input\n1\nOutput\n1\n".repeat(MAX_TESTS * 2),
    ];
    // Larger than the scan limit, with a multi-byte character straddling the cut.
    let mut huge = "Sample Input 1\n1\nSample Output 1\n1\n\n".to_string();
    while huge.len() < MAX_STATEMENT_BYTES - 1 {
        huge.push('a');
    }
    huge.push_str("éééé");
    inputs.push(huge);
    for input in &inputs {
        let report = extract_report(input);
        if let Extraction::Found(tests) = &report.extraction {
            assert!(tests.len() <= MAX_TESTS);
            let rendered = render_for_hint(tests);
            assert!(rendered.len() <= MAX_HINT_BYTES);
        }
    }
    let report = extract_report(&inputs[inputs.len() - 1]);
    assert_eq!(
        report.extraction,
        Extraction::Found(vec![stdio("1\n", "1\n")])
    );
    assert!(report.warnings[0].contains("only the first"));

    let many = extract_report(&inputs[12]);
    match many.extraction {
        Extraction::Found(tests) => assert_eq!(tests.len(), MAX_TESTS),
        other => panic!("unexpected {other:?}"),
    }
}
