//! The exporter's observable events besides a closed window ([`ModelMetrics::observe_window`]):
//! rejected values ([`InvalidValues`], labelled by [`InvalidField`]) and late events
//! ([`LateEvents`]). Each `emit()` logs (where the happening is worth a line) and counts.

use std::fmt;
use std::sync::PoisonError;
use std::time::Instant;

use telemetry::InternalEvent;

use super::families::ModelMetrics;
use super::labels::{FieldLabel, InvalidField, ModelOnlyLabel};

/// `count` values of `field` were rejected (E18: NaN or infinite latencies and confidences kept
/// out of the histograms; feature values of the wrong type): counted in
/// `driftwatch_invalid_values_total{field}`.
#[derive(Debug, Clone, Copy)]
pub struct InvalidValues {
    /// The field.
    pub field: InvalidField,
    /// How many values.
    pub count: u64,
}

impl InternalEvent<ModelMetrics> for InvalidValues {
    fn emit(self, metrics: &ModelMetrics) {
        if self.count == 0 {
            return;
        }
        tracing::debug!(field = %self.field, count = self.count, "invalid values rejected");
        metrics
            .invalid_values
            .get_or_create(&FieldLabel { field: self.field })
            .inc_by(self.count);
    }
}

/// `count` events of `model` arrived behind the watermark by more than the allowed lateness:
/// logged at debug with the source positions they came from, counted in
/// `driftwatch_late_events_total{model}` (the series lives for the TTL from `now`).
#[derive(Debug)]
pub struct LateEvents<'a> {
    /// The model.
    pub model: &'a str,
    /// How many events.
    pub count: u64,
    /// Where they came from (partitions and offsets), for the log line.
    pub offsets: &'a dyn fmt::Debug,
    /// When (keeps the series alive for the TTL).
    pub now: Instant,
}

impl InternalEvent<ModelMetrics> for LateEvents<'_> {
    fn emit(self, metrics: &ModelMetrics) {
        if self.count == 0 {
            return;
        }
        tracing::debug!(model = %self.model, late = self.count, offsets = ?self.offsets, "late events: their windows have closed");
        metrics
            .late_events
            .get_or_create(&ModelOnlyLabel {
                model: self.model.to_string(),
            })
            .inc_by(self.count);
        let mut index = metrics.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.late_models.insert(self.model.to_string(), self.now);
    }
}

impl ModelMetrics {
    /// The current value of `driftwatch_invalid_values_total{field}`.
    pub fn invalid_values_total(&self, field: InvalidField) -> u64 {
        self.invalid_values
            .get(&FieldLabel { field })
            .map_or(0, |c| c.get())
    }
}
