//! The metric families: [`ModelMetrics`], its handles to the model and service metrics, their
//! histogram buckets, and [`ModelMetrics::register`], the one place their names are registered.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use types::names::metric;

use super::config::MetricsConfig;
use super::labels::{
    CustomMetricLabels, DriftLabels, FeatureLabels, FieldLabel, ModelLabels, ModelOnlyLabel,
    SeriesIndex, VersionLabel,
};

/// Buckets of `model_request_duration_seconds`, in seconds (docs/metrics.md).
pub const LATENCY_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of `model_prediction_confidence` (docs/metrics.md): 0.1, 0.2, ..., 1.0.
pub const CONFIDENCE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The exporter's settings: the `[metrics]` section of the configuration.
///
type F64Gauge = Gauge<f64, AtomicU64>;
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

fn confidence_histogram() -> Histogram {
    Histogram::new(CONFIDENCE_BUCKETS)
}

/// Handles to the model and service metrics of docs/metrics.md. Cloning shares them (and the
/// series index used for the TTL).
#[derive(Clone, Debug)]
pub struct ModelMetrics {
    pub(super) requests: Family<ModelLabels, Counter>,
    pub(super) duration: HistogramFamily<ModelLabels>,
    pub(super) confidence: HistogramFamily<ModelLabels>,
    pub(super) drift: Family<DriftLabels, F64Gauge>,
    pub(super) drift_p_value: Family<DriftLabels, F64Gauge>,
    pub(super) drift_threshold: Family<DriftLabels, F64Gauge>,
    pub(super) feature_drift: Family<FeatureLabels, Gauge>,
    pub(super) missing_ratio: Family<FeatureLabels, F64Gauge>,
    pub(super) missing_surge: Family<FeatureLabels, Gauge>,
    pub(super) out_of_reference: Family<FeatureLabels, F64Gauge>,
    pub(super) custom: Family<CustomMetricLabels, F64Gauge>,
    pub(super) window_events: Family<ModelLabels, Gauge>,
    pub(super) invalid_values: Family<FieldLabel, Counter>,
    pub(super) late_events: Family<ModelOnlyLabel, Counter>,
    build_info: Family<VersionLabel, Gauge>,
    pub(super) index: Arc<Mutex<SeriesIndex>>,
    pub(super) series_ttl: Duration,
}

impl telemetry::Metrics for ModelMetrics {
    type Config = MetricsConfig;

    /// Creates the metrics and registers them in `registry` (names as in docs/metrics.md; the
    /// encoder appends `_total` to counters). `driftwatch_build_info{version}` is set to 1 with
    /// this crate's version.
    fn register(registry: &mut Registry, config: &MetricsConfig) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            confidence: Family::new_with_constructor(confidence_histogram as fn() -> Histogram),
            drift: Family::default(),
            drift_p_value: Family::default(),
            drift_threshold: Family::default(),
            feature_drift: Family::default(),
            missing_ratio: Family::default(),
            missing_surge: Family::default(),
            out_of_reference: Family::default(),
            custom: Family::default(),
            window_events: Family::default(),
            invalid_values: Family::default(),
            late_events: Family::default(),
            build_info: Family::default(),
            index: Arc::default(),
            series_ttl: config.series_ttl,
        };
        let r = registry;
        r.register(
            metric::REQUESTS,
            "Predictions absorbed, by event-time window close",
            m.requests.clone(),
        );
        r.register(
            metric::REQUEST_DURATION_SECONDS,
            "Prediction latency in seconds",
            m.duration.clone(),
        );
        r.register(
            metric::PREDICTION_CONFIDENCE,
            "Prediction confidence",
            m.confidence.clone(),
        );
        r.register(
            metric::DATA_DRIFT,
            "The latest closed window's drift statistic per feature and method",
            m.drift.clone(),
        );
        r.register(
            metric::DATA_DRIFT_P_VALUE,
            "p-value of the ks and chi2 tests of the latest closed window",
            m.drift_p_value.clone(),
        );
        r.register(
            metric::DATA_DRIFT_THRESHOLD,
            "Threshold of each voting drift method whose drift is above it",
            m.drift_threshold.clone(),
        );
        r.register(
            metric::FEATURE_DRIFT,
            "The latest closed window's drift verdict per feature (1 drift, 0 no drift)",
            m.feature_drift.clone(),
        );
        r.register(
            metric::FEATURE_MISSING_RATIO,
            "Share of missing values of a feature in the latest closed window",
            m.missing_ratio.clone(),
        );
        r.register(
            metric::FEATURE_MISSING_SURGE,
            "1 when a feature's missing share in the latest closed window rose beyond its sampling noise and by at least windows.drift.adaptive.min_missing_increase over the reference's, else 0",
            m.missing_surge.clone(),
        );
        r.register(
            metric::FEATURE_OUT_OF_REFERENCE_RATIO,
            "Share of a feature's values in the latest closed window outside the reference: below its minimum or above its maximum, or in a category it never had",
            m.out_of_reference.clone(),
        );
        r.register(
            metric::WINDOW_METRIC,
            "A user-defined per-window metric (`windows.custom_metrics`) of the latest closed window",
            m.custom.clone(),
        );
        r.register(
            metric::WINDOW_EVENTS,
            "Events in the latest closed window",
            m.window_events.clone(),
        );
        r.register(
            "driftwatch_invalid_values",
            "NaN or infinite latencies and confidences, and feature values of the wrong type",
            m.invalid_values.clone(),
        );
        r.register(
            "driftwatch_late_events",
            "Events behind the watermark by more than the allowed lateness",
            m.late_events.clone(),
        );
        r.register(
            "driftwatch_build_info",
            "Always 1, labelled with the driftwatch version",
            m.build_info.clone(),
        );
        m.build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        m
    }
}
