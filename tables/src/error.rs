//! The file readers' error type.

use std::path::PathBuf;

/// What can go wrong while reading a prediction-log file.
///
/// Messages name the file and, where the reader knows it, the line, so that a user can find the
/// bad input without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A file has no header or no data rows.
    #[error("{} is empty: {what}", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
        /// What is missing, for example "no header line".
        what: &'static str,
    },
    /// A file's content is malformed (ragged CSV row, corrupt Parquet).
    #[error("cannot parse {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported, including the line where it knows it.
        message: String,
    },
}

impl TableError {
    /// A bounded label for metrics and exit codes: `io`, `empty_file` or `read`.
    pub fn kind(&self) -> &'static str {
        match self {
            TableError::Io { .. } => "io",
            TableError::EmptyFile { .. } => "empty_file",
            TableError::Read { .. } => "read",
        }
    }
}
