//! The Prometheus exporter: the model and service metrics of `docs/metrics.md`, updated once per
//! closed window, and the HTTP endpoints `GET /metrics`, `GET /healthz` and `GET /readyz`.
//!
//! Every model metric's name is registered in `ModelMetrics::register` ([`telemetry::Metrics`])
//! and nowhere else.
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
//!
//! # Layout
//!
//! This module re-exports the public items of its parts, whose dependencies point one way
//! (`config`, `labels` <- `families` <- `events` <- `observe`; `format`, `readiness` <-
//! `routes`):
//!
//! - `config`: [`MetricsConfig`], the `[metrics]` section;
//! - `labels`: the families' label sets, their construction from a series key, and the index of
//!   the label sets each series currently has (for stale label sets and the TTL);
//! - `families`: [`ModelMetrics`] (the handles to every family), the histogram buckets and
//!   [`ModelMetrics::register`];
//! - `events`: the exporter's observable events besides a closed window, each logged and counted
//!   by its `emit()`: [`InvalidValues`] (labelled by [`InvalidField`]) and [`LateEvents`]. The
//!   streaming loop's own metrics (window-close time, checkpoint age, event-time rejections) are
//!   the runtime crate's, the Alertmanager client's are [`crate::AlertmanagerMetrics`];
//! - `observe`: [`ModelMetrics::observe_window`], a closed window into the model families, and
//!   the series TTL ([`ModelMetrics::prune`]);
//! - `readiness`: [`Readiness`];
//! - `format`: [`encode_registry`] (OpenMetrics text), [`openmetrics_to_prometheus_text`] (text
//!   format 0.0.4) and the `Accept` negotiation between them;
//! - `routes`: [`router`], serving `GET /metrics`, `GET /healthz` and `GET /readyz`.
//!
//! [`Registry`]: prometheus_client::registry::Registry
//! [`Arc`]: std::sync::Arc

mod config;
mod events;
mod families;
#[cfg(test)]
mod fixtures;
mod format;
mod labels;
mod observe;
mod readiness;
mod routes;

pub use config::MetricsConfig;
pub use events::{InvalidValues, LateEvents};
pub use families::{CONFIDENCE_BUCKETS, LATENCY_BUCKETS_S, ModelMetrics};
pub use format::{
    OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE, encode_registry,
    openmetrics_to_prometheus_text,
};
pub use labels::InvalidField;
pub use readiness::Readiness;
pub use routes::router;
