//! What the model is asked, and what the debug hint shows it: the user message for a problem,
//! the sample tests recalled in the hint's `{testcase}` slot, and the program template of its
//! `{code_template}` slot.
//!
//! Only tests the model may see reach the hint: a row's public tests
//! ([`Problem::public_tests`]), else the samples its statement shows
//! ([`start_grade::testcase::extract`]); never [`Problem::tests`], which the judge scores
//! against. A problem answered by a function (starter code, functional or `check` tests) is
//! asked for that function, and its template calls it; any other code problem is asked for a
//! program reading stdin, and its template feeds each sample to it as stdin.

use serde_json::Value;
use start_grade::fence::{self, CODE_FENCE, CODE_INFO};
use start_grade::testcase::{
    self, MAX_HINT_FIELD_BYTES, MAX_HINT_TESTS, TestCase, TestKind, Tests,
};

use crate::infer::hints::HintSlots;
use crate::problem::{Problem, ProblemKind};

/// Samples embedded in the debug hint's program template, at most.
pub const MAX_TEMPLATE_SAMPLES: usize = MAX_HINT_TESTS;
/// A sample whose input (as a Python literal) is longer than this many bytes is left out of
/// the template (it is still recalled, cut, in the `{testcase}` slot).
pub const MAX_TEMPLATE_SAMPLE_BYTES: usize = MAX_HINT_FIELD_BYTES;

/// The user message for a problem.
pub fn user_prompt(problem: &Problem) -> String {
    let text = problem.text.trim_end();
    match (problem.kind, entry(problem)) {
        (ProblemKind::Math, _) => format!(
            "{text}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
        ),
        (ProblemKind::Code, Entry::Stdin) => format!(
            "{text}\n\nThink step by step, then write a complete Python program that reads the input \
             from stdin and prints the answer. Give the final program in a {CODE_FENCE} block."
        ),
        (ProblemKind::Code, Entry::Function { name, method }) => {
            let what = if method {
                format!("the method `{name}` of `class Solution`")
            } else {
                format!("the Python function `{name}`")
            };
            let mut out = format!(
                "{text}\n\nThink step by step, then write {what}: it takes the arguments and \
                 returns the answer (it does not read stdin or print). Give the final code in a \
                 {CODE_FENCE} block"
            );
            match problem.starter_code.as_deref().map(str::trim_end) {
                Some(starter) if !starter.trim().is_empty() => {
                    let fence = fence::fence_for([starter]);
                    out.push_str(&format!(
                        ", completing this starter code:\n\n{fence}{CODE_INFO}\n{starter}\n{fence}"
                    ));
                }
                _ => out.push('.'),
            }
            out
        }
    }
}

/// The `{testcase}` text for a code problem: its public tests, else the statement's samples.
pub fn testcases_for(problem: &Problem) -> String {
    let rendered = testcase::render_for_hint(&visible_cases(problem));
    if rendered.is_empty() {
        "(The statement shows no sample tests; I will make up small ones.)".to_string()
    } else {
        rendered
    }
}

/// Both slots of the debug hint for `problem` (empty for a math problem).
pub fn hint_slots(problem: &Problem) -> HintSlots {
    match problem.kind {
        ProblemKind::Math => HintSlots::default(),
        ProblemKind::Code => HintSlots {
            testcase: testcases_for(problem),
            code_template: code_template(problem),
        },
    }
}

/// How a problem's answer is run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A program reading stdin.
    Stdin,
    /// A function (or a method of `class Solution`) called with arguments.
    Function { name: String, method: bool },
}

/// A function problem when it has starter code defining one, or functional or `check` tests
/// (only their function's name is read, never their cases).
fn entry(problem: &Problem) -> Entry {
    if let Some(starter) = &problem.starter_code
        && let Some(found) = starter_function(starter)
    {
        return found;
    }
    let named = [&problem.public_tests, &problem.tests]
        .into_iter()
        .flatten()
        .find_map(|tests| match tests {
            Tests::Functional { fn_name, .. } => Some(fn_name.clone()),
            Tests::Check { entry_point, .. } => Some(entry_point.clone()),
            Tests::Stdio { .. } | Tests::Asserts { .. } => None,
        });
    match named {
        Some(name) if is_identifier(&name) => Entry::Function {
            name,
            method: problem
                .starter_code
                .as_deref()
                .is_some_and(|s| s.contains("class Solution")),
        },
        _ => Entry::Stdin,
    }
}

/// The last function the starter code defines (the one to complete), and whether it is a
/// method of `class Solution`.
fn starter_function(starter: &str) -> Option<Entry> {
    let name = starter.lines().rev().find_map(|line| {
        let rest = line.trim_start().strip_prefix("def ")?;
        let name = rest.split('(').next()?.trim();
        is_identifier(name).then(|| name.to_string())
    })?;
    Some(Entry::Function {
        name,
        method: starter.contains("class Solution"),
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The test cases the model may see: public tests, else the statement's samples.
fn visible_cases(problem: &Problem) -> Vec<TestCase> {
    if let Some(public) = &problem.public_tests {
        let cases = public.to_cases();
        if !cases.is_empty() {
            return cases;
        }
    }
    match testcase::extract(&problem.text) {
        testcase::Extraction::Found(cases) => cases,
        testcase::Extraction::NotFound { .. } => Vec::new(),
    }
}

/// One sample as the template runs it.
enum Sample {
    /// Stdin text and the expected stdout.
    Stdio { input: String, output: String },
    /// Python argument text and the expected printed value.
    Call { args: String, printed: String },
}

/// The visible samples, in the form the problem's entry takes.
fn samples(problem: &Problem, entry: &Entry) -> Vec<Sample> {
    let public = problem.public_tests.as_ref().filter(|t| !t.is_empty());
    let from_public = match (public, entry) {
        (Some(Tests::Functional { tests, .. }), Entry::Function { .. }) => Some(
            tests
                .iter()
                .map(|t| Sample::Call {
                    args: t.args.iter().map(py_literal).collect::<Vec<_>>().join(", "),
                    printed: py_printed(&t.expected),
                })
                .collect(),
        ),
        (Some(Tests::Stdio { tests, .. }), Entry::Stdin) => Some(
            tests
                .iter()
                .map(|t| Sample::Stdio {
                    input: t.input.clone(),
                    output: t.output.clone(),
                })
                .collect(),
        ),
        _ => None,
    };
    if let Some(samples) = from_public {
        return samples;
    }
    let extracted = match testcase::extract(&problem.text) {
        testcase::Extraction::Found(cases) => cases,
        testcase::Extraction::NotFound { .. } => Vec::new(),
    };
    extracted
        .into_iter()
        .filter_map(|case| match (case.kind, entry) {
            (TestKind::Stdio, Entry::Stdin) => Some(Sample::Stdio {
                input: case.input,
                output: case.output,
            }),
            (TestKind::Functional, Entry::Function { .. }) => {
                let args = testcase::functional_args(&case.input)?;
                let args: Vec<String> = args.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                Some(Sample::Call {
                    args: args.join(", "),
                    printed: case.output.trim().to_string(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The debug hint's program template: a Python program that runs the solution on each visible
/// sample and prints each result, in a fenced block, then the output block it would print
/// with a right solution.
pub fn code_template(problem: &Problem) -> String {
    let entry = entry(problem);
    let samples = samples(problem, &entry);
    let mut code = String::new();
    let mut output = String::new();
    let mut left_out = 0;
    let mut shown = 0;
    match &entry {
        Entry::Stdin => {
            code.push_str(
                "import io\nimport sys\n\n\ndef solve():\n    \
                 # The solution: read the input with input() or sys.stdin, print the answer.\n    \
                 pass\n\n\nsamples = [\n",
            );
            for sample in &samples {
                let Sample::Stdio {
                    input,
                    output: expected,
                } = sample
                else {
                    continue;
                };
                let literal = py_str(input);
                if shown == MAX_TEMPLATE_SAMPLES || literal.len() > MAX_TEMPLATE_SAMPLE_BYTES {
                    left_out += 1;
                    continue;
                }
                shown += 1;
                code.push_str(&format!("    {literal},\n"));
                output.push_str(&format!(
                    "Sample {shown}:\n{}\n",
                    expected.trim_end_matches('\n')
                ));
            }
            if shown == 0 {
                code.push_str("    \"...\",  # a small input I make up\n");
                output.push_str("Sample 1:\n...\n");
            }
            code.push_str(
                "]\nfor number, data in enumerate(samples, 1):\n    \
                 sys.stdin = io.TextIOWrapper(io.BytesIO(data.encode()))\n    \
                 print(f\"Sample {number}:\")\n    solve()\n",
            );
        }
        Entry::Function { name, method } => {
            code.push_str("from typing import *\n\n\n");
            code.push_str(&function_stub(
                problem.starter_code.as_deref(),
                name,
                *method,
            ));
            code.push_str("\n\n\n");
            let callee = if *method {
                format!("Solution().{name}")
            } else {
                name.clone()
            };
            for sample in &samples {
                let Sample::Call { args, printed } = sample else {
                    continue;
                };
                if shown == MAX_TEMPLATE_SAMPLES || args.len() > MAX_TEMPLATE_SAMPLE_BYTES {
                    left_out += 1;
                    continue;
                }
                shown += 1;
                code.push_str(&format!("print(\"Sample {shown}:\", {callee}({args}))\n"));
                output.push_str(&format!("Sample {shown}: {printed}\n"));
            }
            if shown == 0 {
                code.push_str(&format!(
                    "print(\"Sample 1:\", {callee}(...))  # arguments I make up\n"
                ));
                output.push_str("Sample 1: ...\n");
            }
        }
    }
    if left_out > 0 {
        code.push_str(&format!(
            "# ({left_out} more sample(s) left out of this template)\n"
        ));
    }
    let code = code.trim_end();
    let fence = fence::fence_for([code]);
    format!(
        "{fence}{CODE_INFO}\n{code}\n{fence}\n{}",
        fence::output_block(output.trim_end()).trim_end()
    )
}

/// The function to complete: the starter code with a `pass` body, or a stub.
fn function_stub(starter: Option<&str>, name: &str, method: bool) -> String {
    if let Some(starter) = starter.map(str::trim_end).filter(|s| !s.trim().is_empty()) {
        let last = starter
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let indent = last.len() - last.trim_start().len();
        let body_indent = if last.trim_end().ends_with(':') {
            indent + 4
        } else {
            indent
        };
        if body_indent == 0 {
            return starter.to_string();
        }
        return format!("{starter}\n{}pass", " ".repeat(body_indent));
    }
    if method {
        format!(
            "class Solution:\n    def {name}(self, *args):\n        # The solution.\n        pass"
        )
    } else {
        format!("def {name}(*args, **kwargs):\n    # The solution.\n    pass")
    }
}

/// A JSON value as a Python literal (`repr`).
fn py_literal(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_literal).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_literal(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// What `print(value)` shows for a JSON value.
fn py_printed(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_literal(other),
    }
}

/// A string as Python's `repr` writes it (quotes chosen the same way).
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests;
