//! Problems to run Hint-infer on: read from JSONL (field names settable), split into shards, and
//! the bundled sample problems behind `start infer --example`.
//!
//! Rows are untrusted: each line is at most [`MAX_LINE_BYTES`] (a longer one is skipped without
//! being read whole), a malformed one is reported with its file and line (the caller skips it or stops), and duplicate ids are refused because an id
//! is half of the key that makes runs resumable.

use std::collections::HashSet;
use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use start_grade::testcase::{FnTest, StdioTest, Tests};

use crate::jsonl::{JsonlError, Line, LineError, LineReader};

/// Longest input line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// Longest problem id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Most public tests read from one row (the hint shows fewer; the rest are not kept).
pub const MAX_PUBLIC_TESTS: usize = 64;
/// The bundled sample problems (a few math, a few code).
pub const EXAMPLE_JSONL: &str = include_str!("../examples/problems.jsonl");

/// What kind of problem: it decides the hints, the tool loop and how the answer is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Math reasoning: the answer is a value.
    Math,
    /// Code generation: the answer is a program, judged by tests.
    Code,
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProblemKind::Math => "math",
            ProblemKind::Code => "code",
        })
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// A unique id.
    pub id: String,
    /// Math or code.
    pub kind: ProblemKind,
    /// The problem statement.
    pub text: String,
    /// The gold answer, if given.
    pub answer: Option<String>,
    /// Its judged tests, if given: what `start score` runs the answer against. Never shown
    /// to the model (the hint shows [`Problem::public_tests`] or the statement's samples).
    pub tests: Option<Tests>,
    /// Tests the model may see (a row's public tests), if given; the debug hint shows these,
    /// else the samples extracted from the statement.
    pub public_tests: Option<Tests>,
    /// Starter code to complete (a function signature, a `class Solution`), if given: the
    /// prompt then asks for that function, not a stdin program.
    pub starter_code: Option<String>,
}

impl Problem {
    /// A math problem with only an id and a statement (no answer, tests or starter code): what
    /// a driver run needs, as tests and benches build one.
    ///
    /// ```
    /// let p = start::problem::Problem::math("p", "Compute 6 * 7.");
    /// assert_eq!((p.kind, p.answer), (start::problem::ProblemKind::Math, None));
    /// ```
    pub fn math(id: impl Into<String>, text: impl Into<String>) -> Problem {
        Problem {
            id: id.into(),
            kind: ProblemKind::Math,
            text: text.into(),
            answer: None,
            tests: None,
            public_tests: None,
            starter_code: None,
        }
    }
}

/// Which JSON fields hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The id (string or number).
    pub id: String,
    /// The statement.
    pub problem: String,
    /// The gold answer (optional).
    pub answer: String,
    /// Tests, an array of `{"input": ..., "output": ...}` (optional).
    pub tests: String,
    /// Public tests the model may see (optional): the shapes of `tests`, also
    /// `{"input": [...], "output": [...]}` (CodeContests) or a JSON string of either
    /// (LiveCodeBench's `public_test_cases`, whose `"testtype": "functional"` items hold one
    /// JSON argument per input line).
    pub public_tests: String,
    /// Starter code (optional).
    pub starter_code: String,
    /// `"math"` or `"code"`, overriding the run's default (optional).
    pub kind: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            id: "id".into(),
            problem: "problem".into(),
            answer: "answer".into(),
            tests: "tests".into(),
            public_tests: "public_tests".into(),
            starter_code: "starter_code".into(),
            kind: "kind".into(),
        }
    }
}

/// Reads problems from JSONL through the one bounded [`LineReader`]: blank lines are skipped;
/// over-long, malformed and duplicate lines are returned beside the good ones, in order, each
/// naming `source_name` and its line.
///
/// # Errors
/// [`JsonlError`] when reading fails.
pub fn read_jsonl(
    reader: impl BufRead,
    source_name: &str,
    fields: &Fields,
    default_kind: ProblemKind,
) -> Result<(Vec<Problem>, Vec<LineError>), JsonlError> {
    let mut problems = Vec::new();
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    let mut reader = LineReader::new(reader, source_name).with_max_line_bytes(MAX_LINE_BYTES);
    while let Some(line) = reader.next_line()? {
        let line = match line {
            Line::Record(line) => line,
            Line::TooLong(e) => {
                errors.push(e);
                continue;
            }
        };
        match parse_row(line, fields, default_kind) {
            Ok(problem) => {
                if ids.insert(problem.id.clone()) {
                    problems.push(problem);
                } else {
                    let reason = format!("duplicate id {:?}", problem.id);
                    errors.push(reader.error(reason));
                }
            }
            Err(reason) => errors.push(reader.error(reason)),
        }
    }
    Ok((problems, errors))
}

fn parse_row(line: &[u8], fields: &Fields, default_kind: ProblemKind) -> Result<Problem, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let id = match object.get(&fields.id) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("field {:?} must be a string or number", fields.id)),
        None => return Err(format!("no {:?} field", fields.id)),
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(format!("the id must be 1 to {MAX_ID_BYTES} bytes"));
    }
    let text = match object.get(&fields.problem) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            return Err(format!(
                "field {:?} must be a non-empty string",
                fields.problem
            ));
        }
        None => return Err(format!("no {:?} field", fields.problem)),
    };
    let answer = match object.get(&fields.answer) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(format!(
                "field {:?} must be a string or number",
                fields.answer
            ));
        }
    };
    let kind = match object.get(&fields.kind) {
        None | Some(Value::Null) => default_kind,
        Some(Value::String(s)) if s == "math" => ProblemKind::Math,
        Some(Value::String(s)) if s == "code" => ProblemKind::Code,
        Some(_) => {
            return Err(format!(
                "field {:?} must be \"math\" or \"code\"",
                fields.kind
            ));
        }
    };
    let tests = tests_in_row(object, &fields.tests)?;
    let starter_code = match object.get(&fields.starter_code) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(format!("field {:?} must be a string", fields.starter_code)),
    };
    let public_tests = public_tests_in_row(object, &fields.public_tests, starter_code.as_deref())?;
    Ok(Problem {
        id,
        kind,
        text,
        answer,
        tests,
        public_tests,
        starter_code,
    })
}

/// The public tests of a row (see [`Fields::public_tests`] for the shapes), at most
/// [`MAX_PUBLIC_TESTS`]; `None` when the row has none.
///
/// # Errors
/// A description of what is wrong when the field is in none of the shapes.
pub fn public_tests_in_row(
    row: &serde_json::Map<String, Value>,
    field: &str,
    starter_code: Option<&str>,
) -> Result<Option<Tests>, String> {
    let bad = || {
        format!(
            "field {field:?} must be [{{\"input\", \"output\"}}], [{{\"args\", \"expected\"}}] \
             (with \"fn_name\"), {{\"input\": [...], \"output\": [...]}}, or a JSON string of one"
        )
    };
    let value = match row.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| bad())?,
        Some(v) => v.clone(),
    };
    let fn_name = row
        .get("fn_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let tests = match value {
        Value::Object(columns) => {
            let column = |a: &str, b: &str| {
                columns
                    .get(a)
                    .or_else(|| columns.get(b))
                    .and_then(Value::as_array)
                    .cloned()
            };
            let (Some(inputs), Some(outputs)) =
                (column("input", "inputs"), column("output", "outputs"))
            else {
                return Err(bad());
            };
            let tests = inputs
                .into_iter()
                .zip(outputs)
                .take(MAX_PUBLIC_TESTS)
                .map(|(input, output)| match (input, output) {
                    (Value::String(input), Value::String(output)) => {
                        Ok(StdioTest { input, output })
                    }
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Tests::Stdio {
                tests,
                compare: Default::default(),
            }
        }
        Value::Array(mut items) => {
            items.truncate(MAX_PUBLIC_TESTS);
            let functional = items
                .iter()
                .any(|i| i.get("testtype").and_then(Value::as_str) == Some("functional"));
            if functional {
                let fn_name = fn_name
                    .or_else(|| starter_code.and_then(last_def))
                    .ok_or_else(|| format!("{}: functional tests need \"fn_name\"", bad()))?;
                let tests = items
                    .iter()
                    .map(|item| {
                        let input = item.get("input").and_then(Value::as_str).ok_or_else(bad)?;
                        let output = item.get("output").and_then(Value::as_str).ok_or_else(bad)?;
                        let args = input
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(|l| serde_json::from_str(l).map_err(|_| bad()))
                            .collect::<Result<Vec<Value>, _>>()?;
                        let expected = serde_json::from_str(output).map_err(|_| bad())?;
                        Ok(FnTest { args, expected })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Tests::Functional { fn_name, tests }
            } else {
                let mut shape = serde_json::Map::new();
                shape.insert("tests".into(), Value::Array(items));
                if let Some(name) = fn_name {
                    shape.insert("fn_name".into(), Value::String(name));
                }
                serde_json::from_value::<Tests>(Value::Object(shape)).map_err(|_| bad())?
            }
        }
        _ => return Err(bad()),
    };
    Ok(Some(tests))
}

/// The name of the last function a piece of starter code defines.
fn last_def(code: &str) -> Option<String> {
    code.lines().rev().find_map(|line| {
        let rest = line.trim_start().strip_prefix("def ")?;
        let name = rest.split('(').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// The tests of a row in the one schema ([`Tests`]): the array under `tests_field` (usually
/// `"tests"`) with the row's `fn_name` and `compare`, or its `check` and `entry_point` (with
/// its `prompt`, which HumanEval's harness runs before the program), or its MBPP `test_list`
/// (with `test_setup_code` and `test_imports`); `None` when the row has none. `start infer`, `start judge` and `start score` read rows' tests through this.
///
/// # Errors
/// A description of what is wrong when the row has tests in none of the shapes.
pub fn tests_in_row(
    row: &serde_json::Map<String, Value>,
    tests_field: &str,
) -> Result<Option<Tests>, String> {
    let tests = row.get(tests_field).filter(|v| !v.is_null());
    let check = row.get("check").filter(|v| !v.is_null());
    let asserts = row.get("test_list").filter(|v| !v.is_null());
    if tests.is_none() && check.is_none() && asserts.is_none() {
        return Ok(None);
    }
    let mut shape = serde_json::Map::new();
    if let Some(tests) = tests {
        shape.insert("tests".into(), tests.clone());
    }
    // A row's "prompt" is test code only beside a HumanEval "check"; elsewhere it may be the
    // statement, which must not run.
    let prompt: &[&str] = if check.is_some() { &["prompt"] } else { &[] };
    let keys = [
        "fn_name",
        "compare",
        "check",
        "entry_point",
        "test_list",
        "test_setup_code",
        "test_imports",
    ];
    for &key in keys.iter().chain(prompt) {
        if let Some(v) = row.get(key).filter(|v| !v.is_null()) {
            shape.insert(key.into(), v.clone());
        }
    }
    serde_json::from_value::<Tests>(Value::Object(shape))
        .map(Some)
        .map_err(|_| {
            format!(
                "the tests must be {{\"{tests_field}\": [{{\"input\", \"output\"}}]}}, \
                 {{\"fn_name\", \"{tests_field}\": [{{\"args\", \"expected\"}}]}} or \
                 {{\"check\", \"entry_point\"}} or {{\"test_list\"}}"
            )
        })
}

/// The bundled sample problems.
pub fn examples() -> Vec<Problem> {
    read_jsonl(
        EXAMPLE_JSONL.as_bytes(),
        "examples/problems.jsonl",
        &Fields::default(),
        ProblemKind::Math,
    )
    .map(|(problems, _)| problems)
    .unwrap_or_default()
}

/// One slice of a dataset shared by `count` machines: the rows whose id hashes to `index`.
///
/// A row's shard depends on its id alone, never on its position, so machines whose input files
/// list the rows in different orders (or hold extra rows) still split the work without overlap
/// or gaps. The rule, [`Shard::of`]: `shard = (fmix64(fnv1a64(id)) * count) >> 64`, where
/// `fnv1a64` is 64-bit FNV-1a of the id's UTF-8 bytes (offset basis `0xcbf29ce484222325`,
/// prime `0x100000001b3`) and `fmix64` MurmurHash3's 64-bit finalizer ([`fmix64`]). No keys,
/// no platform or version dependence; `deploy/README.md` has it in five lines of Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This machine's slice, `0..count`.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

/// 64-bit FNV-1a of `bytes`: the stable hash behind [`Shard`].
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    // `fnv::FnvHasher::write` is exactly FNV-1a over the bytes given (no length or terminator
    // is mixed in, unlike `Hash for str`).
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// MurmurHash3's 64-bit finalizer: spreads every input bit over all output bits. FNV-1a alone
/// does not: ids that differ only in their last byte ("q0", "q1", ...) share their high bits.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Shard {
    /// The whole dataset.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The shard, out of `count`, that the row with this id belongs to.
    pub fn of(id: &str, count: u32) -> u32 {
        let hash = fmix64(fnv1a64(id.as_bytes()));
        // Multiply-shift rather than `%`: no modulo bias, and the same in any language.
        ((u128::from(hash) * u128::from(count.max(1))) >> 64) as u32
    }

    /// Whether the row with this id belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        Shard::of(id, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("a shard is I/N, such as 0/4, not {s:?}"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("bad shard index {i:?}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_parse() {
        let problems = examples();
        assert!(
            problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Math)
                .count()
                >= 2
        );
        assert!(
            problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Code)
                .count()
                >= 2
        );
        let (_, errors) = read_jsonl(
            EXAMPLE_JSONL.as_bytes(),
            "examples",
            &Fields::default(),
            ProblemKind::Math,
        )
        .unwrap();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn bad_lines_are_reported_with_numbers() {
        let text = "{\"id\":1,\"problem\":\"a\"}\nnot json\n\n{\"id\":1,\"problem\":\"b\"}\n\
                    {\"problem\":\"c\"}\n{\"q\":\"x\",\"problem\":\"d\",\"id\":\"z\",\"kind\":\"code\"}";
        let (problems, errors) =
            read_jsonl(text.as_bytes(), "t", &Fields::default(), ProblemKind::Math).unwrap();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[1].kind, ProblemKind::Code);
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 5]);
    }

    #[test]
    fn rows_carry_tests_in_the_judges_schema() {
        let text = "{\"id\":1,\"problem\":\"p\",\"kind\":\"code\",\"tests\":[{\"input\":\"1\\n\",\"output\":\"2\\n\"}]}\n\
                    {\"id\":2,\"problem\":\"p\",\"fn_name\":\"f\",\"tests\":[{\"args\":[1],\"expected\":2}]}\n\
                    {\"id\":3,\"problem\":\"p\",\"check\":\"def check(c): pass\",\"entry_point\":\"f\"}\n\
                    {\"id\":4,\"problem\":\"p\",\"tests\":[{\"in\":1}]}\n";
        let (problems, errors) =
            read_jsonl(text.as_bytes(), "t", &Fields::default(), ProblemKind::Code).unwrap();
        let shapes: Vec<_> = problems.iter().map(|p| p.tests.clone()).collect();
        assert!(matches!(shapes[0], Some(Tests::Stdio { .. })));
        assert!(matches!(shapes[1], Some(Tests::Functional { .. })));
        assert!(matches!(shapes[2], Some(Tests::Check { .. })));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .starts_with("t: line 4: the tests must be"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn rows_carry_humaneval_prompts_mbpp_asserts_and_compare_rules() {
        let text = concat!(
            r#"{"id":1,"problem":"p","prompt":"def g():\n    return 1\n","check":"def check(c): assert c() == g()","entry_point":"f"}"#,
            "\n",
            r#"{"id":2,"problem":"p","prompt":"print(1)","test_list":["assert f(1) == 2"],"test_setup_code":"x = 1","test_imports":["import math"]}"#,
            "\n",
            r#"{"id":3,"problem":"p","compare":"codecontests","tests":[{"input":"1\n","output":"2\n"}]}"#,
            "\n",
        );
        let (problems, errors) =
            read_jsonl(text.as_bytes(), "t", &Fields::default(), ProblemKind::Code).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let shapes: Vec<_> = problems.iter().map(|p| p.tests.clone()).collect();
        assert!(
            matches!(&shapes[0], Some(Tests::Check { prompt, .. }) if prompt.contains("def g")),
            "{shapes:?}"
        );
        match &shapes[1] {
            Some(Tests::Asserts {
                test_list,
                test_setup_code,
                test_imports,
            }) => {
                assert_eq!(test_list.len(), 1);
                assert_eq!(test_setup_code, "x = 1");
                assert_eq!(test_imports, &["import math"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            shapes[2],
            Some(Tests::Stdio {
                compare: start_grade::harness::StdoutRule::CodeContests,
                ..
            })
        ));
    }

    #[test]
    fn public_tests_and_starter_code_are_read_apart_from_the_judged_tests() {
        let text = concat!(
            r#"{"id":1,"problem":"p","tests":[{"input":"9\n","output":"9\n"}],"public_tests":[{"input":"1\n","output":"2\n"}]}"#,
            "\n",
            r#"{"id":2,"problem":"p","public_tests":{"input":["3\n"],"output":["4\n"]}}"#,
            "\n",
            r#"{"id":3,"problem":"p","starter_code":"class Solution:\n    def add(self, a, b):\n","public_tests":"[{\"input\": \"1\\n2\", \"output\": \"3\", \"testtype\": \"functional\"}]"}"#,
            "\n",
            r#"{"id":4,"problem":"p","fn_name":"f","public_tests":[{"args":[1],"expected":2}]}"#,
            "\n",
            r#"{"id":5,"problem":"p","public_tests":7}"#,
            "\n",
            r#"{"id":6,"problem":"p","starter_code":5}"#,
            "\n",
        );
        let (problems, errors) =
            read_jsonl(text.as_bytes(), "t", &Fields::default(), ProblemKind::Code).unwrap();
        assert_eq!(problems.len(), 4);
        let cases = |i: usize| problems[i].public_tests.as_ref().unwrap().to_cases();
        assert_eq!(cases(0)[0].input, "1\n");
        assert_eq!(
            problems[0].tests.as_ref().unwrap().to_cases()[0].input,
            "9\n"
        );
        assert_eq!(cases(1)[0].output, "4\n");
        assert_eq!(
            problems[2].public_tests,
            Some(Tests::Functional {
                fn_name: "add".into(),
                tests: vec![FnTest {
                    args: vec![1.into(), 2.into()],
                    expected: 3.into()
                }]
            })
        );
        assert!(
            problems[2]
                .starter_code
                .as_deref()
                .unwrap()
                .contains("def add")
        );
        assert!(matches!(
            problems[3].public_tests,
            Some(Tests::Functional { .. })
        ));
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 6]);

        let many: Vec<_> = (0..MAX_PUBLIC_TESTS + 5)
            .map(|i| serde_json::json!({"input": format!("{i}\n"), "output": "0\n"}))
            .collect();
        let row = serde_json::json!({"public_tests": many});
        let tests = public_tests_in_row(row.as_object().unwrap(), "public_tests", None)
            .unwrap()
            .unwrap();
        assert_eq!(tests.len(), MAX_PUBLIC_TESTS);
    }

    #[test]
    fn custom_fields_and_shards() {
        let fields = Fields {
            id: "qid".into(),
            problem: "question".into(),
            ..Fields::default()
        };
        let text = "{\"qid\":\"a\",\"question\":\"q\",\"answer\":3}\n";
        let (problems, _) = read_jsonl(text.as_bytes(), "t", &fields, ProblemKind::Math).unwrap();
        assert_eq!(problems[0].answer.as_deref(), Some("3"));
        let shard: Shard = "1/3".parse().unwrap();
        assert_eq!(shard, Shard { index: 1, count: 3 });
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn the_shard_hash_is_fnv1a_64() {
        // The published FNV-1a test vectors: the rule must never change between versions.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // The shard: computed independently with the Python of deploy/README.md.
        for (id, shards) in [
            ("foobar", [0, 0, 1, 1]),
            ("q0", [0, 0, 2, 2]),
            ("a", [1, 1, 3, 4]),
        ] {
            let got = [2, 3, 7, 8].map(|n| Shard::of(id, n));
            assert_eq!(got, shards, "{id}");
        }
        assert_eq!(Shard::of("anything", 1), 0);
    }

    #[test]
    fn shards_partition_ids_evenly_whatever_their_order() {
        const IDS: usize = 30_000;
        for count in [2u32, 3, 8] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0usize; count as usize];
            for i in 0..IDS {
                let id = format!("p{i}");
                let owners: Vec<u32> = shards
                    .iter()
                    .filter(|s| s.contains(&id))
                    .map(|s| s.index)
                    .collect();
                assert_eq!(owners.len(), 1, "{id} is in exactly one shard");
                sizes[owners[0] as usize] += 1;
            }
            let even = IDS / count as usize;
            for size in sizes {
                assert!(
                    size.abs_diff(even) < even / 20,
                    "{count} shards: {size} vs {even}"
                );
            }
            // Ids differing only in their last character spread too.
            let short: HashSet<u32> = (0..10)
                .map(|i| Shard::of(&format!("q{i}"), count))
                .collect();
            assert!(short.len() >= 2, "{count} shards: {short:?}");
        }
    }
}
