//! Walking a statement's lines into sample inputs and outputs (events), tracking whether an
//! examples section is open, and pairing the events into test cases by sample number or order.

use super::block::{PlainEnd, read_block, read_inline};
use super::line::{Line, classify};
use super::{MAX_TESTS, TestCase, TestKind, functional_args};

/// Input/output events scanned before giving up (twice the tests, plus slack for unpaired ones).
pub(super) const MAX_EVENTS: usize = 4 * MAX_TESTS;

/// A sample input or output found by the scanner.
#[derive(Debug)]
pub(super) enum Event {
    Input {
        number: Option<u32>,
        text: String,
        kind: TestKind,
    },
    Output {
        number: Option<u32>,
        text: String,
    },
}

/// Whether the scanner is inside an examples section, and which example number it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Outside,
    Inside(Option<u32>),
}

/// Finds the sample inputs and outputs in the statement's lines, in statement order.
pub(super) fn scan(lines: &[&str], warnings: &mut Vec<String>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut section = Section::Outside;
    let mut i = 0;
    while i < lines.len() {
        if events.len() >= MAX_EVENTS {
            warnings.push(format!(
                "stopped scanning after {MAX_EVENTS} sample inputs/outputs"
            ));
            break;
        }
        let section_number = match section {
            Section::Inside(number) => Some(number),
            Section::Outside => None,
        };
        match (classify(lines[i]), section_number) {
            (Line::SampleIn(number), _) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Blank);
                events.push(Event::Input {
                    number,
                    text,
                    kind: TestKind::Stdio,
                });
                i = next;
            }
            (Line::SampleOut(number), _) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Blank);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::ExamplesHeading, _) => {
                section = Section::Inside(None);
                i += 1;
            }
            (Line::ExampleN(number), _) => {
                section = Section::Inside(Some(number));
                i += 1;
            }
            (Line::InputHeading, Some(number)) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Marker);
                let kind = guess_kind(&text);
                events.push(Event::Input { number, text, kind });
                i = next;
            }
            (Line::OutputHeading, Some(number)) => {
                let (text, next) = read_block(lines, i + 1, PlainEnd::Marker);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::InputInline(rest), Some(number)) => {
                let (text, next) = read_inline(lines, i, rest);
                let kind = guess_kind(&text);
                events.push(Event::Input { number, text, kind });
                i = next;
            }
            (Line::OutputInline(rest), Some(number)) => {
                let (text, next) = read_inline(lines, i, rest);
                events.push(Event::Output { number, text });
                i = next;
            }
            (Line::HardEnd, _) => {
                section = Section::Outside;
                i += 1;
            }
            _ => i += 1,
        }
    }
    events
}

/// Functional when the input is one line of `name = value` arguments, stdio otherwise.
fn guess_kind(text: &str) -> TestKind {
    if !text.contains('\n') && functional_args(text).is_some() {
        TestKind::Functional
    } else {
        TestKind::Stdio
    }
}

/// Pairs inputs with outputs: an output takes the pending input with its number, else the oldest
/// pending input. Returns the tests and how many inputs and outputs were seen.
pub(super) fn pair(
    events: Vec<Event>,
    warnings: &mut Vec<String>,
) -> (Vec<TestCase>, usize, usize) {
    let mut pending: Vec<(Option<u32>, String, TestKind)> = Vec::new();
    let mut tests = Vec::new();
    let (mut inputs, mut outputs) = (0, 0);
    for event in events {
        match event {
            Event::Input { number, text, kind } => {
                inputs += 1;
                pending.push((number, text, kind));
            }
            Event::Output { number, text } => {
                outputs += 1;
                let position = number
                    .and_then(|n| pending.iter().position(|(m, _, _)| *m == Some(n)))
                    .or(if pending.is_empty() { None } else { Some(0) });
                let Some(position) = position else {
                    warnings.push(format!(
                        "sample output{} has no matching input; skipped",
                        label(number)
                    ));
                    continue;
                };
                let (in_number, input, kind) = pending.remove(position);
                if input.trim().is_empty() || text.trim().is_empty() {
                    warnings.push(format!(
                        "sample{} has an empty input or output; test skipped",
                        label(number.or(in_number))
                    ));
                    continue;
                }
                if tests.len() == MAX_TESTS {
                    warnings.push(format!("only the first {MAX_TESTS} tests were kept"));
                    break;
                }
                tests.push(make_test(input, text, kind));
            }
        }
    }
    for (number, _, _) in pending {
        warnings.push(format!(
            "sample input{} has no matching output; skipped",
            label(number)
        ));
    }
    (tests, inputs, outputs)
}

fn label(number: Option<u32>) -> String {
    number.map(|n| format!(" {n}")).unwrap_or_default()
}

fn make_test(input: String, output: String, kind: TestKind) -> TestCase {
    match kind {
        TestKind::Stdio => TestCase {
            input: with_final_newline(input),
            output: with_final_newline(output),
            kind,
        },
        TestKind::Functional => TestCase {
            input: input.trim().to_string(),
            output: output.trim().to_string(),
            kind,
        },
    }
}

fn with_final_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
