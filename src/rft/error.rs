//! What can stop a Hint-RFT step.

use std::path::{Path, PathBuf};

use crate::jsonl::JsonlError;

/// A step of a round failed.
#[derive(Debug, thiserror::Error)]
pub enum RftError {
    /// Reading or writing JSONL failed.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// The ChatML fallback prompt of an export could not be rendered.
    #[error("cannot render the fallback ChatML prompt: {0}")]
    Template(#[from] crate::infer::template::TemplateError),
    /// A file could not be opened, created or renamed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> RftError + '_ {
    move |source| RftError::File {
        path: path.to_path_buf(),
        source,
    }
}
