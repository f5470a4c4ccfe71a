//! The pre-initialized snapshot: the interpreter started, the preload list imported and a few
//! typical first calls made, then frozen with wasmtime-wizer so that every fresh instance starts
//! from there in well under a millisecond.
//!
//! The snapshot also defines a small host-helper module, `_start`, that every fresh execution
//! calls: it reseeds `random`, numpy's global generator and sympy's own (a snapshot would
//! otherwise replay the same random numbers in every instance), then runs the user's code as
//! `__main__`.

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

/// The helper module's name inside the guest.
pub const HELPER_MODULE: &str = "_start";

/// The helper module's source. Its frames carry the file name `<start>`, which the exception
/// hook strips so a traceback starts at the user's code.
pub const HELPER_SOURCE: &str = r#"
import sys, random, traceback, builtins
_main = sys.modules['__main__']
# The runtime's own quitter makes `turn` return 256 + code and marks the interpreter as done;
# plain `SystemExit` codes are cut to 8 bits and 1 collides with "uncaught exception".
_quit = builtins.exit

def reseed(seed):
    random.seed(seed)
    np = sys.modules.get('numpy')
    if np is not None:
        np.random.seed(seed & 0xFFFFFFFF)
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
    print(code, file=sys.stderr)
    return 1

def run(seed, src):
    reseed(seed)
    try:
        exec(compile(src, '<string>', 'exec'), _main.__dict__)
    except SystemExit as e:
        _quit(_exit_code(e))

# A turn whose text starts with the exec marker is a fresh execution: `#start:exec SEED`, a
# newline, then the program. It skips the runtime's REPL path (parse to an AST, convert it to
# Python objects and back, echo a final expression) and the compile of a wrapper call: the
# program is compiled once, as `python -c` would.
import _reactor
_EXEC = '#start:exec '
_repl_turn = _reactor._run_turn

def _run_turn(text, name):
    if text.startswith(_EXEC):
        nl = text.find('\n')
        return run(int(text[len(_EXEC):nl]), text[nl + 1:])
    return _repl_turn(text, name)

_reactor._run_turn = _run_turn

def sys_exit(status=None):
    """`sys.exit` through the runtime's quitter, so a session's host sees the exit."""
    _quit(status)

def excepthook(etype, value, tb):
    start = tb
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == '<start>':
            start = tb.tb_next
        tb = tb.tb_next
    traceback.print_exception(etype, value, start)
"#;

/// Starts a turn's text that runs a fresh execution (see [`exec_turn`]).
pub const EXEC_MARKER: &str = "#start:exec ";

/// The turn text that runs `code` as a fresh program (like `python -c`) with `random` and
/// numpy reseeded from `seed`: no REPL echo, tracebacks start at the program's own line 1.
pub fn exec_turn(seed: u64, code: &str) -> String {
    format!("{EXEC_MARKER}{seed}\n{code}")
}

/// What goes into a snapshot. Changing any field builds (and caches) a different snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotSpec {
    /// Modules imported before the snapshot (default [`DEFAULT_PRELOAD`]).
    pub preload: Vec<String>,
    /// Whether to run typical first calls (numpy `det`, sympy `factorint`/`integrate`) so that a
    /// user's first call does not pay for lazy initialization.
    pub warm_up: bool,
    /// Free heap the snapshot's allocator holds (allocated, then freed, before the snapshot),
    /// so that typical programs fit without growing memory: a wasm memory cannot shrink, so
    /// an instance whose memory grew cannot be restored and reused. Untouched pages cost
    /// nothing. Default [`DEFAULT_HEAP_HEADROOM_BYTES`].
    pub heap_headroom_bytes: u32,
}

/// Default of [`SnapshotSpec::heap_headroom_bytes`].
pub const DEFAULT_HEAP_HEADROOM_BYTES: u32 = 32 << 20;

impl Default for SnapshotSpec {
    fn default() -> Self {
        SnapshotSpec {
            preload: DEFAULT_PRELOAD.iter().map(|s| s.to_string()).collect(),
            warm_up: true,
            heap_headroom_bytes: DEFAULT_HEAP_HEADROOM_BYTES,
        }
    }
}

impl SnapshotSpec {
    /// A key naming this spec's snapshot in the cache.
    pub fn cache_key(&self) -> String {
        let steps = self.steps().join("\n---\n");
        format!("snapshot v5 wizer 48.0.8 reuse-marked\n{steps}")
    }

    /// The Python sources run, in order, before the snapshot is taken.
    fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        steps.push(format!(
            "import sys as _s, types as _t\n_m = _t.ModuleType({name:?})\n_m.__file__ = '<start>'\n\
             exec(compile({src}, '<start>', 'exec'), _m.__dict__)\n_s.modules[{name:?}] = _m\n\
             _s.excepthook = _m.excepthook\n_s.exit = _m.sys_exit\ndel _s, _t, _m",
            name = HELPER_MODULE,
            src = guest::python_str_literal(HELPER_SOURCE),
        ));
        for module in &self.preload {
            steps.push(format!("__import__({module:?})"));
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
        // Leave `__main__` as a fresh interpreter has it: the preloads stay in `sys.modules`
        // but no names from the set-up linger in the user's namespace.
        steps.push(
            "def _clean(g=globals()):\n    for n in list(g):\n        \
             if not (n.startswith('__') and n.endswith('__')):\n            del g[n]\n\
             import gc\ngc.collect()\n_clean()"
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

    let step = progress.spinner("checking the snapshot for in-place reuse");
    let (snapshot, not_reusable) = crate::reuse::mark(&snapshot)?;
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
    fn the_helper_recognizes_the_exec_marker_the_host_sends() {
        assert!(HELPER_SOURCE.contains(&format!("_EXEC = {EXEC_MARKER:?}").replace('"', "'")));
        let turn = exec_turn(42, "print(1)\nprint(2)");
        assert_eq!(turn, "#start:exec 42\nprint(1)\nprint(2)");
    }
}
