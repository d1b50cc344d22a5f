//! What a read is asked for: [`ReadOptions`] (columns forced to text, an optional
//! [`ColumnSelection`] of columns whose types the caller knows) and `force_text`, which applies
//! the text columns to a schema.

use std::collections::BTreeSet;

use arrow::datatypes::{DataType, Field, Schema};

/// Options for [`read_table`].
///
/// [`read_table`]: super::read_table
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
    pub(super) fn contains(&self, name: &str) -> bool {
        self.numeric.contains(name) || self.text.contains(name) || self.categorical.contains(name)
    }
}

pub(super) fn force_text(schema: &Schema, text_columns: &BTreeSet<String>) -> Schema {
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
