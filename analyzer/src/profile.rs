//! Reference profiles: what "normal" looks like for each feature, fitted once from training or
//! reference data, saved as a versioned JSON file, and mergeable.
//!
//! - A numeric feature keeps bin edges at reference quantiles (default 10 bins) with an underflow
//!   and an overflow bin, the reference count per bin, mean, population standard deviation, min,
//!   max, missing count, and a sorted reference sample (exact up to `sample_size` values, default
//!   100,000, else a uniform sample) for KS and Wasserstein.
//! - A categorical feature keeps its category counts; current values the reference never had go to
//!   an "unseen" bucket.
//!
//! Bin edges sit halfway between neighbouring distinct reference values: each cut is placed just
//! above the reference value at the quantile (the midpoint to the next distinct value), and the
//! outer edges extend the reference range by half the gap next to each end. No reference value
//! ever lies on an edge, so ties stay in one bin and a tiny measurement change (0.1 written as
//! 0.1001) never moves a whole atom of values across an edge (edge case E10). For continuous data
//! the edges are the quantiles to within half the local spacing.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::Array;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

use crate::columns::{FeatureKind, infer_kind, to_f64, to_text};
use crate::error::AnalyzerError;
use crate::kernels;
use crate::stats::Method;
use crate::table::Table;

/// The `format` field of a profile file.
pub const PROFILE_FORMAT: &str = "driftwatch.reference_profile";
/// The profile file version this build writes and reads.
pub const PROFILE_VERSION: u32 = 1;

/// How a profile is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOptions {
    /// Number of quantile bins for numeric features (default 10, deciles). Features with fewer
    /// distinct values get fewer bins.
    pub bins: usize,
    /// Largest reference sample kept for KS and Wasserstein (default 100,000 values per feature).
    /// Smaller references are kept whole and the statistics are exact.
    pub sample_size: usize,
    /// Seed of the uniform sample drawn when a feature has more than `sample_size` values.
    pub seed: u64,
    /// Declared kinds that override type inference, by feature name.
    #[serde(default)]
    pub kinds: BTreeMap<String, FeatureKind>,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            bins: 10,
            sample_size: 100_000,
            seed: 0x5eed,
            kinds: BTreeMap::new(),
        }
    }
}

/// A fitted reference profile for a set of features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    /// Always [`PROFILE_FORMAT`].
    pub format: String,
    /// Always [`PROFILE_VERSION`] for files this build writes.
    pub version: u32,
    /// When the profile was fitted.
    pub created_at: DateTime<Utc>,
    /// Where the reference data came from (file paths, or several after a merge).
    pub sources: Vec<String>,
    /// Rows in the reference data.
    pub rows: u64,
    /// The options used to fit it.
    pub options: ProfileOptions,
    /// One entry per feature, in the order they were requested.
    pub features: Vec<FeatureProfile>,
    /// Thresholds calibrated on reference chunks, by chunk size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibrations: Vec<Calibration>,
}

/// Thresholds calibrated on reference chunks of one size: `mean + 3 std` of each distance over the
/// chunks (see [`crate::verdict`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Rows per reference chunk.
    pub chunk_size: usize,
    /// Number of chunks the statistics were computed on.
    pub chunks: usize,
    /// Threshold per feature and method.
    pub thresholds: BTreeMap<String, BTreeMap<Method, f64>>,
}

/// The reference profile of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureProfile {
    /// A numeric feature.
    Numeric(NumericProfile),
    /// A categorical feature.
    Categorical(CategoricalProfile),
}

/// Reference profile of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericProfile {
    /// Feature name.
    pub name: String,
    /// Non-missing finite values.
    pub count: u64,
    /// Null or NaN values.
    pub missing: u64,
    /// Infinite values (dropped like missing ones, counted apart).
    #[serde(default)]
    pub infinite: u64,
    /// Mean of the values (`None` without values).
    pub mean: Option<f64>,
    /// Population standard deviation (`ddof = 0`).
    pub std: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Bin edges, ascending: `edges.len() - 1` interior bins `[e_i, e_{i+1})`, the last one closed.
    pub edges: Vec<f64>,
    /// Reference count per bin: underflow, the interior bins, overflow (`edges.len() + 1` entries).
    pub counts: Vec<u64>,
    /// Reference values (sorted ascending) for KS and Wasserstein.
    pub sample: Vec<f64>,
    /// Whether `sample` holds every value (else it is a uniform sample of `sample.len()` values).
    pub sample_exact: bool,
    /// The normalised Wasserstein distance's null law, estimated from `sample` when an adaptive
    /// threshold first needs it ([`crate::thresholds`]); not saved.
    #[serde(skip)]
    pub null_law: crate::null_law::NullLawCache,
}

/// Reference profile of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    /// Feature name.
    pub name: String,
    /// Non-missing values.
    pub count: u64,
    /// Null values.
    pub missing: u64,
    /// The categories, sorted.
    pub categories: Vec<String>,
    /// Reference count per category, parallel to `categories`.
    pub counts: Vec<u64>,
    /// Null laws of the drift statistics at window sizes, estimated when an adaptive threshold
    /// first needs them ([`crate::thresholds`]); not saved.
    #[serde(skip)]
    pub null_law: crate::null_law::NullLawCache,
}

impl FeatureProfile {
    /// Feature name.
    pub fn name(&self) -> &str {
        match self {
            FeatureProfile::Numeric(p) => &p.name,
            FeatureProfile::Categorical(p) => &p.name,
        }
    }

    /// Numeric or categorical.
    pub fn kind(&self) -> FeatureKind {
        match self {
            FeatureProfile::Numeric(_) => FeatureKind::Numeric,
            FeatureProfile::Categorical(_) => FeatureKind::Categorical,
        }
    }

    /// Usable (non-missing) reference values.
    pub fn count(&self) -> u64 {
        match self {
            FeatureProfile::Numeric(p) => p.count,
            FeatureProfile::Categorical(p) => p.count,
        }
    }

    /// Missing reference values (null, NaN; for numeric features also infinities).
    pub fn missing(&self) -> u64 {
        match self {
            FeatureProfile::Numeric(p) => p.missing + p.infinite,
            FeatureProfile::Categorical(p) => p.missing,
        }
    }

    /// Number of histogram bins a window of this feature fills: bins plus underflow and overflow
    /// for numeric features, categories plus the unseen bucket for categorical ones.
    pub fn histogram_len(&self) -> usize {
        match self {
            FeatureProfile::Numeric(p) => p.histogram_len(),
            FeatureProfile::Categorical(p) => p.categories.len() + 1,
        }
    }

    /// Reference histogram aligned with [`Self::histogram_len`] (the unseen bucket is 0).
    pub fn reference_histogram(&self) -> Vec<u64> {
        match self {
            FeatureProfile::Numeric(p) => p.counts.clone(),
            FeatureProfile::Categorical(p) => {
                let mut h = p.counts.clone();
                h.push(0);
                h
            }
        }
    }
}

impl NumericProfile {
    /// Fits the profile of one numeric feature from raw values (NaN is missing, infinities are
    /// counted apart), `missing` further nulls seen by the caller.
    pub fn fit(name: &str, values: &[f64], missing: u64, options: &ProfileOptions) -> Self {
        let mut finite: Vec<f64> = Vec::with_capacity(values.len());
        let (mut nan, mut infinite) = (0u64, 0u64);
        for &v in values {
            if v.is_nan() {
                nan += 1;
            } else if v.is_infinite() {
                infinite += 1;
            } else {
                finite.push(v);
            }
        }
        crate::kernels::sort_total(&mut finite);
        Self::from_sorted(name, finite, missing + nan, infinite, options)
    }

    fn from_sorted(
        name: &str,
        sorted: Vec<f64>,
        missing: u64,
        infinite: u64,
        options: &ProfileOptions,
    ) -> Self {
        let count = sorted.len() as u64;
        let edges = reference_edges(&sorted, options.bins.max(1));
        let mut counts = vec![0u64; if edges.is_empty() { 0 } else { edges.len() + 1 }];
        if !edges.is_empty() {
            kernels::histogram(&edges, &sorted, &mut counts);
        }
        let (mean, std) = mean_std(&sorted);
        let (sample, sample_exact) = sample_sorted(&sorted, options.sample_size, options.seed);
        Self {
            name: name.to_string(),
            count,
            missing,
            infinite,
            mean,
            std,
            min: sorted.first().copied(),
            max: sorted.last().copied(),
            edges,
            counts,
            sample,
            sample_exact,
            null_law: Default::default(),
        }
    }

    /// Histogram length: interior bins plus underflow and overflow (0 without reference data).
    pub fn histogram_len(&self) -> usize {
        self.counts.len()
    }

    /// Bin of `value` in `0..histogram_len()`: 0 is underflow, the last is overflow. `value` must
    /// not be NaN and the profile must have edges.
    pub fn bin_of(&self, value: f64) -> usize {
        kernels::bin_index(&self.edges, value)
    }
}

impl CategoricalProfile {
    /// Fits the profile of one categorical feature from its values (`None` is missing).
    pub fn fit<'a>(name: &str, values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut missing = 0;
        for v in values {
            match v {
                Some(s) => *counts.entry(s.to_string()).or_default() += 1,
                None => missing += 1,
            }
        }
        Self::from_counts(name, counts, missing)
    }

    fn from_counts(name: &str, counts: BTreeMap<String, u64>, missing: u64) -> Self {
        let count = counts.values().sum();
        let (categories, counts) = counts.into_iter().unzip();
        Self {
            name: name.to_string(),
            count,
            missing,
            categories,
            counts,
            null_law: Default::default(),
        }
    }

    /// Index of each category, for counting current values.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect()
    }
}

/// Bin edges for sorted finite values, as described in the module docs. Returns an empty vector
/// for no values and `[x, x]` (one closed bin) for a constant feature.
pub fn reference_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    if first == last {
        return vec![first, first];
    }
    let next_above = |x: f64| sorted.get(sorted.partition_point(|v| *v <= x)).copied();
    let below_last = sorted[sorted.partition_point(|v| *v < last) - 1];
    let second = next_above(first).unwrap_or(last);
    let lower = first - (second - first) / 2.0;
    let upper = last + (last - below_last) / 2.0;
    let mut edges = vec![lower];
    let n = sorted.len();
    for k in 1..bins {
        // numpy.quantile's virtual index for q = k / bins (linear interpolation).
        let position = (k as f64 / bins as f64) * (n - 1) as f64;
        let at = sorted[position.floor() as usize];
        let Some(above) = next_above(at) else {
            continue;
        };
        let cut = midpoint(at, above);
        if cut > *edges.last().unwrap_or(&lower) && cut < upper {
            edges.push(cut);
        }
    }
    edges.push(upper);
    edges
}

fn midpoint(a: f64, b: f64) -> f64 {
    let m = a + (b - a) / 2.0;
    if m <= a { b } else { m }
}

fn mean_std(sorted: &[f64]) -> (Option<f64>, Option<f64>) {
    if sorted.is_empty() {
        return (None, None);
    }
    let n = sorted.len() as f64;
    let mean = kernels::sum(sorted) / n;
    let m2: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
    (Some(mean), Some((m2 / n).sqrt()))
}

fn sample_sorted(sorted: &[f64], cap: usize, seed: u64) -> (Vec<f64>, bool) {
    if sorted.len() <= cap {
        return (sorted.to_vec(), true);
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, sorted.len(), cap).into_vec();
    idx.sort_unstable();
    (idx.into_iter().map(|i| sorted[i]).collect(), false)
}

impl ReferenceProfile {
    /// The profile's features and their kinds, in profile order: the feature columns of the
    /// model's event batches ([`types::event::event_schema`]).
    pub fn feature_kinds(&self) -> Vec<(String, FeatureKind)> {
        self.features
            .iter()
            .map(|f| (f.name().to_string(), f.kind()))
            .collect()
    }

    /// Fits a profile for `features` of `table`.
    ///
    /// Feature kinds come from `options.kinds` where declared, else from the column type
    /// ([`infer_kind`]). Features are fitted in parallel, one worker per core. Every problem is
    /// collected before returning, so one bad feature does not hide the others.
    ///
    /// # Errors
    /// [`AnalyzerError::MissingColumn`] for a feature that is not a column,
    /// [`AnalyzerError::InvalidValue`] for text in a column declared numeric (naming the line),
    /// [`AnalyzerError::UnsupportedType`] for columns such as timestamps; several at once as
    /// [`AnalyzerError::Multiple`].
    pub fn fit(
        table: &Table,
        features: &[String],
        options: &ProfileOptions,
    ) -> Result<Self, AnalyzerError> {
        // One worker per core: each numeric feature's sort is independent of the others.
        let profiles =
            crate::parallel::per_feature(features.len(), &crate::parallel::NoProgress, |i| {
                fit_feature(table, &features[i], options)
            })?;
        Ok(Self {
            format: PROFILE_FORMAT.to_string(),
            version: PROFILE_VERSION,
            created_at: Utc::now(),
            sources: vec![table.path.display().to_string()],
            rows: table.num_rows as u64,
            options: options.clone(),
            features: profiles,
            calibrations: Vec::new(),
        })
    }

    /// The profile of feature `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name() == name)
    }

    /// Feature names in profile order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name().to_string()).collect()
    }

    /// Writes the profile as pretty JSON.
    ///
    /// # Errors
    /// [`AnalyzerError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), AnalyzerError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| AnalyzerError::Profile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, json)
            .and_then(|()| fs::rename(&tmp, path))
            .map_err(|source| AnalyzerError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Reads a profile written by [`Self::save`], checking its format and version.
    ///
    /// # Errors
    /// [`AnalyzerError::Io`] when unreadable; [`AnalyzerError::Profile`] when it is not a
    /// driftwatch profile, has an unsupported version, or is inconsistent.
    pub fn load(path: &Path) -> Result<Self, AnalyzerError> {
        let bytes = fs::read(path).map_err(|source| AnalyzerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| AnalyzerError::Profile {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(PROFILE_FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "format is `{other}`, expected `{PROFILE_FORMAT}`"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "no `format` field (expected `{PROFILE_FORMAT}`)"
                )));
            }
        }
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(PROFILE_VERSION) => {}
            Some(v) => {
                return Err(invalid(format!(
                    "version {v} is not supported by this build (it reads version {PROFILE_VERSION})"
                )));
            }
            None => return Err(invalid("no `version` field".into())),
        }
        let profile: Self = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        profile.validate().map_err(invalid)?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        for f in &self.features {
            match f {
                FeatureProfile::Numeric(p) => {
                    if !p.edges.is_empty() && p.counts.len() != p.edges.len() + 1 {
                        return Err(format!(
                            "feature `{}`: {} counts for {} edges",
                            p.name,
                            p.counts.len(),
                            p.edges.len()
                        ));
                    }
                    if !p.edges.is_sorted() || !p.sample.is_sorted() {
                        return Err(format!(
                            "feature `{}`: edges and sample must be sorted",
                            p.name
                        ));
                    }
                }
                FeatureProfile::Categorical(p) => {
                    if p.categories.len() != p.counts.len() {
                        return Err(format!(
                            "feature `{}`: {} counts for {} categories",
                            p.name,
                            p.counts.len(),
                            p.categories.len()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Merges two profiles of the same features (same names and kinds), for example fitted on two
    /// days of reference data.
    ///
    /// Categorical counts add up. A numeric feature whose two samples are both exact and together
    /// fit in `sample_size` is refitted from the union, so the result equals a profile fitted on
    /// both inputs at once. Otherwise the two must have identical bin edges: counts add, mean and
    /// standard deviation combine exactly (Chan, Golub and LeVeque 1979), and the samples are
    /// subsampled in proportion to their populations.
    ///
    /// # Errors
    /// [`AnalyzerError::Merge`] when the features differ in name or kind, or when inexact numeric
    /// profiles have different bin edges.
    pub fn merge(&self, other: &Self) -> Result<Self, AnalyzerError> {
        if self.feature_names() != other.feature_names() {
            return Err(AnalyzerError::Merge(format!(
                "the profiles have different features: [{}] and [{}]",
                self.feature_names().join(", "),
                other.feature_names().join(", ")
            )));
        }
        let mut features = Vec::with_capacity(self.features.len());
        for (a, b) in self.features.iter().zip(&other.features) {
            features.push(merge_feature(a, b, &self.options)?);
        }
        let mut sources = self.sources.clone();
        sources.extend(other.sources.iter().cloned());
        Ok(Self {
            format: PROFILE_FORMAT.to_string(),
            version: PROFILE_VERSION,
            created_at: Utc::now(),
            sources,
            rows: self.rows + other.rows,
            options: self.options.clone(),
            features,
            calibrations: Vec::new(),
        })
    }
}

fn fit_feature(
    table: &Table,
    name: &str,
    options: &ProfileOptions,
) -> Result<FeatureProfile, AnalyzerError> {
    let field = table
        .schema
        .field_with_name(name)
        .map_err(|_| AnalyzerError::MissingColumn {
            path: table.path.clone(),
            column: name.to_string(),
            origin: "the feature list".into(),
            available: table.column_names().join(", "),
        })?;
    let kind = match options.kinds.get(name) {
        Some(k) => *k,
        None => infer_kind(field.data_type()).ok_or_else(|| AnalyzerError::UnsupportedType {
            column: name.to_string(),
            data_type: field.data_type().to_string(),
        })?,
    };
    let chunks = table.column(name).unwrap_or_default();
    match kind {
        FeatureKind::Numeric => {
            let mut values = Vec::with_capacity(table.num_rows);
            let mut nulls = 0u64;
            let mut row = 0usize;
            for chunk in &chunks {
                let floats = to_f64(chunk).map_err(|bad| AnalyzerError::InvalidValue {
                    path: table.path.clone(),
                    location: table.locate(row + bad.index),
                    column: name.to_string(),
                    message: format!("`{}` is not a number (the feature is numeric)", bad.value),
                })?;
                nulls += floats.null_count() as u64;
                values.extend(floats.iter().flatten());
                row += chunk.len();
            }
            Ok(FeatureProfile::Numeric(NumericProfile::fit(
                name, &values, nulls, options,
            )))
        }
        FeatureKind::Categorical => {
            let mut texts = Vec::with_capacity(chunks.len());
            for chunk in &chunks {
                texts.push(
                    to_text(chunk).map_err(|message| AnalyzerError::InvalidValue {
                        path: table.path.clone(),
                        location: "any row".into(),
                        column: name.to_string(),
                        message,
                    })?,
                );
            }
            Ok(FeatureProfile::Categorical(CategoricalProfile::fit(
                name,
                texts.iter().flat_map(|t| t.iter()),
            )))
        }
    }
}

fn merge_feature(
    a: &FeatureProfile,
    b: &FeatureProfile,
    options: &ProfileOptions,
) -> Result<FeatureProfile, AnalyzerError> {
    match (a, b) {
        (FeatureProfile::Categorical(a), FeatureProfile::Categorical(b)) => {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for p in [a, b] {
                for (c, n) in p.categories.iter().zip(&p.counts) {
                    *counts.entry(c.clone()).or_default() += n;
                }
            }
            Ok(FeatureProfile::Categorical(
                CategoricalProfile::from_counts(&a.name, counts, a.missing + b.missing),
            ))
        }
        (FeatureProfile::Numeric(a), FeatureProfile::Numeric(b)) => {
            merge_numeric(a, b, options).map(FeatureProfile::Numeric)
        }
        _ => Err(AnalyzerError::Merge(format!(
            "feature `{}` is {} in one profile and {} in the other",
            a.name(),
            a.kind(),
            b.kind()
        ))),
    }
}

fn merge_numeric(
    a: &NumericProfile,
    b: &NumericProfile,
    options: &ProfileOptions,
) -> Result<NumericProfile, AnalyzerError> {
    let missing = a.missing + b.missing;
    let infinite = a.infinite + b.infinite;
    if a.sample_exact && b.sample_exact && a.sample.len() + b.sample.len() <= options.sample_size {
        let mut all = Vec::with_capacity(a.sample.len() + b.sample.len());
        all.extend_from_slice(&a.sample);
        all.extend_from_slice(&b.sample);
        crate::kernels::sort_total(&mut all);
        return Ok(NumericProfile::from_sorted(
            &a.name, all, missing, infinite, options,
        ));
    }
    if a.count == 0 {
        return Ok(NumericProfile {
            missing,
            infinite,
            ..b.clone()
        });
    }
    if b.count == 0 {
        return Ok(NumericProfile {
            missing,
            infinite,
            ..a.clone()
        });
    }
    if a.edges != b.edges {
        return Err(AnalyzerError::Merge(format!(
            "feature `{}`: the profiles were fitted on different data and their bin edges differ; \
             refit one profile from both inputs instead",
            a.name
        )));
    }
    let counts = a.counts.iter().zip(&b.counts).map(|(x, y)| x + y).collect();
    let (na, nb) = (a.count as f64, b.count as f64);
    let (ma, mb) = (a.mean.unwrap_or(0.0), b.mean.unwrap_or(0.0));
    let (sa, sb) = (a.std.unwrap_or(0.0), b.std.unwrap_or(0.0));
    let n = na + nb;
    let delta = mb - ma;
    let mean = ma + delta * nb / n;
    let m2 = sa * sa * na + sb * sb * nb + delta * delta * na * nb / n;
    // Proportional subsample of both samples, deterministic.
    let cap = options.sample_size;
    let take_a = ((cap as f64) * na / n).round() as usize;
    let take_b = cap.saturating_sub(take_a);
    let mut sample = stride_sample(&a.sample, take_a);
    sample.extend(stride_sample(&b.sample, take_b));
    crate::kernels::sort_total(&mut sample);
    Ok(NumericProfile {
        name: a.name.clone(),
        count: a.count + b.count,
        missing,
        infinite,
        mean: Some(mean),
        std: Some((m2 / n).sqrt()),
        min: a.min.zip(b.min).map(|(x, y)| x.min(y)),
        max: a.max.zip(b.max).map(|(x, y)| x.max(y)),
        edges: a.edges.clone(),
        counts,
        sample,
        sample_exact: false,
        null_law: Default::default(),
    })
}

/// `k` values spread evenly over a sorted sample (all of it when it is no longer than `k`).
fn stride_sample(sorted: &[f64], k: usize) -> Vec<f64> {
    if sorted.len() <= k {
        return sorted.to_vec();
    }
    (0..k).map(|i| sorted[i * sorted.len() / k]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e10_edges_sit_between_atoms() {
        let mut values = Vec::new();
        for v in [0.1, 0.2, 0.3] {
            values.extend(std::iter::repeat_n(v, 100));
        }
        let p = NumericProfile::fit("x", &values, 0, &ProfileOptions::default());
        assert_eq!(p.edges.len(), 4, "{:?}", p.edges);
        assert!((p.edges[0] - 0.05).abs() < 1e-12 && (p.edges[3] - 0.35).abs() < 1e-12);
        assert_eq!(p.counts, vec![0, 100, 100, 100, 0]);
        // A shift of 1e-4 keeps every value in its bin.
        assert_eq!(p.bin_of(0.1001), 1);
        assert_eq!(p.bin_of(0.3001), 3);
        assert_eq!(p.bin_of(0.0999), 1);
    }

    #[test]
    fn constant_feature_has_one_closed_bin() {
        let p = NumericProfile::fit("c", &[5.0; 10], 0, &ProfileOptions::default());
        assert_eq!(p.edges, vec![5.0, 5.0]);
        assert_eq!(p.counts, vec![0, 10, 0]);
        assert_eq!(p.bin_of(5.0), 1);
        assert_eq!(p.bin_of(5.1), 2);
        assert_eq!(p.bin_of(4.9), 0);
    }

    #[test]
    fn continuous_deciles_hold_a_tenth_each() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.37).collect();
        let p = NumericProfile::fit("x", &values, 0, &ProfileOptions::default());
        assert_eq!(p.counts.len(), 12);
        assert_eq!(p.counts[0], 0);
        assert_eq!(p.counts[11], 0);
        for c in &p.counts[1..11] {
            assert!((99..=101).contains(c), "{:?}", p.counts);
        }
        assert_eq!(p.counts.iter().sum::<u64>(), 1000);
    }

    #[test]
    fn nan_and_infinity_are_counted_not_binned() {
        let p = NumericProfile::fit(
            "x",
            &[1.0, f64::NAN, f64::INFINITY, 2.0],
            3,
            &ProfileOptions::default(),
        );
        assert_eq!((p.count, p.missing, p.infinite), (2, 4, 1));
    }

    #[test]
    fn large_reference_is_sampled_uniformly() {
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let options = ProfileOptions {
            sample_size: 100,
            ..ProfileOptions::default()
        };
        let p = NumericProfile::fit("x", &values, 0, &options);
        assert_eq!(p.sample.len(), 100);
        assert!(!p.sample_exact);
        assert!(p.sample.is_sorted());
        assert_eq!(p.count, 1000);
        assert_eq!(p.counts.iter().sum::<u64>(), 1000);
    }
}
