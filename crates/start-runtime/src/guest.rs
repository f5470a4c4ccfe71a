//! The guest's view of the world, identical for the snapshot build and every later instance.
//!
//! A snapshot bakes in the interpreter's preopen table, so the order and names of preopens here
//! must never differ between building and running: fd 3 is the read-only standard library at
//! [`STDLIB_GUEST_DIR`], fd 4 the per-instance scratch folder at [`SCRATCH_GUEST_DIR`].

use std::path::Path;

use wasmtime::Linker;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::Error;

/// `argv[0]` the interpreter sees; it derives `sys.prefix` from it.
pub const ARGV0: &str = "/usr/local/bin/python.wasm";
/// Where the standard library zip (`python315.zip`) is visible, read-only.
pub const STDLIB_GUEST_DIR: &str = "/usr/local/lib";
/// Where the private scratch folder is visible, read-write: every other absolute path.
pub const SCRATCH_GUEST_DIR: &str = "/";
/// The only environment variables a guest sees (no host variables ever pass through).
pub const GUEST_ENV: [(&str, &str); 3] = [
    ("TMPDIR", "/tmp"),
    ("HOME", "/tmp/home"),
    ("PYTHONTZPATH", ""),
];

/// The runtime's tool-door import: `host.call(i32, i32, i32, i32) -> i32`.
pub const HOST_MODULE: &str = "host";
/// The tool-door import's name.
pub const HOST_CALL: &str = "call";
/// What the tool door answers: "no host tools are offered".
pub const NO_HOST_TOOLS: i32 = -1;

/// A WASI context builder with the standard layout: argv, environment, and the two preopens.
///
/// The caller adds stdio. Nothing else from the host is visible: no environment, no network,
/// no other folder.
///
/// # Errors
/// [`Error::Io`] when either folder cannot be opened.
pub fn wasi_builder(stdlib_dir: &Path, scratch_dir: &Path) -> Result<WasiCtxBuilder, Error> {
    let mut builder = WasiCtxBuilder::new();
    builder.args(&[ARGV0]).envs(&GUEST_ENV);
    builder
        .preopened_dir(stdlib_dir, STDLIB_GUEST_DIR, FsPerms::ReadOnly)
        .map_err(|e| {
            Error::io(
                "cannot open the standard library folder",
                stdlib_dir,
                std::io::Error::other(e.to_string()),
            )
        })?;
    builder
        .preopened_dir(scratch_dir, SCRATCH_GUEST_DIR, FsPerms::ReadWrite)
        .map_err(|e| {
            Error::io(
                "cannot open the scratch folder",
                scratch_dir,
                std::io::Error::other(e.to_string()),
            )
        })?;
    Ok(builder)
}

/// Adds the tool-door stub, answering [`NO_HOST_TOOLS`] to every call.
///
/// # Errors
/// When the linker already defines the import.
pub fn add_host_stub<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HOST_CALL,
        |_a: i32, _b: i32, _c: i32, _d: i32| -> i32 { NO_HOST_TOOLS },
    )?;
    Ok(())
}

/// Adds WASI preview 1 (async flavour) and the tool-door stub to a linker.
///
/// # Errors
/// When an import is already defined.
pub fn add_to_linker_async<T: Send + 'static>(
    linker: &mut Linker<T>,
    wasi: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, wasi)?;
    add_host_stub(linker)
}

/// Escapes `text` as a single-quoted Python string literal.
///
/// Used to hand code to the guest inside one `turn` without touching the filesystem.
///
/// ```
/// assert_eq!(start_runtime::guest::python_str_literal("a'b\n"), r"'a\'b\n'");
/// ```
pub fn python_str_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_escapes_controls_and_quotes() {
        assert_eq!(python_str_literal("\0\\'é"), r"'\x00\\\'é'");
        assert_eq!(python_str_literal(""), "''");
    }
}
