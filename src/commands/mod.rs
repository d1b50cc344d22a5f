//! One module per subcommand, plus what they share: feature selection and reading inputs.

pub mod analyze;
pub mod controller;
pub mod demo;
pub mod outcomes;
pub mod profile;
pub mod replay;
pub mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use analyzer::{FeatureKind, ProfileOptions, ReadOptions, Table};

use crate::cli::FeatureArgs;
use crate::progress::Spinner;

/// Whether `path` names a saved reference profile (`.json`) rather than a log to profile.
pub fn is_profile(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Declared kinds from `--categorical` / `--numeric`; a column in both is an error.
pub fn declared_kinds(args: &FeatureArgs) -> anyhow::Result<BTreeMap<String, FeatureKind>> {
    let mut kinds = BTreeMap::new();
    for c in &args.categorical {
        kinds.insert(c.clone(), FeatureKind::Categorical);
    }
    for c in &args.numeric {
        if kinds.insert(c.clone(), FeatureKind::Numeric).is_some() {
            anyhow::bail!("column `{c}` is named in both --categorical and --numeric");
        }
    }
    Ok(kinds)
}

/// Profile options from the feature arguments.
pub fn profile_options(args: &FeatureArgs) -> anyhow::Result<ProfileOptions> {
    if args.bins == 0 {
        anyhow::bail!("--bins must be at least 1");
    }
    if args.sample_size == 0 {
        anyhow::bail!("--sample-size must be at least 1");
    }
    Ok(ProfileOptions {
        bins: args.bins,
        sample_size: args.sample_size,
        kinds: declared_kinds(args)?,
        ..ProfileOptions::default()
    })
}

/// A file known by its header only (column names, no types): the current file of `analyze`,
/// read after the features are chosen.
pub struct Header<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its column names in file order.
    pub columns: &'a [String],
}

/// The features to analyse: `--features` if given (each must be a column of every table and
/// header), else the columns common to all of them minus `--exclude`, `extra_excluded` and the
/// usual non-feature columns, in the first table's order, keeping those whose type in every
/// table is a feature type (numbers, text, booleans) unless declared.
pub fn select_features(
    args: &FeatureArgs,
    tables: &[&Table],
    headers: &[Header<'_>],
    extra_excluded: &[&str],
) -> anyhow::Result<Vec<String>> {
    let files: Vec<(&Path, Vec<String>)> = tables
        .iter()
        .map(|t| (t.path.as_path(), t.column_names()))
        .chain(headers.iter().map(|h| (h.path, h.columns.to_vec())))
        .collect();
    if !args.features.is_empty() {
        let mut problems = Vec::new();
        for (path, columns) in &files {
            for f in &args.features {
                if !columns.contains(f) {
                    problems.push(format!(
                        "{} has no column `{f}` (named in --features); its columns are: {}",
                        path.display(),
                        columns.join(", ")
                    ));
                }
            }
        }
        if !problems.is_empty() {
            anyhow::bail!(problems.join("\n"));
        }
        return Ok(args.features.clone());
    }
    let excluded: BTreeSet<&str> = args
        .exclude
        .iter()
        .map(String::as_str)
        .chain(extra_excluded.iter().copied())
        .collect();
    let first = tables.first().map(|t| t.column_names()).unwrap_or_default();
    let declared = |c: &str| args.categorical.iter().chain(&args.numeric).any(|d| d == c);
    // Identifiers, model outputs and ground truth are not features unless declared or named:
    // by name, or (in the first table) by values that are all distinct or free text.
    let mut by_default = Vec::new();
    let first: Vec<String> = first
        .into_iter()
        .filter(|c| {
            if declared(c) || excluded.contains(c.as_str()) {
                return true;
            }
            let reason = analyzer::columns::non_feature_reason(c)
                .map(str::to_string)
                .or_else(|| tables.first().and_then(|t| value_reason(t, c)));
            match reason {
                Some(r) => {
                    by_default.push(format!("`{c}` ({r})"));
                    false
                }
                None => true,
            }
        })
        .collect();
    if !by_default.is_empty() {
        tracing::warn!(
            "not analysed by default: {}; name them in --features (or declare them with --categorical / --numeric) to analyse them",
            by_default.join(", ")
        );
    }
    let features: Vec<String> = first
        .into_iter()
        .filter(|c| !excluded.contains(c.as_str()))
        .filter(|c| files.iter().all(|(_, columns)| columns.contains(c)))
        .filter(|c| {
            // Timestamps and other non-feature types are skipped unless declared.
            args.categorical.contains(c)
                || args.numeric.contains(c)
                || tables.iter().all(|t| {
                    t.schema
                        .field_with_name(c)
                        .map(|f| analyzer::columns::infer_kind(f.data_type()).is_some())
                        .unwrap_or(false)
                })
        })
        .collect();
    if features.is_empty() {
        anyhow::bail!(
            "no feature columns left to analyse (columns: {}); name them with --features",
            tables
                .first()
                .map(|t| t.column_names().join(", "))
                .unwrap_or_default()
        );
    }
    Ok(features)
}

/// Rows a column needs before its values can mark it as an identifier or free text.
const MIN_ROWS_FOR_VALUE_RULES: usize = 50;

/// Why `column` of `table` is not a feature by its values: integers all distinct and dense, or
/// text all distinct (a per-row identifier), or text with more distinct values than half its rows (free text, such as
/// names). Floats are never excluded (continuous values are mostly distinct), nor columns of
/// fewer than [`MIN_ROWS_FOR_VALUE_RULES`] values.
fn value_reason(table: &Table, column: &str) -> Option<String> {
    use std::collections::HashSet;

    use arrow::array::{Array, AsArray};
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Int64Type};

    let chunks = table.column(column)?;
    let data_type = chunks.first()?.data_type().clone();
    let n: usize = chunks.iter().map(|c| c.len() - c.null_count()).sum();
    if n < MIN_ROWS_FOR_VALUE_RULES {
        return None;
    }
    if data_type.is_integer() {
        // Identifiers are distinct and dense (a range not much wider than the rows); distinct
        // integers spread wide (incomes, counts in a small reference) stay features.
        let mut seen = HashSet::with_capacity(n);
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for c in &chunks {
            let ints = cast(c, &DataType::Int64).ok()?;
            for v in ints.as_primitive::<Int64Type>().iter().flatten() {
                if !seen.insert(v) {
                    return None;
                }
                (lo, hi) = (lo.min(v), hi.max(v));
            }
        }
        let span = u128::try_from(i128::from(hi) - i128::from(lo) + 1).unwrap_or(u128::MAX);
        return (span <= 2 * n as u128)
            .then(|| format!("identifier: all {n} values distinct, from {lo} to {hi}"));
    }
    if matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let texts: Vec<_> = chunks
            .iter()
            .filter_map(|c| analyzer::columns::to_text(c).ok())
            .collect();
        let distinct: HashSet<&str> = texts.iter().flat_map(|t| t.iter().flatten()).collect();
        let d = distinct.len();
        if d == n {
            return Some(format!("identifier: all {n} values distinct"));
        }
        if 2 * d > n {
            return Some(format!("free text: {d} distinct values in {n} rows"));
        }
    }
    None
}

/// Reads a data file with a spinner, forcing `text_columns` to text.
pub fn read_data(
    path: &Path,
    text_columns: BTreeSet<String>,
    quiet: bool,
) -> anyhow::Result<Table> {
    read_with(
        path,
        &ReadOptions {
            text_columns,
            select: None,
        },
        quiet,
    )
}

/// Reads a data file with a spinner and the given options.
pub fn read_with(path: &Path, options: &ReadOptions, quiet: bool) -> anyhow::Result<Table> {
    let spinner = Spinner::new(&format!("reading {}", path.display()), quiet);
    let table = analyzer::read_table(path, options)?;
    spinner.finish();
    Ok(table)
}
