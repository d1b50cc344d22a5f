//! Reading prediction logs (CSV or Parquet) into Arrow record batches, with errors that name the
//! file, the line and the column.
//!
//! CSV types are inferred over the whole file by arrow's CSV reader (so a single stray string makes
//! a column text, which the profile then reports against the line that holds it), except for
//! columns the caller forces to text: the timestamp column (parsed later with an explicit format,
//! edge case E13) and columns declared categorical (kept as written, `"1.0"` stays `"1.0"`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::AnalyzerError;

/// Rows per record batch when reading files.
pub const READ_BATCH_ROWS: usize = 64 * 1024;

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

/// Options for [`read_table`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Columns read as text whatever their content looks like.
    pub text_columns: BTreeSet<String>,
}

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
/// [`AnalyzerError::Io`] when the file cannot be opened, [`AnalyzerError::EmptyFile`] when it has
/// no header or no rows, [`AnalyzerError::Read`] for malformed content (a ragged CSV row names its
/// line).
pub fn read_table(path: &Path, options: &ReadOptions) -> Result<Table, AnalyzerError> {
    match FileFormat::from_path(path) {
        FileFormat::Csv => read_csv(path, options),
        FileFormat::Parquet => read_parquet(path, options),
    }
}

fn open(path: &Path) -> Result<File, AnalyzerError> {
    File::open(path).map_err(|source| AnalyzerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_error(path: &Path, message: impl std::fmt::Display) -> AnalyzerError {
    AnalyzerError::Read {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn read_csv(path: &Path, options: &ReadOptions) -> Result<Table, AnalyzerError> {
    let mut file = open(path)?;
    let mut first = [0u8; 1];
    if file.read(&mut first).map_err(|e| read_error(path, e))? == 0 {
        return Err(AnalyzerError::EmptyFile {
            path: path.to_path_buf(),
            what: "no header line",
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| read_error(path, e))?;
    let format = Format::default().with_header(true);
    let (inferred, rows) = format
        .infer_schema(BufReader::new(&mut file), None)
        .map_err(|e| read_error(path, clean_arrow_message(&e.to_string())))?;
    if rows == 0 {
        return Err(AnalyzerError::EmptyFile {
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

fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Table, AnalyzerError> {
    let file = open(path)?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| read_error(path, e))?;
    let reader = builder
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| read_error(path, e))?;
    let file_schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
    let schema = Arc::new(force_text(&file_schema, &options.text_columns));
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| read_error(path, e))?;
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(col, field)| {
                if col.data_type() == field.data_type() {
                    Ok(col.clone())
                } else {
                    datafusion::arrow::compute::cast(col, field.data_type())
                        .map_err(|e| read_error(path, format!("column `{}`: {e}", field.name())))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        batches
            .push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| read_error(path, e))?);
    }
    let num_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if num_rows == 0 {
        return Err(AnalyzerError::EmptyFile {
            path: path.to_path_buf(),
            what: "no rows",
        });
    }
    Ok(Table {
        path: path.to_path_buf(),
        schema,
        batches,
        num_rows,
        has_header_line: false,
    })
}

fn force_text(schema: &Schema, text_columns: &BTreeSet<String>) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if text_columns.contains(f.name()) && f.data_type() != &DataType::Utf8 {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Schema::new(fields)
}

fn duplicate_names(schema: &Schema) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().clone()) {
            dups.insert(f.name().clone());
        }
    }
    dups.into_iter().collect()
}

/// Drops arrow's "Csv error: " / "CSV error: " prefixes; the caller adds the file name.
fn clean_arrow_message(message: &str) -> String {
    let m = message.trim();
    for prefix in ["Csv error: ", "CSV error: ", "Parser error: "] {
        if let Some(rest) = m.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    m.to_string()
}
