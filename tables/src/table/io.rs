//! Opening a prediction log, and the [`TableError`]s that name its file: `open` for
//! [`TableError::Io`], `read_error` for [`TableError::Read`], and `clean_arrow_message` for the
//! text of arrow's CSV errors.

use std::fs::File;
use std::path::Path;

use crate::error::TableError;

pub(super) fn open(path: &Path) -> Result<File, TableError> {
    File::open(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn read_error(path: &Path, message: impl std::fmt::Display) -> TableError {
    TableError::Read {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Drops arrow's "Csv error: " / "CSV error: " prefixes; the caller adds the file name.
pub(super) fn clean_arrow_message(message: &str) -> String {
    let m = message.trim();
    for prefix in ["Csv error: ", "CSV error: ", "Parser error: "] {
        if let Some(rest) = m.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    m.to_string()
}
