//! Precompiled `.cwasm` files: compiled once (about 40 s for CPython), then mapped in a few
//! milliseconds by every later process.
//!
//! A file's name carries a key over its input, the wasmtime version and the engine's
//! compatibility settings, so a change to any of them compiles afresh. A sidecar records its
//! length and digests of its head and tail; a truncated or overwritten file fails that check,
//! or fails wasmtime's own header check, and is rebuilt rather than trusted.
//!
//! Modules are compiled without their `name` section: wasmtime keeps one entry per named
//! function in the metadata every process deserializes at start-up (CPython names ~90,000),
//! and only a wasm-level backtrace, which nothing here shows, would read them.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmtime::{Engine, Module};

use crate::Error;
use crate::cache::{CacheDir, sha256_bytes};
use crate::progress::Progress;

/// How many bytes at each end of a `.cwasm` the sidecar's digests cover. Hashing them is on
/// every process's start-up path: 64 KiB at each end covers wasmtime's header and the
/// metadata's tail (1 MiB each cost ~1.8 ms per start), and the length catches truncation.
const CHECKED_SPAN: u64 = 64 << 10;

/// A module compiled for one engine, and where its `.cwasm` lives.
#[derive(Clone)]
pub struct CompiledModule {
    /// The loaded module.
    pub module: Module,
    /// The `.cwasm` it was mapped from.
    pub path: PathBuf,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sidecar {
    len: u64,
    head_sha256: String,
    tail_sha256: String,
}

fn sidecar_of(path: &Path) -> Result<Sidecar, Error> {
    let mut file = fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?
        .len();
    let span = CHECKED_SPAN.min(len);
    let mut head = vec![0u8; span as usize];
    file.read_exact(&mut head)
        .map_err(|e| Error::io("cannot read", path, e))?;
    let mut tail = vec![0u8; span as usize];
    file.seek(SeekFrom::Start(len - span))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(Sidecar {
        len,
        head_sha256: sha256_bytes(&head),
        tail_sha256: sha256_bytes(&tail),
    })
}

/// The cache file name for `name` compiled from `input_key` by `engine`.
pub(crate) fn cwasm_path(
    cache: &CacheDir,
    engine: &Engine,
    name: &str,
    input_key: &str,
) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let key = sha256_bytes(
        format!(
            "{input_key}\nwasmtime {}\nengine {:016x}\ndense image {}\nnames stripped",
            wasmtime_version(),
            h.finish(),
            crate::DENSE_IMAGE_BYTES
        )
        .as_bytes(),
    );
    cache
        .path("compiled")
        .join(format!("{name}-{}.cwasm", &key[..20]))
}

fn wasmtime_version() -> &'static str {
    // The pinned version; bumping the dependency must change the key.
    "48.0.8"
}

/// Loads a `.cwasm` if it is intact; `None` if it is missing or damaged.
fn try_load(engine: &Engine, path: &Path) -> Option<Module> {
    let meta = path.with_extension("cwasm.json");
    let recorded: Sidecar = serde_json::from_slice(&fs::read(&meta).ok()?).ok()?;
    if sidecar_of(path).ok()? != recorded {
        return None;
    }
    // SAFETY: the file is in our private cache, was written by `Engine::precompile_module`
    // through an atomic rename, and its length and both ends match what we recorded when we
    // wrote it; wasmtime also checks its header, version and engine compatibility.
    unsafe { Module::deserialize_file(engine, path) }.ok()
}

/// Returns the module `name` compiled by `engine`, compiling `wasm()` when no intact `.cwasm`
/// exists for this input and engine.
///
/// # Errors
/// [`Error::Wasm`] when compilation fails; [`Error::Io`] on cache failures.
pub(crate) fn load_or_compile(
    cache: &CacheDir,
    engine: &Engine,
    name: &str,
    input_key: &str,
    progress: &Progress,
    wasm: impl FnOnce() -> Result<Vec<u8>, Error>,
) -> Result<CompiledModule, Error> {
    let path = cwasm_path(cache, engine, name, input_key);
    if let Some(module) = try_load(engine, &path) {
        return Ok(CompiledModule { module, path });
    }
    let _lock = cache.lock()?;
    if let Some(module) = try_load(engine, &path) {
        return Ok(CompiledModule { module, path });
    }
    let bytes = without_names(&wasm()?)?;
    let step = progress.spinner(&format!(
        "compiling {name} to native code (once; ~40 s and ~2 GB of memory on 2 cores)"
    ));
    let compiled = engine
        .precompile_module(&bytes)
        .map_err(|e| Error::wasm("compiling the runtime", e))?;
    drop(bytes);
    cache.write_bytes(&path, &compiled)?;
    drop(compiled);
    write_sidecar(cache, &path)?;
    step.finish();
    // SAFETY: as in `try_load`; we wrote this file a moment ago.
    let module = unsafe { Module::deserialize_file(engine, &path) }
        .map_err(|e| Error::wasm("loading the compiled runtime", e))?;
    Ok(CompiledModule { module, path })
}

/// Records `path`'s sidecar (its length and the digests of its ends) beside it.
fn write_sidecar(cache: &CacheDir, path: &Path) -> Result<(), Error> {
    let sidecar = sidecar_of(path)?;
    let json = serde_json::to_vec(&sidecar)
        .map_err(|e| Error::io("cannot encode", path, std::io::Error::other(e.to_string())))?;
    cache.write_bytes(&path.with_extension("cwasm.json"), &json)
}

/// `wasm` without its `name` custom section (every other section kept, byte for byte).
fn without_names(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let mut module = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| Error::wasm("reading the module's sections", e))?;
        if let wasmparser::Payload::CustomSection(c) = &payload
            && c.name() == "name"
        {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func $seven (export "f") (result i32) i32.const 7))"#;

    /// Instantiates `module` and returns what its export `f` answers.
    fn call_f(engine: &Engine, module: &Module) -> i32 {
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        f.call(&mut store, ()).unwrap()
    }

    fn has_name_section(wasm: &[u8]) -> bool {
        wasmparser::Parser::new(0)
            .parse_all(wasm)
            .any(|p| matches!(p, Ok(wasmparser::Payload::CustomSection(c)) if c.name() == "name"))
    }

    #[test]
    fn names_are_stripped_and_everything_else_kept() {
        let wasm = wat::parse_str(WAT).unwrap();
        assert!(has_name_section(&wasm), "the test module must carry names");
        let stripped = without_names(&wasm).unwrap();
        assert!(!has_name_section(&stripped));
        assert!(stripped.len() < wasm.len());
        // Every other section is copied as it was, byte for byte and in order.
        let sections = |wasm: &[u8]| -> Vec<(u8, Vec<u8>)> {
            wasmparser::Parser::new(0)
                .parse_all(wasm)
                .map(Result::unwrap)
                .filter(
                    |p| !matches!(p, wasmparser::Payload::CustomSection(c) if c.name() == "name"),
                )
                .filter_map(|p| p.as_section().map(|(id, r)| (id, wasm[r].to_vec())))
                .collect()
        };
        assert_eq!(sections(&stripped), sections(&wasm));
        assert!(!sections(&wasm).is_empty());
        let engine = Engine::default();
        let module = Module::new(&engine, &stripped).unwrap();
        assert_eq!(call_f(&engine, &module), 7);
        assert!(without_names(b"not wasm").is_err());
    }

    fn compile_counting(cache: &CacheDir, engine: &Engine, count: &mut u32) -> CompiledModule {
        load_or_compile(
            cache,
            engine,
            "tiny",
            "tiny-v1",
            &Progress::hidden(),
            || {
                *count += 1;
                Ok(wat::parse_str(WAT).unwrap())
            },
        )
        .unwrap()
    }

    #[test]
    fn damaged_cwasm_is_rebuilt_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path()).unwrap();
        let engine = Engine::default();
        let mut compiles = 0;
        let first = compile_counting(&cache, &engine, &mut compiles);
        assert_eq!(compiles, 1);
        drop(compile_counting(&cache, &engine, &mut compiles));
        assert_eq!(compiles, 1, "an intact cache is reused");

        // Damage it in place. A module mapped from the file must be gone first: truncating a
        // file under a live mapping is SIGBUS territory (our own writes always rename a new
        // file into place, so a running process never sees this).
        let path = first.path.clone();
        drop(first);
        let data = fs::read(&path).unwrap();
        fs::write(&path, &data[..data.len() / 2]).unwrap();
        drop(compile_counting(&cache, &engine, &mut compiles));
        assert_eq!(compiles, 2, "a truncated file is rebuilt");

        // Overwrite it with garbage of the same length.
        fs::write(&path, vec![0xAB; data.len()]).unwrap();
        let again = compile_counting(&cache, &engine, &mut compiles);
        assert_eq!(compiles, 3, "a corrupted file is rebuilt");

        assert_eq!(call_f(&engine, &again.module), 7);
    }

    #[test]
    fn engine_settings_change_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(tmp.path()).unwrap();
        let plain = Engine::default();
        let mut cfg = wasmtime::Config::new();
        cfg.consume_fuel(true);
        let fueled = Engine::new(&cfg).unwrap();
        assert_ne!(
            cwasm_path(&cache, &plain, "m", "k"),
            cwasm_path(&cache, &fueled, "m", "k")
        );
    }
}
