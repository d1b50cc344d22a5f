//! The controller's telemetry (prometheus-client, OpenMetrics text), in the conventions of the
//! `telemetry` crate: [`Metrics`] registered by [`telemetry::Metrics::register`], and one event
//! struct per observable happening whose `emit()` logs and counts it:
//! - [`RetrainJobCounted`] -> `driftwatch_retrain_jobs_total{outcome}`: retraining Jobs created
//!   (`outcome="created"`) and finished (`succeeded`, `failed`, `lost`), each counted once
//!   because the count follows the status transition, not the observation;
//! - [`ReconcileFailed`] -> `driftwatch_reconcile_errors_total{reason}`: reconcile errors by
//!   [`ReconcileErrorReason`].
//!
//! Labels are enums ([`JobOutcome`], [`ReconcileErrorReason`]); no object names or error text.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use telemetry::{InternalEvent, LabelValues, Registry};

use crate::error::{Error, ReconcileErrorReason};

telemetry::label_values! {
    /// What happened to a retraining Job, in `driftwatch_retrain_jobs_total{outcome}`.
    pub enum JobOutcome {
        /// The controller created it.
        Created => "created",
        /// It completed.
        Succeeded => "succeeded",
        /// It failed.
        Failed => "failed",
        /// It disappeared before finishing (deleted, garbage-collected).
        Lost => "lost",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: JobOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: ReconcileErrorReason,
}

/// Handles to the controller's counters. Clones share the same counters; `Default` gives
/// unregistered handles (tests, the dry run).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    retrain_jobs: Family<OutcomeLabels, Counter>,
    reconcile_errors: Family<ReasonLabels, Counter>,
}

impl telemetry::Metrics for Metrics {
    type Config = ();

    /// Registers the counters (names without `_total`: the OpenMetrics encoder adds it).
    fn register(registry: &mut Registry, _: &()) -> Self {
        let m = Self::default();
        registry.register(
            "driftwatch_retrain_jobs",
            "Retraining Jobs created and finished, by outcome",
            m.retrain_jobs.clone(),
        );
        registry.register(
            "driftwatch_reconcile_errors",
            "ModelMonitor reconcile errors, by reason",
            m.reconcile_errors.clone(),
        );
        m
    }
}

impl Metrics {
    /// Current value of `driftwatch_retrain_jobs_total{outcome}` (0 for an unknown outcome).
    pub fn retrain_jobs_total(&self, outcome: &str) -> u64 {
        JobOutcome::ALL
            .iter()
            .find(|o| o.as_str() == outcome)
            .and_then(|&outcome| self.retrain_jobs.get(&OutcomeLabels { outcome }))
            .map_or(0, |c| c.get())
    }
}

/// A retraining Job of `monitor` was created or ended: logged at info and counted in
/// `driftwatch_retrain_jobs_total{outcome}`.
#[derive(Debug, Clone, Copy)]
pub struct RetrainJobCounted<'a> {
    /// The ModelMonitor, `namespace/name`.
    pub monitor: &'a str,
    /// The Job's name.
    pub job: &'a str,
    /// What happened to it.
    pub outcome: JobOutcome,
}

impl InternalEvent<Metrics> for RetrainJobCounted<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::info!(monitor = self.monitor, job = self.job, outcome = %self.outcome, "retraining Job {}", self.outcome);
        metrics
            .retrain_jobs
            .get_or_create(&OutcomeLabels {
                outcome: self.outcome,
            })
            .inc();
    }
}

/// A reconcile of `monitor` failed: logged as a warning (with when it is retried, or that the
/// controller waits for a change) and counted in `driftwatch_reconcile_errors_total{reason}`.
#[derive(Debug)]
pub struct ReconcileFailed<'a> {
    /// The ModelMonitor, `namespace/name`.
    pub monitor: &'a str,
    /// The error.
    pub error: &'a Error,
    /// The delay before the retry; `None` when the controller waits for a change instead.
    pub retry_in: Option<Duration>,
}

impl InternalEvent<Metrics> for ReconcileFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        match self.retry_in {
            Some(delay) => {
                tracing::warn!(monitor = self.monitor, error = %self.error, ?delay, "reconcile failed; retrying");
            }
            None => {
                tracing::warn!(monitor = self.monitor, error = %self.error, "reconcile failed; waiting for a change");
            }
        }
        metrics
            .reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: self.error.metric_label(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use telemetry::{Emit, Metrics as _};

    use super::*;

    #[test]
    fn counters_encode_with_total_suffix_and_bounded_labels() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry, &());
        for outcome in [JobOutcome::Created, JobOutcome::Succeeded] {
            metrics.emit(RetrainJobCounted {
                monitor: "ml/m",
                job: "m-retrain-1",
                outcome,
            });
        }
        metrics.emit(ReconcileFailed {
            monitor: "ml/m",
            error: &Error::MetricsSource("connection refused to 10.0.0.1".into()),
            retry_in: Some(Duration::from_secs(5)),
        });
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
        assert_eq!(metrics.retrain_jobs_total("lost"), 0);
    }
}
