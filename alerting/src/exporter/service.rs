//! The service metrics' updates: invalid values ([`InvalidField`]), event-time rejections
//! ([`EventTimeRejection`]), late events, alerts sent to Alertmanager, window-close time and
//! checkpoint age.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::families::ModelMetrics;
use super::labels::{FieldLabel, ModelOnlyLabel, ReasonLabel, alert_sent_labels};
use crate::trigger::AlertStatus;

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

impl ModelMetrics {
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
