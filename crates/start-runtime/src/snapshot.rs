//! The pre-initialized snapshot: the interpreter started, the preload list imported and a few
//! typical first calls made, then frozen with wasmtime-wizer so that every fresh instance starts
//! from there in well under a millisecond.
//!
//! The snapshot also defines the [`default_modules`] from source (the judge's harness), so that
//! an execution imports them without compiling them, and a small host-helper module, `_start`,
//! that every fresh execution calls: it reseeds `random`, numpy's global generator and sympy's
//! own (a snapshot would otherwise replay the same random numbers in every instance), or only
//! those whose states the host has not written (see [`crate::preseed`]), then runs the user's
//! code as `__main__`.

use std::path::Path;

use wasmtime::{Config, Engine, Instance, Linker, Module, OptLevel, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wizer::{WasmtimeWizer, Wizer};

use crate::progress::Progress;
use crate::{Error, guest};

/// Modules imported before the snapshot is taken, unless the user chooses others.
pub const DEFAULT_PRELOAD: [&str; 7] = [
    "math",
    "fractions",
    "itertools",
    "collections",
    "re",
    "numpy",
    "sympy",
];

/// A Python module defined from source before the snapshot is taken, so that every execution
/// can import it for nothing: neither its compilation nor the pages that loading it writes
/// (which a restore would copy back) are paid per call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuestModule {
    /// The name it is imported as (its entry in `sys.modules`).
    pub name: String,
    /// Its source; its frames carry the file name `<start>`.
    pub source: String,
    /// Code run after it is defined when the spec warms up ([`SnapshotSpec::warm_up`]), so
    /// that its hot paths are specialized and its lazy state built in the snapshot; empty for
    /// none.
    pub warm_up: String,
}

/// The modules every snapshot defines unless the user chooses others: the judge's harness
/// ([`start_grade::harness::GUEST_HARNESS`]).
pub fn default_modules() -> Vec<GuestModule> {
    vec![GuestModule {
        name: start_grade::harness::GUEST_HARNESS_MODULE.into(),
        source: start_grade::harness::GUEST_HARNESS.into(),
        warm_up: start_grade::harness::GUEST_HARNESS_WARM_UP.into(),
    }]
}

/// The helper module's name inside the guest.
pub const HELPER_MODULE: &str = "_start";

/// The helper module's source. Its frames carry the file name `<start>`; the exception hook
/// drops the leading frames of the runtime (`<reactor>`, `<start>`), so a traceback starts at
/// the user's code exactly as CPython prints it for a script or a prompt.
pub const HELPER_SOURCE: &str = r#"
import sys, random, traceback, builtins, linecache
_main = sys.modules['__main__']
# The runtime's own quitter makes `turn` return 256 + code and marks the interpreter as done;
# a `SystemExit` that leaves the turn is read through an 8-bit status, where 0 would look like
# success and 1 like an exception, so every uncaught one is routed through the quitter.
_quit = builtins.exit
# Frames of the runtime itself: the reactor's turn and this module.
_OURS = frozenset(('<reactor>', '<start>'))
# `compile(..., PyCF_ONLY_AST)`: parsing with the builtin rather than `ast.parse` keeps an
# `ast.py` frame out of a syntax error's report.
_AST = 0x400
# The program of a fresh execution, registered with linecache only when a traceback needs its
# lines: the fast path pays nothing.
_pending = None

def seed_numpy(seed):
    np = sys.modules.get('numpy')
    if np is not None:
        np.random.seed(seed & 0xFFFFFFFF)

def reseed(seed):
    random.seed(seed)
    seed_numpy(seed)
    # sympy draws from its own generator (randprime, random matrices, some algorithms); a
    # seed of its own, so its numbers are not `random`'s.
    sr = sys.modules.get('sympy.core.random')
    if sr is not None and hasattr(sr, 'seed'):
        sr.seed(seed ^ 0x5EED5EED5EED5EED)

def _exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    # What CPython does for `sys.exit('message')`: the message on stderr, status 1.
    print(code, file=sys.stderr)
    return 1

def run(seed, src, name='<string>', preseeded=False):
    """A fresh program, compiled once as `python -c` or a script would be. `preseeded`: the
    host has set the state of `random`'s and sympy's generators, and numpy's too when `seed`
    is None."""
    global _pending
    if not preseeded:
        reseed(seed)
    elif seed is not None:
        seed_numpy(seed)
    _pending = (name, src)
    try:
        exec(compile(src, name, 'exec'), _main.__dict__)
    except SystemExit as e:
        _quit(_exit_code(e))

def cell(src, name):
    """One cell of a session: like a prompt, the value of a final expression is echoed."""
    import ast
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    tree = compile(src, name, 'exec', _AST)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    g = sys.modules['__main__'].__dict__
    try:
        exec(compile(tree, name, 'exec'), g)
        if last is not None:
            sys.displayhook(eval(compile(last, name, 'eval'), g))
    except SystemExit as e:
        _quit(_exit_code(e))

# Every turn the host sends after the snapshot starts with a header line whose first character
# is NUL: `\0exec SEED NAME`, `\0fresh SEED|- NAME`, `\0cell NAME` or `\0seed SEED`. The host
# always writes it, so nothing in the user's text (which follows the header's newline) can
# choose the path; and NUL never starts Python source (compile() rejects it), so a header
# cannot be mistaken for code.
import _reactor
_repl_turn = _reactor._run_turn

def _run_turn(text, name):
    if not text.startswith('\0'):
        # Only the snapshot's own set-up steps come without a header.
        return _repl_turn(text, name)
    nl = text.find('\n')
    kind, _, rest = text[1:nl].partition(' ')
    if kind == 'exec':
        seed, _, name = rest.partition(' ')
        return run(int(seed), text[nl + 1:], name)
    if kind == 'fresh':
        seed, _, name = rest.partition(' ')
        return run(None if seed == '-' else int(seed), text[nl + 1:], name, True)
    if kind == 'cell':
        return cell(text[nl + 1:], rest)
    if kind == 'seed':
        return reseed(int(rest))
    raise RuntimeError('unknown turn kind: ' + kind)

_reactor._run_turn = _run_turn

def excepthook(etype, value, tb):
    while tb is not None and tb.tb_frame.f_code.co_filename in _OURS:
        tb = tb.tb_next
    if _pending is not None and _pending[0] not in linecache.cache:
        name, src = _pending
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    if isinstance(value, SyntaxError) and value.text is None and value.lineno:
        # Errors found after parsing (`return` outside a function, ...) carry no text when the
        # source is not a file; CPython reads it from the script, so do the same from the cache.
        line = linecache.getline(value.filename or '', value.lineno)
        if line:
            value.text = line
    traceback.print_exception(etype, value, tb)
"#;

/// The most bytes a turn's file name may have (see [`TurnText`]).
pub const MAX_FILENAME_BYTES: usize = 256;

/// The text of one `turn`: a header the host writes (see `HELPER_SOURCE`), then the user's
/// code. Built only by its constructors, so every turn the host sends has a header and no
/// guest source can pick the path it takes (e.g. the exec fast path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnText(String);

impl TurnText {
    /// A fresh program (like `python -c`) with `random` and numpy reseeded from `seed`;
    /// tracebacks name it `filename` (CPython's `-c` uses `<string>`).
    ///
    /// # Errors
    /// [`Error::BadFilename`] for a name over [`MAX_FILENAME_BYTES`] or with a control character.
    pub fn exec(seed: u64, filename: &str, code: &str) -> Result<Self, Error> {
        check_filename(filename)?;
        Ok(TurnText(format!("\0exec {seed} {filename}\n{code}")))
    }

    /// [`TurnText::exec`] for a guest whose `random` and sympy generators the host has just
    /// given fresh states (see [`crate::preseed`]): numpy is seeded from `numpy_seed`, or left
    /// as the host wrote it too when that is `None`.
    ///
    /// # Errors
    /// As [`TurnText::exec`].
    pub fn fresh(numpy_seed: Option<u64>, filename: &str, code: &str) -> Result<Self, Error> {
        check_filename(filename)?;
        let seed = numpy_seed.map_or_else(|| "-".to_string(), |s| s.to_string());
        Ok(TurnText(format!("\0fresh {seed} {filename}\n{code}")))
    }

    /// One cell of a session, named `filename` in tracebacks (e.g. `<cell 3>`); the value of a
    /// final expression is echoed, as at a prompt.
    ///
    /// # Errors
    /// As [`TurnText::exec`].
    pub fn cell(filename: &str, code: &str) -> Result<Self, Error> {
        check_filename(filename)?;
        Ok(TurnText(format!("\0cell {filename}\n{code}")))
    }

    /// Reseeds `random`, numpy and sympy from `seed`; runs no user code.
    pub fn reseed(seed: u64) -> Self {
        TurnText(format!("\0seed {seed}\n"))
    }

    /// The bytes the guest receives.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_filename(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_FILENAME_BYTES || name.chars().any(char::is_control) {
        return Err(Error::BadFilename(name.chars().take(64).collect()));
    }
    Ok(())
}

/// The file name fresh executions get unless the caller names one: CPython's for `-c`.
pub const DEFAULT_EXEC_FILENAME: &str = "<string>";

/// What goes into a snapshot. Changing any field builds (and caches) a different snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotSpec {
    /// Modules imported before the snapshot (default [`DEFAULT_PRELOAD`]).
    pub preload: Vec<String>,
    /// Modules defined from source after the preloads (default [`default_modules`]).
    pub modules: Vec<GuestModule>,
    /// Whether to run typical first calls (numpy `det`, sympy `factorint`/`integrate`, each
    /// module's [`GuestModule::warm_up`]) so that a user's first call does not pay for lazy
    /// initialization.
    pub warm_up: bool,
    /// Free heap the snapshot's allocator holds (allocated, then freed, before the snapshot),
    /// so that typical programs fit without growing memory: a wasm memory cannot shrink, so
    /// an instance whose memory grew cannot be restored and reused. Untouched pages cost
    /// nothing. Default [`DEFAULT_HEAP_HEADROOM_BYTES`].
    pub heap_headroom_bytes: u32,
}

/// Programs run through the fresh-execution path before the snapshot when it warms up (see
/// [`SnapshotSpec::steps`]): what typical small programs do (print, loop, call, import).
const EXEC_PATH_WARM_UP: [&str; 3] = [
    "print(1 + 1)",
    "import math\nxs = [i * i for i in range(50)]\nprint(sum(xs), math.sqrt(2))",
    "def f(a, b=2):\n    return a + b\nprint(f(1), 'x'.join(['a', 'b']))",
];
/// How many times each of [`EXEC_PATH_WARM_UP`] runs: CPython specializes an instruction
/// after a few executions of it.
const EXEC_PATH_WARM_UPS: usize = 4;

/// Default of [`SnapshotSpec::heap_headroom_bytes`].
pub const DEFAULT_HEAP_HEADROOM_BYTES: u32 = 32 << 20;

impl Default for SnapshotSpec {
    fn default() -> Self {
        SnapshotSpec {
            preload: DEFAULT_PRELOAD.iter().map(|s| s.to_string()).collect(),
            modules: default_modules(),
            warm_up: true,
            heap_headroom_bytes: DEFAULT_HEAP_HEADROOM_BYTES,
        }
    }
}

impl SnapshotSpec {
    /// A key naming this spec's snapshot in the cache.
    pub fn cache_key(&self) -> String {
        let steps = self.steps().join("\n---\n");
        format!(
            "snapshot v7 wizer 48.0.8 reuse-marked turn-headers preseed-probed\n{}\n{steps}",
            crate::preseed::PROBE
        )
    }

    /// The Python sources run, in order, before the snapshot is taken.
    fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        steps.push(format!(
            "{}\nimport sys as _s\n_s.excepthook = _s.modules[{HELPER_MODULE:?}].excepthook\ndel _s",
            define_module(HELPER_MODULE, HELPER_SOURCE)
        ));
        for module in &self.preload {
            steps.push(format!("__import__({module:?})"));
        }
        for module in &self.modules {
            steps.push(define_module(&module.name, &module.source));
        }
        if self.warm_up {
            let has = |m: &str| self.preload.iter().any(|p| p == m);
            if has("numpy") {
                steps.push(
                    "def _w():\n    import numpy as np\n    a = np.arange(9.0).reshape(3, 3) + np.eye(3)\n    \
                     np.linalg.det(a); np.linalg.inv(a); a @ a; np.random.rand(3).sum()\n    \
                     repr(np.float64(1.5)); str(a)\n_w(); del _w"
                        .into(),
                );
            }
            if has("sympy") {
                steps.push(
                    "def _w():\n    import sympy as sp\n    x = sp.Symbol('x')\n    \
                     sp.factorint(2**64 - 1); sp.integrate(x**2 * sp.sin(x), x)\n    \
                     sp.simplify((x**2 - 1)/(x - 1)); sp.solve(x**2 - 2, x); sp.isprime(97)\n    \
                     str(sp.Rational(1, 3) + x)\n_w(); del _w"
                        .into(),
                );
            }
        }
        if self.warm_up {
            steps.extend(
                self.modules
                    .iter()
                    .filter(|m| !m.warm_up.is_empty())
                    .map(|m| m.warm_up.clone()),
            );
        }
        if self.warm_up {
            // The path every fresh execution takes (header, reseed, compile, run, print),
            // taken a few times as real turns: its bytecode is specialized and its caches
            // filled in the snapshot, so an execution neither redoes that nor writes (and has
            // copied back) the pages it would touch doing it.
            for _ in 0..EXEC_PATH_WARM_UPS {
                for code in EXEC_PATH_WARM_UP {
                    steps.push(format!("\0fresh 1 <warm-up>\n{code}"));
                }
            }
        }
        // Leave `__main__` as a fresh interpreter has it: the preloads stay in `sys.modules`
        // but no names from the set-up linger in the user's namespace.
        steps.push(
            "def _clean(g=globals()):\n    for n in list(g):\n        \
             if not (n.startswith('__') and n.endswith('__')):\n            del g[n]\n\
             import gc\ngc.collect()\n_clean()\n\
             __import__('sys').modules['_start']._pending = None"
                .into(),
        );
        if self.heap_headroom_bytes > 0 {
            // Freed at once: the allocator keeps it (a wasm memory never shrinks) as free
            // space for later allocations.
            steps.push(format!(
                "_b = bytearray({})\ndel _b\n_n = __import__('gc').collect()\ndel _n",
                self.heap_headroom_bytes
            ));
        }
        steps
    }
}

/// The code that defines module `name` from `source` (compiled as `<start>`) in `sys.modules`,
/// leaving no other names behind.
pub fn define_module(name: &str, source: &str) -> String {
    format!(
        "import sys as _s, types as _t\n_m = _t.ModuleType({name})\n_m.__file__ = '<start>'\n\
         exec(compile({src}, '<start>', 'exec'), _m.__dict__)\n_s.modules[{name}] = _m\n\
         del _s, _t, _m",
        name = guest::python_str_literal(name),
        src = guest::python_str_literal(source),
    )
}

struct BuildState {
    wasi: WasiP1Ctx,
}

/// Builds the snapshot of `python.wasm` described by `spec`, returning the new module's bytes.
///
/// Runs on its own thread with a large stack: the interpreter's start-up recurses deeply and
/// synchronous wasm calls use the caller's stack.
pub(crate) fn build(
    wasm: &[u8],
    stdlib_dir: &Path,
    spec: &SnapshotSpec,
    progress: &Progress,
) -> Result<Vec<u8>, Error> {
    let mut wizer = Wizer::new();
    wizer.init_func("wizer.initialize");
    let (cx, instrumented) = wizer
        .instrument(wasm)
        .map_err(|e| Error::wasm("preparing the runtime for a snapshot", e))?;

    let mut config = Config::new();
    config
        .wasm_exceptions(true)
        .max_wasm_stack(8 << 20)
        .async_stack_size(16 << 20)
        // This module runs once, for about a second: compile it fast rather than well.
        .cranelift_opt_level(OptLevel::None);
    let engine = Engine::new(&config).map_err(|e| Error::wasm("creating an engine", e))?;
    let step = progress.spinner(
        "compiling the runtime for its snapshot (once; ~40 s and ~2 GB of memory on 2 cores)",
    );
    let module = Module::new(&engine, &instrumented)
        .map_err(|e| Error::wasm("compiling the runtime for its snapshot", e))?;
    drop(instrumented);
    step.finish();

    let step = progress.spinner(&format!(
        "starting Python and importing {} for the snapshot",
        spec.preload.join(", ")
    ));
    let scratch = tempfile::tempdir().map_err(|e| Error::io("cannot create", "a temp dir", e))?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let stderr = MemoryOutputPipe::new(1 << 20);
    let wasi = guest::wasi_builder(stdlib_dir, scratch.path())?
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let mut linker: Linker<BuildState> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut BuildState| &mut s.wasi)
        .and_then(|()| guest::add_host_stub(&mut linker))
        .map_err(|e| Error::wasm("linking WASI", e))?;
    let mut store = Store::new(&engine, BuildState { wasi });
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| Error::wasm("instantiating the runtime", e))?;
    for init in ["_initialize", "wizer.initialize"] {
        instance
            .get_typed_func::<(), ()>(&mut store, init)
            .and_then(|f| f.call(&mut store, ()))
            .map_err(|e| Error::wasm("initializing the interpreter", e))?;
    }
    for source in spec.steps() {
        let status = turn(&mut store, &instance, &source)?;
        if status != 0 {
            let err = String::from_utf8_lossy(&stderr.contents()).into_owned();
            return Err(Error::SnapshotStep {
                step: format!("{source}\n{err}"),
                status,
            });
        }
    }
    step.finish();

    let step = progress.spinner("writing the snapshot");
    let snapshot = block_on(wizer.snapshot(
        &cx,
        &mut WasmtimeWizer {
            store: &mut store,
            instance,
        },
    ))
    .map_err(|e| Error::wasm("taking the snapshot", e))?;
    step.finish();

    // After the snapshot, so that the probe changes nothing in it; the objects it reports on
    // are where the snapshot has them.
    let before = stdout.contents().len();
    let located = match turn(&mut store, &instance, crate::preseed::PROBE)? {
        0 => {
            let memory = instance
                .get_memory(&mut store, "memory")
                .ok_or_else(|| Error::wasm("finding memory", "the runtime exports no memory"))?;
            crate::preseed::locate(&stdout.contents()[before..], memory.data(&store))
        }
        _ => crate::preseed::Located::default(),
    };
    let aliases = crate::preseed::export_names(&located);

    let step = progress.spinner("checking the snapshot for in-place reuse");
    let (snapshot, not_reusable) = crate::reuse::mark(&snapshot, &aliases)?;
    step.finish();
    if let Some(why) = not_reusable {
        progress.note(&format!(
            "fresh executions will not reuse instances in place: {why}"
        ));
    }
    Ok(snapshot)
}

/// Runs one `turn` in the build instance.
fn turn(store: &mut Store<BuildState>, instance: &Instance, source: &str) -> Result<i32, Error> {
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, "host_alloc")
        .map_err(|e| Error::wasm("finding host_alloc", e))?;
    let turn = instance
        .get_typed_func::<(i32, i32), i32>(&mut *store, "turn")
        .map_err(|e| Error::wasm("finding turn", e))?;
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| Error::wasm("finding memory", "the runtime exports no memory"))?;
    let len = i32::try_from(source.len()).map_err(|_| Error::wasm("turn", "source too long"))?;
    let ptr = alloc
        .call(&mut *store, len)
        .map_err(|e| Error::wasm("allocating in the guest", e))?;
    memory
        .write(&mut *store, ptr as u32 as usize, source.as_bytes())
        .map_err(|e| Error::wasm("writing to guest memory", e))?;
    turn.call(&mut *store, (ptr, len))
        .map_err(|e| Error::wasm("running a set-up turn", e))
}

/// Polls a future that never waits on I/O (wizer's snapshot only reads memory) to completion.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_turn_starts_with_a_host_header() {
        let exec = TurnText::exec(42, "<string>", "print(1)\nprint(2)").unwrap();
        assert_eq!(exec.as_str(), "\0exec 42 <string>\nprint(1)\nprint(2)");
        let cell = TurnText::cell("<cell 3>", "#start:exec 1\nx").unwrap();
        assert_eq!(cell.as_str(), "\0cell <cell 3>\n#start:exec 1\nx");
        assert_eq!(TurnText::reseed(7).as_str(), "\0seed 7\n");
        let fresh = TurnText::fresh(Some(9), "<string>", "pass").unwrap();
        assert_eq!(fresh.as_str(), "\0fresh 9 <string>\npass");
        let all = TurnText::fresh(None, "<string>", "pass").unwrap();
        assert_eq!(all.as_str(), "\0fresh - <string>\npass");
        assert!(HELPER_SOURCE.contains("text.startswith('\\0')"));
    }

    #[test]
    fn file_names_cannot_break_the_header() {
        for bad in ["", "a\nb", "a\0b", &"x".repeat(MAX_FILENAME_BYTES + 1)] {
            assert!(TurnText::cell(bad, "1").is_err(), "{bad:?}");
        }
        assert!(TurnText::exec(1, "solution.py", "1").is_ok());
    }

    #[test]
    fn the_cache_key_follows_the_defined_modules() {
        let default = SnapshotSpec::default();
        let mut changed = default.clone();
        changed.modules[0].source.push_str("\nx = 1\n");
        assert_ne!(default.cache_key(), changed.cache_key());
        changed.modules.clear();
        assert_ne!(default.cache_key(), changed.cache_key());
    }

    #[test]
    fn the_cache_key_follows_the_helper() {
        // A changed prelude must get a snapshot (and a cache entry) of its own.
        assert!(SnapshotSpec::default().cache_key().contains("_run_turn"));
    }
}
