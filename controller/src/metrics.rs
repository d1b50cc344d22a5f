//! The controller's Prometheus metrics (prometheus-client, OpenMetrics text):
//! - `driftwatch_retrain_jobs_total{outcome}`: retraining Jobs created (`outcome="created"`) and
//!   finished (`succeeded`, `failed`, `lost`), each counted once because the count follows the
//!   status transition, not the observation;
//! - `driftwatch_reconcile_errors_total{reason}`: reconcile errors by [`Error::metric_label`].
//!
//! Labels are bounded `&'static str`s; no object names or error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::error::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Handles to the controller's counters. Clones share the same counters.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    retrain_jobs: Family<OutcomeLabels, Counter>,
    reconcile_errors: Family<ReasonLabels, Counter>,
}

impl Metrics {
    /// Registers the counters (names without `_total`: the OpenMetrics encoder adds it).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "driftwatch_retrain_jobs",
            "Retraining Jobs created and finished, by outcome",
            self.retrain_jobs.clone(),
        );
        registry.register(
            "driftwatch_reconcile_errors",
            "ModelMonitor reconcile errors, by reason",
            self.reconcile_errors.clone(),
        );
    }

    /// Counts one retraining Job event: `created`, `succeeded`, `failed` or `lost`.
    pub fn retrain_job(&self, outcome: &'static str) {
        self.retrain_jobs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one reconcile error under its bounded label.
    pub fn reconcile_error(&self, error: &Error) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: error.metric_label(),
            })
            .inc();
    }

    /// Current value of `driftwatch_retrain_jobs_total{outcome}`.
    pub fn retrain_jobs_total(&self, outcome: &'static str) -> u64 {
        self.retrain_jobs
            .get_or_create(&OutcomeLabels { outcome })
            .get()
    }
}

/// Registers `metrics` in `registry`; the free-function form of [`Metrics::register`].
pub fn register(metrics: &Metrics, registry: &mut Registry) {
    metrics.register(registry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_encode_with_total_suffix_and_bounded_labels() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        register(&metrics, &mut registry);
        metrics.retrain_job("created");
        metrics.retrain_job("succeeded");
        metrics.reconcile_error(&Error::MetricsSource(
            "connection refused to 10.0.0.1".into(),
        ));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains("driftwatch_retrain_jobs_total{outcome=\"created\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("driftwatch_retrain_jobs_total{outcome=\"succeeded\"} 1\n"));
        assert!(text.contains("driftwatch_reconcile_errors_total{reason=\"metrics_source\"} 1\n"));
        assert!(!text.contains("10.0.0.1"));
        assert_eq!(metrics.retrain_jobs_total("created"), 1);
    }
}
