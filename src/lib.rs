//! The START driver: tool-integrated reasoning on top of the [`sandbox`] crate.
//!
//! Modules, one per concept:
//! - [`cells`]: splitting Markdown and `# %%` files into notebook cells (`start repl FILE`).
//! - [`answer`]: extracting final math answers and deciding equivalence with a gold answer.
//! - [`testcase`]: extracting sample tests from code problem statements.
//! - [`judge`]: running programs against tests in the sandbox (stdio, functional, `check`).
//! - [`compare`]: comparing program output with expected output (judging).
//! - [`hints`]: the hint library (the paper's math hints, the code debug hint).
//! - [`insert`]: where hints go (trigger words, end of thinking) and the text scanner.
//! - [`backend`]: model backends behind one trait (`llama`, `openai`, `scripted`).
//! - [`generate`]: the Hint-infer driver: generate, insert hints, run code, feed output back.
//! - [`trajectory`]: tool-integrated reasoning trajectories and their resumable JSONL file.
//! - [`problem`]: input problems (JSONL), shards, and the bundled examples.
//! - [`model`]: the example GGUF model, fetched and verified on first use.
//! - [`score`], [`filter`], [`export`], [`rft`] (with [`jsonl`]): Hint-RFT: scoring trajectories,
//!   filtering them, exporting SFT data, and rounds.

pub mod answer;
pub mod backend;
pub mod cells;
pub mod compare;
pub mod export;
pub mod filter;
pub mod generate;
pub mod hints;
pub mod insert;
pub mod jsonl;
pub mod judge;
pub mod model;
pub mod problem;
pub mod rft;
pub mod score;
pub mod testcase;
pub mod trajectory;
