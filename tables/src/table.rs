//! Reading prediction logs (CSV or Parquet) into Arrow record batches, with errors that name the
//! file, the line and the column.
//!
//! CSV types are inferred over the whole file by arrow's CSV reader (so a single stray string makes
//! a column text, which the profile then reports against the line that holds it), except for
//! columns the caller forces to text: the timestamp column (parsed later with an explicit format,
//! edge case E13) and columns declared categorical (kept as written, `"1.0"` stays `"1.0"`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::TableError;
use crate::source::{Compression, CsvSource, open_decompressed};

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
    /// The columns to read when the caller already knows their types (a current file analysed
    /// against a reference): see [`ColumnSelection`]. `None` reads every column with inferred
    /// types.
    pub select: Option<ColumnSelection>,
}

/// The columns of a file whose types the caller knows, so that a CSV is read in one pass without
/// whole-file type inference (which costs about as much as the parse itself).
///
/// Only these columns are read; names the file lacks are left out of the table (the caller
/// reports them as absent). `numeric` columns are parsed as `Float64`; every other selected
/// column is read as text (`Utf8`). If any value of a `numeric` column does not parse as a
/// number, the file is read again with those columns as text, so that the caller's conversion
/// ([`crate::columns::to_f64`]) names every bad value with its line instead of the read stopping
/// at the first.
///
/// The values are those the inferred read gives: numbers are the same `f64`s (integers widen
/// exactly as arrow's cast does), `text` columns are kept as written, and a `categorical` column
/// holding nothing but `true`/`false` in any case, which inference makes `Boolean` and
/// [`crate::columns::to_text`] renders in lower case, comes out in lower case.
///
/// Parquet files carry their types and are read whole, as without a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnSelection {
    /// Columns parsed as 64-bit floats (numeric features).
    pub numeric: BTreeSet<String>,
    /// Columns read as text and kept as written (declared categorical features, a timestamp).
    pub text: BTreeSet<String>,
    /// Columns read as text with booleans rendered as inference would (categorical features whose
    /// kind came from the reference's inferred types).
    pub categorical: BTreeSet<String>,
}

impl ColumnSelection {
    fn contains(&self, name: &str) -> bool {
        self.numeric.contains(name) || self.text.contains(name) || self.categorical.contains(name)
    }
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

    /// A table read from the CSV file `path` (row `i` on line `i + 2`).
    fn from_csv(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
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
            match read_csv(source.path(), options) {
                Ok(mut table) => {
                    table.path = path.to_path_buf();
                    Ok(table)
                }
                Err(e) => Err(source.rename_error(e)),
            }
        }
        FileFormat::Parquet => read_parquet(path, options),
    }
}

fn open(path: &Path) -> Result<File, TableError> {
    File::open(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens a CSV file positioned at its start.
///
/// # Errors
/// [`TableError::Io`] when it cannot be opened, [`TableError::EmptyFile`] when it holds no
/// byte (not even a header line).
fn open_csv(path: &Path) -> Result<File, TableError> {
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

fn read_error(path: &Path, message: impl std::fmt::Display) -> TableError {
    TableError::Read {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// CSV files at least this large are read in byte ranges in parallel, one per core.
const PARALLEL_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// Longest line a CSV file may have, in bytes (16 MiB). A longer one is an error before any of
/// the file is parsed, so a binary or sparse file given as CSV cannot make the reader buffer it
/// whole. The check runs per 1 MiB block, so a line is refused once it is known to be longer:
/// lines up to 1 MiB beyond the limit may pass.
pub const MAX_CSV_LINE_BYTES: usize = 16 << 20;

/// Checks that `path` looks like text a CSV reader can take in bounded memory: no NUL byte (binary
/// data, or the holes of a sparse file) and no line longer than [`MAX_CSV_LINE_BYTES`]. One
/// sequential pass with `memchr` (several GB/s), in 1 MiB blocks.
///
/// # Errors
/// [`TableError::Read`] naming the byte offset (and the line) of the first problem;
/// [`TableError::Io`] when the file cannot be read.
pub fn check_csv_bytes(path: &Path) -> Result<(), TableError> {
    scan_csv_bytes(path, false)
}

/// [`check_csv_bytes`] over the whole file, or up to the end of its first line (the header).
fn scan_csv_bytes(path: &Path, header_only: bool) -> Result<(), TableError> {
    let mut file = open(path)?;
    let mut block = vec![0u8; 1 << 20];
    let (mut offset, mut line_start, mut line) = (0u64, 0u64, 1u64);
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(TableError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        for i in memchr::memchr2_iter(b'\n', 0, &block[..n]) {
            let at = offset + i as u64;
            if block[i] == 0 {
                return Err(read_error(
                    path,
                    format!(
                        "line {line}: a NUL byte at byte offset {at}: this is binary data (or a sparse file), not CSV text"
                    ),
                ));
            }
            if header_only {
                return Ok(());
            }
            line += 1;
            line_start = at + 1;
        }
        offset += n as u64;
        if offset - line_start > MAX_CSV_LINE_BYTES as u64 {
            return Err(read_error(
                path,
                format!(
                    "line {line}: longer than {MAX_CSV_LINE_BYTES} bytes (it starts at byte offset {line_start}): not a CSV file of prediction logs"
                ),
            ));
        }
    }
    Ok(())
}

fn read_csv(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
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

/// Reads a CSV file in `parts` byte ranges cut at line starts, inferring and parsing each range on
/// its own thread, with the same result as [`read_csv_serial`]: column types are merged by the
/// rules arrow's whole-file inference applies (all-empty takes the other type, integer and float
/// make float, any other disagreement makes text).
///
/// Returns `None` whenever that equality cannot be guaranteed, and the caller reads the file
/// serially: a `"` anywhere in the file (a quoted field may hold a line break, so a cut could fall
/// inside a record), disagreeing date/time types, no data rows, duplicate names, or any read or
/// parse error (the serial read then reports it with its file-wide line number).
fn read_csv_parallel(path: &Path, options: &ReadOptions, parts: usize) -> Option<Table> {
    let ranges = line_ranges(path, parts)?;
    // Pass 1: infer each range's types.
    let inferred: Vec<Option<(Schema, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                scope.spawn(move || {
                    let quoted = AtomicBool::new(false);
                    let mut reader = range_reader(path, r, &quoted)?;
                    let format = Format::default().with_header(i == 0);
                    let (schema, rows) = format
                        .infer_schema(BufReader::new(&mut reader), None)
                        .ok()?;
                    (!quoted.load(Ordering::Relaxed)).then_some((schema, rows))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let inferred: Vec<(Schema, usize)> = inferred.into_iter().collect::<Option<_>>()?;
    let (first, _) = &inferred[0];
    if inferred.iter().map(|(_, rows)| rows).sum::<usize>() == 0
        || !duplicate_names(first).is_empty()
    {
        return None;
    }
    let mut types: Vec<DataType> = first
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    for (schema, _) in &inferred[1..] {
        if schema.fields().len() != types.len() {
            return None;
        }
        for (t, f) in types.iter_mut().zip(schema.fields()) {
            *t = merge_inferred(t, f.data_type())?;
        }
    }
    let merged = Schema::new(
        first
            .fields()
            .iter()
            .zip(types)
            .map(|(f, t)| Field::new(f.name(), t, true))
            .collect::<Vec<_>>(),
    );
    let schema = Arc::new(force_text(&merged, &options.text_columns));

    // Pass 2: parse each range with the merged schema.
    let batches = parse_ranges(path, &ranges, &schema, None).ok()?;
    let num_rows = batches.iter().map(RecordBatch::num_rows).sum();
    Some(Table {
        path: path.to_path_buf(),
        schema,
        batches,
        num_rows,
        has_header_line: true,
    })
}

/// Cuts a CSV file into up to `parts` byte ranges: the first starts at 0 (it holds the header
/// line), every other one at a line start. `None` when the header line has no line end.
fn line_ranges(path: &Path, parts: usize) -> Option<Vec<(u64, u64)>> {
    use std::io::BufRead;
    let len = std::fs::metadata(path).ok()?.len();
    // Cut points: the header line's end, then the first line start at or after each even split.
    let mut file = BufReader::new(File::open(path).ok()?);
    let mut line = Vec::new();
    let header_end = file.read_until(b'\n', &mut line).ok()? as u64;
    if line.last() != Some(&b'\n') {
        return None;
    }
    let mut cuts = vec![0u64];
    for k in 1..parts as u64 {
        let target = header_end + (len - header_end) * k / parts as u64;
        file.seek(SeekFrom::Start(target - 1)).ok()?;
        line.clear();
        // From the byte before `target`: a line start at `target` itself is kept.
        let cut = target - 1 + file.read_until(b'\n', &mut line).ok()? as u64;
        if cut > *cuts.last()? && cut < len {
            cuts.push(cut);
        }
    }
    cuts.push(len);
    Some(cuts.windows(2).map(|w| (w[0], w[1])).collect())
}

/// A reader over the bytes `start..end` of `path` that sets `quoted` when it passes on a `"`.
fn range_reader<'a>(
    path: &Path,
    (start, end): (u64, u64),
    quoted: &'a AtomicBool,
) -> Option<QuoteWatch<'a, std::io::Take<File>>> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    Some(QuoteWatch {
        inner: f.take(end - start),
        quoted,
    })
}

/// Why [`parse_ranges`] gave no batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFailure {
    /// The file holds a `"` (a quoted field may span a cut) or a range could not be opened:
    /// only a serial read can tell.
    Unsplittable,
    /// A range failed to parse (a ragged row, a value of the wrong type).
    Parse,
}

/// Parses each range (from [`line_ranges`]) on its own thread with `schema`, keeping the columns
/// of `projection` (all when `None`).
fn parse_ranges(
    path: &Path,
    ranges: &[(u64, u64)],
    schema: &SchemaRef,
    projection: Option<&[usize]>,
) -> Result<Vec<RecordBatch>, RangeFailure> {
    let parsed: Vec<Result<Vec<RecordBatch>, RangeFailure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                let schema = schema.clone();
                scope.spawn(move || {
                    let quoted = AtomicBool::new(false);
                    let mut builder = ReaderBuilder::new(schema)
                        .with_format(Format::default().with_header(i == 0))
                        .with_batch_size(READ_BATCH_ROWS);
                    if let Some(p) = projection {
                        builder = builder.with_projection(p.to_vec());
                    }
                    let source =
                        range_reader(path, r, &quoted).ok_or(RangeFailure::Unsplittable)?;
                    let batches = builder
                        .build(BufReader::new(source))
                        .map_err(|_| RangeFailure::Parse)?
                        .collect::<Result<Vec<_>, _>>();
                    if quoted.load(Ordering::Relaxed) {
                        return Err(RangeFailure::Unsplittable);
                    }
                    batches.map_err(|_| RangeFailure::Parse)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(RangeFailure::Unsplittable)))
            .collect()
    });
    // A quoted range makes the others' results meaningless (their cuts may split a record).
    if parsed.contains(&Err(RangeFailure::Unsplittable)) {
        return Err(RangeFailure::Unsplittable);
    }
    Ok(parsed
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// Reads the columns of `select` from a CSV without type inference (see [`ColumnSelection`]):
/// in parallel byte ranges when the file is large and has no `"`, else serially; numeric columns
/// as `Float64`, and if a value does not parse, once more with them as text.
fn read_csv_selected(
    path: &Path,
    select: &ColumnSelection,
    parts: usize,
    len: u64,
) -> Result<Table, TableError> {
    let names = csv_header(path)?;
    let mut projection: Vec<usize> = (0..names.len())
        .filter(|&i| select.contains(&names[i]))
        .collect();
    if projection.is_empty() {
        // No selected column is in the file: keep the first (as text) so rows are still counted.
        projection.push(0);
    }
    let schema_with = |numeric_as: &DataType| -> SchemaRef {
        Arc::new(Schema::new(
            names
                .iter()
                .map(|n| {
                    let t = if select.numeric.contains(n) {
                        numeric_as.clone()
                    } else {
                        DataType::Utf8
                    };
                    Field::new(n, t, true)
                })
                .collect::<Vec<_>>(),
        ))
    };
    let projected = |schema: &SchemaRef| -> Result<SchemaRef, TableError> {
        Ok(Arc::new(
            schema
                .project(&projection)
                .map_err(|e| read_error(path, e))?,
        ))
    };
    let serial = |schema: SchemaRef| -> Result<Table, TableError> {
        let reader = ReaderBuilder::new(schema.clone())
            .with_format(Format::default().with_header(true))
            .with_batch_size(READ_BATCH_ROWS)
            .with_projection(projection.clone())
            .build(BufReader::new(open(path)?))
            .map_err(|e| read_error(path, e))?;
        let mut batches = Vec::new();
        for batch in reader {
            batches.push(batch.map_err(|e| read_error(path, clean_arrow_message(&e.to_string())))?);
        }
        Ok(Table::from_csv(path, projected(&schema)?, batches))
    };
    let ranges = (parts > 1 && len >= PARALLEL_MIN_BYTES)
        .then(|| line_ranges(path, parts))
        .flatten();
    // Numeric columns as numbers: in ranges, or serially where ranges cannot be used.
    let typed = schema_with(&DataType::Float64);
    let first = match &ranges {
        Some(r) => match parse_ranges(path, r, &typed, Some(&projection)) {
            Ok(batches) => Ok(Table::from_csv(path, projected(&typed)?, batches)),
            Err(RangeFailure::Unsplittable) => serial(typed),
            Err(RangeFailure::Parse) => Err(read_error(path, "a range failed to parse")),
        },
        None => serial(typed),
    };
    // Any failure: numeric columns as text, so every bad value is named by the caller (or the
    // serial read names the line of a malformed row).
    let table = match first {
        Ok(table) => table,
        Err(_)
            if projection
                .iter()
                .any(|&i| select.numeric.contains(&names[i])) =>
        {
            let text = schema_with(&DataType::Utf8);
            match ranges
                .as_ref()
                .map(|r| parse_ranges(path, r, &text, Some(&projection)))
            {
                Some(Ok(batches)) => Table::from_csv(path, projected(&text)?, batches),
                _ => serial(text)?,
            }
        }
        Err(e) => return Err(e),
    };
    if table.num_rows == 0 {
        return Err(TableError::EmptyFile {
            path: path.to_path_buf(),
            what: "a header but no rows",
        });
    }
    booleans_as_inferred(table, &select.categorical)
}

/// Lower-cases every text column of `columns` whose values are all `true`/`false` in any case,
/// as arrow's inference (a `Boolean` column, rendered `true`/`false`) would have given them.
fn booleans_as_inferred(mut table: Table, columns: &BTreeSet<String>) -> Result<Table, TableError> {
    use arrow::array::{AsArray, StringArray};
    let is_bool = |v: &str| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
    for name in columns {
        let Some(chunks) = table.column(name) else {
            continue;
        };
        let Some(texts) = chunks
            .iter()
            .map(|a| a.as_string_opt::<i32>())
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let values = || texts.iter().flat_map(|t| t.iter().flatten());
        if values().next().is_none()
            || !values().all(is_bool)
            || values().all(|v| v == "true" || v == "false")
        {
            continue;
        }
        let lowered: Vec<ArrayRef> = texts
            .iter()
            .map(|t| {
                Arc::new(
                    t.iter()
                        .map(|v| v.map(str::to_ascii_lowercase))
                        .collect::<StringArray>(),
                ) as ArrayRef
            })
            .collect();
        let idx = table
            .schema
            .index_of(name)
            .map_err(|e| read_error(&table.path, e))?;
        for (batch, column) in table.batches.iter_mut().zip(lowered) {
            let mut columns = batch.columns().to_vec();
            columns[idx] = column;
            *batch = RecordBatch::try_new(batch.schema(), columns)
                .map_err(|e| read_error(&table.path, e))?;
        }
    }
    Ok(table)
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

/// The column names of a prediction log, without reading its rows: the header line of a CSV, the
/// schema of a Parquet file.
///
/// # Errors
/// As [`read_table`] for a file it cannot open or whose header or metadata it cannot read.
pub fn column_names(path: &Path) -> Result<Vec<String>, TableError> {
    match FileFormat::from_path(path) {
        FileFormat::Csv => csv_header(path),
        FileFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(open(path)?)
                .map_err(|e| read_error(path, e))?;
            Ok(builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect())
        }
    }
}

/// The type whole-file inference gives a column inferred as `a` in one part and `b` in another;
/// `None` where the parts cannot decide it (date/time types that differ).
fn merge_inferred(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::{Boolean, Float64, Int64, Null, Utf8};
    Some(match (a, b) {
        _ if a == b => a.clone(),
        (Null, t) | (t, Null) => t.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Boolean | Int64 | Float64 | Utf8, Boolean | Int64 | Float64 | Utf8) => Utf8,
        _ => return None,
    })
}

/// A reader that notes whether any byte it passed on was a `"`.
struct QuoteWatch<'a, R> {
    inner: R,
    quoted: &'a AtomicBool,
}

impl<R: Read> Read for QuoteWatch<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if buf[..n].contains(&b'"') {
            self.quoted.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Reads a CSV file in one pass of whole-file type inference and one of parsing.
fn read_csv_serial(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
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

/// Parquet files of at least this many rows are decoded in column groups, one thread per core.
const PARQUET_PARALLEL_MIN_ROWS: i64 = 256 * 1024;

fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(|e| read_error(path, e))?;
    let file_schema = builder.schema().clone();
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get().min(8))
        .min(file_schema.fields().len());
    let rows = builder.metadata().file_metadata().num_rows();
    let raw = if parts > 1 && rows >= PARQUET_PARALLEL_MIN_ROWS {
        read_parquet_columns(path, parts)?
    } else {
        builder
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| read_error(path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_error(path, e))?
    };
    let schema = Arc::new(force_text(&file_schema, &options.text_columns));
    let mut batches = Vec::with_capacity(raw.len());
    for batch in raw {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(col, field)| {
                if col.data_type() == field.data_type() {
                    Ok(col.clone())
                } else {
                    arrow::compute::cast(col, field.data_type())
                        .map_err(|e| read_error(path, format!("column `{}`: {e}", field.name())))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        batches
            .push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| read_error(path, e))?);
    }
    let num_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if num_rows == 0 {
        return Err(TableError::EmptyFile {
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

/// Decodes a Parquet file's top-level columns in `parts` contiguous groups, each on its own
/// thread with its own reader, and joins the groups' batches side by side. Every group reads the
/// same row groups with the same batch size, so batch `k` of each group holds the same rows; the
/// join checks the batch counts, and each joined batch its row counts.
fn read_parquet_columns(path: &Path, parts: usize) -> Result<Vec<RecordBatch>, TableError> {
    use parquet::arrow::ProjectionMask;
    let read_group = |group: usize| -> Result<(SchemaRef, Vec<RecordBatch>), TableError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(open(path)?)
            .map_err(|e| read_error(path, e))?;
        let columns = builder.schema().fields().len();
        let roots = (columns * group / parts)..(columns * (group + 1) / parts);
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| read_error(path, e))?;
        let schema = arrow::array::RecordBatchReader::schema(&reader);
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_error(path, e))?;
        Ok((schema, batches))
    };
    let groups: Vec<Result<(SchemaRef, Vec<RecordBatch>), TableError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..parts)
                .map(|g| scope.spawn(move || read_group(g)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(read_error(path, "a reading thread panicked")))
                })
                .collect()
        });
    let groups = groups.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The groups' fields in file order (not merged by name: a file may repeat a name).
    let schema = Arc::new(Schema::new(
        groups
            .iter()
            .flat_map(|(s, _)| s.fields().iter().cloned())
            .collect::<Vec<_>>(),
    ));
    let count = groups[0].1.len();
    if groups.iter().any(|(_, b)| b.len() != count) {
        return Err(read_error(
            path,
            "column groups decoded to different batch counts",
        ));
    }
    (0..count)
        .map(|k| {
            let columns: Vec<ArrayRef> = groups
                .iter()
                .flat_map(|(_, b)| b[k].columns().iter().cloned())
                .collect();
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| read_error(path, e))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::compute::concat_batches;

    /// Row `i`'s `a` (integers for `i < 200`, then floats) and `b` (empty for `i < 150`, then
    /// integers): columns whose types only a read of the whole file settles.
    fn integers_then_floats_and_empty_then_integers(i: usize) -> (String, String) {
        let a = if i < 200 {
            format!("{i}")
        } else {
            format!("{i}.5")
        };
        let b = if i < 150 {
            String::new()
        } else {
            format!("{}", i * 2)
        };
        (a, b)
    }

    /// 300 data rows whose column types only whole-file inference settles: `a` integers then
    /// floats, `b` empty then integers, `c` booleans then text, `d` integers forced to text.
    fn mixed_csv() -> String {
        let mut s = String::from("a,b,c,d\n");
        for i in 0..300 {
            let (a, b) = integers_then_floats_and_empty_then_integers(i);
            let c = if i < 250 {
                "true".to_string()
            } else {
                format!("x{i}")
            };
            s.push_str(&format!("{a},{b},{c},{i}\n"));
        }
        s
    }

    /// Issue 19, finding 6: `analyze` on a 5 GB sparse file named `.csv` grew to 6 GB with no
    /// error. A NUL byte or an over-long line is now an error naming the file and byte offset,
    /// found in one bounded pass before parsing.
    #[test]
    fn sparse_binary_and_one_line_files_are_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("sparse.csv");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(1 << 32)
            .unwrap();
        for err in [
            read_table(&sparse, &options()).unwrap_err().to_string(),
            column_names(&sparse).unwrap_err().to_string(),
        ] {
            assert!(err.contains(&sparse.display().to_string()), "{err}");
            assert!(err.contains("line 1: a NUL byte at byte offset 0"), "{err}");
        }

        let binary = dir.path().join("binary.csv");
        std::fs::write(&binary, b"a,b\n1,2\n3,\x004\n").unwrap();
        let err = read_table(&binary, &options()).unwrap_err().to_string();
        assert!(
            err.contains("line 3: a NUL byte at byte offset 10"),
            "{err}"
        );

        let long = dir.path().join("long.csv");
        let mut text = b"a,b\n1,2\n".to_vec();
        text.resize(text.len() + MAX_CSV_LINE_BYTES + 2, b'7');
        std::fs::write(&long, &text).unwrap();
        let err = read_table(&long, &options()).unwrap_err().to_string();
        assert!(
            err.contains("line 3: longer than 16777216 bytes (it starts at byte offset 8)"),
            "{err}"
        );
    }

    fn write(content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn options() -> ReadOptions {
        ReadOptions {
            text_columns: BTreeSet::from(["d".to_string()]),
            select: None,
        }
    }

    #[test]
    fn parallel_ranges_read_exactly_what_the_serial_read_does() {
        let (_dir, path) = write(&mixed_csv());
        let serial = read_csv_serial(&path, &options()).unwrap();
        let parallel = read_csv_parallel(&path, &options(), 3).expect("read in ranges");
        assert_eq!(parallel.batches.len(), 3, "one batch per range");
        assert_eq!(parallel.schema, serial.schema);
        let types: Vec<DataType> = serial
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Float64,
                DataType::Int64,
                DataType::Utf8,
                DataType::Utf8
            ]
        );
        assert_eq!(parallel.num_rows, 300);
        assert_eq!(
            concat_batches(&parallel.schema, &parallel.batches).unwrap(),
            concat_batches(&serial.schema, &serial.batches).unwrap()
        );
    }

    #[test]
    fn quoted_fields_and_bad_rows_fall_back_to_the_serial_read() {
        let quoted = mixed_csv().replace("x299", "\"x\n299\"");
        let (_dir, path) = write(&quoted);
        assert!(read_csv_parallel(&path, &options(), 3).is_none());
        assert_eq!(read_csv_serial(&path, &options()).unwrap().num_rows, 300);

        // A ragged row in the last range: the serial read names its file-wide line (302).
        let ragged = format!("{}1,2,3,4,5\n", mixed_csv());
        let (_dir, path) = write(&ragged);
        assert!(read_csv_parallel(&path, &options(), 3).is_none());
        let err = read_csv(&path, &options()).unwrap_err().to_string();
        assert!(err.contains("line 302"), "{err}");
    }

    /// 300 rows: `a` integers then floats, `b` empty then integers, `c` booleans in mixed case,
    /// `d` text, `e` a column nobody selects, `f` booleans mixed with other text.
    fn selected_csv() -> String {
        let mut s = String::from("a,b,c,d,e,f\n");
        for i in 0..300 {
            let (a, b) = integers_then_floats_and_empty_then_integers(i);
            let c = ["True", "false", "TRUE"][i % 3];
            let f = ["True", "maybe"][i % 2];
            s.push_str(&format!("{a},{b},{c},0{i},x{i},{f}\n"));
        }
        s
    }

    fn selection() -> ColumnSelection {
        ColumnSelection {
            numeric: BTreeSet::from(["a".to_string(), "b".to_string()]),
            text: BTreeSet::from(["d".to_string()]),
            categorical: BTreeSet::from(["c".to_string(), "f".to_string(), "zz".to_string()]),
        }
    }

    fn strings(table: &Table, name: &str) -> Vec<Option<String>> {
        table
            .column(name)
            .unwrap()
            .iter()
            .flat_map(|a| {
                crate::columns::to_text(a)
                    .unwrap()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn floats(table: &Table, name: &str) -> Vec<Option<f64>> {
        table
            .column(name)
            .unwrap()
            .iter()
            .flat_map(|a| {
                crate::columns::to_f64(a)
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn selected_columns_give_the_inferred_reads_values_in_ranges_and_serially() {
        let (_dir, path) = write(&selected_csv());
        let inferred = read_csv_serial(&path, &ReadOptions::default()).unwrap();
        assert_eq!(
            inferred.schema.field_with_name("c").unwrap().data_type(),
            &DataType::Boolean
        );
        // parts 3 with a length at the threshold reads in ranges; parts 1 serially.
        for parts in [3, 1] {
            let t = read_csv_selected(&path, &selection(), parts, PARALLEL_MIN_BYTES).unwrap();
            assert_eq!(t.num_rows, 300, "parts {parts}");
            assert_eq!(t.column_names(), ["a", "b", "c", "d", "f"], "parts {parts}");
            assert_eq!(
                t.schema.field_with_name("a").unwrap().data_type(),
                &DataType::Float64
            );
            assert_eq!(floats(&t, "a"), floats(&inferred, "a"), "parts {parts}");
            assert_eq!(floats(&t, "b"), floats(&inferred, "b"), "parts {parts}");
            assert_eq!(floats(&t, "b").iter().flatten().count(), 150);
            // Booleans as the inferred read renders them; mixed text and declared text as written.
            assert_eq!(strings(&t, "c"), strings(&inferred, "c"), "parts {parts}");
            assert_eq!(
                strings(&t, "c")[..3],
                [
                    Some("true".into()),
                    Some("false".into()),
                    Some("true".into())
                ]
            );
            assert_eq!(
                strings(&t, "f")[..2],
                [Some("True".into()), Some("maybe".into())]
            );
            assert_eq!(strings(&t, "d")[7], Some("07".into()));
        }
    }

    #[test]
    fn a_bad_number_is_left_as_text_for_the_caller_to_name_with_its_line() {
        let csv = selected_csv()
            .replace("\n149,", "\nabc,")
            .replace(",402,", ",4o2,");
        let (_dir, path) = write(&csv);
        for parts in [3, 1] {
            let t = read_csv_selected(&path, &selection(), parts, PARALLEL_MIN_BYTES).unwrap();
            assert_eq!(t.num_rows, 300);
            for (column, row, value) in [("a", 149, "abc"), ("b", 201, "4o2")] {
                assert_eq!(
                    t.schema.field_with_name(column).unwrap().data_type(),
                    &DataType::Utf8
                );
                let arrays = t.column(column).unwrap();
                let all =
                    arrow::compute::concat(&arrays.iter().map(|a| a.as_ref()).collect::<Vec<_>>())
                        .unwrap();
                let bad = crate::columns::to_f64(&all).unwrap_err();
                assert_eq!((bad.index, bad.value.as_str()), (row, value));
                assert_eq!(t.locate(bad.index), format!("line {}", row + 2));
            }
        }
    }

    #[test]
    fn selected_read_names_the_line_of_a_ragged_row_and_counts_rows_without_selected_columns() {
        let ragged = format!("{}1,2,3,4,5,6,7\n", selected_csv());
        let (_dir, path) = write(&ragged);
        for parts in [3, 1] {
            let err = read_csv_selected(&path, &selection(), parts, PARALLEL_MIN_BYTES)
                .unwrap_err()
                .to_string();
            assert!(err.contains("line 302"), "{err}");
        }
        let (_dir, path) = write(&selected_csv());
        let none = ColumnSelection {
            numeric: BTreeSet::from(["nope".to_string()]),
            ..ColumnSelection::default()
        };
        let t = read_csv_selected(&path, &none, 1, 0).unwrap();
        assert_eq!((t.num_rows, t.has_column("nope")), (300, false));
        assert_eq!(column_names(&path).unwrap(), ["a", "b", "c", "d", "e", "f"]);
    }

    /// A Parquet file of `rows` rows in row groups of 40,000: an integer, a float with nulls, text
    /// with nulls, a bool and a dictionary-encoded text column.
    fn write_parquet(rows: usize) -> (tempfile::TempDir, PathBuf) {
        use arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray};
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.parquet");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i as i64))),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| (i % 7 != 0).then_some(i as f64 * 0.5)),
            )),
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 5 != 0).then(|| format!("t{i}"))),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 3 == 0)))),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| ["A", "B", "C"][i % 3]),
            )),
        ];
        let batch =
            RecordBatch::try_from_iter(["i", "x", "t", "b", "c"].into_iter().zip(columns)).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(40_000))
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(props))
                .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        (dir, path)
    }

    #[test]
    fn parquet_column_groups_join_to_the_serial_read() {
        use arrow::compute::concat_batches;
        let rows = 150_000;
        let (_dir, path) = write_parquet(rows);
        let serial: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(open(&path).unwrap())
                .unwrap()
                .with_batch_size(READ_BATCH_ROWS)
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let schema = serial[0].schema();
        let whole = concat_batches(&schema, &serial).unwrap();
        for parts in [2, 3, 5] {
            let grouped = read_parquet_columns(&path, parts).unwrap();
            assert_eq!(grouped.len(), serial.len(), "parts {parts}");
            let joined = concat_batches(&grouped[0].schema(), &grouped).unwrap();
            assert_eq!(joined.num_rows(), rows, "parts {parts}");
            assert_eq!(joined.columns(), whole.columns(), "parts {parts}");
            assert_eq!(joined.schema().fields(), schema.fields(), "parts {parts}");
        }
        // Large enough for read_table to take the column groups.
        assert!(rows as i64 <= PARQUET_PARALLEL_MIN_ROWS);
        let (_dir, path) = write_parquet(PARQUET_PARALLEL_MIN_ROWS as usize + 1);
        let table = read_table(&path, &ReadOptions::default()).unwrap();
        assert_eq!(table.num_rows, PARQUET_PARALLEL_MIN_ROWS as usize + 1);
        assert_eq!(table.column_names(), ["i", "x", "t", "b", "c"]);
        let x = floats(&table, "x");
        assert_eq!((x[7], x[8]), (None, Some(4.0)));
        assert_eq!(strings(&table, "t")[5..7], [None, Some("t6".to_string())]);
    }

    #[test]
    fn merged_types_follow_whole_file_inference() {
        use DataType::*;
        assert_eq!(merge_inferred(&Null, &Int64), Some(Int64));
        assert_eq!(merge_inferred(&Int64, &Float64), Some(Float64));
        assert_eq!(merge_inferred(&Boolean, &Int64), Some(Utf8));
        assert_eq!(merge_inferred(&Utf8, &Float64), Some(Utf8));
        assert_eq!(
            merge_inferred(
                &Date32,
                &Timestamp(arrow::datatypes::TimeUnit::Second, None)
            ),
            None
        );
    }
}
