//! Test fixtures shared by the readers' unit tests: CSV files written to a temporary directory,
//! the read options they use, and a column's values as text or numbers.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{ReadOptions, Table};

/// Row `i`'s `a` (integers for `i < 200`, then floats) and `b` (empty for `i < 150`, then
/// integers): columns whose types only a read of the whole file settles.
pub(super) fn integers_then_floats_and_empty_then_integers(i: usize) -> (String, String) {
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

pub(super) fn write(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

pub(super) fn options() -> ReadOptions {
    ReadOptions {
        text_columns: BTreeSet::from(["d".to_string()]),
        select: None,
    }
}

pub(super) fn strings(table: &Table, name: &str) -> Vec<Option<String>> {
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

pub(super) fn floats(table: &Table, name: &str) -> Vec<Option<f64>> {
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
