//! The CSV reader: `read_csv` checks the file's lines and picks a reader (the selected columns,
//! byte ranges in parallel for a large file, else serial), and `read_csv_serial` reads a file in
//! one pass of whole-file type inference and one of parsing.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;

use super::header::{duplicate_names, open_csv};
use super::io::{clean_arrow_message, read_error};
use super::lines::check_csv_bytes;
use super::options::{ReadOptions, force_text};
use super::ranges::{PARALLEL_MIN_BYTES, read_csv_parallel};
use super::selected::read_csv_selected;
use super::{READ_BATCH_ROWS, Table};
use crate::error::TableError;

pub(super) fn read_csv(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
    check_csv_bytes(path)?;
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if let Some(select) = &options.select {
        return read_csv_selected(path, select, parts, len);
    }
    if parts > 1
        && len >= PARALLEL_MIN_BYTES
        && let Some(table) = read_csv_parallel(path, options, parts)
    {
        return Ok(table);
    }
    read_csv_serial(path, options)
}

/// Reads a CSV file in one pass of whole-file type inference and one of parsing.
pub(super) fn read_csv_serial(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
    let mut file = open_csv(path)?;
    let format = Format::default().with_header(true);
    let (inferred, rows) = format
        .infer_schema(BufReader::new(&mut file), None)
        .map_err(|e| read_error(path, clean_arrow_message(&e.to_string())))?;
    if rows == 0 {
        return Err(TableError::EmptyFile {
            path: path.to_path_buf(),
            what: "a header but no rows",
        });
    }
    let duplicates = duplicate_names(&inferred);
    if !duplicates.is_empty() {
        return Err(read_error(
            path,
            format!("duplicate column names: {}", duplicates.join(", ")),
        ));
    }
    let schema = Arc::new(force_text(&inferred, &options.text_columns));
    file.seek(SeekFrom::Start(0))
        .map_err(|e| read_error(path, e))?;
    let reader = ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(READ_BATCH_ROWS)
        .build(BufReader::new(file))
        .map_err(|e| read_error(path, e))?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch.map_err(|e| read_error(path, clean_arrow_message(&e.to_string())))?);
    }
    let num_rows = batches.iter().map(RecordBatch::num_rows).sum();
    Ok(Table {
        path: path.to_path_buf(),
        schema,
        batches,
        num_rows,
        has_header_line: true,
    })
}
