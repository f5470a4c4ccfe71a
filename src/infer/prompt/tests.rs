use super::*;
use start_grade::testcase::{FnTest, StdioTest};

const STATEMENT: &str = "Sum numbers.\n\nSample Input 1\n\n1 2 3\n\nSample Output 1\n\n6\n";

fn code(text: &str) -> Problem {
    Problem {
        id: "c".into(),
        kind: ProblemKind::Code,
        text: text.into(),
        answer: None,
        tests: None,
        public_tests: None,
        starter_code: None,
    }
}

fn hidden() -> Option<Tests> {
    Some(Tests::Stdio {
        tests: vec![StdioTest {
            input: "HIDDEN-INPUT\n".into(),
            output: "HIDDEN-OUTPUT\n".into(),
        }],
        compare: Default::default(),
    })
}

#[test]
fn stdin_template_embeds_the_samples_and_shows_their_output() {
    let problem = code(STATEMENT);
    assert_eq!(
        code_template(&problem),
        "```python\nimport io\nimport sys\n\n\ndef solve():\n    \
         # The solution: read the input with input() or sys.stdin, print the answer.\n    \
         pass\n\n\nsamples = [\n    '1 2 3\\n',\n]\n\
         for number, data in enumerate(samples, 1):\n    \
         sys.stdin = io.TextIOWrapper(io.BytesIO(data.encode()))\n    \
         print(f\"Sample {number}:\")\n    solve()\n```\n```output\nSample 1:\n6\n```"
    );
    assert!(user_prompt(&problem).contains("reads the input from stdin"));
}

#[test]
fn hidden_tests_never_reach_the_hint() {
    let mut problem = code(STATEMENT);
    problem.tests = hidden();
    let slots = hint_slots(&problem);
    for text in [&slots.testcase, &slots.code_template] {
        assert!(!text.contains("HIDDEN"), "{text}");
        assert!(text.contains("1 2 3"), "{text}");
    }
    // Without samples in the statement, the hint says so; it still shows no hidden test.
    let mut bare = code("Sum the numbers on the line.");
    bare.tests = hidden();
    let slots = hint_slots(&bare);
    assert!(slots.testcase.contains("shows no sample tests"));
    assert!(!slots.code_template.contains("HIDDEN"));
    assert!(slots.code_template.contains("a small input I make up"));
    // Public tests win over the statement's samples.
    let mut public = code(STATEMENT);
    public.tests = hidden();
    public.public_tests = Some(Tests::Stdio {
        tests: vec![StdioTest {
            input: "4 5\n".into(),
            output: "9\n".into(),
        }],
        compare: Default::default(),
    });
    let slots = hint_slots(&public);
    assert!(slots.testcase.contains("4 5") && !slots.testcase.contains("1 2 3"));
    assert!(slots.code_template.contains("'4 5\\n'"));
    assert!(
        slots
            .code_template
            .ends_with("```output\nSample 1:\n9\n```")
    );
    assert_eq!(
        hint_slots(&Problem {
            kind: ProblemKind::Math,
            ..public
        }),
        HintSlots::default()
    );
}

#[test]
fn starter_code_problems_ask_for_the_function_and_the_template_calls_it() {
    let mut problem =
        code("Two sum.\n\nExample 1:\nInput: nums = [2,7,11,15], target = 9\nOutput: [0,1]\n");
    problem.starter_code = Some(
        "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        "
            .into(),
    );
    let prompt = user_prompt(&problem);
    assert!(
        prompt.contains("the method `twoSum` of `class Solution`")
            && prompt.contains("does not read stdin")
            && prompt.ends_with("```python\nclass Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n```"),
        "{prompt}"
    );
    assert_eq!(
        code_template(&problem),
        "```python\nfrom typing import *\n\n\nclass Solution:\n    \
         def twoSum(self, nums: List[int], target: int) -> List[int]:\n        pass\n\n\n\
         print(\"Sample 1:\", Solution().twoSum(nums=[2,7,11,15], target=9))\n```\n\
         ```output\nSample 1: [0,1]\n```"
    );

    // Functional public tests give the arguments as Python literals.
    let mut functional = code("Add.");
    functional.tests = Some(Tests::Functional {
        fn_name: "add".into(),
        tests: vec![FnTest {
            args: vec![serde_json::json!(-1), serde_json::json!(1)],
            expected: serde_json::json!(0),
        }],
    });
    functional.public_tests = Some(Tests::Functional {
        fn_name: "add".into(),
        tests: vec![FnTest {
            args: vec![serde_json::json!([1, null]), serde_json::json!("it's")],
            expected: serde_json::json!({"ok": true}),
        }],
    });
    assert!(user_prompt(&functional).contains("the Python function `add`"));
    let template = code_template(&functional);
    assert!(
        template.contains("def add(*args, **kwargs):")
            && template.contains("print(\"Sample 1:\", add([1, None], \"it's\"))")
            && template.ends_with("```output\nSample 1: {'ok': True}\n```"),
        "{template}"
    );
    assert!(
        !template.contains("-1"),
        "the judged test stays hidden: {template}"
    );

    // `check` tests name the function; they show no cases.
    let mut check = code("Increment x.");
    check.tests = Some(Tests::Check {
        check: "def check(c): assert c(1) == 2".into(),
        entry_point: "inc".into(),
        prompt: String::new(),
    });
    assert!(user_prompt(&check).contains("`inc`"));
    assert!(code_template(&check).contains("print(\"Sample 1:\", inc(...))"));
    assert!(!hint_slots(&check).testcase.contains("assert"));
}

#[test]
fn the_template_is_bounded_and_escapes_its_literals() {
    let mut problem = code("x");
    let mut tests: Vec<StdioTest> = (0..MAX_TEMPLATE_SAMPLES + 3)
        .map(|i| StdioTest {
            input: format!("{i}\n"),
            output: "0\n".into(),
        })
        .collect();
    tests.insert(
        0,
        StdioTest {
            input: "9".repeat(MAX_TEMPLATE_SAMPLE_BYTES),
            output: "big\n".into(),
        },
    );
    problem.public_tests = Some(Tests::Stdio {
        tests,
        compare: Default::default(),
    });
    let template = code_template(&problem);
    assert_eq!(template.matches("\n    '").count(), MAX_TEMPLATE_SAMPLES);
    assert!(template.contains("# (4 more sample(s) left out of this template)"));
    assert!(!template.contains("big"));

    assert_eq!(py_str("a'b\"c\\\n\u{1}é"), "'a\\'b\"c\\\\\\n\\x01é'");
    assert_eq!(py_str("it's"), "\"it's\"");
    // A fence in a sample makes the template's own fences longer.
    problem.public_tests = Some(Tests::Stdio {
        tests: vec![StdioTest {
            input: "```\n".into(),
            output: "````\n".into(),
        }],
        compare: Default::default(),
    });
    let template = code_template(&problem);
    assert!(
        template.starts_with("````python\n") && template.ends_with("\n`````"),
        "{template}"
    );
}
