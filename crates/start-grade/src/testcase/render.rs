//! Rendering test cases into the debug hint's `{testcase}` slot, bounded in count and bytes so
//! that a statement with huge samples cannot crowd the rest of the prompt out.

use super::{MAX_HINT_BYTES, MAX_HINT_FIELD_BYTES, MAX_HINT_TESTS, TestCase, TestKind};
use crate::fence::fence_for;

/// Bytes kept free in the hint budget for the "more test cases not shown" note.
const HINT_NOTE_RESERVE_BYTES: usize = 128;

/// Renders test cases for the debug hint's `{testcase}` slot.
///
/// Stdio tests read `Sample N`, `Input:` and `Expected output:` with fenced blocks; functional
/// tests read `Example N: Input: ... -> Expected: ...`. At most [`MAX_HINT_TESTS`] tests and
/// [`MAX_HINT_BYTES`] bytes are rendered, each field cut to [`MAX_HINT_FIELD_BYTES`]; a final
/// note says how many tests were left out. Returns an empty string for no tests.
///
/// # Examples
///
/// ````
/// use start_grade::testcase::{TestCase, TestKind, render_for_hint};
///
/// let tests = [
///     TestCase {
///         input: "3\n1 2 3\n".to_string(),
///         output: "6\n".to_string(),
///         kind: TestKind::Stdio,
///     },
///     TestCase {
///         input: "nums = [2,7], target = 9".to_string(),
///         output: "[0,1]".to_string(),
///         kind: TestKind::Functional,
///     },
/// ];
/// assert_eq!(
///     render_for_hint(&tests),
///     "Sample 1\nInput:\n```\n3\n1 2 3\n```\nExpected output:\n```\n6\n```\n\n\
///      Example 2: Input: nums = [2,7], target = 9 -> Expected: [0,1]"
/// );
/// assert_eq!(render_for_hint(&[]), "");
/// ````
pub fn render_for_hint(tests: &[TestCase]) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for (index, test) in tests.iter().enumerate() {
        if index == MAX_HINT_TESTS {
            break;
        }
        let block = render_one(index + 1, test);
        let separator = if out.is_empty() { 0 } else { 2 };
        if out.len() + separator + block.len() > MAX_HINT_BYTES - HINT_NOTE_RESERVE_BYTES {
            break;
        }
        if separator > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&block);
        shown += 1;
    }
    let omitted = tests.len() - shown;
    if omitted > 0 {
        out.push_str(&format!(
            "\n\n({omitted} more test case(s) not shown; {shown} of {} included)",
            tests.len()
        ));
    }
    out
}

fn render_one(number: usize, test: &TestCase) -> String {
    match test.kind {
        TestKind::Stdio => {
            let input = clip_field(test.input.strip_suffix('\n').unwrap_or(&test.input));
            let output = clip_field(test.output.strip_suffix('\n').unwrap_or(&test.output));
            let fence = fence_for([input.as_str(), output.as_str()]);
            format!(
                "Sample {number}\nInput:\n{fence}\n{input}\n{fence}\n\
                 Expected output:\n{fence}\n{output}\n{fence}"
            )
        }
        TestKind::Functional => format!(
            "Example {number}: Input: {} -> Expected: {}",
            clip_field(&test.input),
            clip_field(&test.output)
        ),
    }
}

/// Cuts a field to [`MAX_HINT_FIELD_BYTES`], saying so.
fn clip_field(text: &str) -> String {
    if text.len() <= MAX_HINT_FIELD_BYTES {
        text.to_string()
    } else {
        format!(
            "{}… (truncated, {} bytes in all)",
            &text[..text.floor_char_boundary(MAX_HINT_FIELD_BYTES)],
            text.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcase::tests::{functional, stdio};

    #[test]
    fn render_stdio_and_functional() {
        let tests = vec![
            stdio("3\n1 2 3\n", "6\n"),
            functional("nums = [2,7], target = 9", "[0,1]"),
        ];
        assert_eq!(
            render_for_hint(&tests),
            "Sample 1\nInput:\n```\n3\n1 2 3\n```\nExpected output:\n```\n6\n```\n\n\
             Example 2: Input: nums = [2,7], target = 9 -> Expected: [0,1]"
        );
        assert_eq!(render_for_hint(&[]), "");
        // Content with a backtick fence gets a longer fence.
        let rendered = render_for_hint(&[stdio("```\n", "x\n")]);
        assert!(rendered.starts_with("Sample 1\nInput:\n````\n```\n````"));
    }

    #[test]
    fn render_is_bounded() {
        let many: Vec<TestCase> = (0..20).map(|i| stdio(&format!("{i}\n"), "0\n")).collect();
        let rendered = render_for_hint(&many);
        assert!(rendered.contains("Sample 8\n"));
        assert!(!rendered.contains("Sample 9\n"));
        assert!(rendered.ends_with("(12 more test case(s) not shown; 8 of 20 included)"));

        let big: Vec<TestCase> = (0..5)
            .map(|_| stdio(&"é".repeat(5000), &"9".repeat(5000)))
            .collect();
        let rendered = render_for_hint(&big);
        assert!(rendered.len() <= MAX_HINT_BYTES, "{}", rendered.len());
        assert!(rendered.contains("(truncated, 10000 bytes in all)"));
        assert!(rendered.contains("more test case(s) not shown"));
    }
}
