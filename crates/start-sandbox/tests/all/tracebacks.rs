//! What a guest's errors look like: the programs in `tests/tracebacks/programs.toml` run
//! through the sandbox (a fresh execution, and a session's cells) and through native
//! `python3` (as a script, and as cells in a notebook-like loop); stdout, stderr and the exit
//! status must match line for line after [`normalize`], which lists every difference allowed.
//!
//! Native Python is the machine's `python3` in a venv these tests own with numpy and sympy
//! (`$START_TEST_PYTHON` overrides it); should it lack one, a program needing it is checked on
//! the sandbox side only.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use start_sandbox::{Limits, Session, SessionLimits, Status, TurnLimits};

#[derive(Debug, Deserialize)]
struct Programs {
    program: Vec<Program>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Program {
    name: String,
    code: String,
    cells: Option<Vec<String>>,
    #[serde(default = "yes")]
    native: bool,
    #[serde(default)]
    expect: Vec<String>,
    wall_time_ms: Option<u64>,
    memory_mib: Option<u64>,
    /// Why this program is not compared with native Python, or what differs; documentation.
    python_versions_differ: Option<String>,
    /// Documentation only.
    native_note: Option<String>,
}

fn yes() -> bool {
    true
}

/// Frames of the runtime itself, which no traceback may show.
const RUNTIME_FRAMES: [&str; 5] = ["<reactor>", "<start>", "ast.py", "<turn ", "_run_turn"];

/// The native side of a session: the same cells, one after another in one namespace, each
/// named `<cell N>` and echoing a final expression as a prompt does; an uncaught exception's
/// traceback without this loop's own frames, as IPython and `code.InteractiveInterpreter` print.
const NATIVE_CELLS: &str = r#"
import ast, json, linecache, sys, traceback
cells = json.load(open(sys.argv[1], encoding='utf-8'))
g = {'__name__': '__main__', '__builtins__': __builtins__}
def exit_code(e):
    c = e.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 0xFF
    print(c, file=sys.stderr)
    return 1
for i, src in enumerate(cells, 1):
    name = f'<cell {i}>'
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    try:
        tree = compile(src, name, 'exec', ast.PyCF_ONLY_AST)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, name, 'exec'), g)
        if last is not None:
            sys.displayhook(eval(compile(last, name, 'eval'), g))
    except SystemExit as e:
        sys.stdout.flush()
        sys.exit(exit_code(e))
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        if isinstance(e, SyntaxError) and e.text is None and e.lineno:
            e.text = linecache.getline(e.filename or '', e.lineno) or None
        sys.stdout.flush()
        traceback.print_exception(type(e), e, tb)
        sys.stderr.flush()
"#;

/// What one run printed and how it ended.
#[derive(Debug, PartialEq)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Brings a transcript to the form both Pythons agree on. The differences allowed, in full:
/// - the program's file name (`<string>` in the sandbox, a temporary `prog.py` natively);
/// - caret and tilde lines under a source line (3.11 and 3.15 place them differently);
/// - library frames (numpy, sympy, the stdlib): their paths, line numbers and source lines
///   belong to each installation, so a run of them becomes one `File "<library>"` line;
/// - "Did you mean" suggestions, which newer versions make in more places.
fn normalize(text: &str, script: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_library = false;
    for line in text.lines() {
        let line = line
            .replace(&format!("File \"{script}\""), "File \"<prog>\"")
            .replace("File \"<string>\"", "File \"<prog>\"");
        let trimmed = line.trim();
        if !trimmed.is_empty() && trimmed.chars().all(|c| matches!(c, '^' | '~')) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("  File \"") {
            let ours = rest.starts_with("<prog>") || rest.starts_with("<cell ");
            if !ours {
                if !in_library {
                    out.push("  File \"<library>\"".into());
                }
                in_library = true;
                continue;
            }
            in_library = false;
        } else if in_library && line.starts_with("    ") {
            continue;
        } else {
            in_library = false;
        }
        let line = match line.find(". Did you mean") {
            Some(at) => line[..at].to_string(),
            None => line,
        };
        out.push(line);
    }
    out.join("\n")
}

/// Native Python: `$START_TEST_PYTHON`, else the machine's `python3` in a venv the tests own
/// with numpy and sympy (pinned), so errors raised inside them are compared on a bare machine.
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            std::env::var("START_TEST_PYTHON").unwrap_or_else(|_| {
                let venv = start_sandbox::testutil::venv_in(
                    Path::new(env!("CARGO_TARGET_TMPDIR")),
                    "tracebacks-native",
                    &["numpy==2.4.6", "sympy==1.14.0"],
                    &[],
                );
                venv.python().display().to_string()
            })
        })
        .clone()
}

/// Whether native Python has every module `code` imports from {numpy, sympy}.
fn native_has_modules(code: &str) -> bool {
    ["numpy", "sympy"]
        .iter()
        .filter(|m| code.contains(*m))
        .all(|m| {
            Command::new(python())
                .args(["-c", &format!("import {m}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn native(args: &[&Path]) -> Run {
    let out = Command::new(python())
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONHASHSEED", "0")
        .env_remove("PYTHONSTARTUP")
        .output()
        .expect("python3 runs");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn cells_of(p: &Program) -> Vec<String> {
    p.cells.clone().unwrap_or_else(|| vec![p.code.clone()])
}

fn sandbox_exec(p: &Program) -> (Run, String) {
    let limits = Limits {
        wall_time: Duration::from_millis(p.wall_time_ms.unwrap_or(10_000)),
        memory_bytes: p.memory_mib.unwrap_or(512) << 20,
        ..Limits::default()
    };
    let o = crate::sandbox().exec(&p.code, &limits).expect("exec");
    let transcript = o.transcript(limits.wall_time, limits.stdout_bytes, limits.stderr_bytes);
    let run = Run {
        code: o.status.exit_code(),
        stdout: o.stdout,
        stderr: o.stderr,
    };
    (run, transcript)
}

fn sandbox_session(p: &Program) -> Run {
    let mut session = Session::open(crate::sandbox(), SessionLimits::default()).expect("open");
    let (mut stdout, mut stderr, mut code) = (String::new(), String::new(), 0);
    for cell in cells_of(p) {
        let o = session.run(&cell, &TurnLimits::default()).expect("cell");
        stdout.push_str(&o.stdout);
        stderr.push_str(&o.stderr);
        if let Status::Exit { code: c } = o.status {
            code = c;
        }
        if session.ended().is_some() {
            break;
        }
    }
    Run {
        stdout,
        stderr,
        code,
    }
}

fn assert_no_runtime_frames(name: &str, text: &str) {
    for frame in RUNTIME_FRAMES {
        assert!(
            !text.contains(frame),
            "{name}: the runtime's {frame:?} shows:\n{text}"
        );
    }
}

#[test]
fn tracebacks_match_native_python_line_for_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tracebacks/programs.toml");
    let programs: Programs =
        toml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    assert!(programs.program.len() >= 40, "{}", programs.program.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("prog.py");
    let cells_file = dir.path().join("cells.json");
    let harness = dir.path().join("cells.py");
    std::fs::write(&harness, NATIVE_CELLS).expect("write");
    let script_name = script.display().to_string();
    let mut failures = Vec::new();
    let mut compared = 0;
    for p in &programs.program {
        let _ = (&p.python_versions_differ, &p.native_note);
        let (exec, transcript) = sandbox_exec(p);
        assert_no_runtime_frames(&p.name, &exec.stderr);
        if !p.expect.is_empty() {
            let want = p.expect.join("\n");
            let got = normalize(&transcript, &script_name);
            let got: Vec<&str> = got.lines().collect();
            let tail = got[got.len().saturating_sub(p.expect.len())..].join("\n");
            if tail != normalize(&want, &script_name) {
                failures.push(format!(
                    "{}: expected to end with\n{want}\ngot\n{transcript}",
                    p.name
                ));
            }
        }
        if !p.native || !native_has_modules(&p.code) {
            continue;
        }
        compared += 1;
        std::fs::write(&script, &p.code).expect("write");
        let want = native(&[&script]);
        let mut check = |mode: &str, got: &Run, want: &Run| {
            let (g, w) = (
                normalize(&got.stderr, &script_name),
                normalize(&want.stderr, &script_name),
            );
            if g != w || got.stdout != want.stdout || got.code != want.code {
                failures.push(format!(
                    "{} ({mode}):\n--- sandbox (exit {}) ---\n{}{g}\n--- python3 (exit {}) ---\n{}{w}\n",
                    p.name, got.code, got.stdout, want.code, want.stdout
                ));
            }
        };
        check("script", &exec, &want);
        let session = sandbox_session(p);
        assert_no_runtime_frames(&p.name, &session.stderr);
        std::fs::write(
            &cells_file,
            serde_json::to_string(&cells_of(p)).expect("json"),
        )
        .expect("write");
        let want = native(&[&harness, &cells_file]);
        check("cells", &session, &want);
    }
    assert!(
        failures.is_empty(),
        "{}\n{} program(s) differ",
        failures.join("\n"),
        failures.len()
    );
    eprintln!("{compared} programs compared with native python3");
}
