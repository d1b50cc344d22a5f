//! The Prometheus exporter: the model and service metrics of `docs/metrics.md`, updated once per
//! closed window, and the HTTP endpoints `GET /metrics`, `GET /healthz` and `GET /readyz`.
//!
//! Every metric name of this crate is registered in [`ModelMetrics::register`] and nowhere else.
//! Counters are registered without their `_total` suffix: the OpenMetrics encoder adds it.
//!
//! # Bounded labels
//!
//! The label values `model`, `version`, `variant`, `feature` and `method` come from the
//! configuration (models and variants), the reference profiles (features) and the fixed set of
//! drift methods, never from free-form event content; the collector validates `model` and
//! `model_version` before events reach a window (`invalid_model`, `field_too_long`). What remains
//! unbounded over time (new versions being deployed) is trimmed by the series TTL: the label sets
//! of a `(model, version, variant)` not updated for [`MetricsConfig::series_ttl`] are removed from
//! every family ([`ModelMetrics::prune`]).
//!
//! # Registry sharing
//!
//! The binary builds one [`Registry`], lets every crate register into it
//! (`CollectorMetrics::register`, [`ModelMetrics::register`], the controller's metrics), then wraps
//! it in an [`Arc`] and serves it with [`router`]. Metric handles share their values with the
//! registry (atomics behind `Arc`s), so the registry itself is never mutated after startup and
//! needs no lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use types::drift::Direction;
use types::drift::FeatureDrift;
use types::report::{ClosedWindow, SeriesKey};

use crate::error::AlertingError;
use crate::trigger::AlertStatus;
use types::names::metric;

/// The content type of `GET /metrics` (OpenMetrics text 1.0.0).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of `model_request_duration_seconds`, in seconds (docs/metrics.md).
pub const LATENCY_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of `model_prediction_confidence` (docs/metrics.md): 0.1, 0.2, ..., 1.0.
pub const CONFIDENCE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Buckets of `driftwatch_window_close_seconds`, in seconds (1 ms to 10 s; docs/metrics.md does
/// not fix them).
pub const WINDOW_CLOSE_BUCKETS_S: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exporter's settings: the `[metrics]` section of the configuration.
///
/// ```toml
/// [metrics]
/// series_ttl = "1h"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// How long the series of a `(model, version, variant)` stay exported after its last closed
    /// window; then they are removed from every family. A duration (`"1h"`, `"30m"`); default
    /// `1h`.
    #[serde(default = "default_series_ttl", with = "humantime_serde")]
    pub series_ttl: Duration,
}

fn default_series_ttl() -> Duration {
    Duration::from_secs(3600)
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            series_ttl: default_series_ttl(),
        }
    }
}

/// Which field held a rejected value in `driftwatch_invalid_values_total{field}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidField {
    /// A NaN or infinite latency.
    Latency,
    /// A NaN or infinite confidence.
    Confidence,
    /// A feature value of the wrong type.
    Feature,
}

impl InvalidField {
    /// The label value: `latency`, `confidence` or `feature`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidField::Latency => "latency",
            InvalidField::Confidence => "confidence",
            InvalidField::Feature => "feature",
        }
    }
}

/// Why an event was refused on its event time, in
/// `driftwatch_event_time_rejected_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventTimeRejection {
    /// Further ahead of the service's clock than `windows.max_future_skew`.
    Future,
    /// Further behind the service's clock than `windows.max_event_age`.
    TooOld,
}

impl EventTimeRejection {
    /// The label value: `event_time_future` or `event_time_too_old`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventTimeRejection::Future => "event_time_future",
            EventTimeRejection::TooOld => "event_time_too_old",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
    version: String,
    variant: String,
}

impl From<&SeriesKey> for ModelLabels {
    fn from(k: &SeriesKey) -> Self {
        Self {
            model: k.model.clone(),
            version: k.version.clone(),
            variant: k.variant.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabels {
    model: String,
    version: String,
    variant: String,
    feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CustomMetricLabels {
    model: String,
    version: String,
    variant: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    model: String,
    version: String,
    variant: String,
    feature: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabel {
    field: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelOnlyLabel {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertSentLabels {
    status: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type F64Gauge = Gauge<f64, AtomicU64>;
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

fn confidence_histogram() -> Histogram {
    Histogram::new(CONFIDENCE_BUCKETS)
}

/// The label sets one series currently has in the per-feature families, so that the ones a new
/// window no longer has, and all of them at expiry, can be removed.
#[derive(Debug, Default)]
struct SeriesLabelSets {
    last_update: Option<Instant>,
    drift: HashSet<DriftLabels>,
    p_value: HashSet<DriftLabels>,
    threshold: HashSet<DriftLabels>,
    verdict: HashSet<FeatureLabels>,
    missing: HashSet<FeatureLabels>,
    surge: HashSet<FeatureLabels>,
    out_of_reference: HashSet<FeatureLabels>,
    custom: HashSet<CustomMetricLabels>,
}

#[derive(Debug, Default)]
struct SeriesIndex {
    series: HashMap<SeriesKey, SeriesLabelSets>,
    late_models: HashMap<String, Instant>,
}

/// Handles to the model and service metrics of docs/metrics.md. Cloning shares them (and the
/// series index used for the TTL).
#[derive(Clone, Debug)]
pub struct ModelMetrics {
    requests: Family<ModelLabels, Counter>,
    duration: HistogramFamily<ModelLabels>,
    confidence: HistogramFamily<ModelLabels>,
    drift: Family<DriftLabels, F64Gauge>,
    drift_p_value: Family<DriftLabels, F64Gauge>,
    drift_threshold: Family<DriftLabels, F64Gauge>,
    feature_drift: Family<FeatureLabels, Gauge>,
    missing_ratio: Family<FeatureLabels, F64Gauge>,
    missing_surge: Family<FeatureLabels, Gauge>,
    out_of_reference: Family<FeatureLabels, F64Gauge>,
    custom: Family<CustomMetricLabels, F64Gauge>,
    window_events: Family<ModelLabels, Gauge>,
    invalid_values: Family<FieldLabel, Counter>,
    event_time_rejected: Family<ReasonLabel, Counter>,
    window_close: Histogram,
    checkpoint_age: F64Gauge,
    late_events: Family<ModelOnlyLabel, Counter>,
    alerts_sent: Family<AlertSentLabels, Counter>,
    build_info: Family<VersionLabel, Gauge>,
    index: Arc<Mutex<SeriesIndex>>,
    series_ttl: Duration,
}

impl ModelMetrics {
    /// Creates the metrics and registers them in `registry` (names as in docs/metrics.md; the
    /// encoder appends `_total` to counters). `driftwatch_build_info{version}` is set to 1 with
    /// this crate's version.
    pub fn register(registry: &mut Registry, config: &MetricsConfig) -> Self {
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
            event_time_rejected: Family::default(),
            window_close: Histogram::new(WINDOW_CLOSE_BUCKETS_S),
            checkpoint_age: F64Gauge::default(),
            late_events: Family::default(),
            alerts_sent: Family::default(),
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
            "driftwatch_window_close_seconds",
            "Wall time to close a window (all statistics)",
            m.window_close.clone(),
        );
        r.register(
            "driftwatch_checkpoint_age_seconds",
            "Seconds since the last successful checkpoint",
            m.checkpoint_age.clone(),
        );
        r.register(
            "driftwatch_event_time_rejected",
            "Events refused because their event time lies outside the accepted range around the service's clock",
            m.event_time_rejected.clone(),
        );
        r.register(
            "driftwatch_late_events",
            "Events behind the watermark by more than the allowed lateness",
            m.late_events.clone(),
        );
        r.register(
            "driftwatch_alerts_sent",
            "Alerts posted to Alertmanager, by status and outcome",
            m.alerts_sent.clone(),
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

    /// Updates the model metrics from one closed window, then removes expired series
    /// ([`ModelMetrics::prune`] with the same `now`).
    ///
    /// - `model_requests_total` grows by `report.requests`;
    /// - every latency (seconds) and confidence is observed; NaN and infinite values are
    ///   rejected and counted in `driftwatch_invalid_values_total{field}` (E18), so a histogram's
    ///   count, sum and buckets always agree;
    /// - per feature and method: `model_data_drift` (the statistic), `model_data_drift_p_value`
    ///   (ks, chi2), `model_data_drift_threshold` (only for methods that voted on this window's
    ///   verdict and whose direction is "drift when above"), `model_feature_drift` (1/0, removed
    ///   while the window is not judged, e.g. insufficient data) and
    ///   `model_feature_missing_ratio`; label sets the previous window had and this one has not
    ///   are removed;
    /// - `model_window_events` is set to `report.requests`.
    ///
    /// The threshold is exported only when the method voted (its `drift` is `Some`), so the
    /// Prometheus rule `model_data_drift > model_data_drift_threshold` never fires on a window
    /// with insufficient data, like the built-in engine.
    ///
    /// `now` is a monotonic wall-clock instant, used only for the series TTL.
    pub fn observe_window(&self, closed: &ClosedWindow, now: Instant) {
        let report = &closed.report;
        let key = &report.key;
        let labels = ModelLabels::from(key);
        self.requests.get_or_create(&labels).inc_by(report.requests);
        {
            let histogram = self.duration.get_or_create(&labels);
            let mut invalid = 0;
            for &v in &closed.latencies_s {
                if v.is_finite() {
                    histogram.observe(v);
                } else {
                    invalid += 1;
                }
            }
            self.invalid_value(InvalidField::Latency, invalid);
        }
        {
            let histogram = self.confidence.get_or_create(&labels);
            let mut invalid = 0;
            for &v in &closed.confidences {
                if v.is_finite() {
                    histogram.observe(v);
                } else {
                    invalid += 1;
                }
            }
            self.invalid_value(InvalidField::Confidence, invalid);
        }
        self.window_events
            .get_or_create(&labels)
            .set(saturating_i64(report.requests));

        let mut next = SeriesLabelSets {
            last_update: Some(now),
            ..SeriesLabelSets::default()
        };
        for fd in &report.drift {
            self.set_feature_drift(key, fd, &mut next);
        }
        for (feature, ratio) in &report.missing_ratio {
            let l = feature_labels(key, feature);
            self.missing_ratio.get_or_create(&l).set(*ratio);
            next.missing.insert(l);
        }
        for (metric, value) in &report.custom {
            // A metric whose query failed or returned NULL has no sample this window.
            let Some(value) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let l = CustomMetricLabels {
                model: key.model.clone(),
                version: key.version.clone(),
                variant: key.variant.clone(),
                metric: metric.clone(),
            };
            self.custom.get_or_create(&l).set(value);
            next.custom.insert(l);
        }

        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = index.series.get(key) {
            self.remove_stale(previous, &next);
        }
        index.series.insert(key.clone(), next);
        self.prune_locked(&mut index, now);
    }

    fn set_feature_drift(&self, key: &SeriesKey, fd: &FeatureDrift, next: &mut SeriesLabelSets) {
        let fl = feature_labels(key, &fd.feature);
        if let Some(q) = fd.quality {
            if q.out_of_reference_rate.is_finite() {
                self.out_of_reference
                    .get_or_create(&fl)
                    .set(q.out_of_reference_rate);
                next.out_of_reference.insert(fl.clone());
            }
            if let Some(surge) = q.missing_surge {
                self.missing_surge.get_or_create(&fl).set(i64::from(surge));
                next.surge.insert(fl.clone());
            }
        }
        if let Some(drift) = fd.drift {
            self.feature_drift.get_or_create(&fl).set(i64::from(drift));
            next.verdict.insert(fl);
        }
        for m in &fd.methods {
            let dl = DriftLabels {
                model: key.model.clone(),
                version: key.version.clone(),
                variant: key.variant.clone(),
                feature: fd.feature.clone(),
                method: m.method.name(),
            };
            if let Some(v) = m.value.filter(|v| v.is_finite()) {
                self.drift.get_or_create(&dl).set(v);
                next.drift.insert(dl.clone());
            }
            if let Some(p) = m.p_value.filter(|v| v.is_finite()) {
                self.drift_p_value.get_or_create(&dl).set(p);
                next.p_value.insert(dl.clone());
            }
            if let Some(t) = m.threshold.filter(|t| {
                m.verdict_method && t.direction == Direction::Above && m.drift.is_some()
            }) {
                self.drift_threshold.get_or_create(&dl).set(t.value);
                next.threshold.insert(dl);
            }
        }
    }

    /// Removes the label sets `previous` has and `next` has not.
    fn remove_stale(&self, previous: &SeriesLabelSets, next: &SeriesLabelSets) {
        for l in previous.drift.difference(&next.drift) {
            self.drift.remove(l);
        }
        for l in previous.p_value.difference(&next.p_value) {
            self.drift_p_value.remove(l);
        }
        for l in previous.threshold.difference(&next.threshold) {
            self.drift_threshold.remove(l);
        }
        for l in previous.verdict.difference(&next.verdict) {
            self.feature_drift.remove(l);
        }
        for l in previous.missing.difference(&next.missing) {
            self.missing_ratio.remove(l);
        }
        for l in previous.surge.difference(&next.surge) {
            self.missing_surge.remove(l);
        }
        for l in previous.out_of_reference.difference(&next.out_of_reference) {
            self.out_of_reference.remove(l);
        }
        for l in previous.custom.difference(&next.custom) {
            self.custom.remove(l);
        }
    }

    /// Removes every series of a `(model, version, variant)` whose last closed window was
    /// observed `series_ttl` or more before `now`, from every family, and
    /// `driftwatch_late_events_total{model}` of models without late events for as long.
    /// Returns the number of `(model, version, variant)` removed.
    pub fn prune(&self, now: Instant) -> usize {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        self.prune_locked(&mut index, now)
    }

    fn prune_locked(&self, index: &mut SeriesIndex, now: Instant) -> usize {
        let ttl = self.series_ttl;
        let expired = |t: Instant| now.saturating_duration_since(t) >= ttl;
        let gone: Vec<SeriesKey> = index
            .series
            .iter()
            .filter(|(_, s)| s.last_update.is_none_or(expired))
            .map(|(k, _)| k.clone())
            .collect();
        let empty = SeriesLabelSets::default();
        for key in &gone {
            if let Some(sets) = index.series.remove(key) {
                self.remove_stale(&sets, &empty);
            }
            let l = ModelLabels::from(key);
            self.requests.remove(&l);
            self.duration.remove(&l);
            self.confidence.remove(&l);
            self.window_events.remove(&l);
        }
        index.late_models.retain(|model, t| {
            let keep = !expired(*t);
            if !keep {
                self.late_events.remove(&ModelOnlyLabel {
                    model: model.clone(),
                });
            }
            keep
        });
        gone.len()
    }

    /// Counts `n` rejected values of `field` in `driftwatch_invalid_values_total{field}`.
    pub fn invalid_value(&self, field: InvalidField, n: u64) {
        if n > 0 {
            self.invalid_values
                .get_or_create(&FieldLabel {
                    field: field.as_str(),
                })
                .inc_by(n);
        }
    }

    /// Counts `n` events refused on their event time in
    /// `driftwatch_event_time_rejected_total{reason}` (no model label: a bad producer cannot grow
    /// the series count).
    pub fn event_time_rejected(&self, reason: EventTimeRejection, n: u64) {
        if n > 0 {
            self.event_time_rejected
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .inc_by(n);
        }
    }

    /// The current value of `driftwatch_event_time_rejected_total{reason}`.
    pub fn event_time_rejected_total(&self, reason: EventTimeRejection) -> u64 {
        self.event_time_rejected
            .get(&ReasonLabel {
                reason: reason.as_str(),
            })
            .map_or(0, |c| c.get())
    }

    /// Counts `n` events of `model` that arrived behind the watermark by more than the allowed
    /// lateness (`driftwatch_late_events_total{model}`). `now` keeps the series alive for the TTL.
    pub fn late_events(&self, model: &str, n: u64, now: Instant) {
        self.late_events
            .get_or_create(&ModelOnlyLabel {
                model: model.to_string(),
            })
            .inc_by(n);
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.late_models.insert(model.to_string(), now);
    }

    /// Observes the wall time it took to close one window (`driftwatch_window_close_seconds`).
    pub fn observe_window_close(&self, elapsed: Duration) {
        self.window_close.observe(elapsed.as_secs_f64());
    }

    /// Sets `driftwatch_checkpoint_age_seconds`: the time since the last successful checkpoint.
    pub fn set_checkpoint_age(&self, age: Duration) {
        self.checkpoint_age.set(age.as_secs_f64());
    }

    /// Counts `n` alerts posted to Alertmanager (`driftwatch_alerts_sent_total{status,outcome}`,
    /// `outcome` `ok` when Alertmanager accepted them, else `error`).
    pub fn alerts_sent(&self, status: AlertStatus, ok: bool, n: u64) {
        if n > 0 {
            self.alerts_sent
                .get_or_create(&alert_sent_labels(status, ok))
                .inc_by(n);
        }
    }

    /// The current value of `driftwatch_alerts_sent_total{status,outcome}` (for tests and
    /// summaries).
    pub fn alerts_sent_total(&self, status: AlertStatus, ok: bool) -> u64 {
        self.alerts_sent
            .get(&alert_sent_labels(status, ok))
            .map_or(0, |c| c.get())
    }

    /// The current value of `driftwatch_invalid_values_total{field}`.
    pub fn invalid_values_total(&self, field: InvalidField) -> u64 {
        self.invalid_values
            .get(&FieldLabel {
                field: field.as_str(),
            })
            .map_or(0, |c| c.get())
    }
}

fn alert_sent_labels(status: AlertStatus, ok: bool) -> AlertSentLabels {
    AlertSentLabels {
        status: match status {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        },
        outcome: if ok { "ok" } else { "error" },
    }
}

fn feature_labels(key: &SeriesKey, feature: &str) -> FeatureLabels {
    FeatureLabels {
        model: key.model.clone(),
        version: key.version.clone(),
        variant: key.variant.clone(),
        feature: feature.to_string(),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Encodes `registry` as OpenMetrics text (ending with `# EOF`).
///
/// # Errors
/// [`AlertingError::Encode`] when a metric cannot be written (the text writer itself never fails).
pub fn encode_registry(registry: &Registry) -> Result<String, AlertingError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// The content type of `GET /metrics` in the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites OpenMetrics text (as [`encode_registry`] writes it) in the Prometheus text format
/// 0.0.4, for scrapers and tools that ask for it (`promtool check metrics`, older Prometheus):
/// a counter family's `# HELP` and `# TYPE` lines name its `_total` samples (in OpenMetrics they
/// name the family without the suffix, which the 0.0.4 parser reports as "no help text"), its
/// `_created` samples are dropped, `# UNIT` lines and the closing `# EOF` are dropped, and an
/// `info` family becomes a gauge. Samples and label escaping are the same in both formats.
/// Sources: the OpenMetrics 1.0 specification (counters, `# EOF`) and Prometheus' "Exposition
/// formats" (text format 0.0.4).
pub fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
            && kind == "counter"
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let rewritten = if line == "# EOF" || line.starts_with("# UNIT ") {
            None
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(if counters.contains(name) {
                format!("# HELP {name}_total {help}")
            } else {
                line.to_string()
            })
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            Some(match rest.split_once(' ') {
                Some((name, "counter")) => format!("# TYPE {name}_total counter"),
                Some((name, "info")) => format!("# TYPE {name}_info gauge"),
                _ => line.to_string(),
            })
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let created = name
                .strip_suffix("_created")
                .is_some_and(|family| counters.contains(family));
            (!created).then(|| line.to_string())
        };
        if let Some(l) = rewritten {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Whether an `Accept` header asks for the Prometheus text format rather than OpenMetrics: it
/// accepts `text/plain` (with a quality above 0) and does not accept
/// `application/openmetrics-text`. Without an `Accept` header, or with `*/*`, `/metrics`
/// answers OpenMetrics.
fn wants_prometheus_text(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    // Media ranges with their quality (RFC 9110 section 12.5.1); `q=0` means "not acceptable".
    let accepted = |media: &str| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            name == media && q > 0.0
        })
    };
    accepted("text/plain") && !accepted("application/openmetrics-text")
}

/// Whether the process is ready to serve: shared between the component that decides it (e.g. the
/// binary once sources are connected and state restored) and `GET /readyz`. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Readiness {
    state: Arc<RwLock<Result<(), String>>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// Not ready, with the reason `starting`.
    pub fn new() -> Self {
        Self {
            state: Arc::new(RwLock::new(Err("starting".to_string()))),
        }
    }

    /// Marks the process ready: `GET /readyz` answers 200.
    pub fn set_ready(&self) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Ok(());
    }

    /// Marks the process not ready: `GET /readyz` answers 503 with `reason`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Err(reason.into());
    }

    /// `Ok(())` when ready, else the reason.
    pub fn status(&self) -> Result<(), String> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone, Debug)]
struct ExporterState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The exporter's routes, to merge into the binary's HTTP server:
/// - `GET /metrics`: `registry` as OpenMetrics text, content type [`OPENMETRICS_CONTENT_TYPE`]
///   (500 with a JSON error if encoding fails);
/// - `GET /healthz`: 200 `{"status":"ok"}` while the process runs;
/// - `GET /readyz`: 200 `{"status":"ready"}` when `readiness` is set, else 503
///   `{"status":"not_ready","reason":"..."}`.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz_handler))
        .route("/readyz", get(readyz_handler))
        .with_state(ExporterState {
            registry,
            readiness,
        })
}

async fn metrics_handler(
    State(state): State<ExporterState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match encode_registry(&state.registry) {
        Ok(text) if wants_prometheus_text(accept) => (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE)],
            openmetrics_to_prometheus_text(&text),
        )
            .into_response(),
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            let body = serde_json::json!({"error": e.to_string()});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

async fn healthz_handler() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz_handler(State(state): State<ExporterState>) -> Response {
    match state.readiness.status() {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => {
            let body = serde_json::json!({"status": "not_ready", "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::body::Body;
    use axum::http::Request;
    use chrono::{TimeZone, Utc};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use types::FeatureKind;
    use types::drift::Method;
    use types::drift::{FeatureStatus, MethodResult, Threshold, ThresholdSource};
    use types::report::{Quantiles, WindowReport};

    use super::*;

    fn key() -> SeriesKey {
        SeriesKey::new("m", "v1", "stable")
    }

    fn report(key: SeriesKey, requests: u64) -> WindowReport {
        WindowReport {
            key,
            start: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            end: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 5, 0)
                .single()
                .unwrap_or_default(),
            requests,
            latency_ms: Quantiles::default(),
            confidence: Quantiles::default(),
            missing_ratio: BTreeMap::new(),
            drift: Vec::new(),
            custom: BTreeMap::new(),
            sampled: false,
        }
    }

    fn method(
        m: Method,
        value: f64,
        p: Option<f64>,
        verdict: bool,
        drift: Option<bool>,
    ) -> MethodResult {
        MethodResult {
            method: m,
            value: Some(value),
            p_value: p,
            dof: None,
            threshold: m.default_threshold().map(|value| Threshold {
                value,
                direction: m.direction(),
                source: ThresholdSource::Fixed,
            }),
            verdict_method: verdict,
            drift,
        }
    }

    fn feature(status: FeatureStatus, judged: bool) -> FeatureDrift {
        let verdict = judged.then_some(true);
        FeatureDrift {
            feature: "car_value".to_string(),
            kind: FeatureKind::Numeric,
            status,
            count: 1000,
            missing: 0,
            drift: verdict,
            methods: vec![
                method(Method::JensenShannon, 0.25, None, true, verdict),
                method(Method::Psi, 0.5, None, false, None),
                method(Method::Ks, 0.2, Some(0.001), false, None),
            ],
            new_categories: Vec::new(),
            quality: None,
        }
    }

    fn setup() -> (Registry, ModelMetrics) {
        let mut registry = Registry::default();
        let metrics = ModelMetrics::register(&mut registry, &MetricsConfig::default());
        (registry, metrics)
    }

    fn text(registry: &Registry) -> String {
        encode_registry(registry).unwrap()
    }

    /// The value of one sample line `name{labels} value`, exactly as encoded.
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(str::to_string)
    }

    const M: &str = r#"model="m",version="v1",variant="stable""#;

    #[test]
    fn nan_latency_and_confidence_are_rejected_and_counted_e18() {
        let (registry, metrics) = setup();
        let closed = ClosedWindow {
            report: report(key(), 4),
            latencies_s: vec![0.004, f64::NAN, 0.2, f64::INFINITY, 3.0],
            confidences: vec![0.95, f64::NAN, 0.55],
        };
        metrics.observe_window(&closed, Instant::now());
        let t = text(&registry);
        let d = "model_request_duration_seconds";
        assert_eq!(
            sample(&t, &format!("{d}_count{{{M}}}")).as_deref(),
            Some("3")
        );
        let sum: f64 = sample(&t, &format!("{d}_sum{{{M}}}"))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 3.204).abs() < 1e-12, "{sum}");
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="0.005",{M}}}"#)).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="0.25",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="2.5",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{d}_bucket{{le="+Inf",{M}}}"#)).as_deref(),
            Some("3")
        );
        let c = "model_prediction_confidence";
        assert_eq!(
            sample(&t, &format!("{c}_count{{{M}}}")).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{c}_bucket{{le="+Inf",{M}}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{c}_bucket{{le="0.6",{M}}}"#)).as_deref(),
            Some("1")
        );
        assert!(
            !t.lines().any(|l| !l.starts_with('#') && l.contains("NaN")),
            "{t}"
        );
        let inv = "driftwatch_invalid_values_total";
        assert_eq!(
            sample(&t, &format!(r#"{inv}{{field="latency"}}"#)).as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&t, &format!(r#"{inv}{{field="confidence"}}"#)).as_deref(),
            Some("1")
        );
        assert_eq!(metrics.invalid_values_total(InvalidField::Latency), 2);
        assert_eq!(
            sample(&t, &format!("model_requests_total{{{M}}}")).as_deref(),
            Some("4")
        );
        assert_eq!(
            sample(&t, &format!("model_window_events{{{M}}}")).as_deref(),
            Some("4")
        );
    }

    #[test]
    fn drift_gauges_thresholds_and_verdict_follow_the_window() {
        let (registry, metrics) = setup();
        let mut r = report(key(), 1000);
        r.drift = vec![feature(FeatureStatus::Ok, true)];
        r.missing_ratio.insert("car_value".to_string(), 0.25);
        let now = Instant::now();
        metrics.observe_window(
            &ClosedWindow {
                report: r.clone(),
                latencies_s: vec![],
                confidences: vec![],
            },
            now,
        );
        let t = text(&registry);
        let fl = format!(r#"{M},feature="car_value""#);
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.25")
        );
        assert_eq!(
            sample(&t, &format!(r#"model_data_drift{{{fl},method="psi"}}"#)).as_deref(),
            Some("0.5")
        );
        assert_eq!(
            sample(&t, &format!(r#"model_data_drift{{{fl},method="ks"}}"#)).as_deref(),
            Some("0.2")
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift_p_value{{{fl},method="ks"}}"#)
            )
            .as_deref(),
            Some("0.001")
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift_threshold{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.1")
        );
        // psi does not vote, ks votes "below": no threshold series.
        let psi = format!(r#"model_data_drift_threshold{{{fl},method="psi"}}"#);
        assert_eq!(sample(&t, &psi), None, "{t}");
        assert!(!t.contains(r#"method="ks"} 0.05"#));
        assert_eq!(
            sample(&t, &format!("model_feature_drift{{{fl}}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&t, &format!("model_feature_missing_ratio{{{fl}}}")).as_deref(),
            Some("0.25")
        );

        // The next window has insufficient data: no verdict, no threshold, statistics still shown.
        r.drift = vec![feature(
            FeatureStatus::InsufficientData { min_samples: 500 },
            false,
        )];
        r.missing_ratio.clear();
        metrics.observe_window(
            &ClosedWindow {
                report: r,
                latencies_s: vec![],
                confidences: vec![],
            },
            now,
        );
        let t = text(&registry);
        assert_eq!(
            sample(&t, &format!("model_feature_drift{{{fl}}}")),
            None,
            "{t}"
        );
        assert!(!t.contains("model_data_drift_threshold{"), "{t}");
        assert_eq!(
            sample(&t, &format!("model_feature_missing_ratio{{{fl}}}")),
            None
        );
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_data_drift{{{fl},method="jensen_shannon"}}"#)
            )
            .as_deref(),
            Some("0.25")
        );
    }

    #[test]
    fn custom_window_metrics_are_gauges_removed_when_absent() {
        let (registry, metrics) = setup();
        let mut r = report(key(), 10);
        r.custom.insert("error_rate".to_string(), Some(0.125));
        r.custom.insert("broken".to_string(), None);
        let now = Instant::now();
        let closed = |r: WindowReport| ClosedWindow {
            report: r,
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&closed(r.clone()), now);
        let t = text(&registry);
        assert_eq!(
            sample(
                &t,
                &format!(r#"model_window_metric{{{M},metric="error_rate"}}"#)
            )
            .as_deref(),
            Some("0.125"),
            "{t}"
        );
        assert!(!t.contains(r#"metric="broken""#), "{t}");
        r.custom.clear();
        metrics.observe_window(&closed(r), now);
        let t = text(&registry);
        assert!(!t.contains("model_window_metric{"), "{t}");
    }

    #[test]
    fn series_expire_after_the_ttl_from_every_family() {
        let (registry, metrics) = setup();
        let t0 = Instant::now();
        let mut r = report(key(), 5);
        r.drift = vec![feature(FeatureStatus::Ok, true)];
        r.missing_ratio.insert("car_value".to_string(), 0.0);
        let closed = ClosedWindow {
            report: r,
            latencies_s: vec![0.1],
            confidences: vec![0.9],
        };
        metrics.observe_window(&closed, t0);
        let other = ClosedWindow {
            report: report(SeriesKey::new("m", "v2", "canary"), 7),
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&other, t0 + Duration::from_secs(1800));
        metrics.late_events("m", 3, t0);
        assert!(text(&registry).contains(r#"driftwatch_late_events_total{model="m"} 3"#));

        assert_eq!(metrics.prune(t0 + Duration::from_secs(3599)), 0);
        assert_eq!(metrics.prune(t0 + Duration::from_secs(3600)), 1);
        let t = text(&registry);
        assert!(!t.contains(r#"version="v1""#), "{t}");
        assert!(!t.contains("driftwatch_late_events_total{"), "{t}");
        assert_eq!(
            sample(
                &t,
                r#"model_requests_total{model="m",version="v2",variant="canary"}"#
            )
            .as_deref(),
            Some("7")
        );
        assert_eq!(metrics.prune(t0 + Duration::from_secs(5400)), 1);
        assert!(!text(&registry).contains("model_requests_total{"));
    }

    /// Issue 19, finding 8: `/metrics` answered OpenMetrics to `Accept: text/plain;version=0.0.4`,
    /// and `promtool check metrics` failed on every counter ("no help text"). Asked for text
    /// 0.0.4, it now answers that format, and promtool (installed by scripts/test.sh) passes it.
    #[tokio::test]
    async fn metrics_endpoint_negotiates_the_prometheus_text_format_and_promtool_passes_it() {
        let (registry, metrics) = setup();
        let closed = ClosedWindow {
            report: report(key(), 5),
            latencies_s: vec![0.01, 0.2],
            confidences: vec![0.9, 0.4],
        };
        metrics.observe_window(&closed, Instant::now());
        metrics.late_events("m", 2, Instant::now());
        metrics.event_time_rejected(EventTimeRejection::Future, 1);
        let app = router(Arc::new(registry), Readiness::new());
        let get = |accept: &'static str| {
            app.clone().oneshot(
                Request::get("/metrics")
                    .header(header::ACCEPT, accept)
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        let res = get("text/plain;version=0.0.4").await.unwrap();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            PROMETHEUS_TEXT_CONTENT_TYPE
        );
        let body = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("# HELP model_requests_total "), "{text}");
        assert!(
            text.contains("# TYPE model_requests_total counter"),
            "{text}"
        );
        assert!(text.contains("model_requests_total{"), "{text}");
        assert!(!text.contains("# EOF"));
        let mut promtool = std::process::Command::new(
            std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into()),
        )
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-services.sh installs it; or set PROMTOOL)");
        use std::io::Write as _;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Prometheus' own Accept header prefers OpenMetrics.
        let res = get(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .await
        .unwrap();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
    }

    #[test]
    fn openmetrics_counters_become_total_families_in_text_format() {
        let om = "# HELP c Things.\n# TYPE c counter\nc_total{a=\"1\"} 3\nc_created{a=\"1\"} 1.5e9\n# HELP g Level.\n# TYPE g gauge\n# UNIT g seconds\ng 2.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP c_total Things.\n# TYPE c_total counter\nc_total{a=\"1\"} 3\n# HELP g Level.\n# TYPE g gauge\ng 2.5\n"
        );
        assert!(wants_prometheus_text(Some("text/plain; version=0.0.4")));
        assert!(wants_prometheus_text(Some(
            "application/openmetrics-text; version=1.0.0; q=0, text/plain; version=0.0.4"
        )));
        assert!(!wants_prometheus_text(Some("text/plain;q=0, */*")));
        assert!(!wants_prometheus_text(Some("*/*")));
        assert!(!wants_prometheus_text(None));
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_openmetrics_text() {
        let (registry, metrics) = setup();
        let closed = ClosedWindow {
            report: report(key(), 5),
            latencies_s: vec![],
            confidences: vec![],
        };
        metrics.observe_window(&closed, Instant::now());
        let app = router(Arc::new(registry), Readiness::new());
        let res = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("# TYPE model_requests counter\n"), "{body}");
        assert!(
            body.contains(
                "model_requests_total{model=\"m\",version=\"v1\",variant=\"stable\"} 5\n"
            ),
            "{body}"
        );
        assert!(body.contains(&format!(
            "driftwatch_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn healthz_and_readyz() {
        let readiness = Readiness::new();
        let app = router(Arc::new(Registry::default()), readiness.clone());
        let get = |path: &'static str| Request::get(path).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(get("/healthz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["reason"], "starting");
        readiness.set_ready();
        let res = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        readiness.set_not_ready("checkpoint restore failed");
        let res = app.oneshot(get("/readyz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["reason"], "checkpoint restore failed");
    }
}
