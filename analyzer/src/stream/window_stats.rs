//! A closed window's statistics in one typed pass over its record batches: the row count, the
//! latency (seconds) and confidence observations with their quantiles, each feature's present
//! count (for the missing ratio) and its mergeable drift state ([`FeatureState`]), judged against
//! the model's reference profile at the end.
//!
//! Every value crosses as a plain Rust value (`f64`, [`FeatureDrift`]); nothing is serialised on
//! the way. Each column is read once: the latency column's values feed the quantiles and the
//! exporter's histogram from the same vector.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;

use crate::drift::{FeatureDrift, evaluate};
use crate::error::AnalyzerError;
use crate::event_schema::{CONFIDENCE, LATENCY_MS};
use crate::sql::{ProfileSet, quantile_sorted};
use crate::state::FeatureState;
use crate::stream::report::Quantiles;

/// What one pass over a window's batches found.
#[derive(Debug)]
pub(crate) struct WindowStats {
    /// Rows in the batches (the retained rows of the window).
    pub rows: u64,
    /// Every finite latency, in seconds (`latency_ms / 1000`), sorted ascending.
    pub latencies_s: Vec<f64>,
    /// Every finite confidence, sorted ascending.
    pub confidences: Vec<f64>,
    /// Per profiled feature present in the batches, in profile order: (name, non-null values,
    /// drift).
    pub features: Vec<(String, u64, FeatureDrift)>,
}

impl WindowStats {
    /// Reads `batches` once. `features` are the model's profiled features in profile order;
    /// those no batch has a column for are left out (they are not reported, as before a window
    /// had them).
    ///
    /// # Errors
    /// [`AnalyzerError::Query`] naming the feature when a numeric feature's column holds text.
    pub(crate) fn of(
        batches: &[RecordBatch],
        features: &[String],
        profiles: &ProfileSet,
    ) -> Result<Self, AnalyzerError> {
        let mut rows = 0u64;
        let mut latencies_s = Vec::new();
        let mut confidences = Vec::new();
        let models: Vec<_> = features
            .iter()
            .filter_map(|f| profiles.feature(f).map(|m| (f, m)))
            .collect();
        let mut tallies: Vec<Option<(u64, FeatureState)>> = vec![None; models.len()];
        for batch in batches {
            rows += batch.num_rows() as u64;
            if let Some(ms) = float_column(batch, LATENCY_MS) {
                latencies_s.extend(
                    ms.iter()
                        .flatten()
                        .filter(|v| v.is_finite())
                        .map(|ms| ms / 1000.0),
                );
            }
            if let Some(c) = float_column(batch, CONFIDENCE) {
                confidences.extend(c.iter().flatten().filter(|v| v.is_finite()));
            }
            for ((name, model), tally) in models.iter().zip(tallies.iter_mut()) {
                let Some(column) = batch.column_by_name(name) else {
                    continue;
                };
                let (present, state) = tally.get_or_insert_with(|| (0, model.new_state()));
                *present += (column.len() - column.null_count()) as u64;
                model.add_array(state, column).map_err(|bad| {
                    AnalyzerError::Query(format!(
                        "feature `{name}`: `{}` is not a number",
                        bad.value
                    ))
                })?;
            }
        }
        crate::kernels::sort_total(&mut latencies_s);
        crate::kernels::sort_total(&mut confidences);
        let features = models
            .iter()
            .zip(tallies)
            .filter_map(|((name, model), tally)| {
                let (present, state) = tally?;
                let drift = evaluate(model.profile(), &state, profiles.settings(), None);
                Some(((*name).clone(), present, drift))
            })
            .collect();
        Ok(Self {
            rows,
            latencies_s,
            confidences,
            features,
        })
    }
}

/// The count and the 50th, 95th and 99th percentiles of `sorted` (ascending, finite), by linear
/// interpolation (numpy's default); `None` quantiles without values (edge case E17).
pub(crate) fn quantiles(sorted: &[f64]) -> Quantiles {
    Quantiles {
        count: sorted.len() as u64,
        p50: quantile_sorted(sorted, 0.5),
        p95: quantile_sorted(sorted, 0.95),
        p99: quantile_sorted(sorted, 0.99),
    }
}

fn float_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Option<&'a datafusion::arrow::array::PrimitiveArray<Float64Type>> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
}
