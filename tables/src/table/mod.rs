//! Reading prediction logs (CSV or Parquet) into Arrow record batches, with errors that name the
//! file, the line and the column.
//!
//! CSV types are inferred over the whole file by arrow's CSV reader (so a single stray string makes
//! a column text, which the profile then reports against the line that holds it), except for
//! columns the caller forces to text: the timestamp column (parsed later with an explicit format,
//! edge case E13) and columns declared categorical (kept as written, `"1.0"` stays `"1.0"`).
//!
//! # Layout
//!
//! This module owns [`Table`] and the entry points ([`read_table`], [`column_names`]), which pick
//! a reader by [`FileFormat`], and re-exports the public items of its parts, whose dependencies
//! point one way (`io` <- `lines` <- `header` <- `ranges` <- `selected` <- `csv`; `options` <-
//! `ranges`, `selected`, `csv` and `parquet_reader`; `format` depends on none of them):
//!
//! - `format`: [`FileFormat`], the format of a file by its extension;
//! - `options`: [`ReadOptions`], [`ColumnSelection`] and the text columns forced on a schema;
//! - `io`: opening a file and the [`TableError`]s that name it;
//! - `lines`: [`check_csv_bytes`], the bounded pass refusing NUL bytes and over-long lines;
//! - `header`: [`csv_header`], the column names of a CSV's header line;
//! - `csv`: the CSV reader, whole-file inference then parsing, and its choice of reader;
//! - `ranges`: the parallel CSV reader over byte ranges cut at line starts;
//! - `selected`: the CSV reader of a [`ColumnSelection`], without type inference;
//! - `parquet_reader`: the Parquet reader, in column groups for large files (not `parquet`, which
//!   would shadow the crate of that name).
//!
//! [`TableError`]: crate::error::TableError

mod csv;
#[cfg(test)]
mod fixtures;
mod format;
mod header;
mod io;
mod lines;
mod options;
mod parquet_reader;
mod ranges;
mod selected;

use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;

use crate::error::TableError;
use crate::source::CsvSource;

pub use format::FileFormat;
pub use header::csv_header;
pub use lines::{MAX_CSV_LINE_BYTES, check_csv_bytes};
pub use options::{ColumnSelection, ReadOptions};

/// Rows per record batch when reading files.
pub const READ_BATCH_ROWS: usize = 64 * 1024;

/// A whole file in memory as Arrow record batches.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its schema (after forcing text columns).
    pub schema: SchemaRef,
    /// The rows, in file order.
    pub batches: Vec<RecordBatch>,
    /// Total number of rows.
    pub num_rows: usize,
    /// Whether row `i` is on line `i + 2` of the file (CSV with a header line).
    pub has_header_line: bool,
}

impl Table {
    /// Builds a table from batches already in memory (tests, other sources).
    pub fn from_batches(
        path: impl Into<PathBuf>,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Self {
        let num_rows = batches.iter().map(RecordBatch::num_rows).sum();
        Self {
            path: path.into(),
            schema,
            batches,
            num_rows,
            has_header_line: false,
        }
    }

    /// A table read from the CSV file `path` (row `i` on line `i + 2`).
    pub(super) fn from_csv(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let num_rows = batches.iter().map(RecordBatch::num_rows).sum();
        Self {
            path: path.to_path_buf(),
            schema,
            batches,
            num_rows,
            has_header_line: true,
        }
    }

    /// Column names in file order.
    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Whether the table has a column called `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.schema.index_of(name).is_ok()
    }

    /// Human description of where row `row` (0-based) is: `line N` for CSV, `row N` otherwise.
    pub fn locate(&self, row: usize) -> String {
        if self.has_header_line {
            format!("line {}", row + 2)
        } else {
            format!("row {}", row + 1)
        }
    }

    /// The chunks of column `name` across all batches, in order.
    pub fn column(&self, name: &str) -> Option<Vec<ArrayRef>> {
        let idx = self.schema.index_of(name).ok()?;
        Some(self.batches.iter().map(|b| b.column(idx).clone()).collect())
    }
}

/// Reads a CSV or Parquet file (by extension) fully into memory.
///
/// # Errors
/// [`TableError::Io`] when the file cannot be opened, [`TableError::EmptyFile`] when it has
/// no header or no rows, [`TableError::Read`] for malformed content (a ragged CSV row names its
/// line).
pub fn read_table(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
    match FileFormat::from_path(path) {
        FileFormat::Csv => {
            // Compressed, or one column with blank lines: read a prepared copy, named as the
            // user's file.
            let source = CsvSource::prepare(path)?;
            match csv::read_csv(source.path(), options) {
                Ok(mut table) => {
                    table.path = path.to_path_buf();
                    Ok(table)
                }
                Err(e) => Err(source.rename_error(e)),
            }
        }
        FileFormat::Parquet => parquet_reader::read_parquet(path, options),
    }
}

/// The column names of a prediction log, without reading its rows: the header line of a CSV, the
/// schema of a Parquet file.
///
/// # Errors
/// As [`read_table`] for a file it cannot open or whose header or metadata it cannot read.
pub fn column_names(path: &Path) -> Result<Vec<String>, TableError> {
    match FileFormat::from_path(path) {
        FileFormat::Csv => csv_header(path),
        FileFormat::Parquet => parquet_reader::column_names(path),
    }
}
