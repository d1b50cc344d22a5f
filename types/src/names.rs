//! Metric and alert names, defined once: the exporter registers these, the rule engine and the
//! Prometheus rule files alert on them, and the controller's PromQL queries them.
//!
//! Metric names are the base names given to `prometheus_client`'s registry: the OpenMetrics encoder
//! appends `_total` to counters itself, so [`metric::REQUESTS`] is exposed as
//! `model_requests_total`. Histogram series carry the usual `_bucket`, `_sum` and `_count`
//! suffixes.

/// Model metrics (`model_*`), labelled by `model`, `version`, `variant` and more.
pub mod metric {
    /// Counter of predictions absorbed (exposed as `model_requests_total`).
    pub const REQUESTS: &str = "model_requests";
    /// Histogram of prediction latency, in seconds.
    pub const REQUEST_DURATION_SECONDS: &str = "model_request_duration_seconds";
    /// Histogram of prediction confidence, in [0, 1].
    pub const PREDICTION_CONFIDENCE: &str = "model_prediction_confidence";
    /// Gauge: the latest closed window's drift statistic per feature and method.
    pub const DATA_DRIFT: &str = "model_data_drift";
    /// Gauge: the latest closed window's p-value of the `ks` and `chi2` tests.
    pub const DATA_DRIFT_P_VALUE: &str = "model_data_drift_p_value";
    /// Gauge: the threshold of each verdict method.
    pub const DATA_DRIFT_THRESHOLD: &str = "model_data_drift_threshold";
    /// Gauge: the latest closed window's verdict per feature (1 drift, 0 no drift).
    pub const FEATURE_DRIFT: &str = "model_feature_drift";
    /// Gauge: share of missing values of a feature in the latest closed window.
    pub const FEATURE_MISSING_RATIO: &str = "model_feature_missing_ratio";
    /// Gauge: 1 when a feature's missing share surged in the latest closed window, else 0.
    pub const FEATURE_MISSING_SURGE: &str = "model_feature_missing_surge";
    /// Gauge: share of a feature's values outside the reference (range or categories) in the
    /// latest closed window.
    pub const FEATURE_OUT_OF_REFERENCE_RATIO: &str = "model_feature_out_of_reference_ratio";
    /// Gauge: a user-defined per-window metric.
    pub const WINDOW_METRIC: &str = "model_window_metric";
    /// Gauge: events in the latest closed window.
    pub const WINDOW_EVENTS: &str = "model_window_events";
}

/// The built-in alerts (`rules/driftwatch.rules.yaml` and the built-in rule engine).
pub mod alert {
    /// p95 latency above 1 s for 5 minutes.
    pub const HIGH_MODEL_LATENCY: &str = "HighModelLatency";
    /// A verdict method's drift value above its threshold for 10 minutes.
    pub const MODEL_DATA_DRIFT: &str = "ModelDataDrift";
    /// Median confidence below 0.7 for 15 minutes.
    pub const LOW_PREDICTION_CONFIDENCE: &str = "LowPredictionConfidence";
    /// A feature's missing share surged (beyond its noise and by 2 points) for 10 minutes.
    pub const MODEL_DATA_QUALITY: &str = "ModelDataQuality";
    /// Every built-in alert, in rule-file order.
    pub const BUILTIN: [&str; 4] = [
        HIGH_MODEL_LATENCY,
        MODEL_DATA_DRIFT,
        LOW_PREDICTION_CONFIDENCE,
        MODEL_DATA_QUALITY,
    ];
}
