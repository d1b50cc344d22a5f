//! The header line of a CSV file: [`csv_header`] (its column names, duplicates refused, read
//! through the decompressor when the file is compressed), `open_csv` (a file refused when it
//! holds no header line) and `duplicate_names`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use arrow::csv::reader::Format;
use arrow::datatypes::Schema;

use super::io::{clean_arrow_message, open, read_error};
use super::lines::scan_csv_bytes;
use crate::error::TableError;
use crate::source::{Compression, open_decompressed};

/// Opens a CSV file positioned at its start.
///
/// # Errors
/// [`TableError::Io`] when it cannot be opened, [`TableError::EmptyFile`] when it holds no
/// byte (not even a header line).
pub(super) fn open_csv(path: &Path) -> Result<File, TableError> {
    let mut file = open(path)?;
    let mut first = [0u8; 1];
    if file.read(&mut first).map_err(|e| read_error(path, e))? == 0 {
        return Err(TableError::EmptyFile {
            path: path.to_path_buf(),
            what: "no header line",
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| read_error(path, e))?;
    Ok(file)
}

/// The column names on a CSV file's header line.
///
/// # Errors
/// [`TableError::EmptyFile`] for an empty file, [`TableError::Read`] for duplicate names or
/// an unreadable header.
pub fn csv_header(path: &Path) -> Result<Vec<String>, TableError> {
    let format = Format::default().with_header(true);
    let inferred = if Compression::of(path)? == Compression::None {
        scan_csv_bytes(path, true)?;
        format.infer_schema(BufReader::new(open_csv(path)?), Some(0))
    } else {
        // The first line of the decompressed stream.
        let mut first = Vec::new();
        BufReader::new(open_decompressed(path)?)
            .read_until(b'\n', &mut first)
            .map_err(|e| read_error(path, format!("cannot decompress the header line: {e}")))?;
        if first.is_empty() {
            return Err(TableError::EmptyFile {
                path: path.to_path_buf(),
                what: "no header line",
            });
        }
        format.infer_schema(std::io::Cursor::new(first), Some(0))
    };
    let (schema, _) =
        inferred.map_err(|e| read_error(path, clean_arrow_message(&e.to_string())))?;
    let duplicates = duplicate_names(&schema);
    if !duplicates.is_empty() {
        return Err(read_error(
            path,
            format!("duplicate column names: {}", duplicates.join(", ")),
        ));
    }
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

pub(super) fn duplicate_names(schema: &Schema) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().clone()) {
            dups.insert(f.name().clone());
        }
    }
    dups.into_iter().collect()
}
