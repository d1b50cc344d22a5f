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
///
/// Deserializes reports written before latency was kept in seconds (a checkpoint's history with
/// `latency_ms`): their quantiles are converted to seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WindowReportWire")]
pub struct WindowReport {
    /// Model, version, variant.
    pub key: SeriesKey,
    /// Window start (inclusive), event time.
    pub start: DateTime<Utc>,
    /// Window end (exclusive), event time.
    pub end: DateTime<Utc>,
    /// Predictions in the window.
    pub requests: u64,
    /// Latency quantiles in seconds (events carry `latency_ms`; the window converts).
    pub latency_seconds: Quantiles,
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

/// [`WindowReport`] as stored, accepting the older `latency_ms` field (milliseconds).
#[derive(Deserialize)]
struct WindowReportWire {
    key: SeriesKey,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    requests: u64,
    #[serde(default)]
    latency_seconds: Option<Quantiles>,
    #[serde(default)]
    latency_ms: Option<Quantiles>,
    confidence: Quantiles,
    missing_ratio: BTreeMap<String, f64>,
    drift: Vec<FeatureDrift>,
    custom: BTreeMap<String, Option<f64>>,
    sampled: bool,
}

impl From<WindowReportWire> for WindowReport {
    fn from(w: WindowReportWire) -> Self {
        let seconds = |v: Option<f64>| v.map(|ms| ms / 1000.0);
        let latency_seconds = match (w.latency_seconds, w.latency_ms) {
            (Some(s), _) => s,
            (None, Some(ms)) => Quantiles {
                count: ms.count,
                p50: seconds(ms.p50),
                p95: seconds(ms.p95),
                p99: seconds(ms.p99),
            },
            (None, None) => Quantiles::default(),
        };
        Self {
            key: w.key,
            start: w.start,
            end: w.end,
            requests: w.requests,
            latency_seconds,
            confidence: w.confidence,
            missing_ratio: w.missing_ratio,
            drift: w.drift,
            custom: w.custom,
            sampled: w.sampled,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> WindowReport {
        WindowReport {
            key: SeriesKey::new("m", "v1", "stable"),
            start: DateTime::from_timestamp(60, 0).unwrap_or_default(),
            end: DateTime::from_timestamp(120, 0).unwrap_or_default(),
            requests: 3,
            latency_seconds: Quantiles {
                count: 3,
                p50: Some(0.125),
                p95: Some(0.5),
                p99: None,
            },
            confidence: Quantiles::default(),
            missing_ratio: BTreeMap::new(),
            drift: Vec::new(),
            custom: BTreeMap::new(),
            sampled: false,
        }
    }

    #[test]
    fn a_report_round_trips_with_latency_in_seconds() {
        let r = report();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"latency_seconds\":{\"count\":3,\"p50\":0.125"));
        assert!(!text.contains("latency_ms"));
        assert_eq!(serde_json::from_str::<WindowReport>(&text).unwrap(), r);
    }

    /// Regression: a checkpoint's history written before latency was in seconds still reads,
    /// with its millisecond quantiles converted (125 ms -> 0.125 s).
    #[test]
    fn a_stored_report_with_latency_ms_reads_in_seconds() {
        let r = report();
        let legacy = serde_json::to_string(&r).unwrap().replace(
            "\"latency_seconds\":{\"count\":3,\"p50\":0.125,\"p95\":0.5,",
            "\"latency_ms\":{\"count\":3,\"p50\":125.0,\"p95\":500.0,",
        );
        assert!(legacy.contains("latency_ms"), "{legacy}");
        assert_eq!(serde_json::from_str::<WindowReport>(&legacy).unwrap(), r);
    }
}
