//! The parallel CSV reader: a large file is cut into byte ranges at line starts, each inferred
//! and parsed on its own thread, with the result of the serial read (or `None`, and the caller
//! reads serially, whenever that cannot be guaranteed). `line_ranges` and `parse_ranges` also
//! serve the reader of selected columns.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::RecordBatch;
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::header::duplicate_names;
use super::options::{ReadOptions, force_text};
use super::{READ_BATCH_ROWS, Table};

/// CSV files at least this large are read in byte ranges in parallel, one per core.
pub(super) const PARALLEL_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a CSV file in `parts` byte ranges cut at line starts, inferring and parsing each range on
/// its own thread, with the same result as [`read_csv_serial`]: column types are merged by the
/// rules arrow's whole-file inference applies (all-empty takes the other type, integer and float
/// make float, any other disagreement makes text).
///
/// Returns `None` whenever that equality cannot be guaranteed, and the caller reads the file
/// serially: a `"` anywhere in the file (a quoted field may hold a line break, so a cut could fall
/// inside a record), disagreeing date/time types, no data rows, duplicate names, or any read or
/// parse error (the serial read then reports it with its file-wide line number).
///
/// [`read_csv_serial`]: super::csv::read_csv_serial
pub(super) fn read_csv_parallel(path: &Path, options: &ReadOptions, parts: usize) -> Option<Table> {
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
pub(super) fn line_ranges(path: &Path, parts: usize) -> Option<Vec<(u64, u64)>> {
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
pub(super) enum RangeFailure {
    /// The file holds a `"` (a quoted field may span a cut) or a range could not be opened:
    /// only a serial read can tell.
    Unsplittable,
    /// A range failed to parse (a ragged row, a value of the wrong type).
    Parse,
}

/// Parses each range (from [`line_ranges`]) on its own thread with `schema`, keeping the columns
/// of `projection` (all when `None`).
pub(super) fn parse_ranges(
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

#[cfg(test)]
mod tests {
    use super::super::csv::{read_csv, read_csv_serial};
    use super::super::fixtures::{integers_then_floats_and_empty_then_integers, options, write};
    use super::*;
    use arrow::compute::concat_batches;

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
