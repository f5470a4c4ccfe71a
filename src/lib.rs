//! The START method on top of the [`start_sandbox`] crate: Hint-infer generates tool-integrated
//! reasoning trajectories, Hint-RFT scores, filters and exports them; grading logic comes from
//! [`start_grade`].
//!
//! Modules, one per concept:
//! - [`infer`]: Hint-infer: the driver, where hints go, the hint library, model backends, and
//!   the example model.
//! - [`rft`]: Hint-RFT: scoring, filtering, SFT export, and resumable rounds.
//! - [`judge`]: running programs against tests in the sandbox (stdio, functional, `check`).
//! - [`executor`]: where executions run: the local sandbox or a SandboxFusion-compatible
//!   server (`--sandbox-url`).
//! - [`problem`]: input problems (JSONL), their kind, shards, and the bundled examples.
//! - [`trajectory`]: tool-integrated reasoning trajectories and their resumable JSONL file.
//! - [`jsonl`]: bounded JSONL line reading and writing, for every JSONL input.
//! - [`pool`]: the one worker pool of every batch.
//! - [`retry`]: when to retry an HTTP request, and how long to wait.
//! - [`cells`]: splitting Markdown and `# %%` files into notebook cells (`start repl FILE`).

pub mod cells;
pub mod executor;
pub mod infer;
pub mod jsonl;
pub mod judge;
pub mod pool;
pub mod problem;
pub mod retry;
pub mod rft;
pub mod trajectory;
