//! What the model is prompted with, end to end: the rendered prompt a trajectory records, the
//! debug hint's template (it runs, in a real sandbox session, and prints what its output block
//! shows), and no hidden test ever reaching the hint, through the library and `start infer`.

use start::infer::backend::scripted::ScriptedBackend;
use start::infer::backend::{Backend, Prompt};
use start::infer::driver::{CodeRunner, Driver, GenerateOptions, RunResult, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::infer::prompt::code_template;
use start::infer::template::{ChatTemplate, Preset};
use start::problem::{Problem, ProblemKind};
use start::trajectory::{Segment, Trajectory};
use start_grade::fence::{self, CODE_OPEN};
use start_grade::testcase::{StdioTest, Tests};

const STATEMENT: &str = "Print the sum.\n\nSample Input 1\n\n1 2 3\n\nSample Output 1\n\n6\n\nSample Input 2\n\n10 -4\n\nSample Output 2\n\n6\n";

fn code_problem() -> Problem {
    Problem {
        id: "sum".into(),
        kind: ProblemKind::Code,
        text: STATEMENT.into(),
        answer: None,
        tests: Some(Tests::Stdio {
            tests: vec![StdioTest {
                input: "HIDDEN 77\n".into(),
                output: "HIDDEN 77\n".into(),
            }],
            compare: Default::default(),
        }),
        public_tests: None,
        starter_code: None,
    }
}

fn one_trigger_hint() -> GenerateOptions {
    GenerateOptions {
        policy: InsertPolicy {
            before_end: false,
            max_hints: 1,
            hint_gap_tokens: 0,
            ..InsertPolicy::default()
        },
        ..GenerateOptions::default()
    }
}

fn hint_text(t: &Trajectory) -> String {
    t.segments
        .iter()
        .find_map(|s| match s {
            Segment::Hint { text, .. } => Some(text.clone()),
            _ => None,
        })
        .expect("a hint was inserted")
}

#[test]
fn the_trajectory_records_the_rendered_prompt() {
    let backend =
        ScriptedBackend::new("Fine.").with_template(ChatTemplate::preset(Preset::DeepSeekR1));
    let hints = HintLibrary::bundled();
    let options = GenerateOptions {
        system: Some("Be careful.".into()),
        ..one_trigger_hint()
    };
    let driver = Driver::new(&backend, &hints, &options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
    let problem = Problem {
        kind: ProblemKind::Math,
        text: "What is 6*7?".into(),
        tests: None,
        ..code_problem()
    };
    let t = driver.run(&problem, 0, &mut runner).unwrap();
    let expected = format!(
        "<｜begin▁of▁sentence｜>Be careful.<｜User｜>{}<｜Assistant｜><think>\n",
        t.prompt
    );
    assert_eq!(t.rendered_prompt.as_deref(), Some(expected.as_str()));
    // The backend was given the same text, less the BOS its tokenizer adds.
    assert_eq!(
        backend.last_prompt().as_deref(),
        expected.strip_prefix("<｜begin▁of▁sentence｜>")
    );
    // It survives the JSON line.
    let line = serde_json::to_string(&t).unwrap();
    let back: Trajectory = serde_json::from_str(&line).unwrap();
    assert_eq!(back.rendered_prompt, t.rendered_prompt);
    // Rendering through the trait gives the same text.
    let prompt = Prompt {
        system: Some("Be careful.".into()),
        user: t.prompt.clone(),
    };
    assert_eq!(backend.render(&prompt).unwrap().text, expected);
}

#[test]
fn the_debug_hint_shows_samples_and_a_template_never_hidden_tests() {
    let backend = ScriptedBackend::new("Plan. Wait, print(6)\n```\nDone.");
    let hints = HintLibrary::bundled();
    let options = one_trigger_hint();
    let driver = Driver::new(&backend, &hints, &options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
    let t = driver.run(&code_problem(), 0, &mut runner).unwrap();
    let hint = hint_text(&t);
    assert!(!t.text().contains("HIDDEN"), "{}", t.text());
    assert!(!hint.contains("[A code template]") && !hint.contains("[The output of the code]"));
    assert!(hint.contains("'1 2 3\\n',\n    '10 -4\\n',"), "{hint}");
    assert!(
        hint.contains("```output\nSample 1:\n6\nSample 2:\n6\n```"),
        "{hint}"
    );
    // Only the hint's last fence opens a block: the template's is shown, not run.
    assert_eq!(hint.matches(CODE_OPEN).count(), 1);
    assert!(hint.ends_with(CODE_OPEN));
    let text = t.text();
    let code_blocks: Vec<_> = fence::blocks(&text)
        .filter(|b| b.info == fence::CODE_INFO)
        .map(|b| b.content)
        .collect();
    assert_eq!(code_blocks, ["print(6)\n"], "{text}");
    assert_eq!(t.tool_calls.len(), 1);
    assert_eq!(t.tool_calls[0].code, "print(6)\n");
}

/// The template's program with `body` in place of its `pass`.
fn completed(template: &str, body: &str) -> String {
    let open = template.find("python\n").unwrap() + "python\n".len();
    let close = template[open..].find("\n```").unwrap() + open;
    let code = &template[open..close];
    assert_eq!(code.matches("pass\n").count(), 1, "{code}");
    code.replacen("pass\n", body, 1)
}

fn output_block(template: &str) -> String {
    let at = template.rfind("```output\n").unwrap() + "```output\n".len();
    let end = template.rfind("\n```").unwrap();
    format!("{}\n", &template[at..end])
}

fn run_in_session(code: &str) -> String {
    let mut runner = SessionRunner::for_options(crate::sandbox(), &GenerateOptions::default());
    match runner.run(code).unwrap() {
        RunResult::Ran(outcome) => {
            assert!(outcome.stderr.is_empty(), "{}", outcome.stderr);
            outcome.stdout
        }
        RunResult::NotRun(why) => panic!("not run: {why}"),
    }
}

#[test]
fn the_template_runs_and_prints_its_output_block() {
    // A stdin program, reading with input(), sys.stdin and sys.stdin.buffer alike.
    let template = code_template(&code_problem());
    for body in [
        "print(sum(map(int, input().split())))\n",
        "print(sum(int(x) for x in sys.stdin.read().split()))\n",
        "print(sum(map(int, sys.stdin.buffer.read().split())))\n",
    ] {
        let code = completed(&template, body);
        assert_eq!(run_in_session(&code), output_block(&template), "{code}");
    }

    // A starter-code method, called on each public test.
    let mut problem = code_problem();
    problem.starter_code =
        Some("class Solution:\n    def add(self, a: int, b: List[int]) -> int:\n".into());
    problem.public_tests = Some(
        serde_json::from_str(
            r#"{"fn_name": "add", "tests": [{"args": [1, [2, 3]], "expected": 6}, {"args": [0, []], "expected": 0}]}"#,
        )
        .unwrap(),
    );
    let template = code_template(&problem);
    let code = completed(&template, "return a + sum(b)\n");
    assert_eq!(run_in_session(&code), output_block(&template), "{code}");
    assert_eq!(output_block(&template), "Sample 1: 6\nSample 2: 0\n");
}

#[test]
fn start_infer_reads_public_tests_and_starter_code_and_hides_the_judged_tests() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    let rows = [
        serde_json::json!({
            "id": "stdio",
            "problem": STATEMENT,
            "tests": [{"input": "HIDDEN 1\n", "output": "HIDDEN 1\n"}],
            "public_tests": [{"input": "4 5\n", "output": "9\n"}],
        }),
        serde_json::json!({
            "id": "fn",
            "problem": "Add two numbers.",
            "fn_name": "add",
            "tests": [{"args": [123456, 1], "expected": 123457}],
            "starter_code": "def add(a, b):\n",
        }),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(&script, "Plan. Wait, print(1)\n```\nDone.").unwrap();
    let output = dir.path().join("out.jsonl");
    crate::start()
        .args([
            "infer",
            "--quiet",
            "--kind",
            "code",
            "--no-end-hints",
            "--max-hints",
            "1",
        ])
        .args(["--template-preset", "qwq-32b", "--hint-gap-tokens", "0"])
        .arg("--model")
        .arg(format!("scripted:{}", script.display()))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_success();
    let written: Vec<Trajectory> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 2);
    for t in &written {
        let hint = hint_text(t);
        assert!(
            !hint.contains("HIDDEN") && !hint.contains("123456"),
            "{hint}"
        );
        let rendered = t.rendered_prompt.as_deref().unwrap();
        assert!(rendered.ends_with("<|im_end|>\n<|im_start|>assistant\n<think>\n"));
        match t.id.as_str() {
            "stdio" => {
                assert!(
                    hint.contains("'4 5\\n'") && !hint.contains("'1 2 3\\n'"),
                    "{hint}"
                );
                assert!(t.prompt.contains("reads the input from stdin"));
            }
            _ => {
                assert!(
                    t.prompt.contains("the Python function `add`"),
                    "{}",
                    t.prompt
                );
                assert!(t.prompt.contains("def add(a, b):"));
                assert!(hint.contains("def add(a, b):\n    pass"), "{hint}");
            }
        }
    }

    // The two template flags exclude each other, and a bad preset lists the good ones.
    let bad = crate::start()
        .args(["infer", "--template-preset", "qwq", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert_failure();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("qwq-32b-preview"));
    let both = crate::start()
        .args([
            "infer",
            "--template-preset",
            "chatml",
            "--chat-template",
            "x.json",
        ])
        .assert_failure();
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
}
