//! What a closed event-time window reports: the contract between the analyzer and the alerting
//! crate (exporter and rule engine).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::drift::FeatureDrift;

/// Identity of a window series: model, version and variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Model name.
    pub model: String,
    /// Model version (`""` when the events had none).
    pub version: String,
    /// Variant: `stable` or `canary`.
    pub variant: String,
}

impl SeriesKey {
    /// A key.
    pub fn new(
        model: impl Into<String>,
        version: impl Into<String>,
        variant: impl Into<String>,
    ) -> Self {
        Self {
            model: model.into(),
            version: version.into(),
            variant: variant.into(),
        }
    }
}

/// Quantiles of a window's values (`None` without observations, never a bucket bound: E17).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Observations.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// The report of one closed window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Model, version, variant.
    pub key: SeriesKey,
    /// Window start (inclusive), event time.
    pub start: DateTime<Utc>,
    /// Window end (exclusive), event time.
    pub end: DateTime<Utc>,
    /// Predictions in the window.
    pub requests: u64,
    /// Latency quantiles in milliseconds.
    pub latency_ms: Quantiles,
    /// Confidence quantiles (the median is `p50`).
    pub confidence: Quantiles,
    /// Share of missing values per feature.
    pub missing_ratio: BTreeMap<String, f64>,
    /// Drift per feature against the model's reference profile (empty without a profile).
    pub drift: Vec<FeatureDrift>,
    /// User-defined per-window metrics (SQL in config), by name; `None` when the query returned
    /// no value.
    pub custom: BTreeMap<String, Option<f64>>,
    /// Whether statistics were computed on a sample of the window (it exceeded the retention cap).
    pub sampled: bool,
}

/// A closed window with the raw observations the exporter's histograms need.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    /// The report.
    pub report: WindowReport,
    /// Every finite latency of the window, in seconds.
    pub latencies_s: Vec<f64>,
    /// Every finite confidence of the window.
    pub confidences: Vec<f64>,
}
