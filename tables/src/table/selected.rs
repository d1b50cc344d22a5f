//! The CSV reader of a [`ColumnSelection`]: only the selected columns, with the types the caller
//! knows instead of whole-file inference, in byte ranges or serially, numeric columns read again
//! as text when a value does not parse, and booleans of categorical columns rendered as inference
//! would.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::header::csv_header;
use super::io::{clean_arrow_message, open, read_error};
use super::options::ColumnSelection;
use super::ranges::{PARALLEL_MIN_BYTES, RangeFailure, line_ranges, parse_ranges};
use super::{READ_BATCH_ROWS, Table};
use crate::error::TableError;

/// Reads the columns of `select` from a CSV without type inference (see [`ColumnSelection`]):
/// in parallel byte ranges when the file is large and has no `"`, else serially; numeric columns
/// as `Float64`, and if a value does not parse, once more with them as text.
pub(super) fn read_csv_selected(
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

#[cfg(test)]
mod tests {
    use super::super::csv::read_csv_serial;
    use super::super::fixtures::{
        floats, integers_then_floats_and_empty_then_integers, strings, write,
    };
    use super::super::{ReadOptions, column_names};
    use super::*;

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
}
