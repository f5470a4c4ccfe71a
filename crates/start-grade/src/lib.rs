//! Pure grading logic for tool-integrated reasoning: everything that decides whether a model's
//! answer or program output is right, without running anything.
//!
//! Modules, one per concept:
//! - [`answer`]: extracting final math answers and deciding equivalence with a gold answer (the
//!   symbolic fallback is a program for the caller to run in a sandbox).
//! - [`testcase`]: the one test-case schema (stdin/stdout, functional, check) and extracting
//!   sample tests from code problem statements.
//! - [`compare`]: comparing program output with expected output, as a judge does.
//! - [`harness`]: what each code benchmark's harness does around a program: its stdout
//!   comparison rule and the imports it runs first.
//! - [`fence`]: code fences, once: where the driver's tool blocks open and close, the output
//!   block after them, and Markdown fence lines.
//!
//! Only std and serde: no wasmtime, no llama.cpp, no I/O beyond the text a caller passes in, so it
//! builds in seconds and any host (the CLI, the daemon, an HTTP API) can share it. Every input is
//! untrusted: work is bounded and nothing here panics.

pub mod answer;
pub mod compare;
pub mod fence;
pub mod harness;
pub mod testcase;
