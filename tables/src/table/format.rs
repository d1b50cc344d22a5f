//! The on-disk format of a prediction log, [`FileFormat`], picked from the file's extension.

use std::path::Path;

/// The on-disk format of a prediction log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// Picks the format from the file extension: `.parquet`/`.pq` are Parquet, anything else CSV.
    pub fn from_path(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet" | "pq") => FileFormat::Parquet,
            _ => FileFormat::Csv,
        }
    }
}
