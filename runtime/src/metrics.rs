//! The streaming loop's telemetry, in the conventions of the `telemetry` crate: [`RuntimeMetrics`]
//! (window-close time, checkpoint age, event-time rejections) and the loop's observable events,
//! each logged and counted by its `emit()`:
//! - [`EventsRefusedOnTime`] -> `driftwatch_event_time_rejected_total{reason}`;
//! - [`WindowClosed`] -> `driftwatch_window_close_seconds`;
//! - [`CheckpointAge`] -> `driftwatch_checkpoint_age_seconds`.
//!
//! Per-model counts the exporter keeps with its series TTL (late events, rejected feature values)
//! are the exporter's events ([`alerting::exporter::LateEvents`],
//! [`alerting::exporter::InvalidValues`]), emitted on its [`alerting::ModelMetrics`].

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use telemetry::{InternalEvent, Registry};
use types::report::SeriesKey;

/// Buckets of `driftwatch_window_close_seconds`, in seconds (1 ms to 10 s; docs/metrics.md does
/// not fix them).
pub const WINDOW_CLOSE_BUCKETS_S: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

telemetry::label_values! {
    /// Why an event was refused on its event time, in
    /// `driftwatch_event_time_rejected_total{reason}`.
    pub enum EventTimeRejection {
        /// Further ahead of the service's clock than `windows.max_future_skew`.
        Future => "event_time_future",
        /// Further behind the service's clock than `windows.max_event_age`.
        TooOld => "event_time_too_old",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: EventTimeRejection,
}

/// Handles to the streaming loop's metrics. Clones share them; `Default` gives unregistered
/// handles.
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    event_time_rejected: Family<ReasonLabel, Counter>,
    window_close: Histogram,
    checkpoint_age: Gauge<f64, AtomicU64>,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        Self {
            event_time_rejected: Family::default(),
            window_close: Histogram::new(WINDOW_CLOSE_BUCKETS_S),
            checkpoint_age: Gauge::default(),
        }
    }
}

impl telemetry::Metrics for RuntimeMetrics {
    type Config = ();

    fn register(registry: &mut Registry, _: &()) -> Self {
        let m = Self::default();
        registry.register(
            "driftwatch_window_close_seconds",
            "Wall time to close a window (all statistics)",
            m.window_close.clone(),
        );
        registry.register(
            "driftwatch_checkpoint_age_seconds",
            "Seconds since the last successful checkpoint",
            m.checkpoint_age.clone(),
        );
        registry.register(
            "driftwatch_event_time_rejected",
            "Events refused because their event time lies outside the accepted range around the service's clock",
            m.event_time_rejected.clone(),
        );
        m
    }
}

impl RuntimeMetrics {
    /// The current value of `driftwatch_event_time_rejected_total{reason}`.
    pub fn event_time_rejected_total(&self, reason: EventTimeRejection) -> u64 {
        self.event_time_rejected
            .get(&ReasonLabel { reason })
            .map_or(0, |c| c.get())
    }
}

/// Events of `model` refused because their event time lies outside
/// `[now - windows.max_event_age, now + windows.max_future_skew]`: logged as a warning with the
/// source positions, counted per reason (no model label: a bad producer cannot grow the series
/// count).
#[derive(Debug)]
pub struct EventsRefusedOnTime<'a> {
    /// The model.
    pub model: &'a str,
    /// Events too far ahead.
    pub future: u64,
    /// Events too far behind.
    pub too_old: u64,
    /// Where they came from (partitions and offsets).
    pub offsets: &'a dyn fmt::Debug,
}

impl InternalEvent<RuntimeMetrics> for EventsRefusedOnTime<'_> {
    fn emit(self, metrics: &RuntimeMetrics) {
        if self.future + self.too_old == 0 {
            return;
        }
        tracing::warn!(model = %self.model, future = self.future, too_old = self.too_old, offsets = ?self.offsets, "events refused: their event time is outside the accepted range around this service's clock (windows.max_future_skew, windows.max_event_age)");
        for (reason, n) in [
            (EventTimeRejection::Future, self.future),
            (EventTimeRejection::TooOld, self.too_old),
        ] {
            if n > 0 {
                metrics
                    .event_time_rejected
                    .get_or_create(&ReasonLabel { reason })
                    .inc_by(n);
            }
        }
    }
}

/// A window was closed and its report computed in `elapsed` wall time: logged at debug,
/// observed in `driftwatch_window_close_seconds`.
#[derive(Debug)]
pub struct WindowClosed<'a> {
    /// The series.
    pub key: &'a SeriesKey,
    /// Window start, event time in ms since the epoch.
    pub start: i64,
    /// Predictions in the window.
    pub requests: u64,
    /// Wall time the close took.
    pub elapsed: Duration,
}

impl InternalEvent<RuntimeMetrics> for WindowClosed<'_> {
    fn emit(self, metrics: &RuntimeMetrics) {
        tracing::debug!(model = %self.key.model, version = %self.key.version, variant = %self.key.variant, start = self.start, requests = self.requests, "window closed");
        metrics.window_close.observe(self.elapsed.as_secs_f64());
    }
}

/// The time since the last successful checkpoint (zero right after one): sets
/// `driftwatch_checkpoint_age_seconds`.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointAge {
    /// Since the last successful checkpoint.
    pub age: Duration,
}

impl InternalEvent<RuntimeMetrics> for CheckpointAge {
    fn emit(self, metrics: &RuntimeMetrics) {
        metrics.checkpoint_age.set(self.age.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use telemetry::{Emit, Metrics as _};

    use super::*;

    #[test]
    fn each_event_updates_its_metric() {
        let mut registry = Registry::default();
        let m = RuntimeMetrics::register(&mut registry, &());
        m.emit(EventsRefusedOnTime {
            model: "m",
            future: 2,
            too_old: 0,
            offsets: &"kafka 0:5",
        });
        m.emit(WindowClosed {
            key: &SeriesKey::new("m", "v1", "stable"),
            start: 0,
            requests: 10,
            elapsed: Duration::from_millis(3),
        });
        m.emit(CheckpointAge {
            age: Duration::from_millis(1500),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("driftwatch_event_time_rejected_total{reason=\"event_time_future\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("event_time_too_old"), "{text}");
        assert!(
            text.contains("driftwatch_window_close_seconds_count 1\n"),
            "{text}"
        );
        // 3 ms falls in the 5 ms bucket and above.
        assert!(
            text.contains("driftwatch_window_close_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("driftwatch_window_close_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("driftwatch_checkpoint_age_seconds 1.5\n"),
            "{text}"
        );
        assert_eq!(m.event_time_rejected_total(EventTimeRejection::Future), 2);
    }
}
