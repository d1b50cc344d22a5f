//! The Parquet reader: a file read whole with its own types (text columns cast to text), its
//! top-level columns decoded in groups on several threads when it is large, and the column names
//! of its schema without reading its rows.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::io::{open, read_error};
use super::options::{ReadOptions, force_text};
use super::{READ_BATCH_ROWS, Table};
use crate::error::TableError;

/// Parquet files of at least this many rows are decoded in column groups, one thread per core.
const PARQUET_PARALLEL_MIN_ROWS: i64 = 256 * 1024;

/// The column names of a Parquet file, from its schema (for [`column_names`]).
///
/// [`column_names`]: super::column_names
pub(super) fn column_names(path: &Path) -> Result<Vec<String>, TableError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(open(path)?).map_err(|e| read_error(path, e))?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

pub(super) fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
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

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::PathBuf;

    use super::super::fixtures::{floats, strings};
    use super::super::read_table;
    use super::*;

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
}
