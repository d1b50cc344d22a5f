//! The built-in car_loan data set as the tests and benchmarks see it: its features (all, numeric,
//! categorical, drifted, stable), its other columns, its sizes and the paths of its files. One
//! source, `data/car_loan/manifest.toml`, embedded at build time (as `driftwatch demo` embeds it).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::Deserialize;

/// The data directory, relative to the repository root.
pub const DIR: &str = "data/car_loan";
/// The reference log (labelled), relative to the repository root.
pub const REFERENCE: &str = "data/car_loan/reference.csv";
/// The analysis log, relative to the repository root.
pub const ANALYSIS: &str = "data/car_loan/analysis.csv";
/// The labels of the analysis log (`id` and the label), relative to the repository root.
pub const ANALYSIS_TARGET: &str = "data/car_loan/analysis_target.csv";

/// The manifest's text.
const TEXT: &str = include_str!("../../data/car_loan/manifest.toml");

/// `data/car_loan/manifest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Rows of reference.csv.
    pub reference_rows: usize,
    /// Rows of analysis.csv.
    pub analysis_rows: usize,
    /// Rows per chunk of the drift truth (and per window of `driftwatch demo`).
    pub chunk_rows: usize,
    /// Time between two consecutive predictions of the logs, in milliseconds.
    pub row_spacing_ms: i64,
    /// The row id column.
    pub id: String,
    /// The prediction time column.
    pub timestamp: String,
    /// The label column (reference.csv and analysis_target.csv).
    pub label: String,
    /// The positive-class probability column.
    pub score: String,
    /// The predicted class column.
    pub prediction: String,
    /// The features, in column order.
    pub features: Vec<Feature>,
}

/// One feature of the manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Its column.
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: Kind,
    /// Whether it drifts (in analysis chunks 5 to 9).
    pub drifted: bool,
}

/// The kind of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Numbers.
    Numeric,
    /// Categories.
    Categorical,
}

/// The parsed manifest.
///
/// # Panics
/// On first use, when the manifest is not valid (this crate's tests check it).
pub static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    toml::from_str(TEXT).unwrap_or_else(|e| panic!("data/car_loan/manifest.toml: {e}"))
});

fn names(keep: impl Fn(&Feature) -> bool) -> Vec<&'static str> {
    MANIFEST
        .features
        .iter()
        .filter(|f| keep(f))
        .map(|f| f.name.as_str())
        .collect()
}

/// The seven features, in column order.
pub static FEATURES: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|_| true));
/// The numeric features, in column order.
pub static NUMERIC: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| names(|f| f.kind == Kind::Numeric));
/// The categorical features, in column order.
pub static CATEGORICAL: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| names(|f| f.kind == Kind::Categorical));
/// The features that drift in analysis chunks 5 to 9, in column order.
pub static DRIFTED: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|f| f.drifted));
/// The features that never drift, in column order.
pub static STABLE: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|f| !f.drifted));

/// The repository root (this crate's parent directory).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lies in the repository root")
}

/// `relative` (a path relative to the repository root, e.g. [`REFERENCE`]) in this checkout.
pub fn path(relative: &str) -> PathBuf {
    root().join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and the number of data rows of `relative`.
    fn header_and_rows(relative: &str) -> (Vec<String>, usize) {
        let text = std::fs::read_to_string(path(relative)).unwrap();
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        (header, lines.count())
    }

    #[test]
    fn the_manifest_matches_the_files() {
        let m = &*MANIFEST;
        let (reference, reference_rows) = header_and_rows(REFERENCE);
        let (analysis, analysis_rows) = header_and_rows(ANALYSIS);
        let (target, target_rows) = header_and_rows(ANALYSIS_TARGET);
        assert_eq!(
            (reference_rows, analysis_rows),
            (m.reference_rows, m.analysis_rows)
        );
        assert_eq!(target_rows, m.analysis_rows);
        assert_eq!(target, [m.id.as_str(), m.label.as_str()]);
        assert_eq!(m.analysis_rows % m.chunk_rows, 0);
        // Every column is the id, the timestamp, the label, a model output or a feature, in the
        // files' order.
        let mut expected: Vec<&str> = vec![m.id.as_str()];
        expected.extend(FEATURES.iter());
        let outputs = [
            m.timestamp.as_str(),
            m.score.as_str(),
            m.prediction.as_str(),
        ];
        let mut with_label = expected.clone();
        with_label.push(m.label.as_str());
        with_label.extend(outputs);
        expected.extend(outputs);
        assert_eq!(reference, with_label);
        assert_eq!(analysis, expected);
        assert_eq!(NUMERIC.len() + CATEGORICAL.len(), FEATURES.len());
        assert_eq!(DRIFTED.len() + STABLE.len(), FEATURES.len());
    }

    #[test]
    fn the_row_spacing_is_the_logs() {
        let text = std::fs::read_to_string(path(REFERENCE)).unwrap();
        let mut lines = text.lines();
        let at = lines
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == MANIFEST.timestamp)
            .unwrap();
        let column = |line: &str| line.split(',').nth(at).unwrap().to_string();
        let (a, b) = (column(lines.next().unwrap()), column(lines.next().unwrap()));
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("2018-01-01 00:00:00.000", "2018-01-01 00:08:43.152")
        );
        assert_eq!(MANIFEST.row_spacing_ms, 8 * 60_000 + 43_152);
    }

    #[test]
    fn the_drift_truth_is_the_fixtures() {
        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path("tests/fixtures/car_loan_chunks_scipy.json")).unwrap(),
        )
        .unwrap();
        let set = |key: &str| {
            let mut v: Vec<&str> = fixture["drift_truth"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            v.sort_unstable();
            v
        };
        let sorted = |v: &[&'static str]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(&DRIFTED), set("drifted_features"));
        assert_eq!(sorted(&STABLE), set("undrifted_features"));
        // The fixture's kinds per feature are the manifest's.
        for row in fixture["rows"].as_array().unwrap() {
            let name = row["feature"].as_str().unwrap();
            let list = match row["kind"].as_str().unwrap() {
                "numeric" => &NUMERIC,
                "categorical" => &CATEGORICAL,
                other => panic!("kind {other}"),
            };
            assert!(list.contains(&name), "{name}");
        }
    }
}
