//! Batch drift analysis of a prediction log against a reference profile: the engine behind
//! `driftwatch analyze`.
//!
//! The current data is cut into chunks (by row count in file order, or by event-time period), each
//! chunk gets a window state per feature (the same mergeable state the streaming windows use), and
//! each state is judged against the reference. Features are processed in parallel, one worker per
//! core.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef};
use serde::{Deserialize, Serialize};

use crate::columns::{FeatureKind, to_f64, to_text};
use crate::drift::{DriftSettings, FeatureDrift, FeatureStatus, evaluate};
use crate::error::AnalyzerError;
use crate::parallel::per_feature;
pub use crate::parallel::{NoProgress, Progress};
use crate::profile::{Calibration, FeatureProfile, ReferenceProfile};
use crate::state::{FeatureModel, FeatureState};
use crate::stats::{Direction, Method};
use crate::table::Table;
use crate::time::{TimestampFormat, millis_to_utc};

/// The `format` field of a JSON analysis report.
pub const REPORT_FORMAT: &str = "driftwatch.analysis";
/// The JSON analysis report version (see `docs/analysis-report.md`).
pub const REPORT_VERSION: u32 = 1;

/// How the current data is cut into chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Chunking {
    /// Consecutive rows in file order; the last chunk may be smaller.
    Size {
        /// Rows per chunk.
        rows: usize,
    },
    /// Event-time tumbling periods aligned to the Unix epoch, in time order.
    Period {
        /// Period length in milliseconds.
        millis: i64,
        /// The timestamp column.
        column: String,
        /// How the column writes time.
        format: TimestampFormat,
    },
    /// The whole file as one chunk.
    Whole,
}

/// Where thresholds come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Adaptive thresholds for the verdict methods ([`crate::thresholds`]): the statistic's
    /// distribution under no drift at the chunk's size, the false-alarm rate shared by the
    /// chunk's features, and an effect-size floor. Configured thresholds still apply.
    #[default]
    Adaptive,
    /// Fixed values (defaults or configured).
    Fixed,
    /// `mean + 3 std` of each distance over reference chunks of the same size.
    Calibrated,
}

/// Everything that shapes a batch analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSettings {
    /// How to cut the current data.
    pub chunking: Chunking,
    /// Statistics, verdict methods, thresholds and minimum sample size.
    pub drift: DriftSettings,
    /// Fixed or calibrated thresholds.
    pub threshold_mode: ThresholdMode,
    /// A chunk shows dataset drift when at least this share of its judged features drift
    /// (default 0.5).
    pub dataset_drift_share: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            chunking: Chunking::Whole,
            drift: DriftSettings::default(),
            threshold_mode: ThresholdMode::Adaptive,
            dataset_drift_share: 0.5,
        }
    }
}

/// One chunk's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkReport {
    /// 0-based chunk number.
    pub index: usize,
    /// Rows in the chunk.
    pub rows: u64,
    /// First row (0-based, file order) in the chunk.
    pub first_row: u64,
    /// Last row (0-based, file order) in the chunk.
    pub last_row: u64,
    /// Start of the period (period chunking), inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// End of the period (period chunking), exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Per-feature drift, in feature order.
    pub features: Vec<FeatureDrift>,
    /// Features whose verdict is drift.
    pub drifted_features: Vec<String>,
    /// Drifted share of the judged features (`None` when none could be judged).
    pub drift_share: Option<f64>,
    /// Whether `drift_share` reaches the dataset-drift share.
    pub dataset_drift: Option<bool>,
    /// Realized model quality over the chunk's labelled predictions (`analyze --problem-type`),
    /// with their count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::quality::Quality>,
    /// Label-free estimate of binary quality (CBPE) from the chunk's scores, calibrated on the
    /// labelled reference (`analyze --problem-type binary` with a reference data file holding the
    /// target and score columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_quality: Option<crate::quality::EstimatedBinary>,
    /// Multivariate drift: the chunk's mean PCA reconstruction error against the reference band
    /// (`analyze` with a reference data file; [`crate::multivariate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<crate::multivariate::ChunkMultivariate>,
}

/// Reference summary of one analysed feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// Feature name.
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
    /// Usable reference values.
    pub reference_count: u64,
    /// Missing reference values.
    pub reference_missing: u64,
}

/// The result of a batch analysis (the JSON of `driftwatch analyze --format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisReport {
    /// Always [`REPORT_FORMAT`].
    pub format: String,
    /// Always [`REPORT_VERSION`].
    pub version: u32,
    /// The reference source(s).
    pub reference: Vec<String>,
    /// The current file.
    pub current: String,
    /// Rows in the current file.
    pub current_rows: u64,
    /// The settings used.
    pub settings: AnalysisSettings,
    /// The analysed features.
    pub features: Vec<FeatureInfo>,
    /// The chunks, in order.
    pub chunks: Vec<ChunkReport>,
    /// Per feature, the chunks in which it drifted.
    pub drifted_chunks: BTreeMap<String, Vec<usize>>,
    /// Multivariate drift (PCA reconstruction error): the model, the reference band and the
    /// alerting chunks ([`crate::multivariate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<crate::multivariate::MultivariateSummary>,
}

/// Analyses `features` of `current` against `profile`.
///
/// A feature the profile has but the current file lacks is reported as "no data" in every chunk;
/// the others are still analysed. `calibration` must be given for [`ThresholdMode::Calibrated`].
///
/// # Errors
/// [`AnalyzerError::InvalidValue`] for a value of the wrong type (text in a numeric feature) or an
/// unparsable timestamp, naming file, line and column; [`AnalyzerError::MissingColumn`] when the
/// timestamp column is absent; [`AnalyzerError::Config`] for a bad setting. Problems in several
/// features are reported together.
pub fn analyze(
    profile: &ReferenceProfile,
    features: &[String],
    current: &Table,
    settings: &AnalysisSettings,
    calibration: Option<&Calibration>,
    progress: &dyn Progress,
) -> Result<AnalysisReport, AnalyzerError> {
    validate_settings(settings)?;
    if settings.threshold_mode == ThresholdMode::Calibrated && calibration.is_none() {
        return Err(AnalyzerError::Config {
            key: "thresholds".into(),
            message: "calibrated thresholds need a calibration (reference data or a profile fitted with one)".into(),
        });
    }
    let models = feature_models(profile, features)?;
    let layout = ChunkLayout::new(current, &settings.chunking)?;
    progress.start("analysing features", models.len() as u64);
    // Each worker builds one feature's chunk states and evaluates them at once (sorting, KS and
    // Wasserstein walks included), so the statistics run on every core and only about one
    // feature's states per core are held at a time.
    // Each chunk judges all the features together; only the adaptive mode uses adaptive
    // thresholds.
    let mut drift = settings.drift.for_window_of(models.len());
    drift.adaptive.enabled = settings.threshold_mode == ThresholdMode::Adaptive;
    let per_feature = per_feature(models.len(), progress, |i| {
        let model = &models[i];
        let Some(mut states) = feature_states(model, current, &layout)? else {
            let absent = absent_feature(model.profile(), &current.path.display().to_string());
            return Ok(vec![absent; layout.len()]);
        };
        let calibrated = calibration
            .filter(|_| settings.threshold_mode == ThresholdMode::Calibrated)
            .and_then(|cal| cal.thresholds.get(model.profile().name()));
        // Sorted in place, each chunk's values are walked without a sorted copy.
        for state in &mut states {
            if let FeatureState::Numeric(s) = state {
                s.sort_values();
            }
        }
        Ok(states
            .iter()
            .map(|s| evaluate(model.profile(), s, &drift, calibrated))
            .collect::<Vec<_>>())
    })?;
    progress.finish();

    let mut per_feature: Vec<std::vec::IntoIter<FeatureDrift>> =
        per_feature.into_iter().map(Vec::into_iter).collect();
    let mut chunks = Vec::with_capacity(layout.len());
    for (c, meta) in layout.chunks.iter().enumerate() {
        let drifts = per_feature
            .iter_mut()
            .map(|f| {
                f.next()
                    .ok_or_else(|| AnalyzerError::Query(format!("chunk {c} has no result")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        chunks.push(chunk_report(c, meta, drifts, settings.dataset_drift_share));
    }
    let mut drifted_chunks: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for chunk in &chunks {
        for f in &chunk.drifted_features {
            drifted_chunks
                .entry(f.clone())
                .or_default()
                .push(chunk.index);
        }
    }
    Ok(AnalysisReport {
        format: REPORT_FORMAT.into(),
        version: REPORT_VERSION,
        reference: profile.sources.clone(),
        current: current.path.display().to_string(),
        current_rows: current.num_rows as u64,
        settings: settings.clone(),
        features: models
            .iter()
            .map(|m| FeatureInfo {
                name: m.profile().name().to_string(),
                kind: m.profile().kind(),
                reference_count: m.profile().count(),
                reference_missing: m.profile().missing(),
            })
            .collect(),
        chunks,
        drifted_chunks,
        multivariate: None,
    })
}

/// Calibrates thresholds on the reference data itself: cuts `reference` into full chunks of
/// `chunk_size` rows, computes each distance of each feature on every chunk against `profile`, and
/// sets the threshold to `mean + 3 std` (population standard deviation) of those values. p-value
/// methods are not calibrated (they keep their significance level).
///
/// # Errors
/// [`AnalyzerError::Config`] when the reference has fewer than two full chunks; the errors of
/// [`analyze`] for bad values.
pub fn calibrate(
    profile: &ReferenceProfile,
    features: &[String],
    reference: &Table,
    chunk_size: usize,
    drift: &DriftSettings,
    progress: &dyn Progress,
) -> Result<Calibration, AnalyzerError> {
    let full_chunks = reference.num_rows / chunk_size.max(1);
    if chunk_size == 0 || full_chunks < 2 {
        return Err(AnalyzerError::Config {
            key: "thresholds".into(),
            message: format!(
                "calibration needs at least two reference chunks of {chunk_size} rows, but the reference has {} rows",
                reference.num_rows
            ),
        });
    }
    let models = feature_models(profile, features)?;
    let layout = ChunkLayout::new(reference, &Chunking::Size { rows: chunk_size })?;
    progress.start("calibrating thresholds", models.len() as u64);
    let settings = DriftSettings {
        min_samples: 0,
        ..drift.clone()
    };
    let per_feature = per_feature(models.len(), progress, |i| {
        let model = &models[i];
        let Some(states) = feature_states(model, reference, &layout)? else {
            return Ok(None);
        };
        let mut values: BTreeMap<Method, Vec<f64>> = BTreeMap::new();
        for state in states.iter().take(full_chunks) {
            let d = evaluate(model.profile(), state, &settings, None);
            for m in d
                .methods
                .iter()
                .filter(|m| m.method.direction() == Direction::Above)
            {
                if let Some(v) = m.value {
                    values.entry(m.method).or_default().push(v);
                }
            }
        }
        let per_method: BTreeMap<Method, f64> = values
            .into_iter()
            .filter(|(_, v)| v.len() >= 2)
            .map(|(m, v)| {
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                (m, mean + 3.0 * std)
            })
            .collect();
        Ok(Some((model.profile().name().to_string(), per_method)))
    })?;
    progress.finish();
    let thresholds = per_feature.into_iter().flatten().collect();
    Ok(Calibration {
        chunk_size,
        chunks: full_chunks,
        thresholds,
    })
}

/// Number of chunks `chunking` cuts `table` into.
///
/// # Errors
/// As [`analyze`] for the timestamp column of period chunking.
pub fn count_chunks(table: &Table, chunking: &Chunking) -> Result<usize, AnalyzerError> {
    Ok(ChunkLayout::new(table, chunking)?.len())
}

/// Adds multivariate drift (the PCA reconstruction error, [`crate::multivariate`]) to `report`,
/// made by [`analyze`] of `current`: the model is fitted on `reference` over the report's features
/// (with their kinds), `current` is cut as the report's chunks are, and the band comes from
/// reference chunks of the same size (size chunking, as NannyML does; for period or whole-file
/// chunking, full chunks of the mean rows per current chunk). Fills
/// [`AnalysisReport::multivariate`] and each chunk's `multivariate`.
///
/// # Errors
/// As [`crate::multivariate::analyze_multivariate`]; the timestamp errors of period chunking.
pub fn attach_multivariate(
    report: &mut AnalysisReport,
    reference: &Table,
    current: &Table,
    variance_kept: f64,
) -> Result<(), AnalyzerError> {
    let features: Vec<(String, FeatureKind)> = report
        .features
        .iter()
        .map(|f| (f.name.clone(), f.kind))
        .collect();
    let layout = ChunkLayout::new(current, &report.settings.chunking)?;
    let (reference_chunk_rows, full_only) = match report.settings.chunking {
        Chunking::Size { rows } => (rows, false),
        _ => ((current.num_rows / layout.len().max(1)).max(1), true),
    };
    let (summary, per_chunk) = crate::multivariate::analyze_multivariate(
        reference,
        current,
        &features,
        &layout.of_row,
        layout.len(),
        reference_chunk_rows,
        full_only,
        variance_kept,
    )?;
    if per_chunk.len() != report.chunks.len() {
        return Err(AnalyzerError::Query(format!(
            "multivariate drift has {} chunks, the report {}",
            per_chunk.len(),
            report.chunks.len()
        )));
    }
    for (chunk, m) in report.chunks.iter_mut().zip(per_chunk) {
        chunk.multivariate = Some(m);
    }
    report.multivariate = Some(summary);
    Ok(())
}

fn validate_settings(settings: &AnalysisSettings) -> Result<(), AnalyzerError> {
    let bad = |key: &str, message: String| {
        Err(AnalyzerError::Config {
            key: key.into(),
            message,
        })
    };
    match &settings.chunking {
        Chunking::Size { rows: 0 } => return bad("chunk-size", "must be at least 1".into()),
        Chunking::Period { millis, .. } if *millis <= 0 => {
            return bad("chunk-period", "must be longer than zero".into());
        }
        _ => {}
    }
    if !(0.0..=1.0).contains(&settings.dataset_drift_share) {
        return bad(
            "dataset-drift-share",
            format!("{} is not in [0, 1]", settings.dataset_drift_share),
        );
    }
    // Calibration supplies thresholds of its own (raw Wasserstein included).
    if settings.threshold_mode != ThresholdMode::Calibrated
        && let Err(message) = settings.drift.check_verdict_thresholds()
    {
        return bad("verdict-methods", message);
    }
    for (m, t) in &settings.drift.thresholds {
        if !t.is_finite() || *t < 0.0 {
            return bad(
                "threshold",
                format!("{m}={t} must be a non-negative number"),
            );
        }
    }
    Ok(())
}

fn feature_models(
    profile: &ReferenceProfile,
    features: &[String],
) -> Result<Vec<FeatureModel>, AnalyzerError> {
    let mut missing = Vec::new();
    let mut models = Vec::with_capacity(features.len());
    for f in features {
        match profile.feature(f) {
            Some(p) => models.push(FeatureModel::new(p.clone())),
            None => missing.push(f.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(AnalyzerError::Config {
            key: "features".into(),
            message: format!(
                "not in the reference profile: {} (the profile has: {})",
                missing.join(", "),
                profile.feature_names().join(", ")
            ),
        });
    }
    Ok(models)
}

fn absent_feature(profile: &FeatureProfile, current: &str) -> FeatureDrift {
    FeatureDrift {
        feature: profile.name().to_string(),
        kind: profile.kind(),
        status: FeatureStatus::NoData {
            reason: format!("{current} has no column `{}`", profile.name()),
        },
        count: 0,
        missing: 0,
        drift: None,
        methods: Vec::new(),
        new_categories: Vec::new(),
        quality: None,
    }
}

fn chunk_report(
    index: usize,
    meta: &ChunkMeta,
    features: Vec<FeatureDrift>,
    share: f64,
) -> ChunkReport {
    let judged: Vec<&FeatureDrift> = features.iter().filter(|f| f.drift.is_some()).collect();
    let drifted_features: Vec<String> = judged
        .iter()
        .filter(|f| f.drift == Some(true))
        .map(|f| f.feature.clone())
        .collect();
    let drift_share =
        (!judged.is_empty()).then(|| drifted_features.len() as f64 / judged.len() as f64);
    ChunkReport {
        index,
        rows: meta.rows,
        first_row: meta.first_row,
        last_row: meta.last_row,
        start: meta.start.and_then(millis_to_utc),
        end: meta.end.and_then(millis_to_utc),
        features,
        drifted_features,
        drift_share,
        dataset_drift: drift_share.map(|s| s >= share),
        quality: None,
        estimated_quality: None,
        multivariate: None,
    }
}

/// Rows, bounds and period of one chunk.
#[derive(Debug, Clone, Default)]
struct ChunkMeta {
    rows: u64,
    first_row: u64,
    last_row: u64,
    start: Option<i64>,
    end: Option<i64>,
}

/// The chunk of every row.
struct ChunkLayout {
    /// Chunk index per row, `u32::MAX` for rows that belong to no chunk.
    of_row: Vec<u32>,
    chunks: Vec<ChunkMeta>,
}

impl ChunkLayout {
    fn len(&self) -> usize {
        self.chunks.len()
    }

    fn new(table: &Table, chunking: &Chunking) -> Result<Self, AnalyzerError> {
        let n = table.num_rows;
        let of_row: Vec<u32> = match chunking {
            Chunking::Whole => vec![0; n],
            Chunking::Size { rows } => (0..n).map(|i| (i / rows) as u32).collect(),
            Chunking::Period {
                millis,
                column,
                format,
            } => {
                let keys = period_keys(table, column, format, *millis)?;
                let distinct: std::collections::BTreeSet<i64> = keys.iter().copied().collect();
                let index: BTreeMap<i64, u32> = distinct
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (*k, i as u32))
                    .collect();
                let of_row = keys.iter().map(|k| index[k]).collect();
                let mut chunks = vec![ChunkMeta::default(); distinct.len()];
                for (c, k) in chunks.iter_mut().zip(&distinct) {
                    c.start = Some(k * millis);
                    c.end = Some((k + 1) * millis);
                }
                return Ok(Self::finish(of_row, chunks));
            }
        };
        let count = of_row.last().map_or(0, |c| *c as usize + 1);
        Ok(Self::finish(
            of_row,
            vec![ChunkMeta::default(); count.max(usize::from(n == 0))],
        ))
    }

    fn finish(of_row: Vec<u32>, mut chunks: Vec<ChunkMeta>) -> Self {
        let mut seen = vec![false; chunks.len()];
        for (row, &c) in of_row.iter().enumerate() {
            let meta = &mut chunks[c as usize];
            meta.rows += 1;
            if !seen[c as usize] {
                seen[c as usize] = true;
                meta.first_row = row as u64;
            }
            meta.last_row = row as u64;
        }
        Self { of_row, chunks }
    }
}

/// `floor(timestamp / period)` per row.
fn period_keys(
    table: &Table,
    column: &str,
    format: &TimestampFormat,
    period: i64,
) -> Result<Vec<i64>, AnalyzerError> {
    let chunks = table
        .column(column)
        .ok_or_else(|| AnalyzerError::MissingColumn {
            path: table.path.clone(),
            column: column.to_string(),
            origin: "--timestamp-column".into(),
            available: table.column_names().join(", "),
        })?;
    let mut keys = Vec::with_capacity(table.num_rows);
    let mut row = 0usize;
    for chunk in &chunks {
        let text = to_text(chunk).map_err(|message| AnalyzerError::InvalidValue {
            path: table.path.clone(),
            location: "any row".into(),
            column: column.to_string(),
            message,
        })?;
        for v in text.iter() {
            let ms = match v {
                None => {
                    return Err(AnalyzerError::InvalidValue {
                        path: table.path.clone(),
                        location: table.locate(row),
                        column: column.to_string(),
                        message: "the timestamp is missing".into(),
                    });
                }
                Some(s) => {
                    format
                        .parse_millis(s)
                        .map_err(|message| AnalyzerError::InvalidValue {
                            path: table.path.clone(),
                            location: table.locate(row),
                            column: column.to_string(),
                            message,
                        })?
                }
            };
            keys.push(ms.div_euclid(period));
            row += 1;
        }
    }
    Ok(keys)
}

fn feature_states(
    model: &FeatureModel,
    table: &Table,
    layout: &ChunkLayout,
) -> Result<Option<Vec<FeatureState>>, AnalyzerError> {
    let name = model.profile().name();
    let Some(arrays) = table.column(name) else {
        return Ok(None);
    };
    // Room for every row of its chunk: values are pushed without the copies of a growing Vec.
    let mut states: Vec<FeatureState> = layout
        .chunks
        .iter()
        .map(|chunk| {
            let mut state = model.new_state();
            if let FeatureState::Numeric(s) = &mut state {
                s.values
                    .reserve_exact(usize::try_from(chunk.rows).unwrap_or(0));
            }
            state
        })
        .collect();
    let mut row = 0usize;
    for array in &arrays {
        add_rows(
            model,
            &mut states,
            &layout.of_row[row..row + array.len()],
            array,
        )
        .map_err(|(index, message)| AnalyzerError::InvalidValue {
            path: table.path.clone(),
            location: table.locate(row + index),
            column: name.to_string(),
            message,
        })?;
        row += array.len();
    }
    Ok(Some(states))
}

/// Adds one array's rows to the states of their chunks. Consecutive rows of one chunk are added
/// as one slice, so the common case (size chunking) bins whole runs at once.
fn add_rows(
    model: &FeatureModel,
    states: &mut [FeatureState],
    chunk_of: &[u32],
    array: &ArrayRef,
) -> Result<(), (usize, String)> {
    match model.profile().kind() {
        FeatureKind::Numeric => {
            let floats = to_f64(array).map_err(|bad| {
                (
                    bad.index,
                    format!(
                        "`{}` is not a number (the feature is numeric in the reference)",
                        bad.value
                    ),
                )
            })?;
            let values = floats.values();
            let mut start = 0;
            while start < chunk_of.len() {
                let c = chunk_of[start];
                let mut end = start + 1;
                while end < chunk_of.len() && chunk_of[end] == c {
                    end += 1;
                }
                let state = &mut states[c as usize];
                if floats.null_count() == 0 {
                    model.add_values(state, &values[start..end]);
                } else {
                    let present: Vec<f64> = (start..end)
                        .filter(|&i| floats.is_valid(i))
                        .map(|i| values[i])
                        .collect();
                    if let FeatureState::Numeric(s) = state {
                        s.missing += ((end - start) - present.len()) as u64;
                    }
                    model.add_values(state, &present);
                }
                start = end;
            }
        }
        FeatureKind::Categorical => {
            let text = to_text(array).map_err(|m| (0, m))?;
            for (i, v) in text.iter().enumerate() {
                model.add_category(&mut states[chunk_of[i] as usize], v);
            }
        }
    }
    Ok(())
}
