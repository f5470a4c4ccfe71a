//! Hint-infer: a reasoning model generates, hints are inserted into its chain of thought, the
//! Python it then writes runs in a sandbox session, and the output is fed back.
//!
//! - [`batch`]: many trajectories on a worker pool, appended to a resumable file.
//! - [`driver`]: one trajectory: generate, insert hints, run code, feed output back.
//! - [`insert`]: where hints go (trigger words, end of thinking) and the streaming text scanner.
//! - [`hints`]: the hint library (the paper's math hints, the code debug hint).
//! - [`prompt`]: what the model is asked, and what the debug hint's slots show it.
//! - [`template`]: chat templates (Hugging Face's Jinja dialect, built-in presets) that turn a
//!   prompt into the exact text the model is given.
//! - [`backend`]: model backends behind one trait (`llama`, `openai`, `scripted`).
//! - [`model`]: the example GGUF model, fetched and verified on first use.

pub mod backend;
pub mod batch;
pub mod driver;
pub mod hints;
pub mod insert;
pub mod model;
pub mod prompt;
pub mod template;
