//! One module per subcommand, plus what they share: feature selection and reading inputs.

pub mod analyze;
pub mod controller;
pub mod demo;
pub mod profile;
pub mod replay;
pub mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use analyzer::columns::NON_FEATURE_COLUMNS;
use analyzer::{FeatureKind, ProfileOptions, ReadOptions, Table};

use crate::cli::FeatureArgs;
use crate::progress::Spinner;

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
        .chain(NON_FEATURE_COLUMNS.iter().copied())
        .collect();
    let first = tables.first().map(|t| t.column_names()).unwrap_or_default();
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
