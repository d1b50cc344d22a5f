//! What the analyzer (`driftwatch serve`) measured per variant of a model over a canary step, as
//! `GET /api/canary/{model}?window_seconds=N` answers it and the controller's analyzer source
//! reads it. This is how a controller running as its own Deployment gets canary measurements
//! without a Prometheus.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::report::WindowReport;

/// One model's closed windows over a step, per variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanarySummary {
    /// The model.
    pub model: String,
    /// End of the newest closed window of the model (event time); `None` when it has none.
    pub until: Option<DateTime<Utc>>,
    /// The step length the summary covers, ending at `until` (seconds).
    pub window_seconds: u64,
    /// Per variant (`stable`, `canary`, ...).
    pub variants: BTreeMap<String, VariantSummary>,
}

/// One variant over the step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    /// Requests in the step's windows (summed).
    pub requests: u64,
    /// p95 request latency of the newest window in the step (seconds).
    pub latency_p95_seconds: Option<f64>,
    /// Median confidence of the newest window in the step.
    pub confidence_p50: Option<f64>,
    /// Largest drift statistic of a verdict method over the step's windows and features (the
    /// `model_data_drift` gauge's value).
    pub drift_max: Option<f64>,
}

impl CanarySummary {
    /// Summarises `history` (closed-window reports in any order) for `model` over the
    /// `window_seconds` before the end of its newest window: windows whose end lies in
    /// `(until - window_seconds, until]`.
    pub fn from_history(model: &str, window_seconds: u64, history: &[WindowReport]) -> Self {
        let mine: Vec<&WindowReport> = history.iter().filter(|r| r.key.model == model).collect();
        let until = mine.iter().map(|r| r.end).max();
        let mut out = Self {
            model: model.to_string(),
            until,
            window_seconds,
            variants: BTreeMap::new(),
        };
        let Some(until) = until else {
            return out;
        };
        let from = until
            - chrono::Duration::seconds(i64::try_from(window_seconds).unwrap_or(i64::MAX / 1000));
        let mut newest: BTreeMap<&str, &WindowReport> = BTreeMap::new();
        for r in mine.iter().filter(|r| r.end > from && r.end <= until) {
            let v = out.variants.entry(r.key.variant.clone()).or_default();
            v.requests += r.requests;
            let drift = r
                .drift
                .iter()
                .flat_map(|d| d.methods.iter().filter(|m| m.verdict_method))
                .filter_map(|m| m.value)
                .fold(None, |acc: Option<f64>, x| {
                    Some(acc.map_or(x, |a| a.max(x)))
                });
            if let Some(d) = drift {
                v.drift_max = Some(v.drift_max.map_or(d, |a| a.max(d)));
            }
            let slot = newest.entry(r.key.variant.as_str()).or_insert(r);
            if r.end > slot.end {
                *slot = r;
            }
        }
        for (variant, r) in newest {
            if let Some(v) = out.variants.get_mut(variant) {
                v.latency_p95_seconds = r.latency_seconds.p95;
                v.confidence_p50 = r.confidence.p50;
            }
        }
        out
    }
}
