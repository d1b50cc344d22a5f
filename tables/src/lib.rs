//! Prediction-log files to Arrow: the CSV and Parquet readers of `driftwatch analyze`, `profile`
//! and `replay`, the conversions of Arrow columns into drift inputs, and timestamp parsing.
//!
//! - [`table`]: [`read_table`] reads a CSV (split into byte ranges, one per core) or Parquet file
//!   (in column groups) into one [`Table`], naming the file and line of every bad value.
//! - [`columns`]: Arrow columns as `f64` values or text categories, and the kind a column gets
//!   when nothing is declared.
//! - [`source`]: compressed CSV (gzip, zstd) and the blank lines of one-column files.
//! - [`time`]: timestamp formats of prediction logs (RFC 3339, epoch seconds or milliseconds).
//!
//! The key design decision is that this crate needs arrow and parquet only, not DataFusion, so
//! that the collector can replay files without compiling the query engine; the analyzer builds
//! its statistics on top of it.

#![warn(missing_docs)]

pub mod columns;
pub mod error;
pub mod source;
pub mod table;
pub mod time;

pub use error::TableError;
pub use table::{ReadOptions, Table, read_table};
