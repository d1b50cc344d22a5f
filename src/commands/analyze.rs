//! `driftwatch analyze`: batch drift analysis of a prediction log.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use analyzer::batch::{AnalysisSettings, Chunking, ThresholdMode};
use analyzer::profile::Calibration;
use analyzer::table::ColumnSelection;
use analyzer::time::TimestampFormat;
use analyzer::{
    DriftSettings, FeatureKind, Method, ReadOptions, ReferenceProfile, Table, analyze, calibrate,
};
use anyhow::Context;

use crate::cli::{AnalyzeArgs, GlobalArgs, MultivariateArg, ReportFormat, ThresholdArg};
use crate::commands::{Header, profile_options, read_data, read_with, select_features};
use crate::output;
use crate::progress::Bar;

/// Exit status when `--fail-on-drift` is set and a chunk drifts.
const EXIT_DRIFT: u8 = 3;

/// Runs `driftwatch analyze`.
pub fn run(args: &AnalyzeArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(args)?;
    let reference_is_profile = super::is_profile(&args.reference);
    let mut text_columns: BTreeSet<String> = args.features.categorical.iter().cloned().collect();
    if args.chunk_period.is_some() {
        text_columns.insert(args.timestamp_column.clone());
    }
    // The current file is read last, once its features and their kinds are known: only those
    // columns, without type inference (its cost is about that of the parse).
    let current_columns = analyzer::table::column_names(&args.current)?;
    let bar = Bar::new(global.quiet);

    let (profile, features, reference) = if reference_is_profile {
        let profile = ReferenceProfile::load(&args.reference)?;
        let features = profile_features(args, &profile, &current_columns)?;
        (profile, features, None)
    } else {
        let reference = match declared_selection(args, &text_columns) {
            Some(select) => read_with(
                &args.reference,
                &ReadOptions {
                    text_columns: BTreeSet::new(),
                    select: Some(select),
                },
                global.quiet,
            )?,
            None => read_data(&args.reference, text_columns.clone(), global.quiet)?,
        };
        let excluded = [args.timestamp_column.as_str()];
        let header = Header {
            path: &args.current,
            columns: &current_columns,
        };
        let features = select_features(&args.features, &[&reference], &[header], &excluded)?;
        let profile =
            ReferenceProfile::fit(&reference, &features, &profile_options(&args.features)?)?;
        (profile, features, Some(reference))
    };
    let current = read_with(
        &args.current,
        &ReadOptions {
            text_columns: BTreeSet::new(),
            select: Some(current_selection(&profile, &features, &text_columns)),
        },
        global.quiet,
    )?;
    let calibration = match (settings.threshold_mode, &reference) {
        (ThresholdMode::Fixed | ThresholdMode::Adaptive, _) => None,
        (ThresholdMode::Calibrated, None) => {
            Some(stored_calibration(&profile, args, &current, &settings)?)
        }
        (ThresholdMode::Calibrated, Some(reference)) => {
            let size = calibration_chunk_size(args, &current, &settings)?;
            Some(calibrate(
                &profile,
                &features,
                reference,
                size,
                &settings.drift,
                &bar,
            )?)
        }
    };

    let mut report = analyze(
        &profile,
        &features,
        &current,
        &settings,
        calibration.as_ref(),
        &bar,
    )?;
    attach_multivariate(args, &mut report, reference.as_ref(), &current)?;
    crate::commands::outcomes::attach_quality(args, &mut report, global.quiet)?;
    let rendered = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Table => output::render_table(&report, &shown_methods(args)),
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            if let Err(e) = out
                .write_all(rendered.as_bytes())
                .and_then(|()| out.flush())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
        }
    }
    let drifted = report.chunks.iter().any(|c| !c.drifted_features.is_empty());
    Ok(if args.fail_on_drift && drifted {
        ExitCode::from(EXIT_DRIFT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Multivariate drift (`--multivariate`): needs the reference data; `auto` skips a profile
/// reference and turns a failure into a warning.
fn attach_multivariate(
    args: &AnalyzeArgs,
    report: &mut analyzer::AnalysisReport,
    reference: Option<&Table>,
    current: &Table,
) -> anyhow::Result<()> {
    let variance = args.multivariate_variance;
    if !(variance > 0.0 && variance < 1.0) {
        anyhow::bail!("--multivariate-variance {variance} is not in (0, 1)");
    }
    match (args.multivariate, reference) {
        (MultivariateArg::Off, _) | (MultivariateArg::Auto, None) => Ok(()),
        (MultivariateArg::On, None) => anyhow::bail!(
            "--multivariate on needs the reference data file: the profile {} does not hold the reference rows the PCA is fitted on",
            args.reference.display()
        ),
        (MultivariateArg::On, Some(reference)) => {
            analyzer::batch::attach_multivariate(report, reference, current, variance)
                .context("multivariate drift")
        }
        (MultivariateArg::Auto, Some(reference)) => {
            if let Err(e) =
                analyzer::batch::attach_multivariate(report, reference, current, variance)
            {
                tracing::warn!("multivariate drift skipped: {e}");
            }
            Ok(())
        }
    }
}

/// The reference file's columns when every feature is named (`--features`) and each is declared
/// `--numeric` or `--categorical`: then no kind is left to infer, and the reference is read like
/// the current file, only those columns and without type inference (inference was about 7% of the
/// instructions of a run on the synthetic benchmark, BENCHMARKS.md). `None` otherwise.
fn declared_selection(
    args: &AnalyzeArgs,
    text_columns: &BTreeSet<String>,
) -> Option<ColumnSelection> {
    let f = &args.features;
    let declared = |name: &String| f.numeric.contains(name) || f.categorical.contains(name);
    if f.features.is_empty() || !f.features.iter().all(declared) {
        return None;
    }
    Some(ColumnSelection {
        numeric: f
            .features
            .iter()
            .filter(|n| f.numeric.contains(n) && !text_columns.contains(*n))
            .cloned()
            .collect(),
        text: text_columns.clone(),
        categorical: BTreeSet::new(),
    })
}

/// The current file's columns: numeric features as numbers, categorical ones as text (kept as
/// written where declared or forced, in `text_columns`, which also holds the timestamp column when
/// chunks are periods).
fn current_selection(
    profile: &ReferenceProfile,
    features: &[String],
    text_columns: &BTreeSet<String>,
) -> ColumnSelection {
    let mut select = ColumnSelection {
        text: text_columns.clone(),
        ..ColumnSelection::default()
    };
    for f in features {
        match profile.feature(f).map(analyzer::FeatureProfile::kind) {
            Some(FeatureKind::Numeric) => {
                select.numeric.insert(f.clone());
            }
            Some(FeatureKind::Categorical) if !text_columns.contains(f) => {
                select.categorical.insert(f.clone());
            }
            _ => {}
        }
    }
    select
}

fn settings(args: &AnalyzeArgs) -> anyhow::Result<AnalysisSettings> {
    let chunking = match (args.chunk_size, args.chunk_period) {
        (Some(rows), _) => Chunking::Size { rows },
        (None, Some(period)) => Chunking::Period {
            millis: i64::try_from(period.as_millis()).context("--chunk-period is too long")?,
            column: args.timestamp_column.clone(),
            format: args
                .timestamp_format
                .parse::<TimestampFormat>()
                .unwrap_or_default(),
        },
        (None, None) => Chunking::Whole,
    };
    let mut drift = DriftSettings::default();
    if !args.methods.is_empty() {
        drift.methods = dedup(&args.methods);
    }
    if !args.verdict_methods.is_empty() {
        let v = dedup(&args.verdict_methods);
        drift.categorical_verdict = v.iter().copied().filter(|m| !m.numeric_only()).collect();
        drift.numeric_verdict = v;
    }
    drift.thresholds = args.thresholds.iter().copied().collect();
    drift.min_samples = args.min_samples;
    drift.adaptive.false_alarm_rate = args.false_alarm_rate;
    Ok(AnalysisSettings {
        chunking,
        drift,
        threshold_mode: match args.threshold_mode {
            ThresholdArg::Adaptive => ThresholdMode::Adaptive,
            ThresholdArg::Fixed => ThresholdMode::Fixed,
            ThresholdArg::Calibrated => ThresholdMode::Calibrated,
        },
        dataset_drift_share: args.dataset_drift_share,
    })
}

fn dedup(methods: &[Method]) -> Vec<Method> {
    let mut seen = BTreeSet::new();
    methods
        .iter()
        .copied()
        .filter(|m| seen.insert(*m))
        .collect()
}

/// The methods the table shows: the verdict methods, plus those named with `--methods`.
fn shown_methods(args: &AnalyzeArgs) -> Vec<Method> {
    dedup(&args.methods)
}

/// Features when the reference is a profile: `--features` (each must be in the profile and the
/// current file) or the profile's features minus `--exclude`.
fn profile_features(
    args: &AnalyzeArgs,
    profile: &ReferenceProfile,
    current_columns: &[String],
) -> anyhow::Result<Vec<String>> {
    if !args.features.features.is_empty() {
        let mut problems = Vec::new();
        for f in &args.features.features {
            if profile.feature(f).is_none() {
                problems.push(format!(
                    "the profile {} has no feature `{f}` (named in --features); it has: {}",
                    args.reference.display(),
                    profile.feature_names().join(", ")
                ));
            }
            if !current_columns.contains(f) {
                problems.push(format!(
                    "{} has no column `{f}` (named in --features); its columns are: {}",
                    args.current.display(),
                    current_columns.join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            anyhow::bail!(problems.join("\n"));
        }
        return Ok(args.features.features.clone());
    }
    Ok(profile
        .feature_names()
        .into_iter()
        .filter(|f| !args.features.exclude.contains(f))
        .collect())
}

/// Rows per calibration chunk: `--chunk-size`, else the mean rows per current chunk.
fn calibration_chunk_size(
    args: &AnalyzeArgs,
    current: &Table,
    settings: &AnalysisSettings,
) -> anyhow::Result<usize> {
    if let Some(rows) = args.chunk_size {
        return Ok(rows);
    }
    match &settings.chunking {
        Chunking::Whole => Ok(current.num_rows),
        chunking => {
            let chunks = analyzer::batch::count_chunks(current, chunking)?.max(1);
            Ok((current.num_rows / chunks).max(1))
        }
    }
}

fn stored_calibration(
    profile: &ReferenceProfile,
    args: &AnalyzeArgs,
    current: &Table,
    settings: &AnalysisSettings,
) -> anyhow::Result<Calibration> {
    let size = calibration_chunk_size(args, current, settings)?;
    profile.calibrations.iter().find(|c| c.chunk_size == size).cloned().ok_or_else(|| {
        let have: Vec<String> = profile.calibrations.iter().map(|c| c.chunk_size.to_string()).collect();
        anyhow::anyhow!(
            "the profile {} has no thresholds calibrated for chunks of {size} rows (it has: {}); \
             refit it with `driftwatch profile --calibrate-chunk-size {size}` or pass the reference data file",
            args.reference.display(),
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        )
    })
}
