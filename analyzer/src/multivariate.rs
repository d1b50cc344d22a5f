//! Multivariate drift: the PCA reconstruction error as NannyML 0.13.1 defines it (issue 21 item 4).
//!
//! Univariate statistics judge each feature's marginal distribution; a change in how features go
//! together (a correlation that breaks while every marginal stays the same) escapes them. The
//! reconstruction error catches it: a PCA fitted on the reference keeps the directions that explain
//! most of its variance, and rows whose features no longer relate as they did are reconstructed
//! worse from those directions.
//!
//! Every step follows NannyML's `DataReconstructionDriftCalculator`
//! (`nannyml/drift/multivariate/data_reconstruction/calculator.py`) with its defaults:
//!
//! 1. **Imputation** (`SimpleImputer`): a missing numeric value (null or NaN) becomes the mean of
//!    the reference's present values; a missing category becomes the reference's most frequent one
//!    (the smallest by text order on a tie, as `strategy='most_frequent'` does).
//! 2. **Encoding** (`category_encoders.CountEncoder(normalize=True)`): a category becomes its
//!    share of the imputed reference rows; a category the reference lacks becomes 0
//!    (`handle_unknown='value'`).
//! 3. **Standardisation** (`sklearn.preprocessing.StandardScaler`): `z = (x - mean) / scale` with
//!    the reference's mean and population standard deviation; a constant column (variance within
//!    sklearn's `_is_constant_feature` bound) keeps scale 1.
//! 4. **PCA** (`sklearn.decomposition.PCA(n_components=0.65)`; with at most 1,000 features and
//!    ten times as many rows sklearn 1.5+ takes the `covariance_eigh` solver): the eigenvectors of
//!    the sample covariance `C = (ZᵀZ - n m mᵀ) / (n - 1)` (`m` the column means of `Z`) in
//!    decreasing order of eigenvalue (negative eigenvalues clipped to 0); the first `k` are kept,
//!    `k = searchsorted(cumsum(ratio), 0.65, side='right') + 1`, i.e. one more than the number of
//!    cumulative explained-variance ratios at or below 0.65. Signs follow `svd_flip` (the largest
//!    entry of each component positive); the error does not depend on them.
//! 5. **Reconstruction error** of a row `z` (length `d`): `t = zVᵀ - mVᵀ` (length `k`, `V` the
//!    `k × d` components), `ẑ = tV + m`, error `‖z - ẑ‖₂`; a chunk's value is the mean over its
//!    rows, its sampling error the rows' standard deviation (ddof 1) over `√rows`.
//! 6. **Band** (`nannyml/thresholds.py`, `StandardDeviationThreshold`): the same chunking applied to
//!    the reference gives one value per reference chunk; the band is their mean ± 3 population
//!    standard deviations, and a lower bound at or below 0 is dropped (`lower_threshold_value_limit
//!    = 0` with `override_using_none`). A chunk alerts unless `lower < value < upper`.
//!
//! `tests/multivariate.rs` compares every chunk's value and the band with NannyML's on car_loan and
//! on a generated set with a correlation that breaks (`bench/multivariate_parity.py` writes the
//! fixture).

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, StringArray};
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::columns::{FeatureKind, to_f64, to_text};
use crate::error::AnalyzerError;
use crate::table::Table;

/// NannyML's default share of the reference variance the kept components explain
/// (`n_components=0.65`).
pub const DEFAULT_VARIANCE_KEPT: f64 = 0.65;
/// NannyML's default band half-width in reference standard deviations
/// (`StandardDeviationThreshold(3, 3)`).
pub const BAND_STD_MULTIPLIER: f64 = 3.0;

/// How one feature becomes a number before standardisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// The value itself; missing values become `fill`, the reference mean.
    Numeric {
        /// The mean of the reference's present values.
        fill: f64,
    },
    /// The category's share of the reference rows (0 for a category the reference lacks);
    /// missing values become `fill`, the reference's most frequent category.
    Categorical {
        /// The most frequent reference category.
        fill: String,
        /// Share of the (imputed) reference rows per category.
        frequencies: BTreeMap<String, f64>,
    },
}

/// One input feature of the PCA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedFeature {
    /// Column name.
    pub name: String,
    /// Imputation and encoding.
    pub encoding: Encoding,
}

/// The PCA reconstruction model fitted on a reference table.
///
/// Shapes: `d` features, `k` kept components; `scaler_mean`, `scaler_scale` and `pca_mean` have
/// length `d`, `components` is `k × d` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionModel {
    /// The features, in the order of the columns of the matrices.
    pub features: Vec<EncodedFeature>,
    /// `StandardScaler.mean_`.
    pub scaler_mean: Vec<f64>,
    /// `StandardScaler.scale_`.
    pub scaler_scale: Vec<f64>,
    /// `PCA.mean_`: the column means of the standardised reference (about 0).
    pub pca_mean: Vec<f64>,
    /// `PCA.components_`, `k × d` row-major.
    pub components: Vec<f64>,
    /// `PCA.explained_variance_ratio_` of the kept components.
    pub explained_variance_ratio: Vec<f64>,
    /// Reference rows the model was fitted on.
    pub reference_rows: u64,
}

impl ReconstructionModel {
    /// Fits the model on `features` (name and kind) of `reference`, keeping the components that
    /// explain more than `variance_kept` (in `(0, 1)`) of the variance.
    ///
    /// # Errors
    /// [`AnalyzerError::Config`] for a `variance_kept` outside `(0, 1)`, no features, no rows, or a
    /// feature without a single present reference value; [`AnalyzerError::MissingColumn`] and
    /// [`AnalyzerError::InvalidValue`] for a column that is absent or does not read as its kind.
    pub fn fit(
        reference: &Table,
        features: &[(String, FeatureKind)],
        variance_kept: f64,
    ) -> Result<Self, AnalyzerError> {
        let config = |message: String| AnalyzerError::Config {
            key: "multivariate".into(),
            message,
        };
        if !(variance_kept > 0.0 && variance_kept < 1.0) {
            return Err(config(format!(
                "variance kept {variance_kept} is not in (0, 1)"
            )));
        }
        if features.is_empty() {
            return Err(config("no features".into()));
        }
        let n = reference.num_rows;
        if n < 2 {
            return Err(config(format!(
                "the reference has {n} rows; the PCA needs at least 2"
            )));
        }
        // Impute and encode, column by column (NannyML: SimpleImputer, then CountEncoder).
        let mut encoded_features = Vec::with_capacity(features.len());
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(features.len());
        for (name, kind) in features {
            let raw = read_column(reference, name, *kind, "the reference")?;
            let (encoding, column) = match raw {
                RawColumn::Numeric(values) => {
                    let present: Vec<f64> =
                        values.iter().copied().filter(|v| !v.is_nan()).collect();
                    if present.is_empty() {
                        return Err(config(format!("`{name}` has no value in the reference")));
                    }
                    let fill = present.iter().sum::<f64>() / present.len() as f64;
                    let column = values
                        .iter()
                        .map(|v| if v.is_nan() { fill } else { *v })
                        .collect();
                    (Encoding::Numeric { fill }, column)
                }
                RawColumn::Categorical(arrays) => {
                    let mut counts: HashMap<&str, u64> = HashMap::new();
                    let mut missing = 0u64;
                    for array in &arrays {
                        for v in array.iter() {
                            match v {
                                Some(s) => *counts.entry(s).or_default() += 1,
                                None => missing += 1,
                            }
                        }
                    }
                    // Most frequent, the smallest on a tie (SimpleImputer's `_most_frequent`).
                    let Some(fill) = counts
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                        .map(|(k, _)| (*k).to_string())
                    else {
                        return Err(config(format!("`{name}` has no value in the reference")));
                    };
                    *counts.entry(fill.as_str()).or_default() += missing;
                    let frequencies: BTreeMap<String, f64> = counts
                        .iter()
                        .map(|(k, c)| ((*k).to_string(), *c as f64 / n as f64))
                        .collect();
                    let encoding = Encoding::Categorical { fill, frequencies };
                    let column = encode_categories(&arrays, &encoding, n);
                    (encoding, column)
                }
            };
            encoded_features.push(EncodedFeature {
                name: name.clone(),
                encoding,
            });
            columns.push(column);
        }
        let d = columns.len();
        let nf = n as f64;

        // StandardScaler (sklearn `_incremental_mean_and_var` from zero, `_is_constant_feature`).
        let mut scaler_mean = Vec::with_capacity(d);
        let mut scaler_scale = Vec::with_capacity(d);
        for column in &mut columns {
            let mean = column.iter().sum::<f64>() / nf;
            let correction: f64 = column.iter().map(|x| x - mean).sum();
            let squares: f64 = column.iter().map(|x| (x - mean) * (x - mean)).sum();
            let var = (squares - correction * correction / nf) / nf;
            let eps = f64::EPSILON;
            let bound = nf * eps * var + (nf * mean * eps).powi(2);
            let scale = if var <= bound { 1.0 } else { var.sqrt() };
            for x in column.iter_mut() {
                *x = (*x - mean) / scale;
            }
            scaler_mean.push(mean);
            scaler_scale.push(scale);
        }

        // PCA, covariance_eigh solver.
        let pca_mean: Vec<f64> = columns.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
        let mut cov = DMatrix::<f64>::zeros(d, d);
        for i in 0..d {
            for j in i..d {
                let dot: f64 = columns[i].iter().zip(&columns[j]).map(|(a, b)| a * b).sum();
                let c = (dot - nf * pca_mean[i] * pca_mean[j]) / (nf - 1.0);
                cov[(i, j)] = c;
                cov[(j, i)] = c;
            }
        }
        let eigen = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let eigenvalues: Vec<f64> = order
            .iter()
            .map(|&i| eigen.eigenvalues[i].max(0.0))
            .collect();
        let total: f64 = eigenvalues.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return Err(config(
                "the standardised reference has no variance (every feature is constant)".into(),
            ));
        }
        let ratios: Vec<f64> = eigenvalues.iter().map(|v| v / total).collect();
        let mut cumulative = 0.0;
        let at_or_below = ratios
            .iter()
            .take_while(|r| {
                cumulative += **r;
                cumulative <= variance_kept
            })
            .count();
        let k = (at_or_below + 1).min(d);
        let mut components = Vec::with_capacity(k * d);
        for &i in order.iter().take(k) {
            let column = eigen.eigenvectors.column(i);
            // svd_flip(u_based_decision=False): the entry of largest magnitude is positive.
            let mut largest = 0.0f64;
            for v in column.iter() {
                if v.abs() > largest.abs() {
                    largest = *v;
                }
            }
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            components.extend(column.iter().map(|v| v * sign));
        }
        Ok(Self {
            features: encoded_features,
            scaler_mean,
            scaler_scale,
            pca_mean,
            components,
            explained_variance_ratio: ratios[..k].to_vec(),
            reference_rows: n as u64,
        })
    }

    /// Number of kept components `k`.
    #[must_use]
    pub fn n_components(&self) -> usize {
        self.explained_variance_ratio.len()
    }

    /// The reconstruction error of every row of `table` (length `table.num_rows`).
    ///
    /// # Errors
    /// [`AnalyzerError::MissingColumn`] for a feature column `table` lacks;
    /// [`AnalyzerError::InvalidValue`] for text in a numeric feature.
    pub fn row_errors(&self, table: &Table) -> Result<Vec<f64>, AnalyzerError> {
        let d = self.features.len();
        let k = self.n_components();
        let n = table.num_rows;
        let mut columns = Vec::with_capacity(d);
        for (j, f) in self.features.iter().enumerate() {
            let kind = match f.encoding {
                Encoding::Numeric { .. } => FeatureKind::Numeric,
                Encoding::Categorical { .. } => FeatureKind::Categorical,
            };
            let mut column = match read_column(table, &f.name, kind, "the current data")? {
                RawColumn::Numeric(values) => {
                    let Encoding::Numeric { fill } = f.encoding else {
                        return Err(AnalyzerError::Query("encoding mismatch".into()));
                    };
                    values
                        .into_iter()
                        .map(|v| if v.is_nan() { fill } else { v })
                        .collect::<Vec<_>>()
                }
                RawColumn::Categorical(arrays) => encode_categories(&arrays, &f.encoding, n),
            };
            for x in &mut column {
                *x = (*x - self.scaler_mean[j]) / self.scaler_scale[j];
            }
            columns.push(column);
        }
        // mVᵀ, subtracted after the projection as sklearn's `_transform` does.
        let mean_projection: Vec<f64> = (0..k)
            .map(|c| {
                (0..d)
                    .map(|j| self.pca_mean[j] * self.components[c * d + j])
                    .sum()
            })
            .collect();
        let mut errors = Vec::with_capacity(n);
        let mut z = vec![0.0; d];
        let mut t = vec![0.0; k];
        for row in 0..n {
            for (zj, column) in z.iter_mut().zip(&columns) {
                *zj = column[row];
            }
            for (c, tc) in t.iter_mut().enumerate() {
                let v = &self.components[c * d..(c + 1) * d];
                *tc = z.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() - mean_projection[c];
            }
            let mut squares = 0.0;
            for (j, zj) in z.iter().enumerate() {
                let reconstructed = (0..k)
                    .map(|c| t[c] * self.components[c * d + j])
                    .sum::<f64>()
                    + self.pca_mean[j];
                let r = zj - reconstructed;
                squares += r * r;
            }
            errors.push(squares.sqrt());
        }
        Ok(errors)
    }

    /// Per chunk, the mean reconstruction error and its sampling error, for rows assigned to
    /// chunks by `chunk_of` (0-based chunk per row, `u32::MAX` for none; `chunks` chunks).
    ///
    /// # Errors
    /// As [`Self::row_errors`].
    pub fn chunk_errors(
        &self,
        table: &Table,
        chunk_of: &[u32],
        chunks: usize,
    ) -> Result<Vec<ChunkError>, AnalyzerError> {
        let errors = self.row_errors(table)?;
        let mut per_chunk: Vec<Vec<f64>> = vec![Vec::new(); chunks];
        for (e, &c) in errors.iter().zip(chunk_of) {
            if let Some(v) = per_chunk.get_mut(c as usize) {
                v.push(*e);
            }
        }
        Ok(per_chunk.iter().map(|v| ChunkError::of(v)).collect())
    }
}

/// One chunk's reconstruction error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkError {
    /// Rows in the chunk.
    pub rows: u64,
    /// Mean reconstruction error (`None` for an empty chunk).
    pub mean: Option<f64>,
    /// Standard deviation (ddof 1) over `√rows` (`None` under 2 rows).
    pub sampling_error: Option<f64>,
}

impl ChunkError {
    fn of(errors: &[f64]) -> Self {
        let n = errors.len();
        let mean = (n > 0).then(|| errors.iter().sum::<f64>() / n as f64);
        let sampling_error = mean.filter(|_| n > 1).map(|m| {
            let var = errors.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / (n - 1) as f64;
            var.sqrt() / (n as f64).sqrt()
        });
        Self {
            rows: n as u64,
            mean,
            sampling_error,
        }
    }
}

/// The alert band: `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Lower threshold (`None` when mean - 3 std is at or below 0).
    pub lower: Option<f64>,
    /// Upper threshold (`None` without reference chunk values).
    pub upper: Option<f64>,
}

impl Band {
    /// NannyML's `StandardDeviationThreshold` over the reference chunks' values: mean ± 3
    /// population standard deviations (NaN values ignored), the lower bound dropped at or below 0.
    #[must_use]
    pub fn from_reference(values: &[f64]) -> Self {
        let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if present.is_empty() {
            return Self {
                lower: None,
                upper: None,
            };
        }
        let n = present.len() as f64;
        let mean = present.iter().sum::<f64>() / n;
        let std = (present.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        let lower = mean - BAND_STD_MULTIPLIER * std;
        Self {
            lower: (lower > 0.0).then_some(lower),
            upper: Some(mean + BAND_STD_MULTIPLIER * std),
        }
    }

    /// Whether `value` is outside the band: `!(lower < value < upper)` (a NaN value alerts, as in
    /// NannyML).
    #[must_use]
    pub fn alerts(&self, value: f64) -> bool {
        let lower = self.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = self.upper.unwrap_or(f64::INFINITY);
        !(lower < value && value < upper)
    }
}

/// A chunk's multivariate result in the analysis report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkMultivariate {
    /// Mean PCA reconstruction error of the chunk's rows.
    pub reconstruction_error: Option<f64>,
    /// Its sampling error (standard deviation over `√rows`).
    pub sampling_error: Option<f64>,
    /// Whether the value is outside the reference band.
    pub alert: bool,
}

/// The multivariate summary of an analysis report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateSummary {
    /// Always `pca_reconstruction_error`.
    pub method: String,
    /// The features, in PCA column order.
    pub features: Vec<String>,
    /// The share of reference variance the kept components must explain (0.65).
    pub variance_kept: f64,
    /// Kept components.
    pub components: usize,
    /// Share of the reference variance they explain.
    pub explained_variance: f64,
    /// Rows per reference chunk.
    pub reference_chunk_rows: usize,
    /// The mean reconstruction error of each reference chunk (the band's input).
    pub reference_chunks: Vec<f64>,
    /// Lower threshold (`None` when open).
    pub lower_threshold: Option<f64>,
    /// Upper threshold.
    pub upper_threshold: Option<f64>,
    /// Analysis chunks outside the band.
    pub alert_chunks: Vec<usize>,
}

/// Fits the reconstruction model on `reference`, scores the reference in consecutive chunks of
/// `reference_chunk_rows` rows for the band (the last one kept even when incomplete, as NannyML's
/// `SizeBasedChunker(incomplete='keep')` does, unless `full_reference_chunks_only` and there are
/// at least two full ones), and scores `current`, whose rows `chunk_of` assigns to `chunks` chunks
/// (`u32::MAX` for none).
///
/// Returns the summary and one entry per current chunk, in chunk order.
/// [`crate::batch::attach_multivariate`] runs it for an analysis report.
///
/// # Errors
/// As [`ReconstructionModel::fit`] and [`ReconstructionModel::row_errors`];
/// [`AnalyzerError::Config`] for `reference_chunk_rows` 0.
#[allow(clippy::too_many_arguments)]
pub fn analyze_multivariate(
    reference: &Table,
    current: &Table,
    features: &[(String, FeatureKind)],
    chunk_of: &[u32],
    chunks: usize,
    reference_chunk_rows: usize,
    full_reference_chunks_only: bool,
    variance_kept: f64,
) -> Result<(MultivariateSummary, Vec<ChunkMultivariate>), AnalyzerError> {
    if reference_chunk_rows == 0 {
        return Err(AnalyzerError::Config {
            key: "multivariate".into(),
            message: "reference chunks of 0 rows".into(),
        });
    }
    let model = ReconstructionModel::fit(reference, features, variance_kept)?;
    let reference_of_row: Vec<u32> = (0..reference.num_rows)
        .map(|i| u32::try_from(i / reference_chunk_rows).unwrap_or(u32::MAX))
        .collect();
    let reference_chunks = reference.num_rows.div_ceil(reference_chunk_rows);
    let mut reference_values: Vec<f64> = model
        .chunk_errors(reference, &reference_of_row, reference_chunks)?
        .iter()
        .map(|c| c.mean.unwrap_or(f64::NAN))
        .collect();
    let full = reference.num_rows / reference_chunk_rows;
    if full_reference_chunks_only && full >= 2 {
        reference_values.truncate(full);
    }
    let band = Band::from_reference(&reference_values);
    let per_chunk: Vec<ChunkMultivariate> = model
        .chunk_errors(current, chunk_of, chunks)?
        .iter()
        .map(|c| ChunkMultivariate {
            reconstruction_error: c.mean,
            sampling_error: c.sampling_error,
            alert: band.alerts(c.mean.unwrap_or(f64::NAN)),
        })
        .collect();
    let summary = MultivariateSummary {
        method: "pca_reconstruction_error".into(),
        features: model.features.iter().map(|f| f.name.clone()).collect(),
        variance_kept,
        components: model.n_components(),
        explained_variance: model.explained_variance_ratio.iter().sum(),
        reference_chunk_rows,
        reference_chunks: reference_values,
        lower_threshold: band.lower,
        upper_threshold: band.upper,
        alert_chunks: per_chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.alert)
            .map(|(i, _)| i)
            .collect(),
    };
    Ok((summary, per_chunk))
}

/// A feature column read as its kind: numbers with NaN for missing, or text arrays.
enum RawColumn {
    Numeric(Vec<f64>),
    Categorical(Vec<StringArray>),
}

fn read_column(
    table: &Table,
    name: &str,
    kind: FeatureKind,
    origin: &str,
) -> Result<RawColumn, AnalyzerError> {
    let arrays = table
        .column(name)
        .ok_or_else(|| AnalyzerError::MissingColumn {
            path: table.path.clone(),
            column: name.to_string(),
            origin: format!("the multivariate features of {origin}"),
            available: table.column_names().join(", "),
        })?;
    let mut row = 0usize;
    match kind {
        FeatureKind::Numeric => {
            let mut out = Vec::with_capacity(table.num_rows);
            for array in &arrays {
                let floats = to_f64(array).map_err(|bad| AnalyzerError::InvalidValue {
                    path: table.path.clone(),
                    location: table.locate(row + bad.index),
                    column: name.to_string(),
                    message: format!(
                        "`{}` is not a number (the feature is numeric in the reference)",
                        bad.value
                    ),
                })?;
                out.extend(floats.iter().map(|v| v.unwrap_or(f64::NAN)));
                row += array.len();
            }
            Ok(RawColumn::Numeric(out))
        }
        FeatureKind::Categorical => {
            let mut out = Vec::with_capacity(table.num_rows);
            for array in &arrays {
                let text = to_text(array).map_err(|message| AnalyzerError::InvalidValue {
                    path: table.path.clone(),
                    location: table.locate(row),
                    column: name.to_string(),
                    message,
                })?;
                out.push(text);
                row += array.len();
            }
            Ok(RawColumn::Categorical(out))
        }
    }
}

/// Frequency encoding with imputation (a missing category becomes the fill's frequency) of `rows`
/// values in `arrays`.
fn encode_categories(arrays: &[StringArray], encoding: &Encoding, rows: usize) -> Vec<f64> {
    let Encoding::Categorical { fill, frequencies } = encoding else {
        return vec![f64::NAN; rows];
    };
    let fill_frequency = frequencies.get(fill).copied().unwrap_or(0.0);
    let lookup: HashMap<&str, f64> = frequencies.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut out = Vec::with_capacity(rows);
    for array in arrays {
        out.extend(array.iter().map(|v| match v {
            None => fill_frequency,
            Some(s) => lookup.get(s).copied().unwrap_or(0.0),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_drops_a_lower_bound_at_or_below_zero_and_alerts_outside() {
        let band = Band::from_reference(&[1.0, 1.1, 0.9]);
        assert!(band.lower.is_some());
        assert!(!band.alerts(1.0));
        assert!(band.alerts(2.0));
        assert!(band.alerts(f64::NAN));
        let wide = Band::from_reference(&[0.1, 5.0]);
        assert_eq!(wide.lower, None);
        assert!(!wide.alerts(0.0));
    }

    #[test]
    fn chunk_error_mean_and_sampling_error() {
        let c = ChunkError::of(&[1.0, 2.0, 3.0]);
        assert_eq!(c.mean, Some(2.0));
        assert!((c.sampling_error.unwrap_or(0.0) - 1.0 / 3f64.sqrt()).abs() < 1e-15);
        assert_eq!(ChunkError::of(&[]).mean, None);
    }
}
